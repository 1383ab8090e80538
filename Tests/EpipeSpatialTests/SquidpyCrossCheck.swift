import XCTest
import Foundation
import EpipeSynth
@testable import EpipeSpatial

/// Our kNN graph and enrichment z-scores against squidpy's (`spatial_neighbors` generic kNN 6 +
/// `nhood_enrichment`, 1000 permutations) on the same cells. Skipped without a Python that has
/// squidpy (EPIPE_PYTHON, else /tmp/epipe-peers/bin/python).
final class SquidpyCrossCheck: XCTestCase {
    func python() throws -> String {
        for py in [ProcessInfo.processInfo.environment["EPIPE_PYTHON"], "/tmp/epipe-peers/bin/python"].compactMap({ $0 })
        where FileManager.default.isExecutableFile(atPath: py) {
            let p = Process(); p.executableURL = URL(fileURLWithPath: py); p.arguments = ["-c", "import squidpy"]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            if p.terminationStatus == 0 { return py }
        }
        throw XCTSkip("no python with squidpy (EPIPE_PYTHON or /tmp/epipe-peers/bin/python); squidpy cross-check skipped")
    }

    static let script = #"""
import sys, json, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, anndata as ad, squidpy as sq
df = pd.read_csv(sys.argv[1])
a = ad.AnnData(X=np.zeros((len(df), 1), np.float32))
a.obsm["spatial"] = df[["X_centroid", "Y_centroid"]].to_numpy(np.float64)
a.obs["c"] = pd.Categorical(df["phenotype"].astype(str).to_numpy())
sq.gr.spatial_neighbors(a, coord_type="generic", n_neighs=6)
sq.gr.nhood_enrichment(a, cluster_key="c", n_perms=1000, seed=0, show_progress_bar=False)
adj = a.obsp["spatial_connectivities"].tocsr(); adj.sort_indices()
r = a.uns["c_nhood_enrichment"]
json.dump({"types": list(a.obs["c"].cat.categories), "z": [[float(v) if np.isfinite(v) else None for v in row] for row in np.asarray(r["zscore"])], "count": np.asarray(r["count"]).tolist(),
           "indptr": adj.indptr.tolist(), "indices": adj.indices.tolist()}, open(sys.argv[2], "w"))
"""#

    func run(_ s: SpatialCells, _ py: String) throws -> (types: [String], z: [[Double]], count: [[Int]], rows: [[Int]]) { try run(csv: s.csv(), py) }

    func run(csv: String, _ py: String) throws -> (types: [String], z: [[Double]], count: [[Int]], rows: [[Int]]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try csv.write(toFile: dir + "/cells.csv", atomically: true, encoding: .utf8)
        try Self.script.write(toFile: dir + "/sq.py", atomically: true, encoding: .utf8)
        let p = Process(); p.executableURL = URL(fileURLWithPath: py); p.arguments = [dir + "/sq.py", dir + "/cells.csv", dir + "/out.json"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: dir + "/out.json"), let o = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw XCTSkip("squidpy run failed") }
        let ptr = o["indptr"] as! [Int], idx = o["indices"] as! [Int]
        let rows = (0..<(ptr.count - 1)).map { Array(idx[ptr[$0]..<ptr[$0 + 1]]) }
        return (o["types"] as! [String], (o["z"] as! [[Any]]).map { $0.map { ($0 as? Double) ?? .nan } }, o["count"] as! [[Int]], rows)
    }

    func check(_ s: SpatialCells, _ what: String, minR: Double) throws {
        // the coordinates as squidpy reads them (one decimal in the CSV)
        try check(csv: s.csv(), x: s.x.map { ($0 * 10).rounded() / 10 }, y: s.y.map { ($0 * 10).rounded() / 10 },
                  labels: s.types.map { s.typeNames[$0] }, what, minR: minR)
    }

    func check(csv: String, x: [Double], y: [Double], labels: [String], _ what: String, minR: Double) throws {
        let py = try python()
        let sq = try run(csv: csv, py)
        let graph = KDTree2D(x: x, y: y).knnGraph(k: 6)
        XCTAssertEqual(graph.rows.map { $0.sorted() }, sq.rows, "\(what): the same kNN graph")
        let index = Dictionary(uniqueKeysWithValues: sq.types.enumerated().map { ($1, Int32($0)) })
        let t = sq.types.count
        let r = Enrichment.run(graph: graph, labels: labels.map { index[$0]! }, types: t, perms: 1000, seed: 0)
        var a: [Double] = [], b: [Double] = [], maxDiff = 0.0
        for i in 0..<t {
            for j in 0..<t where r.z[i * t + j].isFinite && sq.z[i][j].isFinite {
                XCTAssertEqual(r.observed[i * t + j], sq.count[i][j], "\(what): observed count \(sq.types[i]),\(sq.types[j])")
                a.append(r.z[i * t + j]); b.append(sq.z[i][j]); maxDiff = max(maxDiff, abs(r.z[i * t + j] - sq.z[i][j]))
            }
        }
        let ma = a.reduce(0, +) / Double(a.count), mb = b.reduce(0, +) / Double(b.count)
        let cov = zip(a, b).reduce(0) { $0 + ($1.0 - ma) * ($1.1 - mb) }
        let va = a.reduce(0) { $0 + ($1 - ma) * ($1 - ma) }, vb = b.reduce(0) { $0 + ($1 - mb) * ($1 - mb) }
        let corr = cov / (va * vb).squareRoot()
        print(String(format: "squidpy agreement, %@: %d pairs, Pearson r of z %.5f, max |z difference| %.3f", what, a.count, corr, maxDiff))
        XCTAssertGreaterThanOrEqual(corr, minR, what)
    }

    func testZScoresMatchSquidpyPlanted() throws {
        try check(SpatialCells.generate(cells: 6000, types: 8, layout: .niches, niches: 4, seed: 5), "planted niches", minR: 0.99)
    }

    /// No structure: z is noise around 0, so agreement rests on both nulls estimating the same
    /// mean and spread (the observed counts are identical).
    func testZScoresMatchSquidpyUniform() throws {
        try check(SpatialCells.generate(cells: 6000, types: 6, layout: .uniform, seed: 6), "uniform", minR: 0.99)
    }

    /// Real cells: SCIMAP's 33-plex example (3,029 cells of a human tonsil, CyCIF; Tests/Data/scimap-33plex,
    /// provenance there) typed by SCIMAP's own manual-gate phenotypes (23 types).
    func testZScoresMatchSquidpyOnRealCells() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Data/scimap-33plex").path
        let table = try String(contentsOfFile: dir + "/example_data.csv", encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let h = table[0]
        let id = h.firstIndex(of: "CellID")!, xi = h.firstIndex(of: "X_position")!, yi = h.firstIndex(of: "Y_position")!
        var phen: [String: String] = [:]
        for l in try String(contentsOfFile: dir + "/scimap_phenotypes_manual.csv", encoding: .utf8).split(separator: "\n").dropFirst() {
            let f = l.split(separator: ",", maxSplits: 1).map(String.init); if f.count == 2 { phen[f[0]] = f[1] }
        }
        var csv = "CellID,X_centroid,Y_centroid,phenotype\n", x: [Double] = [], y: [Double] = [], labels: [String] = []
        for r in table.dropFirst() where r.count == h.count {
            let p = try XCTUnwrap(phen[r[id]])
            csv += "\(r[id]),\(r[xi]),\(r[yi]),\(p)\n"
            x.append(Double(r[xi])!); y.append(Double(r[yi])!); labels.append(p)
        }
        XCTAssertEqual(labels.count, 3029)
        try check(csv: csv, x: x, y: y, labels: labels, "real cells (SCIMAP 33-plex, manual phenotypes)", minR: 0.99)
    }
}
