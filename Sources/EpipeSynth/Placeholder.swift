// EpipeSynth
