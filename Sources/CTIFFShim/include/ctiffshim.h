#ifndef CTIFFSHIM_H
#define CTIFFSHIM_H
/* Thin non-variadic wrappers over libtiff for EpipeImage (Swift cannot call variadic C). */
#include <stddef.h>
#include <stdint.h>
#include <tiffio.h>

/* An open libtiff handle plus a per-handle buffer that collects libtiff errors and warnings. */
typedef struct epipe_tiff epipe_tiff;

/* Opens `path` with libtiff (mode e.g. "rm"). Never returns NULL (except out of memory);
   check epipe_tiff_tif() for NULL and read epipe_tiff_error() for the reason.
   max_single_alloc > 0 caps any single libtiff allocation. */
epipe_tiff *epipe_tiff_open(const char *path, const char *mode, int64_t max_single_alloc);
TIFF *epipe_tiff_tif(epipe_tiff *h);
const char *epipe_tiff_error(epipe_tiff *h);   /* "" when none */
const char *epipe_tiff_warning(epipe_tiff *h); /* "" when none */
void epipe_tiff_clear_error(epipe_tiff *h);
void epipe_tiff_close(epipe_tiff *h);

/* TIFFGetField wrappers: return 1 when the tag is present (value in *out), else 0. */
int epipe_tiff_get_u16(TIFF *tif, uint32_t tag, uint16_t *out);
int epipe_tiff_get_u32(TIFF *tif, uint32_t tag, uint32_t *out);
int epipe_tiff_get_u64(TIFF *tif, uint32_t tag, uint64_t *out);
int epipe_tiff_get_float(TIFF *tif, uint32_t tag, float *out);
int epipe_tiff_get_double(TIFF *tif, uint32_t tag, double *out);
int epipe_tiff_get_string(TIFF *tif, uint32_t tag, const char **out);
/* TIFFGetFieldDefaulted wrappers */
int epipe_tiff_get_u16_defaulted(TIFF *tif, uint32_t tag, uint16_t *out);
int epipe_tiff_get_u32_defaulted(TIFF *tif, uint32_t tag, uint32_t *out);
/* TIFFSetField wrappers */
int epipe_tiff_set_u16(TIFF *tif, uint32_t tag, uint16_t v);
int epipe_tiff_set_u32(TIFF *tif, uint32_t tag, uint32_t v);
int epipe_tiff_set_string(TIFF *tif, uint32_t tag, const char *v);

/* ---- Test helper: write a TIFF with libtiff in many layouts. ---- */
typedef struct {
    uint32_t width, height;
    uint32_t nchan;            /* channels (pages, or samples when one_page != 0) */
    uint16_t bits;             /* 8, 16, 32, 64 */
    uint16_t sample_format;    /* 1 uint, 2 int, 3 float */
    uint16_t compression;      /* 1 none, 5 LZW, 8 deflate, 50000 zstd, ... */
    uint16_t predictor;        /* 1 none, 2 horizontal, 3 floating point */
    uint32_t tile;             /* 0: striped, else tile width = height */
    uint32_t rows_per_strip;   /* striped only; 0 = libtiff default */
    int bigtiff;
    int big_endian;
    int one_page;              /* 0: one page per channel; 1: one page with nchan samples */
    int separate;              /* with one_page: 1 PLANARCONFIG_SEPARATE, 0 CONTIG (interleaved) */
    const char *description;   /* optional ImageDescription on the first page */
    int add_reduced_page;      /* append a half-size page marked NEWSUBFILETYPE=1 */
    int add_odd_page;          /* append a full-res page of a different size (not a channel) */
} epipe_test_tiff_spec;

/* data: nchan planes of width*height samples (bits/8 bytes each, native byte order), plane-major.
   Returns 0 on success, else -1 with a message in err. */
int epipe_test_write_tiff(const char *path, const epipe_test_tiff_spec *spec, const void *data,
                          char *err, size_t errlen);

#endif
