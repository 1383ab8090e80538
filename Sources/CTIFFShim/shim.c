#include "ctiffshim.h"
int epipe_tiff_shim_version(void) { return 1; }
