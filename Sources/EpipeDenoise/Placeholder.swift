// EpipeDenoise
