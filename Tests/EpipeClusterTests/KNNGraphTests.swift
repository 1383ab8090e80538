import XCTest
import Foundation
@testable import EpipeCluster
import EpipeKernels
import EpipeTestSupport

/// Brute force: all squared distances summed in column order, sorted by (distance, index).
func bruteKNN(_ x: [Double], n: Int, d: Int, k: Int) -> [[(Double, Int)]] {
    (0..<n).map { i in
        var all: [(Double, Int)] = []
        for j in 0..<n where j != i {
            var s = 0.0
            for c in 0..<d { let t = x[i * d + c] - x[j * d + c]; s += t * t }
            all.append((s, j))
        }
        all.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        return Array(all.prefix(k)).map { ($0.0.squareRoot(), $0.1) }
    }
}

final class KNNGraphTests: XCTestCase {
    func testKNNEqualsBruteForce() {
        var g = TestRNG(s: 42)
        for (n, d, k) in [(700, 7, 10), (300, 30, 15), (50, 3, 49), (1, 2, 5)] {
            let x = (0..<(n * d)).map { _ in g.nextUnit() * 10 }
            let r = KNN.exact(x, n: n, d: d, k: k)
            let kk = min(k, n - 1)
            XCTAssertEqual(r.k, kk)
            let b = bruteKNN(x, n: n, d: d, k: kk)
            for i in 0..<n {
                for j in 0..<kk {
                    XCTAssertEqual(r.neighbor(i, j), b[i][j].1, "n=\(n) i=\(i) j=\(j)")
                    XCTAssertEqual(r.distances[i * kk + j], b[i][j].0)
                }
            }
        }
    }

    func testKNNTiesByLowerIndex() {
        // integer grid with many equal distances, plus duplicated points
        var x: [Double] = []
        for i in 0..<400 { x.append(Double(i % 20)); x.append(Double((i / 20) % 20)) }
        for i in 0..<40 { x.append(Double(i % 20)); x.append(Double(i / 20)) }   // duplicates of 0..<40
        let n = 440
        let r = KNN.exact(x, n: n, d: 2, k: 12)
        let b = bruteKNN(x, n: n, d: 2, k: 12)
        for i in 0..<n { for j in 0..<12 { XCTAssertEqual(r.neighbor(i, j), b[i][j].1) } }
        // a point's duplicate is its nearest neighbour at distance 0
        XCTAssertEqual(r.neighbor(0, 0), 400); XCTAssertEqual(r.distances[0], 0)
        XCTAssertEqual(r.neighbor(400, 0), 0)
    }

    func testKNNFloatInput() {
        var g = TestRNG(s: 3)
        let x = (0..<(200 * 5)).map { _ in Float(g.nextUnit()) }
        let r = KNN.exact(x, n: 200, d: 5, k: 8)
        let b = bruteKNN(x.map { Double($0) }, n: 200, d: 5, k: 8)
        for i in 0..<200 { for j in 0..<8 { XCTAssertEqual(r.neighbor(i, j), b[i][j].1) } }
    }

    func testJaccardGraph() {
        var g = TestRNG(s: 7)
        let n = 500, d = 4, k = 10
        let x = (0..<(n * d)).map { _ in g.nextUnit() }
        let knn = KNN.exact(x, n: n, d: d, k: k)
        let gr = Graph.jaccard(knn)
        XCTAssertEqual(gr.n, n)
        XCTAssertTrue(gr.selfLoops.isEmpty)
        var w: [Int: Double] = [:]
        for i in 0..<n {
            let row = Array(gr.targets[gr.offsets[i]..<gr.offsets[i + 1]])
            XCTAssertEqual(row, row.sorted()); XCTAssertEqual(Set(row).count, row.count)
            for e in gr.offsets[i]..<gr.offsets[i + 1] {
                let j = Int(gr.targets[e])
                XCTAssertNotEqual(i, j)
                XCTAssertGreaterThan(gr.weights[e], 0); XCTAssertLessThanOrEqual(gr.weights[e], 1)
                w[i * n + j] = gr.weights[e]
            }
        }
        // symmetric, edges = union of kNN directions, weights = hand Jaccard of N+ sets
        var expected = Set<Int>()
        for i in 0..<n { for j in 0..<k { let t = knn.neighbor(i, j); expected.insert(i * n + t); expected.insert(t * n + i) } }
        XCTAssertEqual(Set(w.keys), expected)
        func nplus(_ i: Int) -> Set<Int> { Set((0..<k).map { knn.neighbor(i, $0) } + [i]) }
        for (key, v) in w {
            let i = key / n, j = key % n
            XCTAssertEqual(w[j * n + i], v)
            let a = nplus(i), b = nplus(j)
            XCTAssertEqual(v, Double(a.intersection(b).count) / Double(a.union(b).count))
        }
    }

    func testFromEdgesMergesAndSymmetrises() {
        let gr = Graph.fromEdges(n: 4, edges: [(0, 1, 1), (1, 0, 2), (2, 3, 0.5), (3, 3, 1)])
        XCTAssertEqual(gr.offsets, [0, 1, 2, 3, 4])
        XCTAssertEqual(gr.targets, [1, 0, 3, 2])
        XCTAssertEqual(gr.weights, [3, 3, 0.5, 0.5])
        XCTAssertEqual(gr.selfLoops, [0, 0, 0, 1])
        XCTAssertEqual(gr.strengths(), [3, 3, 0.5, 2.5])
    }
}
