import XCTest
import EpipeCore
import EpipeTestSupport
import EpipeDenoise
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
