import XCTest
import EpipeCore
import EpipeTestSupport
import EpipeDenoise
@testable import EpipeStage

/// The shared pieces every stage executable uses: the streamed 16-bit histogram, channel lookup
/// by name, the default nuclear channel, and the params merge order (defaults < job.json < flags).
final class StageTests: XCTestCase {
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

    func testChannelByNameOrIndex() throws {
        let names = ["DAPI", "CD45", "PanCK"]
        XCTAssertEqual(try channelIndex("cd45", names: names, what: "--membrane"), 1)
        XCTAssertEqual(try channelIndex("2", names: names, what: "--membrane"), 2)
        XCTAssertThrowsError(try channelIndex("CD3", names: names, what: "--membrane")) { e in
            XCTAssertEqual("\(e)", "--membrane \"CD3\": no such channel; channels are DAPI,CD45,PanCK")
        }
        XCTAssertThrowsError(try channelIndex("3", names: names, what: "--nuclear"))
    }

    func testDefaultNuclearChannel() {
        XCTAssertEqual(guessNuclear(["CD3", "Hoechst 33342", "CD8"]), 1)
        XCTAssertEqual(guessNuclear(["Ir191", "CD45"]), 0)
        XCTAssertEqual(guessNuclear(["CD45", "DNA1"]), 1)
        XCTAssertEqual(guessNuclear(["CD45", "CD3"]), 0, "none by name: channel 0")
    }

    /// The blank-channel pattern is written in two layers that cannot import each other (the
    /// markers table here, denoise's params in its algorithm module): they must stay the same.
    func testBlankPatternIsTheSameInBothLayers() {
        XCTAssertEqual(MarkerTable.defaultBlankPattern, DenoiseParams.defaultBlankPattern)
    }
}
