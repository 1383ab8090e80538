// EpipeImage
