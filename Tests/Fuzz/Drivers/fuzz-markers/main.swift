import FuzzDriver

runLibFuzzer(.markers)
