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

    /// The markers table reads markers.csv with EpipeImage's reader (byte-order mark, CRLF,
    /// quotes) and takes the blank-channel pattern from denoise's params, its one definition.
    func testMarkerTableReadsCyclesBlanksAndBackgrounds() throws {
        let dir = NSTemporaryDirectory() + "epipe-markertable-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/markers.csv"
        try "\u{FEFF}cycle_number,marker_name,background\r\n1,DAPI,\r\n1,Blank1,\r\n2,\"CD3, T\",AF2\r\n2,AF2,\r\n"
            .write(toFile: p, atomically: true, encoding: .utf8)
        let t = try MarkerTable(names: ["DAPI", "Blank1", "CD3, T", "AF2"], csvPath: p, blankPattern: DenoiseParams.defaultBlankPattern)
        XCTAssertEqual(t.cycles, [1, 1, 2, 2])
        XCTAssertEqual(t.blank, [false, true, false, true], "Blank1 and AF2 by name; AF2 also as CD3's background")
        XCTAssertEqual(t.background, [nil, nil, "AF2", nil])
        XCTAssertThrowsError(try MarkerTable(names: ["DAPI"], csvPath: p, blankPattern: DenoiseParams.defaultBlankPattern)) { e in
            XCTAssertEqual((e as? EpipeError)?.exitCode, 2, "a count that does not match the image is bad input")
        }
    }
}

/// The segmentation QC's drawing: outlines are the label pixels that touch another label or
/// background, drawn in order (later outlines over earlier ones), over the stretched grey plane.
final class OverlayTests: XCTestCase {
    func testOutlinesAreTheBoundaryPixels() {
        let w = 8, h = 6
        var lab = [UInt32](repeating: 0, count: w * h)
        for y in 1..<5 { for x in 1..<4 { lab[y * w + x] = 1 } }    // a 3 x 4 block
        for y in 0..<6 { for x in 4..<8 { lab[y * w + x] = 2 } }    // touching it, and the image edge
        let plane = (0..<(w * h)).map { Float($0) }
        let cv = Canvas.overlay(plane, width: w, height: h, maxSide: 64, outlines: [(lab, (255, 0, 0)), (lab.map { $0 == 2 ? 2 : 0 }, (0, 0, 255))])
        func px(_ x: Int, _ y: Int) -> [UInt8] { Array(cv.pixels[(3 * (y * w + x))..<(3 * (y * w + x) + 3)]) }
        XCTAssertEqual(px(2, 2), px(2, 2).map { _ in px(2, 2)[0] }, "the block's inside stays grey")
        XCTAssertEqual(px(1, 1), [255, 0, 0], "the block's corner is on its outline")
        XCTAssertEqual(px(3, 3), [255, 0, 0], "beside label 2")
        XCTAssertEqual(px(4, 3), [0, 0, 255], "label 2's left edge, redrawn by the second outline")
        XCTAssertEqual(px(7, 3)[0], px(7, 3)[1], "the image edge is not a boundary")
        XCTAssertEqual(px(0, 0)[0], px(0, 0)[1], "background stays grey")
    }
}
