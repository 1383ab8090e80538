import XCTest
import EpipeTestSupport
import Foundation
import EpipeSpatial

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`).
final class SpatialBench: XCTestCase {
    func testBenchKDTree() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        var g = TestRNG(s: 2)
        let n = 1_000_000
        let xs = (0..<n).map { _ in Double.random(in: 0..<50_000, using: &g) }
        let ys = (0..<n).map { _ in Double.random(in: 0..<50_000, using: &g) }
        let t0 = Date()
        let t = KDTree2D(x: xs, y: ys)
        let t1 = Date()
        let gk = t.knnGraph(k: 10)
        let t2 = Date()
        let gr = t.radiusGraph(radius: 50)
        let t3 = Date()
        var acc = 0
        let t4 = Date()
        for i in 0..<100_000 { acc &+= t.nearest(x: xs[i], y: ys[i], k: 11).count }
        print(String(format: "bench kdtree 100k single nearest(11) queries: %.3fs", Date().timeIntervalSince(t4)), acc)
        print(String(format: "bench kdtree n=1M: build %.3fs, knnGraph(10) %.3fs, radiusGraph(50) %.3fs (%d, %d)",
                     t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), gk.edges, gr.edges))
    }
}
