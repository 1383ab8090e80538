// EpipeStore
