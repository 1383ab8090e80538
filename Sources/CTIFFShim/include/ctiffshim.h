#ifndef CTIFFSHIM_H
#define CTIFFSHIM_H
/* Thin non-variadic wrappers over libtiff, filled in by EpipeImage work. */
int epipe_tiff_shim_version(void);
#endif
