import XCTest
import Foundation
@testable import EpipeStage

/// AnnData zarr stores, read back by anndata itself when EPIPE_PYTHON names a python with
/// `anndata` importable (`make pydeps` installs it in the test venv); the read-back checks are
/// skipped otherwise.
final class AnnDataZarrTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("epipe-anndata-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    // 5 cells x 3 markers
    let X: [Float] = [0.1, 2, 3.5, -1, 0, 1e-3, 100.25, 7, 8, 1e6, -2.5, 3, 0, 0, 0.3333]
    let names = ["CD3", "CD8 α", "Pan-CK"]
    let index = ["cell_1", "cell_2", "cell_3", "cell_10", "cell_11"]
    let area = [12.5, 30.25, -1e-7, 1e300, 0]
    let count = [1, -2, 3, 1 << 40, 0]
    let cluster = ["2", "10", "2", "1", "10"]
    let label = ["T cell", "naïve \"B\"", "", "漢字", "a/b\\c"]
    let spatial = [1.5, 2.5, 10, 20, 100.125, 200, 0, 0, -3, 4]

    func writeSmall(to url: URL) throws {
        try AnnDataZarr.write(to: url, X: X, n: 5, d: 3, varNames: names, obsIndex: index,
                              obs: [.float("area", area), .int("count", count), .categorical("cluster", cluster), .string("label", label)],
                              spatial: spatial)
    }

    func json(_ url: URL, _ rel: String) throws -> [String: Any] {
        let data = try Data(contentsOf: url.appendingPathComponent(rel))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any], rel)
    }

    func testSmallStoreLayout() throws {
        let url = tmp.appendingPathComponent("cells.zarr")
        try writeSmall(to: url)
        let fm = FileManager.default
        for f in [".zgroup", ".zattrs", ".zmetadata", "X/.zarray", "X/.zattrs", "X/0.0", "obs/.zgroup", "obs/.zattrs",
                  "obs/_index/0", "obs/area/0", "obs/count/0", "obs/cluster/.zgroup", "obs/cluster/codes/0",
                  "obs/cluster/categories/0", "obs/label/0", "var/.zattrs", "var/_index/0", "obsm/.zattrs",
                  "obsm/spatial/0.0", "uns/.zgroup", "layers/.zgroup", "obsp/.zgroup", "varm/.zgroup", "varp/.zgroup"] {
            XCTAssertTrue(fm.fileExists(atPath: url.appendingPathComponent(f).path), f)
        }
        XCTAssertEqual(try json(url, ".zattrs")["encoding-type"] as? String, "anndata")
        XCTAssertEqual(try json(url, ".zattrs")["encoding-version"] as? String, "0.1.0")
        let obs = try json(url, "obs/.zattrs")
        XCTAssertEqual(obs["encoding-type"] as? String, "dataframe")
        XCTAssertEqual(obs["_index"] as? String, "_index")
        XCTAssertEqual(obs["column-order"] as? [String], ["area", "count", "cluster", "label"])
        let x = try json(url, "X/.zarray")
        XCTAssertEqual(x["dtype"] as? String, "<f4")
        XCTAssertEqual(x["shape"] as? [Int], [5, 3])
        XCTAssertEqual(x["zarr_format"] as? Int, 2)
        XCTAssertEqual((x["compressor"] as? [String: Any])?["id"] as? String, "zlib")
        XCTAssertEqual(try json(url, "obs/cluster/codes/.zarray")["dtype"] as? String, "|i1")
        XCTAssertEqual(try json(url, "obs/cluster/.zattrs")["ordered"] as? Bool, false)
        XCTAssertEqual(try json(url, "obs/label/.zattrs")["encoding-type"] as? String, "string-array")
        XCTAssertEqual(try json(url, "obs/count/.zarray")["dtype"] as? String, "<i8")
        XCTAssertEqual(try json(url, "uns/.zattrs")["encoding-type"] as? String, "dict")
        let cons = try json(url, ".zmetadata")
        XCTAssertEqual((cons["metadata"] as? [String: Any])?.keys.contains("obs/cluster/codes/.zarray"), true)
        // nothing left beside the store
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: tmp.path), ["cells.zarr"])
    }

    func testReplaceAndRefuse() throws {
        let url = tmp.appendingPathComponent("cells.zarr")
        try writeSmall(to: url)
        // replaced by a smaller store: no stale files of the first remain
        try AnnDataZarr.write(to: url, X: [1, 2], n: 1, d: 2, varNames: ["a", "b"], obsIndex: ["c"], obs: [], spatial: nil)
        XCTAssertEqual(try json(url, "X/.zarray")["shape"] as? [Int], [1, 2])
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.appendingPathComponent("obsm/spatial").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.appendingPathComponent("obs/area").path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.path), ["cells.zarr"])
        // a folder that is not a store is not replaced
        let other = tmp.appendingPathComponent("notes")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: other.appendingPathComponent("keep.txt"))
        XCTAssertThrowsError(try writeSmall(to: other))
        XCTAssertTrue(FileManager.default.fileExists(atPath: other.appendingPathComponent("keep.txt").path))
        // bad inputs
        XCTAssertThrowsError(try AnnDataZarr.write(to: url, X: [1], n: 1, d: 1, varNames: ["a"], obsIndex: ["c"],
                                                   obs: [.int("x/y", [1])], spatial: nil))
        XCTAssertThrowsError(try AnnDataZarr.write(to: url, X: [1], n: 1, d: 1, varNames: ["a"], obsIndex: ["c"],
                                                   obs: [.int("x", [1, 2])], spatial: nil))
        XCTAssertThrowsError(try AnnDataZarr.write(to: url, X: [1], n: 1, d: 1, varNames: ["a"], obsIndex: ["c"],
                                                   obs: [], spatial: [1]))
    }

    // MARK: - anndata read-back

    func python() throws -> String {
        guard let p = ProcessInfo.processInfo.environment["EPIPE_PYTHON"], FileManager.default.isExecutableFile(atPath: p) else {
            throw XCTSkip("EPIPE_PYTHON does not name a python; anndata read-back skipped (make pydeps installs one)")
        }
        let (status, _) = try run(p, ["-c", "import anndata"])
        guard status == 0 else { throw XCTSkip("\(p) cannot import anndata; read-back skipped") }
        return p
    }

    func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: exe)
        proc.arguments = args
        let out = Pipe()
        proc.standardOutput = out
        proc.standardError = FileHandle.nullDevice
        try proc.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        return (proc.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func readBack(_ py: String, _ script: String, _ url: URL) throws -> [String: Any] {
        let (status, out) = try run(py, ["-c", script, url.path])
        XCTAssertEqual(status, 0, out)
        let line = try XCTUnwrap(out.split(separator: "\n").last.map(String.init), "no output")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    static let smallScript = """
    import sys, json, warnings
    warnings.filterwarnings("ignore")
    from importlib.metadata import version
    import anndata as ad, numpy as np, pandas as pd
    a = ad.read_zarr(sys.argv[1])
    obs = {}
    for c in a.obs.columns:
        s = a.obs[c]
        obs[c] = {"dtype": str(s.dtype), "values": [v.item() if hasattr(v, "item") else v for v in s.tolist()]}
        if s.dtype == np.float64:
            obs[c]["values"] = [repr(float(v)) for v in s.tolist()]
        if isinstance(s.dtype, pd.CategoricalDtype):
            obs[c]["categories"] = [str(x) for x in s.cat.categories]
            obs[c]["codes_dtype"] = str(s.cat.codes.dtype)
            obs[c]["values"] = [str(v) for v in s.tolist()]
    # the same store without the consolidated metadata reads the same
    import os, shutil
    copy = sys.argv[1] + "-plain"
    shutil.copytree(sys.argv[1], copy)
    os.remove(os.path.join(copy, ".zmetadata"))
    b = ad.read_zarr(copy)
    plain = bool(np.array_equal(a.X, b.X) and a.obs.equals(b.obs) and a.var_names.equals(b.var_names)
                 and np.array_equal(a.obsm["spatial"], b.obsm["spatial"]))
    print(json.dumps({"anndata": version("anndata"), "zarr": version("zarr"), "shape": list(a.shape), "plain": plain,
        "X": [repr(float(v)) for v in a.X.ravel()], "Xdtype": str(a.X.dtype), "obs_names": list(a.obs_names),
        "var_names": list(a.var_names), "columns": list(a.obs.columns), "obs": obs,
        "spatial": [repr(float(v)) for v in a.obsm["spatial"].ravel()], "spatial_dtype": str(a.obsm["spatial"].dtype),
        "uns": len(a.uns), "layers": len(a.layers)}))
    """

    func testAnnDataReadsSmallStore() throws {
        let py = try python()
        let url = tmp.appendingPathComponent("cells.zarr")
        try writeSmall(to: url)
        let r = try readBack(py, Self.smallScript, url)
        print("anndata \(r["anndata"] ?? "?"), zarr \(r["zarr"] ?? "?") read the store")
        XCTAssertEqual(r["shape"] as? [Int], [5, 3])
        XCTAssertEqual(r["plain"] as? Bool, true, "read without .zmetadata")
        XCTAssertEqual(r["Xdtype"] as? String, "float32")
        // floats come back as Python repr strings (exact; Foundation's JSON number parsing is not)
        func doubles(_ v: Any?) -> [Double]? { (v as? [String])?.compactMap { Double($0) } }
        XCTAssertEqual(doubles(r["X"]), X.map(Double.init))
        XCTAssertEqual(r["obs_names"] as? [String], index)
        XCTAssertEqual(r["var_names"] as? [String], names)
        XCTAssertEqual(r["columns"] as? [String], ["area", "count", "cluster", "label"])
        let obs = try XCTUnwrap(r["obs"] as? [String: [String: Any]])
        XCTAssertEqual(obs["area"]?["dtype"] as? String, "float64")
        XCTAssertEqual(doubles(obs["area"]?["values"]), area)
        XCTAssertEqual(obs["count"]?["dtype"] as? String, "int64")
        XCTAssertEqual(obs["count"]?["values"] as? [Int], count)
        XCTAssertEqual(obs["cluster"]?["dtype"] as? String, "category")
        XCTAssertEqual(obs["cluster"]?["categories"] as? [String], ["1", "2", "10"])
        XCTAssertEqual(obs["cluster"]?["codes_dtype"] as? String, "int8")
        XCTAssertEqual(obs["cluster"]?["values"] as? [String], cluster)
        XCTAssertEqual(obs["label"]?["values"] as? [String], label)
        XCTAssertEqual(doubles(r["spatial"]), spatial)
        XCTAssertEqual(r["spatial_dtype"] as? String, "float64")
        XCTAssertEqual(r["uns"] as? Int, 0)
        XCTAssertEqual(r["layers"] as? Int, 0)
    }

    /// 200,001 cells: X (3 chunks of 87,381 rows, the last partial), obs columns of 2-3 chunks,
    /// 150 categories (int16 codes); compared in Python against the same values rebuilt there.
    func testAnnDataReadsLargeStore() throws {
        let py = try python()
        let n = 200_001, d = 3
        var X = [Float](repeating: 0, count: n * d)
        for i in 0..<n { for j in 0..<d { X[i * d + j] = Float(i % 1000) * 0.25 + Float(j) } }
        let url = tmp.appendingPathComponent("big.zarr")
        try AnnDataZarr.write(to: url, X: X, n: n, d: d, varNames: ["m0", "m1", "m2"], obsIndex: (0..<n).map { "cell\($0)" },
                              obs: [.float("f", (0..<n).map { Double($0) * 0.5 }), .int("i", (0..<n).map { $0 * 3 - 7 }),
                                    .categorical("type", (0..<n).map { "type\($0 % 150)" }), .string("s", (0..<n).map { "s\($0 % 977)" })],
                              spatial: (0..<(2 * n)).map { Double($0) + 0.5 })
        let chunks = try FileManager.default.contentsOfDirectory(atPath: url.appendingPathComponent("X").path).filter { !$0.hasPrefix(".") }
        XCTAssertEqual(chunks.sorted(), ["0.0", "1.0", "2.0"])
        let script = """
        import sys, json, warnings
        warnings.filterwarnings("ignore")
        import anndata as ad, numpy as np, pandas as pd
        a = ad.read_zarr(sys.argv[1])
        n = \(n)
        i = np.arange(n)
        X = ((i % 1000) * 0.25)[:, None].astype(np.float32) + np.arange(3, dtype=np.float32)[None, :]
        o = a.obs
        print(json.dumps({
          "shape": list(a.shape),
          "X": bool(a.X.dtype == np.float32 and np.array_equal(a.X, X)),
          "Xsum": repr(float(a.X.astype(np.float64).sum())),
          "names": bool((a.obs_names == pd.Index(["cell%d" % k for k in range(n)])).all()),
          "var": list(a.var_names),
          "f": bool(o["f"].dtype == np.float64 and np.array_equal(o["f"].to_numpy(), i * 0.5)),
          "i": bool(o["i"].dtype == np.int64 and np.array_equal(o["i"].to_numpy(), i * 3 - 7)),
          "type": bool(isinstance(o["type"].dtype, pd.CategoricalDtype) and len(o["type"].cat.categories) == 150
                       and (o["type"].astype(str).to_numpy() == np.array(["type%d" % (k % 150) for k in range(n)])).all()),
          "codes": str(o["type"].cat.codes.dtype),
          "s": bool((o["s"].astype(str).to_numpy() == np.array(["s%d" % (k % 977) for k in range(n)])).all()),
          "spatial": bool(np.array_equal(a.obsm["spatial"], (np.arange(2 * n, dtype=np.float64) + 0.5).reshape(n, 2))),
        }))
        """
        let r = try readBack(py, script, url)
        XCTAssertEqual(r["shape"] as? [Int], [n, d])
        for k in ["X", "names", "f", "i", "type", "s", "spatial"] { XCTAssertEqual(r[k] as? Bool, true, k) }
        var sum = 0.0
        for v in X { sum += Double(v) }
        XCTAssertEqual((r["Xsum"] as? String).flatMap { Double($0) }, sum)
        XCTAssertEqual(r["var"] as? [String], ["m0", "m1", "m2"])
        XCTAssertEqual(r["codes"] as? String, "int16")
    }
}
