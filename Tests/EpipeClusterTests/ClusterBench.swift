import XCTest
import Foundation
import EpipeCluster

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`).
final class ClusterBench: XCTestCase {
    func testBenchKMeans() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let (data, truth) = blobs(k: 20, perBlob: 10_000, d: 40, spread: 8, seed: 1)
        let t0 = Date()
        let r = KMeans.fit(data, n: truth.count, d: 40, k: 20, seed: 0, maxIter: 300, nInit: 3)
        print(String(format: "bench kmeans n=200000 d=40 k=20 nInit=3: %.3fs (%d iterations in best run)", Date().timeIntervalSince(t0), r.iterations))
    }
}
