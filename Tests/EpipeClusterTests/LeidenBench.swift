import XCTest
import Foundation
import EpipeCluster

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`). EPIPE_BENCH_N sets the
/// number of cells (default 200,000; 30 markers, 12 types, kNN 15, resolution 1), EPIPE_BENCH_SPREAD
/// the blobs' spread (default 12: well separated; 60 and above overlap).
final class LeidenBench: XCTestCase {
    func testBenchKNNJaccardLeiden() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = Int(env["EPIPE_BENCH_N"] ?? "") ?? 200_000
        let types = 12, d = 30
        let spread = Double(env["EPIPE_BENCH_SPREAD"] ?? "") ?? 12
        let (data, truth) = blobs(k: types, perBlob: n / types, d: d, spread: spread, seed: 1)
        let m = truth.count
        var t0 = Date()
        let knn = KNN.exact(data, n: m, d: d, k: 15)
        let tk = Date().timeIntervalSince(t0); t0 = Date()
        let g = Graph.jaccard(knn)
        let tg = Date().timeIntervalSince(t0); t0 = Date()
        let r = Leiden.cluster(g, resolution: 1, seed: 0)
        let tl = Date().timeIntervalSince(t0)
        let ari = Agreement.adjustedRandIndex(r.labels, truth)
        print(String(format: "bench leiden n=%d d=%d k=15: kNN %.2fs, jaccard graph %.2fs (%d entries), leiden %.2fs (%d passes): %d clusters, Q %.4f, ARI %.4f",
                     m, d, tk, tg, g.entryCount, tl, r.iterations, r.clusterCount, r.quality, ari))
        // EPIPE_BENCH_DUMP=PREFIX writes PREFIX.edges.csv (i,j,w with i < j), PREFIX.labels.csv
        // (truth,leiden) to compare with leidenalg on the very same weighted graph.
        if let prefix = env["EPIPE_BENCH_DUMP"] {
            var e = ""
            e.reserveCapacity(g.entryCount * 16)
            for i in 0..<g.n {
                for p in g.offsets[i]..<g.offsets[i + 1] where Int(g.targets[p]) > i {
                    e += "\(i),\(g.targets[p]),\(g.weights[p])\n"
                }
            }
            try e.write(toFile: prefix + ".edges.csv", atomically: true, encoding: .utf8)
            var l = ""
            for i in 0..<m { l += "\(truth[i]),\(r.labels[i])\n" }
            try l.write(toFile: prefix + ".labels.csv", atomically: true, encoding: .utf8)
        }
    }
}
