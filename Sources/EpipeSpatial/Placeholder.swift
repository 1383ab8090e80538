// EpipeSpatial
