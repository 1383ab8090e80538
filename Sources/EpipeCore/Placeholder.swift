// EpipeCore
