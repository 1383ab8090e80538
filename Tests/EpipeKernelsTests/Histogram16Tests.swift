import XCTest
import EpipeTestSupport
import EpipeKernels

/// The streamed 16-bit histogram: counts, clamping, merging parts, exact percentiles.
final class Histogram16Tests: XCTestCase {
    func testHistogramCountsClampsAndMerges() {
        var rng = TestRNG(s: 5)
        let values: [Float] = (0..<10_000).map { _ in Float(Int.random(in: -100...70_000, using: &rng)) }
        var whole = Histogram16()
        values.withUnsafeBufferPointer { whole.add($0) }
        XCTAssertEqual(whole.n, values.count)
        XCTAssertEqual(whole.bins.reduce(0, +), values.count)
        XCTAssertEqual(whole.bins[0], values.filter { $0 <= 0 }.count, "negatives clamp to 0")
        XCTAssertEqual(whole.bins[65535], values.filter { $0 >= 65535 }.count, "values above the range clamp to 65535")
        XCTAssertEqual(whole.mean, values.reduce(0.0) { $0 + Double($1) } / Double(values.count), accuracy: 1e-6)
        // two halves merged give the same histogram
        var a = Histogram16(), b = Histogram16()
        values[..<3_000].withUnsafeBufferPointer { a.add($0) }
        values[3_000...].withUnsafeBufferPointer { b.add($0) }
        a.merge(b)
        XCTAssertEqual(a.bins, whole.bins)
        XCTAssertEqual(a.n, whole.n)
        // percentiles of 0...999
        var ramp = Histogram16()
        let r = (0..<1000).map(Float.init)
        r.withUnsafeBufferPointer { ramp.add($0) }
        XCTAssertEqual(ramp.percentile(0), 0)
        XCTAssertEqual(ramp.percentile(50), 500)
        XCTAssertEqual(ramp.percentile(100), 999)
        XCTAssertEqual(Histogram16().percentile(50), 0, "empty")
    }
}
