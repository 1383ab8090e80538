"""Agreement of epipe-stats' neighbourhood-enrichment z-scores with squidpy's on the same cells.

    python nhood_agree.py CELLS.csv INTERACTIONS.csv [--label phenotype] [--k 6] [--perms 1000]

Runs squidpy's spatial_neighbors (generic kNN k) + nhood_enrichment on CELLS.csv and compares its
z matrix with the z column of epipe-stats' stats/interactions.csv (same graph); prints
"r=<Pearson r> maxdiff=<max |z difference|> pairs=<n>".
"""
import argparse, csv, sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, anndata as ad, squidpy as sq

p = argparse.ArgumentParser()
p.add_argument("cells"); p.add_argument("interactions")
p.add_argument("--label", default="phenotype"); p.add_argument("--x", default="X_centroid"); p.add_argument("--y", default="Y_centroid")
p.add_argument("--k", type=int, default=6); p.add_argument("--perms", type=int, default=1000)
a = p.parse_args()
df = pd.read_csv(a.cells)
adata = ad.AnnData(X=np.zeros((len(df), 1), np.float32))
adata.obsm["spatial"] = df[[a.x, a.y]].to_numpy(np.float64)
adata.obs["c"] = pd.Categorical(df[a.label].astype(str).to_numpy())
sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=a.k)
sq.gr.nhood_enrichment(adata, cluster_key="c", n_perms=a.perms, seed=0, show_progress_bar=False)
cats = list(adata.obs["c"].cat.categories)
zs = np.asarray(adata.uns["c_nhood_enrichment"]["zscore"])
ours, theirs = [], []
with open(a.interactions) as f:
    for r in csv.DictReader(f):
        if r["z"] == "":
            continue
        ours.append(float(r["z"])); theirs.append(zs[cats.index(r["type_a"]), cats.index(r["type_b"])])
ours, theirs = np.array(ours), np.array(theirs)
ok = np.isfinite(ours) & np.isfinite(theirs)
r = np.corrcoef(ours[ok], theirs[ok])[0, 1]
print(f"r={r:.5f} maxdiff={np.abs(ours[ok] - theirs[ok]).max():.3f} pairs={ok.sum()}")
