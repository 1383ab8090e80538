import XCTest
import Foundation
import EpipeCore

/// epipe-cluster's method flags on a small generated table (three populations, see
/// ClusterStatsFlagTests.tableJob): each changes what is written or recorded, and bad tables or
/// values are refused with one line (exit 2, nothing written).
extension ClusterStatsFlagTests {
    func labels(_ job: String) throws -> [String] { try CSVTable.read(job + "/cluster/cells.csv").strings("cluster")! }
    func metric(_ job: String, _ key: String) throws -> JSONValue? { try manifest(job, "cluster").metrics[key] }

    func testClusterMethods() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster([], job).code, 0)
        XCTAssertEqual(try metric(job, "method"), .string("leiden"), "leiden is the default")
        XCTAssertEqual(try metric(job, "knn"), .string("exact"), "240 cells: exact kNN under auto")
        XCTAssertEqual(try metric(job, "quality")?.objectValue?["name"], .string("modularity"))
        // three uniform boxes of 80 cells: modularity may cut a box, never mixes two
        var owner: [String: Int] = [:]
        for (i, c) in try labels(job).enumerated() { XCTAssertEqual(owner[c, default: i % 3], i % 3, "cluster \(c) mixes populations"); owner[c] = i % 3 }
        XCTAssertGreaterThanOrEqual(owner.count, 3)
        for m in ["kmeans", "flowsom"] {
            XCTAssertEqual(try cluster(["--method", m, "--k", "3", "--som", "4x4"], job).code, 0)
            XCTAssertEqual(try metric(job, "method"), .string(m))
            XCTAssertEqual(try metric(job, "quality")?.objectValue?["name"], .string("silhouette"))
            XCTAssertGreaterThan(try metric(job, "quality")?.objectValue?["value"]?.doubleValue ?? 0, 0.5, m)
            XCTAssertEqual(try metric(job, "k")?.intValue, 3)
        }
        XCTAssertEqual(try metric(job, "som_nodes")?.intValue, 16, "--som 4x4")
        assertRefused(try cluster(["--method", "louvain"], job), "method")
        assertRefused(try cluster(["--som", "4"], job), "som")
        assertRefused(try cluster(["--method", "rules"], job), "workflow")
    }

    func testClusterLeidenFlags() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--knn", "approx"], job).code, 0)
        XCTAssertEqual(try metric(job, "knn"), .string("approx"))
        XCTAssertEqual(try cluster(["--neighbors", "5"], job).code, 0)
        XCTAssertEqual(try metric(job, "neighbors")?.intValue, 5)
        let few = try metric(job, "graph_edges")?.intValue ?? 0
        XCTAssertEqual(try cluster(["--neighbors", "30"], job).code, 0)
        XCTAssertGreaterThan(try metric(job, "graph_edges")?.intValue ?? 0, few)
        XCTAssertEqual(try cluster(["--resolution", "4"], job).code, 0)
        XCTAssertGreaterThan(try metric(job, "k")?.intValue ?? 0, 3, "a higher resolution splits the populations")
        // edge weights: Jaccard (default) or none; the same edges, different weights, so the
        // modularity of the (unchanged or changed) partition differs
        XCTAssertEqual(try cluster([], job).code, 0)
        XCTAssertEqual(try metric(job, "graph_weights"), .string("jaccard"))
        let qj = try metric(job, "quality")?.objectValue?["value"]?.doubleValue ?? 0
        XCTAssertEqual(try cluster(["--weights", "none"], job).code, 0)
        XCTAssertEqual(try metric(job, "graph_weights"), .string("none"))
        XCTAssertNotEqual(try metric(job, "quality")?.objectValue?["value"]?.doubleValue ?? 0, qj, accuracy: 1e-6)
        assertRefused(try cluster(["--weights", "umap"], job), "weights")
        assertRefused(try cluster(["--neighbors", "1"], job), "neighbors")
        assertRefused(try cluster(["--resolution", "0"], job), "resolution")
        assertRefused(try cluster(["--knn", "hnsw"], job), "knn")
    }

    func testClusterTransformClipNames() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3", "--transform", "log1p"], job).code, 0)
        XCTAssertEqual(try manifest(job, "cluster").params["transform"], .string("log1p"))
        let log1p = try CSVTable.read(job + "/cluster/markers.csv").doubles("CD3_z")!
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3", "--transform", "none"], job).code, 0)
        XCTAssertNotEqual(try CSVTable.read(job + "/cluster/markers.csv").doubles("CD3_z")!.max()!, log1p.max()!, accuracy: 1e-3)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3", "--clip", "90"], job).code, 0)
        XCTAssertEqual(try manifest(job, "cluster").params["clip"]?.doubleValue, 90)
        assertRefused(try cluster(["--clip", "40"], job), "clip")
        // names: the clusters listed are renamed in both tables
        let names = tmp + "/names.csv"
        try "cluster,phenotype\n0,T cells\n".write(toFile: names, atomically: true, encoding: .utf8)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3", "--names", names], job).code, 0)
        let t = try CSVTable.read(job + "/cluster/cells.csv")
        let c = t.strings("cluster")!, p = t.strings("phenotype")!
        XCTAssertTrue(zip(c, p).allSatisfy { $0 == "0" ? $1 == "T cells" : $1.hasPrefix("c\($0) ") })
        XCTAssertEqual(try manifest(job, "cluster").params["names"], .string(Files.canonical(names)))
        XCTAssertTrue(try manifest(job, "cluster").inputs.contains { $0.path == Files.canonical(names) }, "the names file is an input with its sha256")
        // an edited names file reruns the stage without --force
        try "0,Tumour\n".write(toFile: names, atomically: true, encoding: .utf8)
        XCTAssertEqual(try exec("epipe-cluster", ["-q", "--method", "kmeans", "--k", "3", "--names", names, job]).code, 0)
        XCTAssertTrue(try CSVTable.read(job + "/cluster/cells.csv").strings("phenotype")!.contains("Tumour"))
        try "7,Nothing\n".write(toFile: names, atomically: true, encoding: .utf8)
        assertRefused(try cluster(["--method", "kmeans", "--k", "3", "--names", names], job), "there is no cluster 7")
        assertRefused(try cluster(["--names", tmp + "/none.csv"], job), "none.csv: no such file")
    }

    /// A missing marker column, NaN and negative values a transform cannot take, k above the cell
    /// count: exit 2, one line naming the column, value or row. An empty table completes.
    func testClusterBadTables() throws {
        func job(_ name: String, _ edit: (inout CSVTable) -> Void) throws -> String {
            let j = try tableJob(name: name, cells: 30)
            var t = try CSVTable.read(j + "/segment/cells.csv")
            edit(&t)
            try t.write(j + "/segment/cells.csv")
            var m = try manifest(j, "segment")
            let (h, b) = try Digest.sha256(file: j + "/segment/cells.csv")
            m.outputs = [FileRef(path: "segment/cells.csv", sha256: h, bytes: b)]
            try AtomicFile.write(JSON.encode(m), to: j + "/segment/manifest.json")
            return j
        }
        let nan = try job("nan") { $0.rows[4][2] = "NaN" }
        assertRefused(try cluster([], nan), "CD3: value nan in cell row 5")
        XCTAssertFalse(Files.exists(nan + "/cluster/cells.csv"))
        let text = try job("text") { $0.rows[6][3] = "high" }
        assertRefused(try cluster([], text), "CD20: value nan in cell row 7")
        let neg = try job("neg") { $0.rows[2][4] = "-3" }
        assertRefused(try cluster(["--transform", "log1p"], neg), "CD68: value -3.0 in cell row 3 is negative and log1p cannot take it")
        XCTAssertEqual(try cluster([], neg).code, 0, "arcsinh takes it")
        let empty = try job("empty") { $0.rows = [] }
        // no cells (segmentation found none) is not bad input: empty tables, a warning (issue 15)
        let e = try cluster([], empty)
        XCTAssertEqual(e.code, 0, e.err)
        XCTAssertTrue(e.err.contains("warning") && e.err.contains("no cells"), e.err)
        XCTAssertEqual(try manifest(empty, "cluster").metrics["cells"]?.intValue, 0)
        let few = try tableJob(name: "few", cells: 5)
        assertRefused(try cluster(["--method", "kmeans", "--k", "6"], few), "k: 6 is more than the 5 cells")
        assertRefused(try cluster(["--markers", "CD3,CD99"], few), "no column \"CD99\"")
    }

    /// cluster/cells.zarr opens with anndata.read_zarr: X, obs, var, obsm["spatial"] as written.
    func testClusterAnnDataZarr() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3"], job).code, 0)
        let outs = try manifest(job, "cluster").outputs.map(\.path)
        XCTAssertTrue(outs.contains("cluster/cells.zarr/X/0.0"), "\(outs)")
        XCTAssertTrue(outs.contains("cluster/cells.zarr/.zattrs"))
        guard let py = ProcessInfo.processInfo.environment["EPIPE_PYTHON"], FileManager.default.isExecutableFile(atPath: py),
              (try? exec(py, ["-c", "import anndata"]).code) == 0 else { throw XCTSkip("no python with anndata (EPIPE_PYTHON); read-back skipped") }
        let script = """
        import sys, json, warnings
        warnings.filterwarnings("ignore")
        import anndata as ad, pandas as pd, numpy as np
        a = ad.read_zarr(sys.argv[1] + "/cluster/cells.zarr")
        t = pd.read_csv(sys.argv[1] + "/cluster/cells.csv")
        m = ["CD3", "CD20", "CD68"]
        ok = {"shape": list(a.shape), "var": list(a.var_names), "obs": list(a.obs.columns),
              "ids": bool((a.obs_names == t["CellID"].astype(str)).all()),
              "X": bool(np.allclose(a.X, t[m].to_numpy(np.float32), rtol=1e-6)),
              "cluster": bool((a.obs["cluster"].astype(int).to_numpy() == t["cluster"].to_numpy()).all()),
              "categorical": str(a.obs["phenotype"].dtype) == "category",
              "spatial": bool(np.allclose(a.obsm["spatial"], t[["X_centroid", "Y_centroid"]].to_numpy()))}
        print(json.dumps(ok))
        """
        let r = try exec(py, ["-c", script, job])
        XCTAssertEqual(r.code, 0, r.err)
        let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
        XCTAssertEqual(o["shape"] as? [Int], [240, 3]); XCTAssertEqual(o["var"] as? [String], ["CD3", "CD20", "CD68"])
        for key in ["ids", "X", "cluster", "categorical", "spatial"] { XCTAssertEqual(o[key] as? Bool, true, key) }
        XCTAssertEqual(o["obs"] as? [String], ["cluster", "phenotype", "X_centroid", "Y_centroid", "Area"])
    }
}
