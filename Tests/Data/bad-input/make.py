"""Writes the bad and degenerate images of BadImageTests (issue 15) with tifffile, small enough to
keep in the repo. Provenance: generated here; run `python make.py DIR` to remake them (deterministic)."""
import sys, os
import numpy as np
import tifffile

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


def nuclei(h=96, w=96, c=2):
    """A small 16-bit stack with a few bright discs in channel 0 (so it segments)."""
    img = rng.integers(90, 110, size=(c, h, w)).astype(np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    for cy, cx in [(20, 20), (20, 60), (60, 30), (70, 75)]:
        img[0][(yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 3000
    return img


def w(name, data, **kw):
    tifffile.imwrite(os.path.join(out, name), data, **kw)


good = nuclei()
w("striped.tif", good, photometric="minisblack", rowsperstrip=16)
w("tiled.tif", good, photometric="minisblack", tile=(32, 32))
# truncated copies: the header cut, and the data cut (tiled and striped)
for kind in ("striped", "tiled"):
    b = open(os.path.join(out, kind + ".tif"), "rb").read()
    open(os.path.join(out, kind + "-header-cut.tif"), "wb").write(b[:6])
    open(os.path.join(out, kind + "-data-cut.tif"), "wb").write(b[: len(b) * 2 // 3])
w("bilevel.tif", (good[0] > 1000), photometric="minisblack")                      # 1 bit per sample
w("float64.tif", good[:, :32, :32].astype(np.float64), photometric="minisblack")
w("float16.tif", good[:, :32, :32].astype(np.float16), photometric="minisblack")
w("uint64.tif", good[:, :32, :32].astype(np.uint64), photometric="minisblack")
w("complex.tif", good[:, :32, :32].astype(np.complex64), photometric="minisblack")
f = good.astype(np.float32)
f[0, 5, 5] = np.nan
f[1, 7, 9] = np.inf
w("nan.tif", f, photometric="minisblack")
w("one-pixel.tif", np.full((2, 1, 1), 500, np.uint16), photometric="minisblack")
w("blank.tif", np.full((2, 96, 96), 100, np.uint16), photometric="minisblack")       # no nuclei
strip = np.full((2, 8, 100_000), 100, np.uint16)
strip[0, 2:6, 1000:100_000:500] = 3000                                              # 198 small bright marks
w("strip-100k-x-8.tif", strip, photometric="minisblack", compression="zlib")
w("rgb.tif", np.dstack([good[0] >> 4] * 3).astype(np.uint8), photometric="rgb")
pal = np.zeros((3, 256), np.uint16)
pal[0] = np.arange(256) * 257
w("palette.tif", (good[0] >> 4).astype(np.uint8), photometric="palette", colormap=pal)
# a tile width of 0: the tiled file with its TileWidth value zeroed
b = bytearray(open(os.path.join(out, "tiled.tif"), "rb").read())
with tifffile.TiffFile(os.path.join(out, "tiled.tif")) as t:
    off = t.pages[0].tags["TileWidth"].valueoffset
b[off:off + 2] = b"\0\0"
open(os.path.join(out, "tile-width-0.tif"), "wb").write(bytes(b))
with open(os.path.join(out, "three-markers.csv"), "w") as fh:   # for a 2-channel image
    fh.write("marker_name\nDNA\nCD3\nCD8\n")
