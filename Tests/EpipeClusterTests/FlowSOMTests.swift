import XCTest
import Foundation
import EpipeCluster
import EpipeKernels

/// Gaussian types in d dimensions: centres drawn N(0, sep^2) per coordinate, cells N(centre, 1),
/// type sizes in the ratio 1 : 2 : ... (so sizes differ), then z-scored per column as the caller
/// of FlowSOM does. Returns row-major data and the true type of each cell (cells interleaved).
func flowsomBlobs(types: Int, n: Int, d: Int, sep: Double, seed: UInt64) -> (data: [Double], truth: [Int]) {
    var g = SplitMix64(seed: seed)
    func normal() -> Double {
        let u = max(g.nextUnit(), 1e-300), v = g.nextUnit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
    var centres = [Double](repeating: 0, count: types * d)
    for i in centres.indices { centres[i] = sep * normal() }
    let weights = (1...types).map(Double.init), total = weights.reduce(0, +)
    var cum: [Double] = []
    var acc = 0.0
    for w in weights { acc += w / total; cum.append(acc) }
    var columns = [[Double]](repeating: [Double](repeating: 0, count: n), count: d)
    var truth = [Int](repeating: 0, count: n)
    for i in 0..<n {
        let u = g.nextUnit()
        let t = cum.firstIndex { u < $0 } ?? types - 1
        truth[i] = t
        for j in 0..<d { columns[j][i] = centres[t * d + j] + normal() }
    }
    Transform.zscore(columns: &columns)
    return (Transform.rowMajor(columns: columns), truth)
}

final class FlowSOMTests: XCTestCase {
    func testSeparatedBlobs() {
        let (data, truth) = flowsomBlobs(types: 6, n: 6000, d: 10, sep: 6, seed: 11)
        let r = FlowSOM.cluster(data, n: truth.count, d: 10, options: .init(k: 6, seed: 1))
        let ari = Agreement.adjustedRandIndex(r.labels, truth)
        print(String(format: "FlowSOM separated: ARI %.4f", ari))
        XCTAssertGreaterThan(ari, 0.99)
        XCTAssertEqual(r.k, 6)
        XCTAssertEqual(r.codes.count, 100 * 10)
        XCTAssertEqual(r.nodeMeta.count, 100)
        // cells carry their node's metacluster; labels by decreasing size
        for i in 0..<truth.count { XCTAssertEqual(r.labels[i], r.nodeMeta[Int(r.node[i])]) }
        var size = [Int](repeating: 0, count: r.k)
        for l in r.labels { size[l] += 1 }
        XCTAssertEqual(size, size.sorted(by: >))
        // every cell is on its nearest code
        for i in stride(from: 0, to: truth.count, by: 97) {
            var best = Double.infinity, bi = -1
            for c in 0..<100 {
                var s = 0.0
                for j in 0..<10 { let t = data[i * 10 + j] - r.codes[c * 10 + j]; s += t * t }
                if s < best { best = s; bi = c }
            }
            XCTAssertEqual(Int(r.node[i]), bi)
        }
    }

    func testOverlappingBlobs() {
        // sep 1.2 in 10-d: neighbouring types overlap; measured ARI 0.742 (k-means 0.734)
        let (data, truth) = flowsomBlobs(types: 8, n: 8000, d: 10, sep: 1.2, seed: 12)
        let r = FlowSOM.cluster(data, n: truth.count, d: 10, options: .init(k: 8, seed: 1))
        let ari = Agreement.adjustedRandIndex(r.labels, truth)
        let km = KMeans.fit(data, n: truth.count, d: 10, k: 8, seed: 1)
        print(String(format: "FlowSOM overlapping: ARI %.4f (k-means %.4f)", ari, Agreement.adjustedRandIndex(km.labels, truth)))
        XCTAssertGreaterThan(ari, 0.70)
    }

    func testDeterminism() {
        let (data, truth) = flowsomBlobs(types: 5, n: 3000, d: 6, sep: 2, seed: 3)
        let o = FlowSOM.Options(k: 5, xdim: 6, ydim: 5, seed: 42)
        let a = FlowSOM.cluster(data, n: truth.count, d: 6, options: o)
        let b = FlowSOM.cluster(data, n: truth.count, d: 6, options: o)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertEqual(a.node, b.node)
        XCTAssertEqual(a.codes, b.codes)
        XCTAssertEqual(a.nodeMeta, b.nodeMeta)
        var o2 = o; o2.seed = 43
        let c = FlowSOM.cluster(data, n: truth.count, d: 6, options: o2)
        XCTAssertNotEqual(a.codes, c.codes)
        // a training subsample is deterministic too, and every cell is still mapped
        var o3 = o; o3.trainingCells = 500
        let s1 = FlowSOM.cluster(data, n: truth.count, d: 6, options: o3)
        let s2 = FlowSOM.cluster(data, n: truth.count, d: 6, options: o3)
        XCTAssertEqual(s1.labels, s2.labels)
        XCTAssertEqual(s1.labels.count, truth.count)
        XCTAssertNotEqual(s1.codes, a.codes)
    }

    func testEdgeCases() {
        // n == 0
        let e = FlowSOM.cluster([], n: 0, d: 3, options: .init(k: 4))
        XCTAssertEqual(e.labels, []); XCTAssertEqual(e.node, []); XCTAssertEqual(e.k, 0)
        // k > nodes: clipped
        let (data, truth) = flowsomBlobs(types: 3, n: 300, d: 4, sep: 5, seed: 5)
        let r = FlowSOM.cluster(data, n: truth.count, d: 4, options: .init(k: 20, xdim: 3, ydim: 3))
        XCTAssertEqual(r.k, 9)
        XCTAssertEqual(Set(r.nodeMeta), Set(0..<9))
        XCTAssertTrue(r.labels.allSatisfy { (0..<9).contains($0) })
        // fewer cells than nodes
        let tiny: [Double] = [0, 0, 10, 10, 0.1, 0, 10, 10.2, 5, -5]
        let t = FlowSOM.cluster(tiny, n: 5, d: 2, options: .init(k: 3))
        XCTAssertEqual(t.labels.count, 5)
        XCTAssertEqual(t.k, 3)
        XCTAssertEqual(t.labels[0], t.labels[2])
        XCTAssertEqual(t.labels[1], t.labels[3])
        XCTAssertNotEqual(t.labels[0], t.labels[1])
        // one cell, one node, one column
        let one = FlowSOM.cluster([1.5], n: 1, d: 1, options: .init(k: 2, xdim: 1, ydim: 1))
        XCTAssertEqual(one.labels, [0]); XCTAssertEqual(one.node, [0]); XCTAssertEqual(one.k, 1)
        XCTAssertEqual(one.codes, [1.5])
        // identical cells
        let same = FlowSOM.cluster([Double](repeating: 2, count: 400), n: 200, d: 2, options: .init(k: 5))
        XCTAssertEqual(same.labels.count, 200)
        XCTAssertTrue(same.labels.allSatisfy { $0 == 0 })
    }

    func testGridAndRadius() {
        let g = FlowSOM.gridDistances(xdim: 10, ydim: 10)
        // node x + 10 y: (0,0) to (3,7) is Chebyshev 7
        XCTAssertEqual(g[0 * 100 + (3 + 10 * 7)], 7)
        XCTAssertEqual(g[(1 + 10 * 1) * 100 + (2 + 10 * 2)], 1)
        // numpy: np.quantile(squareform(pdist(grid, 'chebyshev')), 0.67) == 6.0 for 10 x 10
        XCTAssertEqual(FlowSOM.quantileType7(g, 0.67), 6, accuracy: 1e-12)
        XCTAssertEqual(FlowSOM.quantileType7([1, 2, 3, 4], 0.5), 2.5)
        XCTAssertEqual(FlowSOM.quantileType7([10, 0, 20], 0.67), 13.4, accuracy: 1e-12)
    }

    /// Six 2-d points; the expected linkage is scipy.cluster.hierarchy.linkage(pdist(X), 'average')
    /// (single and complete linkage give a different order or heights).
    func testAverageLinkageHandCase() {
        let pts: [(Double, Double)] = [(0, 0), (1, 0), (5, 0), (5, 2), (9, 9), (2.5, 0.5)]
        let m = pts.count
        var dist = [Double](repeating: 0, count: m * m)
        for a in 0..<m { for b in 0..<m {
            dist[a * m + b] = ((pts[a].0 - pts[b].0) * (pts[a].0 - pts[b].0) + (pts[a].1 - pts[b].1) * (pts[a].1 - pts[b].1)).squareRoot()
        } }
        let z = FlowSOM.averageLinkage(dist, m: m)
        let expected: [(Int, Int, Double, Int)] = [(0, 1, 1, 2), (2, 3, 2, 2), (5, 6, 2.06532429, 3), (7, 8, 4.05371441, 5), (4, 9, 10.67621989, 6)]
        XCTAssertEqual(z.count, expected.count)
        for (g, e) in zip(z, expected) {
            XCTAssertEqual(g.a, e.0); XCTAssertEqual(g.b, e.1); XCTAssertEqual(g.size, e.3)
            XCTAssertEqual(g.height, e.2, accuracy: 1e-7)
        }
        // scipy fcluster(Z, 3, 'maxclust') = [2 2 1 1 3 2]
        XCTAssertEqual(FlowSOM.cutTree(z, m: m, k: 3), [0, 0, 1, 1, 2, 0])
        XCTAssertEqual(FlowSOM.cutTree(z, m: m, k: 6), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(FlowSOM.cutTree(z, m: m, k: 1), [0, 0, 0, 0, 0, 0])
        // 1-d: 0, 1, 3, 7 -> {0,1} at 1, {0,1,3} at 2.5, all at 17/3
        let x: [Double] = [0, 1, 3, 7]
        let z1 = FlowSOM.averageLinkage((0..<16).map { abs(x[$0 / 4] - x[$0 % 4]) }, m: 4)
        XCTAssertEqual(z1.map(\.height), [1, 2.5, 17.0 / 3])
        XCTAssertEqual(z1.map(\.a), [0, 2, 3]); XCTAssertEqual(z1.map(\.b), [1, 4, 5])
        // stopAt keeps the first merges only
        XCTAssertEqual(FlowSOM.averageLinkage(dist, m: m, stopAt: 3), Array(z.prefix(3)))
    }

    func testConsensusOnClearGroups() {
        // 12 codes in three tight groups far apart: consensus recovers them
        var codes: [Double] = []
        for i in 0..<12 { let g = Double(i % 3) * 10; codes += [g + Double(i) * 0.01, -g, 0.5 * g] }
        var rng = SplitMix64(seed: 9)
        let meta = FlowSOM.consensusMetaclusters(codes, m: 12, d: 3, k: 3, rng: &rng)
        XCTAssertEqual(meta, (0..<12).map { $0 % 3 })
    }
}
