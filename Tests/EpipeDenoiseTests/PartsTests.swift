import XCTest
import Foundation
import EpipeKernels
@testable import EpipeDenoise

/// Issue 14: a slide's parts (`epipe-denoise --tiles N --tile I`: ranges of bands) give the whole
/// run's rows and, merged, its metrics bit for bit.
final class DenoisePartsTests: XCTestCase {
    final class Sink: @unchecked Sendable {
        let lock = NSLock()
        var rows: [[Float]]
        init(_ c: Int, _ n: Int) { rows = (0..<c).map { _ in [Float](repeating: -1, count: n) } }
        func put(_ c: Int, _ y0: Int, _ w: Int, _ v: [Float]) { lock.lock(); rows[c].replaceSubrange((y0 * w)..<(y0 * w + v.count), with: v); lock.unlock() }
    }

    func testPartsEqualTheWholeRun() throws {
        let w = 97, h = 130, C = 2
        var rng = SplitMix64(seed: 3)
        let planes: [[Float]] = (0..<C).map { _ in (0..<(w * h)).map { i in Float(200 + (i % w) * 3 + Int(rng.next() % 500)) + (rng.next() % 997 == 0 ? 9000 : 0) } }
        var r0 = ChannelRecipe(); r0.hotPixels = 3277; r0.rollingBall = 12; r0.gaussian = 1.5
        var r1 = ChannelRecipe(); r1.median = true; r1.tophat = 5
        let stream = DenoiseStream(width: w, height: h, recipes: [r0, r1], illumination: [Illumination(), Illumination()],
                                   blankWeights: [[], []], blankChannels: [], bandRows: 16)
        XCTAssertEqual(stream.bands, 9)
        func run(_ bands: Range<Int>?, _ sink: Sink) throws -> DenoisePartState {
            let hist = (0..<C).map { _ in ChannelHistograms() }
            let res = try stream.run(bands: bands, read: { c, y0, n in Array(planes[c][(y0 * w)..<((y0 + n) * w)]) },
                                     input: { c, _, _, b in hist[c].addBefore(b) },
                                     emit: { c, y0, _, v in v.withUnsafeBufferPointer { hist[c].addAfter($0) }; sink.put(c, y0, w, v) })
            let b = bands ?? 0..<stream.bands
            return DenoisePartState(rows: (b.lowerBound * 16)..<min(h, b.upperBound * 16), result: res, histograms: hist)
        }
        let whole = Sink(C, w * h)
        let ws = try run(nil, whole)
        for n in [2, 4, 9] {
            let split = PartSplit(units: stream.bands, parts: n)!
            let sink = Sink(C, w * h)
            let states = try (0..<n).map { i -> DenoisePartState in
                let st = try run(split.range(i), sink)
                XCTAssertEqual(try DenoisePartState(decoding: st.encode()), st, "encoding round trip")
                return st
            }
            XCTAssertEqual(sink.rows, whole.rows, "\(n) parts: the whole run's rows")
            let merged = DenoisePartState.merge(states, width: w, height: h)
            let one = DenoisePartState.merge([ws], width: w, height: h)
            let names = ["a", "b"]
            let a = DenoiseMetrics(stream: stream, result: merged.result, histograms: merged.histograms, names: names, isBlank: [false, false])
            let b = DenoiseMetrics(stream: stream, result: one.result, histograms: one.histograms, names: names, isBlank: [false, false])
            XCTAssertEqual(a.perChannel, b.perChannel, "\(n) parts: metrics")
            XCTAssertEqual(merged.histograms.map { $0.after.sum }, one.histograms.map { $0.after.sum })
        }
    }
}
