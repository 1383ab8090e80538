#!/usr/bin/env python3
"""The hand-made cases of GatingTests run through scimap 2.3.6 itself (phenotype_cells and rescale
module files of the unpacked wheel, see scimap_reference.py for the environment). Each printed list
is the expectation asserted in GatingTests (same order of tests); all agreed when written."""
import importlib.util, io, warnings, numpy as np, pandas as pd, anndata as ad
warnings.simplefilter("ignore")
spec=importlib.util.spec_from_file_location("pc","/tmp/scimap-dl/x/scimap/tools/phenotype_cells.py"); m=importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
def run(wf, header, rows, images=None, **kw):
    a=ad.AnnData(X=np.array(rows,dtype=float), obs=pd.DataFrame({'imageid':[str(i) for i in (images or [0]*len(rows))]}, index=[f"c{i}" for i in range(len(rows))]), var=pd.DataFrame(index=header))
    return list(m.phenotype_cells(a, pd.read_csv(io.StringIO(wf)), verbose=False, **kw).obs['phenotype'].astype(str))
H,L=0.75,0.25
print(run(",,A,B\nall,A+,pos,\nall,B-,,neg\n",["A","B"],[[0.9,0.9],[0.2,0.1],[0.25,0.75],[0.75,0.25],[0.5,0.5]]))
print(run(",,A,B,C\nall,P,pos,neg,\nall,Q,,,pos\n",["A","B","C"],[[0.75,0.25,0.7],[0.75,0.75,0.25],[0.75,0.75,0.625],[0.25,0.75,0.25]]))
print(run(",,A,B\nall,both,allpos,allpos\nall,either,anypos,anypos\n",["A","B"],[[0.75,0.75],[0.75,0.25],[0.25,0.25],[0.5,0.9]]))
print(run(",,A,B\nall,neither,allneg,allneg\nall,not both,anyneg,anyneg\nall,A,pos,\n",["A","B"],[[0.25,0.25],[0.25,0.75],[0.9,0.75],[0.625,0.875]]))
print(run(",,A,B,C\nall,Treg,pos,pos,\nall,DN,neg,neg,\nTreg,Treg C+,,,pos\n",["A","B","C"],[[0.9,0.6,0.9],[0.75,0.25,0.9],[0.25,0.75,0.1],[0.3,0.6,0.1],[0.1,0.2,0.9],[0.9,0.9,0.1]]))
tree=""",,CD45,CD3,CD4,CD8,CD68,KI67
all,Immune,pos,,,,,
all,Stroma,neg,,,,,
Immune,T cells,,pos,,,,
Immune,Myeloid,,,,,pos,
Myeloid,T cells,,pos,,,,
T cells,Prolif T,,,,,,pos
T cells-rest,CD4 T,,,pos,,,
T cells-rest,CD8 T,,,,pos,,
"""
print(run(tree,["CD45","CD3","CD4","CD8","CD68","KI67"],[[L,H,H,H,H,H],[H,L,L,L,L,L],[H,H,L,L,L,H],[H,H,H,L,L,L],[H,H,L,L,L,L],[H,L,L,L,H,L],[H,0.6,L,L,0.9,H],[H,H,L,H,H,L],[0.5,L,L,L,L,L],[H,0.6,H,L,0.9,L]]))
print(run(",,A,B,C,D\nall,L1,pos,,,\nL1,L2,,pos,,\nL2,L3,,,pos,\nL3,L4,,,,pos\nL1,Non-resting,,,,pos\n",list("ABCD"),[[0.9,0.9,0.9,0.9],[0.9,0.9,0.9,0.1],[0.9,0.9,0.1,0.1],[0.9,0.1,0.1,0.1],[0.9,0.1,0.1,0.9]]))
rows=[[0.9,0.1],[0.9,0.1],[0.9,0.1],[0.1,0.9],[0.9,0.1],[0.1,0.9],[0.1,0.9],[0.1,0.9]]; im=[0,0,0,0,7,7,7,7]
wf=",,A,B\nall,A+,pos,\nall,B+,,pos\n"
print(run(wf,["A","B"],rows,im,pheno_threshold_abs=2)); print(run(wf,["A","B"],rows,im,pheno_threshold_percent=30)); print(run(wf,["A","B"],rows,im,pheno_threshold_percent=25)); print(run(wf,["A","B"],rows,pheno_threshold_percent=90,pheno_threshold_abs=1)); print(run(wf,["A","B"],rows,pheno_threshold_abs=5))
spec=importlib.util.spec_from_file_location("r","/tmp/scimap-dl/x/scimap/preprocessing/rescale.py"); r=importlib.util.module_from_spec(spec); spec.loader.exec_module(r)
def rs(vals, gate):
    a=ad.AnnData(X=np.array(vals,dtype=float).reshape(-1,1), obs=pd.DataFrame({'imageid':['i']*len(vals)}, index=[f"c{i}" for i in range(len(vals))]), var=pd.DataFrame(index=['M']))
    return list(r.rescale(a, gate=pd.DataFrame({'markers':['M'],'gates':[gate]}), log=False, verbose=False).X.ravel())
print(rs(list(range(10)),3.2)); print(rs([5,3,1,3],2.9)); print(rs([0,0,0],1)); print(rs([1,2,3],10))
