import FuzzDriver

runLibFuzzer(.tiff)
