import FuzzDriver

runLibFuzzer(.manifest)
