#!/usr/bin/env python3
"""Object F1 (IoU > 0.5, one-to-one) of epipe-segment and of the scikit-image recipe on real nucleus
images with expert masks, pooled over each set (true positives, found and true objects summed over
the images). Not a test: tests assert floors in Swift (RealNucleiTests).

Each image is ingested into a scratch epipe root once and segmented by the built binary with default
flags, twice: with --nucleus-diameter set to the image's true median equivalent diameter (the hint the
recipe gets too) and without it (epipe estimates it). The recipe is the 10-line scikit-image one of
../shared/bench/peer_baseline.py (Gaussian, Otsu, fill holes, distance transform, peak_local_max,
watershed) with its scales set from that same diameter.

usage: real_nuclei.py [--bin DIR] [--work DIR] [--sets DIR ...] [--modes diam,auto] [--no-peer]
                      [--extra "FLAGS for epipe-segment"] [--per-image]
Default sets: Tests/Data/real-nuclei/{bbbc039,dsb2018}. A set is a folder with images/NAME.tif and masks/NAME.tif (0 background, one id per nucleus).
"""
import argparse
import glob
import os
import subprocess
import sys

import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))


def match(truth, pred):
    """(true positives, number of true objects, number of predicted objects, sum of matched IoU)."""
    t = truth.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    at = np.bincount(t)
    ap = np.bincount(p)
    nt = int((at[1:] > 0).sum())
    npred = int((ap[1:] > 0).sum())
    m = (t > 0) & (p > 0)
    if not m.any():
        return 0, nt, npred, 0.0
    pairs, inter = np.unique(np.stack([t[m], p[m]]), axis=1, return_counts=True)
    iou = inter / (at[pairs[0]] + ap[pairs[1]] - inter)
    good = iou > 0.5
    return int(good.sum()), nt, npred, float(iou[good].sum())


def true_diameter(mask):
    a = np.bincount(mask.ravel().astype(np.int64))[1:]
    a = a[a > 0]
    return float(np.sqrt(4 * np.median(a) / np.pi)) if len(a) else 12.0


def recipe(img, d):
    """The scikit-image recipe with its scales from the nucleus diameter d."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.segmentation import watershed
    sm = gaussian(img.astype(np.float64), sigma=max(1.0, d / 12), preserve_range=True)
    fg = ndi.binary_fill_holes(sm > threshold_otsu(sm))
    dist = ndi.distance_transform_edt(fg)
    cc, _ = ndi.label(fg)
    pk = peak_local_max(dist, min_distance=max(1, int(round(d / 3))), labels=cc, exclude_border=False)
    mk = np.zeros(fg.shape, np.int32)
    mk[tuple(pk.T)] = np.arange(1, len(pk) + 1)
    return watershed(-dist, mk, mask=fg)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"real_nuclei.py: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def jobs_for(set_dir, root, binary):
    """Ingest the set's images once; return {name: job dir}."""
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(set_dir, "images", "*.tif")))
    jobs = {}
    if not os.path.isdir(os.path.join(root, "jobs")):
        for name in names:
            run([os.path.join(binary, "epipe-ingest"), "--root", root, "--settle", "0", "--stages", "segment",
                 "--name", name, "-q", os.path.join(set_dir, "images", name + ".tif")])
    for j in glob.glob(os.path.join(root, "jobs", "*", "job.json")):
        import json
        with open(j) as f:
            jobs[json.load(f)["name"]] = os.path.dirname(j)
    missing = [n for n in names if n not in jobs]
    if missing:
        sys.exit(f"real_nuclei.py: {root} lacks jobs for {missing[:3]}...; remove {root} and rerun")
    return names, jobs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", ".build", "release"))
    ap.add_argument("--work", default="/tmp/epipe-real-nuclei")
    ap.add_argument("--fresh", action="store_true", help="ingest again (after the binaries changed their job format)")
    ap.add_argument("--sets", nargs="*", default=[os.path.join(HERE, "..", "Tests", "Data", "real-nuclei", s)
                                                  for s in ("bbbc039", "dsb2018")])
    ap.add_argument("--modes", default="diam,auto")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--extra", default="")
    ap.add_argument("--diameter-scale", type=float, default=1.0, help="give epipe the true diameter times this (robustness to a wrong hint)")
    ap.add_argument("--per-image", action="store_true")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    print(f"{'set':10} {'method':34} {'F1':>6} {'P':>6} {'R':>6} {'mIoU':>6} {'found':>6} {'truth':>6}")
    for set_dir in a.sets:
        sname = os.path.basename(os.path.normpath(set_dir))
        root = os.path.join(a.work, sname)
        if a.fresh and os.path.isdir(root):
            import shutil
            shutil.rmtree(root)
        names, jobs = jobs_for(set_dir, root, a.bin)
        truths = {n: tifffile.imread(os.path.join(set_dir, "masks", n + ".tif")) for n in names}
        rows = []
        for mode in modes:
            tot = np.zeros(4)
            for n in names:
                cmd = [os.path.join(a.bin, "epipe-segment"), "--force", "-q"] + a.extra.split()
                if mode == "diam":
                    cmd += ["--nucleus-diameter", f"{a.diameter_scale * true_diameter(truths[n]):.2f}"]
                run(cmd + [jobs[n]])
                pred = tifffile.imread(os.path.join(jobs[n], "segment", "nuclei.tif"))
                r = np.array(match(truths[n], pred), float)
                tot += r
                if a.per_image:
                    f1 = 2 * r[0] / max(r[1] + r[2], 1)
                    print(f"  {sname}/{n} {mode}: F1 {f1:.3f} found {int(r[2])} truth {int(r[1])}")
            rows.append((f"epipe default, {'diameter given' if mode == 'diam' else 'no diameter'}", tot))
        if not a.no_peer:
            tot = np.zeros(4)
            for n in names:
                img = tifffile.imread(os.path.join(set_dir, "images", n + ".tif"))
                img = img if img.ndim == 2 else img.reshape(-1, *img.shape[-2:])[0]
                tot += np.array(match(truths[n], recipe(img, true_diameter(truths[n]))), float)
            rows.append(("scikit-image recipe, diameter given", tot))
        for label, (tp, nt, npred, siou) in rows:
            p, r = tp / max(npred, 1), tp / max(nt, 1)
            f1 = 2 * tp / max(nt + npred, 1)
            print(f"{sname:10} {label:34} {f1:6.3f} {p:6.3f} {r:6.3f} {siou / max(tp, 1):6.3f} {int(npred):6d} {int(nt):6d}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
