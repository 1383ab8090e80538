import XCTest
import Foundation
import EpipeCluster
import EpipeKernels

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release -Xswiftc -enable-testing`).
/// EPIPE_BENCH_N sets the number of cells (default 1,000,000; 30 markers, 10 types of unequal
/// sizes, centres N(0, EPIPE_BENCH_SEP^2) per marker, default 2.5, cells N(centre, 1), z-scored),
/// EPIPE_BENCH_TRAIN a training subsample (default: all cells). FlowSOM 10 x 10, rlen 10, k 10.
/// Measured (release, 2 shared cores), 1,000,000 cells x 30 markers:
///   all cells trained (10M sequential updates): 10.8 s, ARI 1.0000;
///   trainingCells 100,000: 1.55 s, ARI 0.9997;  trainingCells 1,000: 0.81 s (mapping every cell
///   plus the consensus metaclustering), ARI 1.0000.  n 200,000 (all trained): 2.6 s, ARI 0.9651.
final class FlowSOMBench: XCTestCase {
    func testBenchFlowSOM() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = Int(env["EPIPE_BENCH_N"] ?? "") ?? 1_000_000
        let sep = Double(env["EPIPE_BENCH_SEP"] ?? "") ?? 2.5
        let train = Int(env["EPIPE_BENCH_TRAIN"] ?? "")
        let d = 30
        var t0 = Date()
        let (data, truth) = flowsomBlobs(types: 10, n: n, d: d, sep: sep, seed: 1)
        let tg = Date().timeIntervalSince(t0)
        t0 = Date()
        let r = FlowSOM.cluster(data, n: n, d: d, options: .init(k: 10, seed: 0, trainingCells: train))
        let tf = Date().timeIntervalSince(t0)
        let ari = Agreement.adjustedRandIndex(r.labels, truth)
        print(String(format: "bench flowsom n=%d d=%d train=%@: data %.2fs, FlowSOM %.2fs, ARI %.4f",
                     n, d, train.map(String.init) ?? "all", tg, tf, ari))
    }
}
