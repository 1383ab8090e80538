#!/usr/bin/env python3
"""Adjusted Rand index of a clustering against generated truth (stdlib only).

  ari.py CELLS.csv TRUTH.csv [--column cluster]
TRUTH is epipe-synth's truth table: either CellID,type (epipe-synth --cells) or a slide's
<name>-cells.csv (CellID,type,type_name,X,Y), whose cells are matched to CELLS' X_centroid/Y_centroid
by the nearest true centre within 6 px (cells with none are left out; the count is printed)."""
import csv, sys
from math import comb
from collections import Counter

def ari(a, b):
    n = len(a)
    nij = Counter(zip(a, b)); ai = Counter(a); bj = Counter(b)
    s = sum(comb(v, 2) for v in nij.values()); sa = sum(comb(v, 2) for v in ai.values()); sb = sum(comb(v, 2) for v in bj.values())
    e = sa * sb / comb(n, 2); mx = (sa + sb) / 2
    return (s - e) / (mx - e) if mx != e else 1.0

def main():
    args = sys.argv[1:]
    col = "cluster"
    if "--column" in args:
        i = args.index("--column"); col = args[i + 1]; del args[i:i + 2]
    cells = list(csv.DictReader(open(args[0])))
    truth = list(csv.DictReader(open(args[1])))
    if "X" in truth[0]:
        grid = {}
        for t in truth:
            x, y = float(t["X"]), float(t["Y"])
            grid.setdefault((int(x // 8), int(y // 8)), []).append((x, y, t["type"]))
        a, b = [], []
        for c in cells:
            x, y = float(c["X_centroid"]), float(c["Y_centroid"])
            best, bd = None, 36.0
            for gx in range(int(x // 8) - 1, int(x // 8) + 2):
                for gy in range(int(y // 8) - 1, int(y // 8) + 2):
                    for tx, ty, tt in grid.get((gx, gy), []):
                        d = (tx - x) ** 2 + (ty - y) ** 2
                        if d < bd: bd, best = d, tt
            if best is not None: a.append(c[col]); b.append(best)
        print(f"{ari(a, b):.4f} ({len(a)} of {len(cells)} cells matched to a true centre)")
    else:
        t = {r["CellID"]: r["type"] for r in truth}
        pairs = [(c[col], t[c["CellID"]]) for c in cells if c["CellID"] in t]
        print(f"{ari([p[0] for p in pairs], [p[1] for p in pairs]):.4f}")

main()
