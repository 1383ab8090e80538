import FuzzDriver

runLibFuzzer(.csv)
