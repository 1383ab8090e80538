// EpipeSegment
