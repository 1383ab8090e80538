import XCTest
import Foundation
import EpipeSynth
@testable import EpipeCluster

/// The methods of epipe-cluster on generated tables with known types (EpipeSynth.CellTable:
/// MCQuant-like means, types positive for their own markers and sharing a lineage marker), the
/// preparation (transform, clip, z-score, refusals), names, quality scores and the embedding.
final class ClusterMethodsTests: XCTestCase {
    func table(_ n: Int, spread: Double, seed: UInt64 = 4) -> CellTable { CellTable.generate(cells: n, markers: 20, types: 8, spread: spread, seed: seed) }

    /// ARI against the generator's types. Floors are set under the values measured (printed):
    /// separated (spread 0.35) and overlapping (spread 0.8) tables of 3,000 cells, 20 markers, 8 types.
    func testEachMethodAgainstKnownTypes() throws {
        var report: [String] = []
        let floors: [(ClusterParams.Method, Double, Double)] = [(.kmeans, 0.75, 0.65), (.leiden, 0.67, 0.64), (.flowsom, 0.82, 0.79)]
        for (spread, which) in [(0.35, 1), (0.8, 2)] {
            let t = table(3000, spread: spread)
            for (method, sepFloor, overFloor) in floors {
                let p = ClusterParams(method: method, k: 8, seed: 0)
                let r = try Clustering.run(columns: t.columns, markers: t.markers, params: p)
                let ari = Agreement.adjustedRandIndex(r.labels, t.types)
                report.append("\(method.rawValue) spread \(spread): ARI \(String(format: "%.4f", ari)), \(r.k) clusters, \(r.quality.name) \(String(format: "%.3f", r.quality.value))")
                XCTAssertGreaterThanOrEqual(ari, which == 1 ? sepFloor : overFloor, "\(method) spread \(spread)")
                let again = try Clustering.run(columns: t.columns, markers: t.markers, params: p)
                XCTAssertEqual(again.labels, r.labels, "\(method): deterministic for a seed")
                XCTAssertEqual(r.counts, r.counts.sorted(by: >), "\(method): clusters numbered by decreasing size")
            }
        }
        print(report.joined(separator: "\n"))
    }

    /// Leiden's partition of the kNN graph scores at least a Louvain-style local-moving pass on
    /// the same graph, and the approximate kNN finds >= 95 % of the exact neighbours on a table.
    func testLeidenAgainstLouvainAndKNNRecall() {
        let t = table(4000, spread: 0.6)
        let p = try! Clustering.prepare(columns: t.columns, markers: t.markers, params: ClusterParams())
        let exact = KNN.exact(p.z, n: p.n, d: p.d, k: 15)
        let approx = KNN.approximate(p.z, n: p.n, d: p.d, k: 15, seed: 3)
        var hit = 0
        for i in 0..<p.n {
            let s = Set(exact.indices[(i * 15)..<(i * 15 + 15)])
            for q in 0..<15 where s.contains(approx.indices[i * 15 + q]) { hit += 1 }
        }
        let recall = Double(hit) / Double(p.n * 15)
        print("kNN recall on a 4,000 x 20 cell table: \(recall)")
        XCTAssertGreaterThanOrEqual(recall, 0.95)
        let g = Graph.jaccard(exact)
        let r = Leiden.cluster(g, resolution: 1, seed: 0)
        let louvain = Leiden.modularity(g, labels: Leiden.localMovingOnly(g, seed: 0))
        print("modularity: leiden \(r.quality), one local-moving pass \(louvain)")
        XCTAssertGreaterThanOrEqual(r.quality, louvain)
    }

