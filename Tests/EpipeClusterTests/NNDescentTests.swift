import XCTest
import EpipeTestSupport
import EpipeSynth
@testable import EpipeCluster

/// NN-descent against the exact kNN: recall (the fraction of the exact k neighbours found) on
/// clustered and on structureless data, determinism for a seed, and the result's conventions.
final class NNDescentTests: XCTestCase {
    func recall(_ a: KNNResult, _ e: KNNResult) -> Double {
        var hit = 0
        for i in 0..<e.n {
            let truth = Set(e.indices[(i * e.k)..<(i * e.k + e.k)])
            for p in (i * a.k)..<(i * a.k + a.k) where truth.contains(a.indices[p]) { hit += 1 }
        }
        return Double(hit) / Double(e.n * e.k)
    }

    func testRecallAgainstExact() {
        let b = blobs(k: 8, perBlob: 500, d: 12, spread: 3, seed: 5)
        let n = 4000, d = 12
        let e = KNN.exact(b.data, n: n, d: d, k: 15)
        let t0 = Date()
        let a = KNN.approximate(b.data, n: n, d: d, k: 15, seed: 1)
        let r = recall(a, e)
        print("NN-descent on blobs n=\(n) d=\(d) k=15: recall \(r), \(Date().timeIntervalSince(t0)) s")
        XCTAssertGreaterThanOrEqual(r, 0.95)
        // structureless: uniform points in 8 dimensions
        var g = TestRNG(s: 9)
        let u = (0..<(3000 * 8)).map { _ in Double(g.next() % 10_000) / 10_000 }
        let ru = recall(KNN.approximate(u, n: 3000, d: 8, k: 15, seed: 2), KNN.exact(u, n: 3000, d: 8, k: 15))
        print("NN-descent on uniform n=3000 d=8 k=15: recall \(ru)")
        XCTAssertGreaterThanOrEqual(ru, 0.95)
        // conventions: nearest first, distances match the points, never the point itself
        for i in stride(from: 0, to: n, by: 97) {
            for j in 0..<15 {
                let v = a.neighbor(i, j)
                XCTAssertNotEqual(v, i)
                let s = (0..<d).map { (b.data[i * d + $0] - b.data[v * d + $0]) * (b.data[i * d + $0] - b.data[v * d + $0]) }.reduce(0, +).squareRoot()
                XCTAssertEqual(a.distances[i * 15 + j], s, accuracy: 1e-9)
                if j > 0 { XCTAssertLessThanOrEqual(a.distances[i * 15 + j - 1], a.distances[i * 15 + j]) }
            }
        }
        let again = KNN.approximate(b.data, n: n, d: d, k: 15, seed: 1)
        XCTAssertEqual(again.indices, a.indices, "same seed, same lists")
        XCTAssertEqual(a.k, 15, "lists of the pool (2k) are cut to k")
        XCTAssertGreaterThanOrEqual(recall(KNN.approximate(b.data, n: n, d: d, k: 15, pool: 15, seed: 1), e), 0.9, "lists of k alone")
    }

    func testSmallInputs() {
        let x: [Double] = [0, 1, 3, 7]
        let a = KNN.approximate(x, n: 4, d: 1, k: 5)
        XCTAssertEqual(a.k, 3, "k clamps to n - 1")
        XCTAssertEqual(a.indices, KNN.exact(x, n: 4, d: 1, k: 3).indices, "tiny inputs are exact")
        XCTAssertEqual(KNN.approximate([1], n: 1, d: 1, k: 3).k, 0)
    }
}

/// Timing and sampled recall of NN-descent on a generated cell table; runs when EPIPE_BENCH=1
/// (`swift test -c release -Xswiftc -enable-testing --filter NNDescentBench`). EPIPE_BENCH_N
/// cells (default 200,000), 30 markers, 10 types; recall over 1,000 sampled cells against brute force.
final class NNDescentBench: XCTestCase {
    func testBenchCellTable() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = Int(env["EPIPE_BENCH_N"] ?? "") ?? 200_000
        let t = CellTable.generate(cells: n, markers: 30, types: 10, spread: 0.5, seed: 3)
        let p = try Clustering.prepare(columns: t.columns, markers: t.markers, params: ClusterParams())
        let t0 = Date()
        let a = KNN.approximate(p.z, n: n, d: 30, k: 15, seed: 0)
        let secs = Date().timeIntervalSince(t0)
        var hit = 0, total = 0
        for s in 0..<1000 {
            let i = (s * 7919) % n
            var best: [(Double, Int)] = []
            for j in 0..<n where j != i {
                var d = 0.0
                for q in 0..<30 { let e = p.z[i * 30 + q] - p.z[j * 30 + q]; d += e * e }
                best.append((d, j))
            }
            best.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            let truth = Set(best.prefix(15).map { Int32($0.1) })
            for q in 0..<15 where truth.contains(a.indices[i * 15 + q]) { hit += 1 }
            total += 15
        }
        print(String(format: "NN-descent n=%d d=30 k=15: %.2f s, sampled recall %.4f", n, secs, Double(hit) / Double(total)))
    }
}
