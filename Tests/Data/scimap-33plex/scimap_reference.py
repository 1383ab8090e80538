#!/usr/bin/env python3
"""Reference labels of SCIMAP's marker gating on example_data.csv, for GatingTests.

Runs scimap's own `sm.pp.rescale` and `sm.tl.phenotype_cells` (the module files of the scimap
wheel, loaded directly so scimap's heavy optional dependencies are not needed) on the 33 marker
channels of example_data.csv, the way `sm.pp.mcmicro_to_scimap` loads such a table (DNA and BG
channels left out, raw values in adata.raw, one image), with `phenotype_workflow.csv`:

  auto:   rescale(adata, gate=None, log=True)  -> GMM gates (3 components, random_state 0)
  manual: rescale(adata, gate=manual_gates.csv, log=True)  (columns markers,gates; log1p scale)

Writes, beside this script:
  scimap_gates_auto.csv          marker,gate   (the GMM gates scimap chose, log1p scale)
  scimap_phenotypes_auto.csv     CellID,phenotype
  scimap_phenotypes_manual.csv   CellID,phenotype
  scimap_phenotypes_manual_t5.csv CellID,phenotype  (manual gates, pheno_threshold_abs=5)
  scimap_versions.txt

Environment used (see scimap_versions.txt):
  python3 -m venv /tmp/scimap-venv
  /tmp/scimap-venv/bin/pip download --no-deps scimap==2.3.6 -d /tmp/scimap-dl
  (unzip the wheel to /tmp/scimap-dl/x)
  /tmp/scimap-venv/bin/pip install "numpy<2" "pandas<3" "anndata<0.11" "scikit-learn<2" "scipy<=1.12.0"
  /tmp/scimap-venv/bin/python Tests/Data/scimap-33plex/scimap_reference.py /tmp/scimap-dl/x
"""
import importlib.util
import os
import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import sklearn
import scipy

warnings.simplefilter("ignore")
here = os.path.dirname(os.path.abspath(__file__))
wheel = sys.argv[1] if len(sys.argv) > 1 else "/tmp/scimap-dl/x"


def load(rel, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(wheel, "scimap", rel))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return getattr(mod, name)


rescale = load("preprocessing/rescale.py", "rescale")
phenotype_cells = load("tools/phenotype_cells.py", "phenotype_cells")

table = pd.read_csv(os.path.join(here, "example_data.csv"))
workflow = pd.read_csv(os.path.join(here, "phenotype_workflow.csv"))
first_meta = list(table.columns).index("X_position")
markers = [c for c in table.columns[1:first_meta]
           if "dna" not in c.lower() and not c.startswith("BG")]
assert len(markers) == 33, markers


def make_adata():
    x = table[markers].to_numpy(dtype=np.float64)
    obs = pd.DataFrame({"imageid": "example_data"},
                       index=[f"example_data_{c}" for c in table["CellID"]])
    a = ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=markers))
    a.raw = a
    return a


def write_labels(adata, name):
    out = pd.DataFrame({"CellID": table["CellID"].values,
                        "phenotype": adata.obs["phenotype"].astype(str).values})
    out.to_csv(os.path.join(here, name), index=False)
    print(name, out["phenotype"].value_counts().to_dict())


# Automatic (GMM) gates.
a = rescale(make_adata(), gate=None, log=True, verbose=False)
gates = a.uns["gates"]["example_data"]
pd.DataFrame({"marker": markers, "gate": [repr(float(gates[m])) for m in markers]}).to_csv(
    os.path.join(here, "scimap_gates_auto.csv"), index=False)
a = phenotype_cells(a, phenotype=workflow, gate=0.5, label="phenotype", verbose=False)
write_labels(a, "scimap_phenotypes_auto.csv")

# Manual gates: a file a person might write (two decimals, log1p scale), chosen away from the GMM
# gates so the test exercises the manual path: the GMM gate plus 0.1, rounded to 2 decimals.
manual = pd.DataFrame({"markers": markers,
                       "gates": [round(float(gates[m]) + 0.1, 2) for m in markers]})
manual.to_csv(os.path.join(here, "manual_gates.csv"), index=False)
m = rescale(make_adata(), gate=pd.read_csv(os.path.join(here, "manual_gates.csv")), log=True,
            verbose=False)
m1 = phenotype_cells(m.copy(), phenotype=workflow, gate=0.5, label="phenotype", verbose=False)
write_labels(m1, "scimap_phenotypes_manual.csv")
m2 = phenotype_cells(m.copy(), phenotype=workflow, gate=0.5, label="phenotype",
                     imageid="imageid", pheno_threshold_abs=5, verbose=False)
write_labels(m2, "scimap_phenotypes_manual_t5.csv")

with open(os.path.join(here, "scimap_versions.txt"), "w") as f:
    f.write(f"scimap 2.3.6 (module files {wheel}/scimap/preprocessing/rescale.py, "
            f"scimap/tools/phenotype_cells.py)\n")
    f.write(f"python {sys.version.split()[0]}\nnumpy {np.__version__}\npandas {pd.__version__}\n"
            f"scikit-learn {sklearn.__version__}\nscipy {scipy.__version__}\nanndata {ad.__version__}\n")