    func testPrepareRefusesAndClips() throws {
        func message(_ cols: [[Double]], _ p: ClusterParams) -> String {
            do { _ = try Clustering.prepare(columns: cols, markers: ["CD3", "CD8"], params: p); return "" } catch { return "\(error)" }
        }
        XCTAssertEqual(message([[1, 2, .nan], [1, 2, 3]], ClusterParams()), "CD3: value nan in cell row 3; every marker mean must be a finite number")
        XCTAssertEqual(message([[1, 2, 3], [1, -2, 3]], ClusterParams(transform: .log1p)),
                       "CD8: value -2.0 in cell row 2 is negative and log1p cannot take it; use --transform arcsinh or none")
        XCTAssertEqual(message([[1, 2, 3], [1, -2, 3]], ClusterParams()), "", "arcsinh takes negative values (background-subtracted means)")
        XCTAssertEqual(message([[1, .infinity], [1, 2]], ClusterParams()).prefix(9), "CD3: valu")
        // numpy: np.percentile(np.arange(1, 101), [1, 99]) == [1.99, 99.01]
        let (lo, hi) = Transform.percentileBounds((1...100).map(Double.init), clip: 99)
        XCTAssertEqual(lo, 1.99, accuracy: 1e-12); XCTAssertEqual(hi, 99.01, accuracy: 1e-12)
        // clipping bounds the z-scores an outlier gets; clip 100 leaves it
        var col = [Double](repeating: 10, count: 999) + [1_000_000]
        for i in 0..<999 { col[i] += Double(i % 10) }
        let clipped = try Clustering.prepare(columns: [col], markers: ["A"], params: ClusterParams(transform: .none, clip: 99))
        let raw = try Clustering.prepare(columns: [col], markers: ["A"], params: ClusterParams(transform: .none, clip: 100))
        XCTAssertLessThan(clipped.z.max()!, 5); XCTAssertGreaterThan(raw.z.max()!, 30)
        XCTAssertEqual(clipped.transformed[0], col, "transformed values are kept unclipped")
        // log1p and none
        let l = try Clustering.prepare(columns: [[0, 1, 9]], markers: ["A"], params: ClusterParams(transform: .log1p, clip: 100))
        XCTAssertEqual(l.transformed[0], [0, log(2), log(10)])
    }

    func testNamesFile() throws {
        let named = try ClusterNames.parse("cluster,phenotype\n0,T cells\n\n# comment\nc2,\"B cells, naive\"\n", clusters: 3)
        XCTAssertEqual(named.map(\.0), [0, 2]); XCTAssertEqual(named.map(\.1), ["T cells", "B cells, naive"])
        for (text, want) in [("0,T\n5,B\n", "names line 2: there is no cluster 5 (this run made clusters 0...2)"),
                             ("0,T\n0,B\n", "names line 2: cluster 0 is named twice"), ("0,\n", "names line 1: cluster 0 has no phenotype name"),
                             ("0,T\nx,B\n", "names line 2: expected cluster,phenotype with a cluster number, got \"x,B\"")] {
            XCTAssertThrowsError(try ClusterNames.parse(text, clusters: 3)) { XCTAssertEqual("\($0)", want) }
        }
        // a names file renames the clusters it lists
        let t = table(600, spread: 0.35)
        let r = try Clustering.run(columns: t.columns, markers: t.markers, params: ClusterParams(method: .kmeans, k: 3),
                                   files: ClusterFiles(names: "1,Macrophages\n"))
        XCTAssertEqual(r.phenotypes[1], "Macrophages"); XCTAssertTrue(r.phenotypes[0].hasPrefix("c0"))
    }

    func testSilhouetteAndEmbedding() {
        // sklearn.metrics.silhouette_score([[0],[1],[10],[11]], [0,0,1,1]) = 0.899749373...
        XCTAssertEqual(Quality.silhouette([0, 1, 10, 11], n: 4, d: 1, labels: [0, 0, 1, 1]), 0.8997493734, accuracy: 1e-9)
        XCTAssertEqual(Quality.silhouette([0, 1, 10], n: 3, d: 1, labels: [0, 0, 0]), 0, "one cluster")
        // points on the line (1, 2, 0) plus a little spread in z: PC1 explains almost everything
        var x: [Double] = []
        for i in 0..<200 { let s = Double(i) - 100; x += [s, 2 * s, Double(i % 3) * 0.01] }
        let (scores, ex) = Embedding.pca2(x, n: 200, d: 3)
        XCTAssertGreaterThan(ex[0], 0.9999); XCTAssertEqual(scores.count, 400)
        XCTAssertEqual(scores[2 * 199] - scores[0], 199 * 5.0.squareRoot(), accuracy: 1e-6, "scores along the line, largest loading positive")
    }
}
