#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (Tests/Fuzz/<target>/corpus) from small real files.

    .venv/bin/python Tests/Fuzz/seeds.py [--bin .build/release]

Sources: crops of the real images and tables in Tests/Data (BBBC039 and DSB-2018 nuclei, the Vectra
5-plex component TIFF and cell table, SCIMAP's 33-plex table, gates and workflow), TIFF layouts
written with tifffile (striped, tiled, BigTIFF, OME-TIFF, planar, big-endian, compressed), and the
files epipe itself writes on a small generated slide (epipe-synth -> ingest -> denoise -> segment ->
cluster -> stats: its OME-TIFF, job.json, manifests, epipe.json, ledger entry, event line, cells.csv
and markers.csv). Each seed is kept to a few KB. Rerunning rewrites the same names.
"""
import argparse, glob, json, os, shutil, subprocess, sys, tempfile
import numpy as np
import tifffile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "Tests", "Data")
LIMIT = 6000  # bytes a seed may have (the TIFF seeds are a little larger than text ones)


def out(target, name, data):
    d = os.path.join(HERE, target, "corpus")
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > LIMIT:
        sys.exit(f"seed {target}/{name} is {len(data)} bytes, over {LIMIT}")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def tif(name, arr, **kw):
    """A TIFF written by tifffile into the tiff corpus."""
    with tempfile.NamedTemporaryFile(suffix=".tif") as t:
        tifffile.imwrite(t.name, arr, **kw)
        out("tiff", name, open(t.name, "rb").read())


def head_lines(path, n, limit=3500, sep=None):
    """The header and the first data lines of a table, at most `limit` bytes."""
    lines = open(path, encoding="utf-8", errors="replace", newline="").read().splitlines(keepends=True)
    text = lines[0]
    for ln in lines[1:n + 1]:
        if len(text) + len(ln) > limit:
            break
        text += ln
    return text


def tiffs():
    rng = np.random.default_rng(7)
    # real images, cropped; the compression and sample type of the originals
    real = tifffile.imread(os.path.join(DATA, "real-nuclei/bbbc039/images/IXMtest_A18_s1.tif"))
    tif("bbbc039-image-deflate.tif", real[200:232, 300:340], compression="zlib", rowsperstrip=8)
    mask = tifffile.imread(os.path.join(DATA, "real-nuclei/bbbc039/masks/IXMtest_A18_s1.tif"))
    tif("bbbc039-mask-deflate.tif", mask[100:164, 100:164], compression="zlib", rowsperstrip=16)
    dsb = sorted(glob.glob(os.path.join(DATA, "real-nuclei/dsb2018/images/*.tif")))[0]
    tif("dsb2018-uint8-striped.tif", tifffile.imread(dsb)[:40, :48], rowsperstrip=10)
    # the Vectra component TIFF: float32 LZW channel pages with their QPI XML, an RGB thumbnail page
    vec = tifffile.TiffFile(os.path.join(DATA, "vectra-5plex/FIHC4__0929309_HP_IM3_2_component_data.tif"))
    with tempfile.NamedTemporaryFile(suffix=".tif") as t:
        with tifffile.TiffWriter(t.name) as w:
            for p in vec.pages[1:3]:
                w.write(p.asarray()[:8, :12], compression="lzw", description=p.description, metadata=None)
            th = vec.pages[5]
            w.write(th.asarray()[:8, :8], compression="lzw", description=th.description, metadata=None, photometric="rgb")
        out("tiff", "vectra-qptiff-lzw.tif", open(t.name, "rb").read())
    seg = tifffile.TiffFile(os.path.join(DATA, "vectra-5plex/FIHC4__0929309_HP_IM3_2_binary_seg_maps.tif"))
    with tempfile.NamedTemporaryFile(suffix=".tif") as t:
        with tifffile.TiffWriter(t.name) as w:
            for p in seg.pages[:2]:
                w.write(p.asarray()[:32, :32], compression="lzw", description=p.description, metadata=None)
        out("tiff", "vectra-segmaps-lzw.tif", open(t.name, "rb").read())
    # layouts
    u16 = (rng.integers(0, 4000, (3, 20, 24))).astype(np.uint16)
    tif("ome-striped-3ch.ome.tif", u16, ome=True, metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "CD3", "CD8"]}, "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}, rowsperstrip=5)
    tif("ome-tiled-bigtiff-zstd.ome.tif", u16[:2, :, :], ome=True, bigtiff=True, tile=(16, 16), compression="zstd", metadata={"axes": "CYX", "Channel": {"Name": ["DNA", "Ki67"]}})
    tif("ome-zct.ome.tif", rng.integers(0, 255, (2, 2, 2, 8, 8)).astype(np.uint8), ome=True, metadata={"axes": "TZCYX"})
    tif("bigtiff-tiled-contig-2ch.tif", np.moveaxis(u16[:2], 0, -1), bigtiff=True, tile=(16, 16), planarconfig="contig", photometric="minisblack", metadata=None)
    tif("planar-separate-rgb.tif", u16[:, :8, :8], planarconfig="separate", photometric="rgb", metadata=None)
    tif("bigendian-predictor.tif", u16[0], byteorder=">", compression="zlib", predictor=True, metadata=None)
    tif("float32-tiled.tif", rng.normal(0, 1, (16, 16)).astype(np.float32), tile=(16, 16), metadata=None)
    tif("uint32-mask-packbits.tif", (np.arange(20 * 16).reshape(20, 16) // 7).astype(np.uint32), compression="packbits", metadata=None)
    tif("int16-imagej.tif", (u16[0].astype(np.int32) - 2000).astype(np.int16), imagej=True)
    with tempfile.NamedTemporaryFile(suffix=".tif") as t:
        with tifffile.TiffWriter(t.name) as w:
            w.write(u16[0], metadata=None)
            w.write(u16[0, ::2, ::2], subfiletype=1, metadata=None)
            w.write(u16[1], metadata=None)
        out("tiff", "reduced-resolution-page.tif", open(t.name, "rb").read())


def xmls():
    for f in sorted(glob.glob(os.path.join(HERE, "tiff", "corpus", "*.tif"))):
        if os.path.basename(f).startswith("epipe-synth"):
            continue  # written with the other outputs of epipe, below
        t = tifffile.TiffFile(f)
        d = t.pages[0].description
        if d and (d.lstrip().startswith("<") or "OME" in d):
            out("omexml", os.path.basename(f).split(".")[0] + ".xml", d)
    vec = tifffile.TiffFile(os.path.join(DATA, "vectra-5plex/FIHC4__0929309_HP_IM3_2_component_data.tif"))
    out("omexml", "vectra-qpi-channel.xml", vec.pages[1].description)
    out("omexml", "vectra-qpi-thumbnail.xml", vec.pages[5].description)
    d0 = vec.pages[0].description  # 13 KB: its head and ScanProfile, closed
    i = d0.find("<ScanProfile")
    out("omexml", "vectra-qpi-first-page.xml", d0[:min(i, 2500)] + "</PerkinElmer-QPI-ImageDescription>" if i > 0 else d0[:2500])
    out("omexml", "bioformats-prefixed.xml",
        '<?xml version="1.0" encoding="UTF-8"?><!-- Warning: this comment is an OME-XML metadata block -->'
        '<ome:OME xmlns:ome="http://www.openmicroscopy.org/Schemas/OME/2016-06"><ome:Image ID="Image:0">'
        '<ome:Pixels DimensionOrder="XYZCT" ID="Pixels:0" SizeC="3" SizeT="1" SizeX="8" SizeY="8" SizeZ="1" Type="uint16"'
        ' PhysicalSizeX="650" PhysicalSizeXUnit="nm" PhysicalSizeY="0.65">'
        '<ome:Channel ID="Channel:0:0" Name="DNA &amp; more"/><ome:Channel ID="Channel:0:1" Name=" CD3 "/><ome:Channel ID="Channel:0:2"/>'
        '<ome:TiffData IFD="0" PlaneCount="3"/></ome:Pixels></ome:Image></ome:OME>')
    out("omexml", "imagej.txt", "ImageJ=1.53t\nimages=3\nchannels=3\nmode=composite\nunit=micron\n")


def texts(bin_dir):
    # markers.csv in the forms people write (MCMICRO exemplar, blanks, background, quoting, BOM, CRLF)
    out("markers", "mcmicro-exemplar.csv",
        "channel_number,cycle_number,marker_name,Filter,excitation_wavelength,emission_wavelength,background,exposure,remove\n"
        "1,1,DNA_1,DAPI,395,431,,100,\n2,1,AF488,FITC,485,525,,100,TRUE\n3,1,AF555,Cy3,555,590,,100,TRUE\n4,1,AF647,Cy5,640,690,,100,TRUE\n"
        "5,2,DNA_2,DAPI,395,431,,100,\n6,2,CD3,FITC,485,525,AF488,100,\n7,2,CD8a,Cy3,555,590,AF555,100,\n8,2,Ki67,Cy5,640,690,AF647,100,\n")
    out("markers", "blanks-crlf-bom.csv", "\ufeffcycle_number,marker_name,blank\r\n1,DAPI,\r\n1,Blank1,TRUE\r\n2,\"CD3, T\",\r\n2,bg2,1\r\n")
    out("markers", "names-only.csv", "marker_name\nDAPI\nCD45\nPanCK\nCD3\nCD20\nCD68\n")
    out("markers", "cycle-is-blank.csv", "cycle,marker_name,is_blank\n1,DNA,no\n1,Empty1,yes\n2,CD4,0\n2,autofluor,\n")

    # cluster side files and cell tables from Tests/Data
    out("csv", "scimap-manual-gates.csv", open(os.path.join(DATA, "scimap-33plex/manual_gates.csv")).read())
    out("csv", "scimap-phenotype-workflow.csv", open(os.path.join(DATA, "scimap-33plex/phenotype_workflow.csv")).read())
    out("csv", "demo-workflow.csv", open(os.path.join(DATA, "synth/demo_workflow.csv")).read())
    out("csv", "scimap-example-head.csv", head_lines(os.path.join(DATA, "scimap-33plex/example_data.csv"), 6))
    out("csv", "vectra-cell-seg-head.txt", head_lines(os.path.join(DATA, "vectra-5plex/FIHC4__0929309_HP_IM3_2_cell_seg_data.txt"), 2, limit=5500))
    out("csv", "names.csv", "cluster,phenotype\n0,T cells\nc1,B cells\n# a comment\n2,\"Macrophage, M2\"\n")
    out("csv", "steinbock.csv", "Object,centroid-0,centroid-1,area,CD3,CD20\n1,10.5,3.25,40,1.5,0\n2,11,30,52,0.2,3.1\n3,40.75,12,33,,0.4\n")
    out("csv", "cellprofiler.csv", "ImageNumber,ObjectNumber,Location_Center_X,Location_Center_Y,Intensity_MeanIntensity_DAPI\n1,1,5.5,6.5,0.12\n1,2,15,16,0.33\n")
    out("csv", "pandas-index-quoted.csv", ',cell_id,X_centroid,Y_centroid,phenotype\n0,a1,1,2,"T, CD4"\n1,a2, 3.5 ,4,B\r\n2,a3,5,6,"multi\nline"\n')

    # what epipe writes, from a small generated slide through every stage
    if not bin_dir:
        return
    tmp = tempfile.mkdtemp(prefix="epipe-seeds-")
    try:
        run = lambda *a, **k: subprocess.run(list(a), check=True, capture_output=True, text=True, **k)
        run(os.path.join(bin_dir, "epipe-synth"), "--out", tmp + "/scans", "--width", "512", "--height", "512",
            "--channels", "4", "--seed", "3", "--name", "tiny")
        root = tmp + "/root"
        jobs = run(os.path.join(bin_dir, "epipe-ingest"), "--root", root, "--settle", "0", tmp + "/scans").stdout
        job = jobs.split()[0]
        run(os.path.join(bin_dir, "epipe-denoise"), job)
        run(os.path.join(bin_dir, "epipe-segment"), job)
        run(os.path.join(bin_dir, "epipe-cluster"), "--method", "kmeans", "--k", "4", job)
        ev = run(os.path.join(bin_dir, "epipe-stats"), "--json", job).stdout.strip().splitlines()[0]
        out("manifest", "event.json", ev + "\n")
        out("manifest", "job.json", open(job + "/job.json").read())
        for stage in ["denoise", "segment", "cluster", "stats"]:
            text = open(f"{job}/{stage}/manifest.json").read()
            if len(text) > LIMIT:  # cluster's lists every file of cells.zarr: the first few
                m = json.loads(text)
                m["outputs"] = m["outputs"][:8]
                text = json.dumps(m, indent=2, ensure_ascii=False) + "\n"
            out("manifest", stage + "-manifest.json", text)
        out("manifest", "epipe.json", open(root + "/epipe.json").read())
        out("manifest", "ledger.json", open(sorted(glob.glob(root + "/ledger/*.json"))[0]).read())
        spec = json.load(open(job + "/job.json"))
        spec["params"] = {"denoise": {"rolling-ball": 25, "per-channel": {"ch0": {"rolling-ball": "off", "gaussian": 1}}, "band": "auto"},
                          "segment": {"nuclear": "ch0", "nucleus-diameter": "12", "stats": "median,std"},
                          "cluster": {"method": "kmeans", "k": 5, "markers": ["ch1", "ch2"]},
                          "stats": {"graph": "radius", "radius": 30, "perms": 100}}
        out("manifest", "job-with-params.json", json.dumps(spec, indent=2) + "\n")
        # every key each stage knows, as its manifest records them (the defaults), as job.json params
        spec["params"] = {s: json.load(open(f"{job}/{s}/manifest.json"))["params"] for s in ["denoise", "segment", "cluster", "stats"]}
        out("manifest", "job-with-every-param.json", json.dumps(spec, separators=(",", ":")) + "\n")
        out("csv", "epipe-segment-cells.csv", head_lines(job + "/segment/cells.csv", 12))
        out("csv", "epipe-cluster-cells.csv", head_lines(job + "/cluster/cells.csv", 12))
        out("csv", "epipe-cluster-markers.csv", head_lines(job + "/cluster/markers.csv", 12))
        out("csv", "epipe-stats-interactions.csv", head_lines(job + "/stats/interactions.csv", 12))
        # the generated slide as OME-TIFF (epipe's writer: tiled BigTIFF, deflate), one 64 x 64 crop
        small = tmp + "/small"
        run(os.path.join(bin_dir, "epipe-synth"), "--out", small, "--width", "32", "--height", "32",
            "--channels", "2", "--seed", "5", "--name", "crop")
        for f in glob.glob(small + "/*.tif"):
            out("tiff", "epipe-synth-32x32x2.ome.tif", open(f, "rb").read())
            out("omexml", "epipe-synth.xml", tifffile.TiffFile(f).pages[0].description)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    a = ap.parse_args()
    tiffs()
    xmls()
    texts(a.bin if os.path.exists(os.path.join(a.bin, "epipe-synth")) else None)
    for t in ["tiff", "omexml", "markers", "manifest", "csv"]:
        d = os.path.join(HERE, t, "corpus")
        fs = os.listdir(d)
        print(f"{t}: {len(fs)} seeds, {sum(os.path.getsize(os.path.join(d, f)) for f in fs)} bytes")
