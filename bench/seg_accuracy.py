#!/usr/bin/env python3
"""make bench helper: object F1 at IoU >= 0.5 (one-to-one; IoU > 0.5 matches are unique) and mean IoU
of matches, for epipe's masks and for the scikit-image recipe of ../shared/bench/peer_baseline.py
(`segment`, recomputed here because the baseline does not save its labels), against the generator's
truth masks. Prints one line per scored mask. Not a test: the tests assert floors in Swift.

usage: seg_accuracy.py TRUTH_NUCLEI TRUTH_CELLS EPIPE_NUCLEI EPIPE_CELLS [IMAGE_FOR_PEER]
"""
import sys
import numpy as np
import tifffile


def score(truth, pred):
    t = truth.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    m = (t > 0) & (p > 0)
    pairs, inter = np.unique(np.stack([t[m], p[m]]), axis=1, return_counts=True)
    at = np.bincount(t)
    ap = np.bincount(p)
    iou = inter / (at[pairs[0]] + ap[pairs[1]] - inter)
    good = iou > 0.5
    tp = int(good.sum())
    nt = int((at[1:] > 0).sum())
    npred = int((ap[1:] > 0).sum())
    prec = tp / max(npred, 1)
    rec = tp / max(nt, 1)
    f1 = 2 * prec * rec / max(prec + rec, 1e-9)
    return f1, float(iou[good].mean()) if tp else 0.0, nt, npred


def peer_labels(path):
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed
    img = tifffile.imread(path)
    img = img if img.ndim == 3 else img[None]
    sm = gaussian(img[0], sigma=2, preserve_range=True)
    fg = ndi.binary_fill_holes(sm > threshold_otsu(sm))
    dist = ndi.distance_transform_edt(fg)
    cc, _ = ndi.label(fg)
    pk = peak_local_max(dist, min_distance=7, labels=cc, exclude_border=False)
    mk = np.zeros(fg.shape, np.int32)
    mk[tuple(pk.T)] = np.arange(1, len(pk) + 1)
    return watershed(-dist, mk, mask=fg)


def main():
    tn, tc, en, ec = (tifffile.imread(p) for p in sys.argv[1:5])
    for name, truth, pred in (("epipe nuclei", tn, en), ("epipe cells", tc, ec)):
        f1, miou, nt, npred = score(truth, pred)
        print(f"{name}: F1 {f1:.3f} mean IoU {miou:.3f} (truth {nt}, found {npred})")
    if len(sys.argv) > 5:
        f1, miou, nt, npred = score(tn, peer_labels(sys.argv[5]))
        print(f"scikit-image nuclei: F1 {f1:.3f} mean IoU {miou:.3f} (truth {nt}, found {npred})")


if __name__ == "__main__":
    main()
