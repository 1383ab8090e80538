// EpipeCluster
