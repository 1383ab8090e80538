#include "ctiffshim.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EPIPE_MSG_LEN 1024

struct epipe_tiff {
    TIFF *tif;
    char err[EPIPE_MSG_LEN];
    char warn[EPIPE_MSG_LEN];
};

static void append_msg(char *buf, const char *module, const char *fmt, va_list ap) {
    size_t len = strlen(buf);
    if (len >= EPIPE_MSG_LEN - 8) return;
    if (len > 0) { snprintf(buf + len, EPIPE_MSG_LEN - len, "; "); len = strlen(buf); }
    if (module && *module) { snprintf(buf + len, EPIPE_MSG_LEN - len, "%s: ", module); len = strlen(buf); }
    vsnprintf(buf + len, EPIPE_MSG_LEN - len, fmt, ap);
    /* keep one line */
    for (char *p = buf; *p; p++) if (*p == '\n' || *p == '\r') *p = ' ';
}

static int on_error(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    epipe_tiff *h = (epipe_tiff *)ud;
    if (h) append_msg(h->err, module, fmt, ap);
    return 1; /* handled: do not call the global handler (stderr) */
}

static int on_warning(TIFF *tif, void *ud, const char *module, const char *fmt, va_list ap) {
    (void)tif;
    epipe_tiff *h = (epipe_tiff *)ud;
    if (h) append_msg(h->warn, module, fmt, ap);
    return 1;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void silence_globals(void) {
    /* Messages that libtiff still emits through the global handlers must not reach stderr. */
    TIFFSetErrorHandler(NULL);
    TIFFSetWarningHandler(NULL);
}

epipe_tiff *epipe_tiff_open(const char *path, const char *mode, int64_t max_single_alloc) {
    pthread_once(&global_once, silence_globals);
    epipe_tiff *h = (epipe_tiff *)calloc(1, sizeof(epipe_tiff));
    if (!h) return NULL;
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) { snprintf(h->err, EPIPE_MSG_LEN, "out of memory"); return h; }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_error, h);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_warning, h);
    if (max_single_alloc > 0) TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)max_single_alloc);
    h->tif = TIFFOpenExt(path, mode, opts);
    TIFFOpenOptionsFree(opts);
    if (!h->tif && h->err[0] == 0) snprintf(h->err, EPIPE_MSG_LEN, "cannot open");
    return h;
}

TIFF *epipe_tiff_tif(epipe_tiff *h) { return h ? h->tif : NULL; }
const char *epipe_tiff_error(epipe_tiff *h) { return h ? h->err : ""; }
const char *epipe_tiff_warning(epipe_tiff *h) { return h ? h->warn : ""; }
void epipe_tiff_clear_error(epipe_tiff *h) { if (h) { h->err[0] = 0; h->warn[0] = 0; } }
void epipe_tiff_close(epipe_tiff *h) {
    if (!h) return;
    if (h->tif) TIFFClose(h->tif);
    free(h);
}

int epipe_tiff_get_u16(TIFF *tif, uint32_t tag, uint16_t *out) { return TIFFGetField(tif, tag, out); }
int epipe_tiff_get_u32(TIFF *tif, uint32_t tag, uint32_t *out) { return TIFFGetField(tif, tag, out); }
int epipe_tiff_get_u64(TIFF *tif, uint32_t tag, uint64_t *out) { return TIFFGetField(tif, tag, out); }
int epipe_tiff_get_float(TIFF *tif, uint32_t tag, float *out) { return TIFFGetField(tif, tag, out); }
int epipe_tiff_get_double(TIFF *tif, uint32_t tag, double *out) { return TIFFGetField(tif, tag, out); }
int epipe_tiff_get_string(TIFF *tif, uint32_t tag, const char **out) {
    char *s = NULL;
    int ok = TIFFGetField(tif, tag, &s);
    *out = s;
    return ok && s != NULL;
}
int epipe_tiff_get_u16_defaulted(TIFF *tif, uint32_t tag, uint16_t *out) { return TIFFGetFieldDefaulted(tif, tag, out); }
int epipe_tiff_get_u32_defaulted(TIFF *tif, uint32_t tag, uint32_t *out) { return TIFFGetFieldDefaulted(tif, tag, out); }
int epipe_tiff_set_u16(TIFF *tif, uint32_t tag, uint16_t v) { return TIFFSetField(tif, tag, (int)v); }
int epipe_tiff_set_u32(TIFF *tif, uint32_t tag, uint32_t v) { return TIFFSetField(tif, tag, v); }
int epipe_tiff_set_string(TIFF *tif, uint32_t tag, const char *v) { return TIFFSetField(tif, tag, v); }

/* ---------------- test writer ---------------- */

