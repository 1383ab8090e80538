import FuzzDriver

runLibFuzzer(.omexml)
