import XCTest
import Foundation
import EpipeSynth

/// Release-mode speed check (EPIPE_SYNTH_PERF=<size>, optional EPIPE_SYNTH_PERF_CH, EPIPE_SYNTH_PERF_BAND).
final class PerfTests: XCTestCase {
    func testRenderSpeed() throws {
        guard let s = ProcessInfo.processInfo.environment["EPIPE_SYNTH_PERF"], let size = Int(s) else { throw XCTSkip("set EPIPE_SYNTH_PERF") }
        let ch = Int(ProcessInfo.processInfo.environment["EPIPE_SYNTH_PERF_CH"] ?? "4") ?? 4
        let bandH = Int(ProcessInfo.processInfo.environment["EPIPE_SYNTH_PERF_BAND"] ?? "512") ?? 512
        let t0 = Date()
        let slide = SyntheticSlide(SynthConfig(width: size, height: size, channels: ch, seed: 1))
        let t1 = Date()
        var y = 0, checksum = 0.0
        while y < size {
            let b = slide.renderBand(y0: y, count: min(bandH, size - y))
            checksum += Double(b.channels[0][b.width / 2]) + Double(b.cells[0])
            y += b.count
        }
        let t2 = Date()
        print(String(format: "PERF %dx%d x %d ch: %d cells, init %.2f s, render %.2f s (checksum %.0f)",
                     size, size, ch, slide.cellCount, t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), checksum))
    }
}