static int write_page(TIFF *tif, const epipe_test_tiff_spec *s, uint32_t w, uint32_t h, uint16_t spp,
                      int separate, uint32_t subfile, const char *desc,
                      const unsigned char *planes, size_t plane_stride_bytes, char *err, size_t errlen) {
    size_t bps = s->bits / 8;
    TIFFSetField(tif, TIFFTAG_SUBFILETYPE, subfile);
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (int)s->bits);
    TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, (int)s->sample_format);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (int)spp);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, separate ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    if (spp > 1 && !separate) {
        uint16_t extra[256];
        for (int i = 0; i < spp - 1 && i < 256; i++) extra[i] = EXTRASAMPLE_UNSPECIFIED;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, (int)(spp - 1), extra);
    }
    TIFFSetField(tif, TIFFTAG_COMPRESSION, (int)s->compression);
    if (s->predictor > 1 && s->compression != COMPRESSION_NONE) TIFFSetField(tif, TIFFTAG_PREDICTOR, (int)s->predictor);
    if (desc) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, desc);
    size_t stride = separate ? 1 : spp;   /* samples per pixel inside one plane buffer */
    int nplanes = separate ? spp : 1;
    if (s->tile) {
        uint32_t t = s->tile;
        TIFFSetField(tif, TIFFTAG_TILEWIDTH, t);
        TIFFSetField(tif, TIFFTAG_TILELENGTH, t);
        size_t tbytes = (size_t)t * t * stride * bps;
        unsigned char *buf = (unsigned char *)malloc(tbytes);
        if (!buf) { snprintf(err, errlen, "oom"); return -1; }
        for (int p = 0; p < nplanes; p++)
            for (uint32_t y = 0; y < h; y += t)
                for (uint32_t x = 0; x < w; x += t) {
                    memset(buf, 0, tbytes);
                    for (uint32_t r = 0; r < t && y + r < h; r++)
                        for (uint32_t c = 0; c < t && x + c < w; c++)
                            for (size_t k = 0; k < stride; k++) {
                                size_t ch = separate ? (size_t)p : k;
                                const unsigned char *src = planes + ch * plane_stride_bytes + (((size_t)(y + r) * w) + x + c) * bps;
                                memcpy(buf + (((size_t)r * t + c) * stride + k) * bps, src, bps);
                            }
                    if (TIFFWriteEncodedTile(tif, TIFFComputeTile(tif, x, y, 0, (uint16_t)p), buf, (tmsize_t)tbytes) < 0) {
                        free(buf); snprintf(err, errlen, "TIFFWriteEncodedTile failed"); return -1;
                    }
                }
        free(buf);
    } else {
        uint32_t rps = s->rows_per_strip ? s->rows_per_strip : TIFFDefaultStripSize(tif, 0);
        if (rps > h) rps = h;
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rps);
        size_t sbytes = (size_t)rps * w * stride * bps;
        unsigned char *buf = (unsigned char *)malloc(sbytes);
        if (!buf) { snprintf(err, errlen, "oom"); return -1; }
        for (int p = 0; p < nplanes; p++)
            for (uint32_t y = 0; y < h; y += rps) {
                uint32_t rows = (y + rps <= h) ? rps : h - y;
                for (uint32_t r = 0; r < rows; r++)
                    for (uint32_t c = 0; c < w; c++)
                        for (size_t k = 0; k < stride; k++) {
                            size_t ch = separate ? (size_t)p : k;
                            const unsigned char *src = planes + ch * plane_stride_bytes + (((size_t)(y + r) * w) + c) * bps;
                            memcpy(buf + (((size_t)r * w + c) * stride + k) * bps, src, bps);
                        }
                if (TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, y, (uint16_t)p), buf, (tmsize_t)((size_t)rows * w * stride * bps)) < 0) {
                    free(buf); snprintf(err, errlen, "TIFFWriteEncodedStrip failed"); return -1;
                }
            }
        free(buf);
    }
    if (!TIFFWriteDirectory(tif)) { snprintf(err, errlen, "TIFFWriteDirectory failed"); return -1; }
    return 0;
}

int epipe_test_write_tiff(const char *path, const epipe_test_tiff_spec *s, const void *data,
                          char *err, size_t errlen) {
    char mode[8] = "w";
    strcat(mode, s->big_endian ? "b" : "l");
    if (s->bigtiff) strcat(mode, "8");
    epipe_tiff *h = epipe_tiff_open(path, mode, 0);
    if (!h || !h->tif) {
        snprintf(err, errlen, "open failed: %s", h ? h->err : "oom");
        epipe_tiff_close(h);
        return -1;
    }
    TIFF *tif = h->tif;
    const unsigned char *planes = (const unsigned char *)data;
    size_t bps = s->bits / 8;
    size_t plane_bytes = (size_t)s->width * s->height * bps;
    int rc = 0;
    if (s->one_page) {
        rc = write_page(tif, s, s->width, s->height, (uint16_t)s->nchan, s->separate, 0, s->description,
                        planes, plane_bytes, err, errlen);
    } else {
        for (uint32_t c = 0; c < s->nchan && rc == 0; c++)
            rc = write_page(tif, s, s->width, s->height, 1, 0, 0, c == 0 ? s->description : NULL,
                            planes + c * plane_bytes, plane_bytes, err, errlen);
    }
    if (rc == 0 && (s->add_reduced_page || s->add_odd_page)) {
        uint32_t w2 = s->width / 2 ? s->width / 2 : 1, h2 = s->height / 2 ? s->height / 2 : 1;
        unsigned char *small = (unsigned char *)calloc((size_t)w2 * h2, bps);
        if (s->add_reduced_page && rc == 0)
            rc = write_page(tif, s, w2, h2, 1, 0, FILETYPE_REDUCEDIMAGE, NULL, small, 0, err, errlen);
        if (s->add_odd_page && rc == 0)
            rc = write_page(tif, s, w2, h2, 1, 0, 0, NULL, small, 0, err, errlen);
        free(small);
    }
    if (rc == 0 && h->err[0]) { snprintf(err, errlen, "libtiff: %s", h->err); rc = -1; }
    epipe_tiff_close(h);
    return rc;
}
