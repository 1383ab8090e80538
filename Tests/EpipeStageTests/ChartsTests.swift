import XCTest
@testable import EpipeStage

/// The QC charts of the table stages (cluster's heatmap, stats' bars and map), drawn without files.
final class ChartsTests: XCTestCase {
    func px(_ c: Canvas, _ x: Int, _ y: Int) -> [UInt8] { let i = 3 * (y * c.width + x); return Array(c.pixels[i..<(i + 3)]) }
    func rgb(_ t: (UInt8, UInt8, UInt8)) -> [UInt8] { [t.0, t.1, t.2] }

    func testHeatmap() {
        let hm = Canvas.heatmap(rows: ["c0 a", "c1 longer"], columns: ["CD3", "CD20"], values: [[2, -2], [0, 1]])
        let left = Canvas.textWidth("c1 longer") + 8, top = 4 * 9 + 6
        XCTAssertEqual([hm.width, hm.height], [left + 2 * 18 + 2, top + 2 * 18 + 2])
        XCTAssertEqual(px(hm, left + 1 + 9, top + 1 + 9), rgb(Canvas.diverging(2)), "row 0, column 0: red")
        XCTAssertEqual(px(hm, left + 1 + 18 + 9, top + 1 + 9), rgb(Canvas.diverging(-2)), "row 0, column 1: blue")
        XCTAssertEqual(px(hm, left + 1 + 9, top + 1 + 18 + 9), [255, 255, 255], "z 0: white")
        XCTAssertEqual(px(hm, left, top + 10), [255, 255, 255], "a white line between cells")
    }

    func testBars() {
        let b = Canvas.bars(labels: ["T  6  60.0%", "B  4  40.0%"], values: [0.6, 0.4])
        let lw = Canvas.textWidth("T  6  60.0%", scale: 2) + 20
        XCTAssertEqual([b.width, b.height], [lw + 420, 2 * 22 + 12])
        XCTAssertEqual(px(b, lw + 399, 6 + 9), rgb(Canvas.color(0)), "the first value: 400 px")
        XCTAssertEqual(px(b, lw + 400, 6 + 9), [255, 255, 255])
        XCTAssertEqual(px(b, lw + 265, 28 + 9), rgb(Canvas.color(1)), "0.4 / 0.6 of 400 px")
        XCTAssertEqual(px(b, lw + 267, 28 + 9), [255, 255, 255])
        XCTAssertEqual([Canvas.bars(labels: [], values: []).height], [22 + 12])
    }

    func testPointMap() {
        let m = Canvas.pointMap(xs: [100, 500, 1000, .nan], ys: [100, 250, 500, 3], categories: ["B", "T", "X", "T"], order: ["T", "B"])
        XCTAssertEqual([m.width, m.height], [1024 + 4, 512 + 4], "the larger extent is 1024 px")
        XCTAssertEqual(px(m, 512 + 1, 256 + 1), rgb(Canvas.color(0)), "T: the first colour")
        XCTAssertEqual(px(m, 1024 + 1, 512 + 1), rgb(Canvas.color(0)), "not in the order: the first colour")
        XCTAssertEqual(px(m, 10, 8 + 18 + 5), rgb(Canvas.color(1)), "the legend's second swatch")
        XCTAssertEqual(px(m, 104, 104), rgb(Canvas.color(1)), "B at (100, 100) scaled by 1.024")
    }
}
