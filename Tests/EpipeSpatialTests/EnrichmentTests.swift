import XCTest
import Foundation
import EpipeTestSupport
import EpipeCluster
import EpipeSynth
@testable import EpipeSpatial

/// Neighbourhood enrichment, its null and q-values; planted structure found, none found where
/// there is none; cellular neighbourhoods recover planted niches.
final class EnrichmentTests: XCTestCase {
    func codes(_ s: SpatialCells) -> [Int32] { s.types.map { Int32($0) } }

    /// Reference: count every edge by its two labels, one at a time.
    func testCountMatchesBruteForce() {
        var g = TestRNG(seed: 5)
        for t in [2, 3, 17, 300] {
            let n = 400
            let rows = (0..<n).map { i in (0..<Int(g.next() % 13)).map { _ in Int(g.next() % UInt64(n)) }.filter { $0 != i } }
            let graph = SpatialGraph(rows: rows)
            let labels = (0..<n).map { _ in Int32(g.next() % UInt64(t)) }
            var ref = [Int](repeating: 0, count: t * t)
            for i in 0..<n { for j in rows[i] { ref[Int(labels[i]) * t + Int(labels[j])] += 1 } }
            let r = Enrichment.run(graph: graph, labels: labels, types: t, perms: 0, seed: 0)
            XCTAssertEqual(r.observed, ref, "types \(t)")
            XCTAssertEqual(r.cells.reduce(0, +), n)
            XCTAssertTrue(r.z.isEmpty, "no permutations, no z")
        }
    }

    /// Benjamini-Hochberg as R's p.adjust(method = "BH").
    func testBenjaminiHochberg() {
        let q = Enrichment.benjaminiHochberg([0.01, 0.04, 0.03, 0.005, 0.5])
        for (a, b) in zip(q, [0.025, 0.05, 0.05, 0.025, 0.5]) { XCTAssertEqual(a, b, accuracy: 1e-12) }
        let withNaN = Enrichment.benjaminiHochberg([0.02, .nan, 0.01])
        XCTAssertEqual(withNaN[0], 0.02, accuracy: 1e-12); XCTAssertTrue(withNaN[1].isNaN); XCTAssertEqual(withNaN[2], 0.02, accuracy: 1e-12)
        XCTAssertEqual(Enrichment.benjaminiHochberg([1, 1, 1]), [1, 1, 1])
    }

    /// The null's mean against its exact value: a uniform relabelling puts labels (a, b) on an
    /// edge's two ends with probability n_a n_b / n(n-1) (n_a (n_a - 1) / n(n-1) for a = b). A biased
    /// shuffle (or one that repeats) would miss it by many standard errors.
    func testNullMeanIsExact() {
        let s = SpatialCells.generate(cells: 3000, types: 4, layout: .niches, niches: 2, seed: 3)
        let graph = KDTree2D(x: s.x, y: s.y).knnGraph(k: 6)
        let perms = 400
        let r = Enrichment.run(graph: graph, labels: codes(s), types: 4, perms: perms, seed: 11)
        let n = Double(s.types.count), m = Double(graph.edges)
        for a in 0..<4 {
            for b in 0..<4 {
                let na = Double(r.cells[a]), nb = Double(r.cells[b])
                let exact = m * (a == b ? na * (na - 1) : na * nb) / (n * (n - 1))
                let se = r.std[a * 4 + b] / Double(perms).squareRoot()
                XCTAssertEqual(r.mean[a * 4 + b], exact, accuracy: 4.5 * se, "pair \(a),\(b)")
                XCTAssertGreaterThan(r.std[a * 4 + b], 0)
            }
        }
    }

    /// Same seed, same numbers; another seed, another null.
    func testSeeded() {
        let s = SpatialCells.generate(cells: 2000, types: 5, layout: .uniform, seed: 4)
        let graph = KDTree2D(x: s.x, y: s.y).knnGraph(k: 6)
        let a = Enrichment.run(graph: graph, labels: codes(s), types: 5, perms: 50, seed: 1)
        let b = Enrichment.run(graph: graph, labels: codes(s), types: 5, perms: 50, seed: 1)
        let c = Enrichment.run(graph: graph, labels: codes(s), types: 5, perms: 50, seed: 2)
        XCTAssertEqual(a.mean, b.mean); XCTAssertEqual(a.std, b.std); XCTAssertEqual(a.pEnriched, b.pEnriched)
        XCTAssertNotEqual(a.mean, c.mean)
        XCTAssertEqual(a.observed, c.observed)
    }

