import XCTest
import EpipeCore
import EpipeTestSupport
import EpipeDenoise
import EpipeImage
@testable import EpipeStage

/// The shared pieces every stage executable uses: channel lookup by name, the default nuclear
/// channel, and the params merge order (defaults < job.json < flags).
final class StageTests: XCTestCase {
    func testChannelByNameOrIndex() throws {
        let names = ["DAPI", "CD45", "PanCK"]
        XCTAssertEqual(try channelIndex("cd45", names: names, what: "--membrane"), 1)
        XCTAssertEqual(try channelIndex("2", names: names, what: "--membrane"), 2)
        XCTAssertThrowsError(try channelIndex("CD3", names: names, what: "--membrane")) { e in
            XCTAssertEqual("\(e)", "--membrane \"CD3\": no such channel; channels are DAPI,CD45,PanCK")
        }
        XCTAssertThrowsError(try channelIndex("3", names: names, what: "--nuclear"))
    }

    func testSideImageMustHaveTheImagesSize() throws {
        let path = NSTemporaryDirectory() + "epipe-side-\(UUID().uuidString).tif"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try ImageWriter(path: path, width: 8, height: 6, channelNames: ["a"], pixelType: .uint16)
        try w.writeRows(channel: 0, y0: 0, count: 6, [Float](repeating: 7, count: 48)); try w.finish()
        XCTAssertEqual(try sideImage(path, what: "flat-field", width: 8, height: 6).info.channels, 1)
        XCTAssertThrowsError(try sideImage(path, what: "dark-field", width: 8, height: 7)) { e in
            XCTAssertEqual("\(e)", "\(path): dark-field is 8x6, the image is 8x7")
        }
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
