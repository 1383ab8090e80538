import XCTest
@testable import EpipeStage

/// The QC pictures a stage draws from thumbnails: side-by-side pairs and contact sheets.
final class BeforeAfterTests: XCTestCase {
    func gray(_ v: UInt8, _ w: Int, _ h: Int) -> Canvas { Canvas(gray: [UInt8](repeating: v, count: w * h), width: w, height: h) }
    func px(_ c: Canvas, _ x: Int, _ y: Int) -> [UInt8] { let i = 3 * (y * c.width + x); return Array(c.pixels[i..<(i + 3)]) }

    func testSideBySide() {
        let c = Canvas.sideBySide([(gray(10, 30, 20), ""), (gray(200, 25, 22), "")])
        XCTAssertEqual([c.width, c.height], [30 + 4 + 25, 22])
        XCTAssertEqual(px(c, 29, 19), [10, 10, 10]); XCTAssertEqual(px(c, 31, 5), [0, 0, 0], "a black gap")
        XCTAssertEqual(px(c, 34, 21), [200, 200, 200]); XCTAssertEqual(px(c, 0, 21), [0, 0, 0], "black below the shorter one")
        // captions are drawn in white over each picture's top left
        let t = Canvas.sideBySide([(gray(0, 60, 30), "A"), (gray(0, 60, 30), "B")])
        XCTAssertTrue((0..<20).contains { x in (0..<20).contains { y in self.px(t, 4 + x, 4 + y) == [255, 255, 255] } })
        XCTAssertTrue((0..<20).contains { x in (0..<20).contains { y in self.px(t, 68 + x, 4 + y) == [255, 255, 255] } })
    }

    func testSheet() {
        let tiles = (0..<6).map { gray(UInt8(10 * ($0 + 1)), 16, 12) }
        let s = Canvas.sheet(tiles, names: Array(repeating: "", count: 6), columns: 4)
        XCTAssertEqual([s.width, s.height], [4 * 20, 2 * 16])
        XCTAssertEqual(px(s, 3 * 20 + 15, 11), [40, 40, 40]); XCTAssertEqual(px(s, 1 * 20 + 1, 16 + 1), [60, 60, 60])
        XCTAssertEqual(px(s, 2 * 20 + 1, 16 + 1), [0, 0, 0], "no seventh tile")
        let one = Canvas.sheet([gray(5, 16, 12)], names: [""], columns: 4)
        XCTAssertEqual([one.width, one.height], [20, 16], "fewer columns than tiles when there are few")
    }

    func testBeforeAfterThumbnails() {
        let w = 1200, h = 600
        let ba = BeforeAfter(channels: 2, width: w, height: h)
        XCTAssertEqual([ba.before[0].width, ba.before[0].height], [400, 200], "longer side at most 512")
        let ramp = (0..<(w * h)).map { Float($0 % w) }
        for c in 0..<2 { ba.before[c].add(rows: ramp, y0: 0, count: h); ba.after[c].add(rows: ramp.map { 1000 - $0 }, y0: 0, count: h) }
        let pair = ba.pair(1, name: "CD3")
        XCTAssertEqual([pair.width, pair.height], [804, 200])
        XCTAssertEqual(px(pair, 399, 199), [255, 255, 255], "before: bright at the right")
        XCTAssertEqual(px(pair, 404 + 399, 199), [0, 0, 0], "after: dark at the right")
        let sheet = ba.contactSheet(names: ["DAPI", "CD3"])
        XCTAssertEqual([sheet.width, sheet.height], [2 * 404, 204])
        XCTAssertEqual(px(sheet, 404 + 399, 199), [0, 0, 0])
    }
}
