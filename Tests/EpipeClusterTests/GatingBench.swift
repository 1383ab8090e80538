import XCTest
import Foundation
@testable import EpipeCluster
import EpipeKernels

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`): SCIMAP gating of 1M cells,
/// 33 markers (scimap-33plex's cells repeated with noise), its 32-rule workflow, auto gates.
final class GatingBench: XCTestCase {
    func testBenchGating() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let t = GatingTests.table, n = 1_000_000, base = t.ids.count
        var g = SplitMix64(seed: 3)
        let cols = t.logColumns.map { c in (0..<n).map { i in c[i % base] + 0.05 * (g.nextUnit() - 0.5) } }
        let wf = try Gating.Workflow.parse(String(contentsOfFile: GatingTests.data + "/phenotype_workflow.csv", encoding: .utf8), available: t.markers)
        var t0 = Date()
        let gates = cols.map { Gating.autoGate($0).gate }
        let tGates = Date().timeIntervalSince(t0)
        t0 = Date()
        let r = Gating.phenotype(columns: cols, markers: t.markers, gates: gates, workflow: wf)
        print(String(format: "bench gating n=1000000 markers=33: auto gates %.2fs, rescale+phenotype %.2fs, %d labels", tGates, Date().timeIntervalSince(t0), r.names.count))
    }
}