    /// Planted niches (types t and t + 4 share a niche of four): every type is enriched with
    /// itself and its niche partner, and depleted against the types of other niches, at q < 0.05.
    func testPlantedNichesEnrichedAndDepleted() {
        let s = SpatialCells.generate(cells: 20_000, types: 8, layout: .niches, niches: 4, seed: 9)
        let graph = KDTree2D(x: s.x, y: s.y).knnGraph(k: 6)
        let r = Enrichment.run(graph: graph, labels: codes(s), types: 8, perms: 200, seed: 0)
        var minSame = Double.infinity, maxOther = -Double.infinity
        for a in 0..<8 {
            for b in 0..<8 {
                let i = a * 8 + b
                if a % 4 == b % 4 {
                    XCTAssertGreaterThan(r.z[i], 5, "same niche \(a),\(b)"); XCTAssertLessThan(r.qEnriched[i], 0.05)
                    XCTAssertEqual(r.pEnriched[i], 1 / 201, accuracy: 1e-12, "no permutation reaches the observed count")
                    minSame = min(minSame, r.z[i])
                } else {
                    XCTAssertLessThan(r.z[i], -5, "other niche \(a),\(b)"); XCTAssertLessThan(r.qDepleted[i], 0.05)
                    XCTAssertGreaterThan(r.qEnriched[i], 0.5)
                    maxOther = max(maxOther, r.z[i])
                }
            }
        }
        print(String(format: "planted niches (20,000 cells, 8 types, 4 niches, kNN 6, 200 perms): same-niche z >= %.1f, other-niche z <= %.1f", minSame, maxOther))
    }

    /// Labels independent of position: |z| under 2 for most pairs, and the p-values of many
    /// slides uniform (Kolmogorov-Smirnov distance below the 1 % critical value).
    func testUniformPlacementGivesNoSignal() {
        var ps: [Double] = [], zs: [Double] = []
        for seed in 0..<24 {
            let s = SpatialCells.generate(cells: 2500, types: 4, layout: .uniform, seed: UInt64(100 + seed))
            let graph = KDTree2D(x: s.x, y: s.y).radiusGraph(radius: 25)
            let r = Enrichment.run(graph: graph, labels: codes(s), types: 4, perms: 199, seed: UInt64(seed))
            for a in 0..<4 { for b in a..<4 { ps.append(r.pEnriched[a * 4 + b]); zs.append(r.z[a * 4 + b]) } }
        }
        let small = Double(zs.filter { abs($0) < 2 }.count) / Double(zs.count)
        ps.sort()
        var d = 0.0
        for (i, p) in ps.enumerated() { d = max(d, abs(p - Double(i) / Double(ps.count)), abs(p - Double(i + 1) / Double(ps.count))) }
        let critical = 1.63 / Double(ps.count).squareRoot()
        print(String(format: "uniform placement (24 slides x 10 pairs): |z| < 2 for %.1f %%, KS distance of p %.3f (1%% critical %.3f)", 100 * small, d, critical))
        XCTAssertGreaterThan(small, 0.9)
        XCTAssertLessThan(d, critical)
    }

    /// Cellular neighbourhoods find the planted niches (adjusted Rand index against the truth).
    func testNeighborhoodsFindPlantedNiches() {
        let s = SpatialCells.generate(cells: 20_000, types: 8, layout: .niches, niches: 4, seed: 21)
        let tree = KDTree2D(x: s.x, y: s.y)
        let nh = CellularNeighborhoods.run(tree: tree, labels: codes(s), types: 8, window: 10, clusters: 4, seed: 0)
        XCTAssertEqual(nh.clusters, 4)
        XCTAssertEqual(nh.counts.reduce(0, +), 20_000)
        XCTAssertEqual(nh.counts, nh.counts.sorted(by: >), "numbered by size")
        let ari = Agreement.adjustedRandIndex(nh.assignment.map { Int($0) }, s.niches)
        print(String(format: "cellular neighbourhoods vs 4 planted niches (20,000 cells, window 10): ARI %.3f", ari))
        XCTAssertGreaterThan(ari, 0.6)
        // each neighbourhood's composition is dominated by one niche's types
        for c in 0..<4 {
            let byNiche = (0..<4).map { g in nh.composition[c][g] + nh.composition[c][g + 4] }
            XCTAssertGreaterThan(byNiche.max()!, 0.6, "neighbourhood \(c): \(byNiche)")
            XCTAssertEqual(nh.composition[c].reduce(0, +), 1, accuracy: 1e-9)
        }
    }
}
