// EpipeStage
