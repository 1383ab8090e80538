import XCTest
import Foundation
import EpipeKernels
@testable import EpipeSegment

/// Issue 14: the parts of a slide (`epipe-segment --tiles N --tile I`) label exactly what the whole run labels.
final class SegmentPartsTests: XCTestCase {
    func testPartGeometry() {
        let g = TileGrid(width: 300, height: 1500, tile: 256, overlap: 40)   // 6 tile rows, the last 220 rows
        let p = (0..<3).map { SegmentParts.part(grid: g, index: $0, count: 3)! }
        XCTAssertEqual(p.map { $0.tileRows }, [0..<2, 2..<4, 4..<6])
        XCTAssertEqual(p.map { $0.labelled }, [0..<2, 1..<4, 3..<6], "one lead row before every part but the first")
        XCTAssertEqual(p.map { $0.rows }, [0..<512, 512..<1024, 1024..<1500])
        XCTAssertNil(SegmentParts.part(grid: g, index: 0, count: 7), "more parts than tile rows")
        XCTAssertEqual(SegmentParts.part(grid: g, index: 0, count: 1)!.labelled, 0..<6)
    }

    func testPartsGiveTheWholeRunsLabels() throws {
        let w = 301, h = 389
        let img = synthNuclei(w, h, seed: 11, seams: [64, 128, 192, 256, 320])
        var nuclei = NucleiParams(nucleusDiameter: 12)
        nuclei.threshold = 0.5
        let cfg = SlidePipeline.Config(width: w, height: h, channels: 1, nuclearChannels: [0], nuclei: nuclei, growth: .nuclei, tile: 64, overlap: 40)
        let grid = TileGrid(width: w, height: h, tile: 64, overlap: 40)
        func labels(count: Int) throws -> [UInt32] {
            var out = [UInt32](repeating: 0, count: w * h)
            var strips: [(SegmentParts.Part, SegmentParts.Counts, [UInt32])] = []
            for i in 0..<count {
                let part = SegmentParts.part(grid: grid, index: i, count: count)!
                var strip = [UInt32]()
                let c = try SegmentParts.label(cfg, part: part, reader: MemoryPlanes([img], width: w), emit: { y0, n, lab in
                    XCTAssertEqual(y0, part.rows.lowerBound + strip.count / w)
                    strip += lab
                })
                XCTAssertEqual(strip.count, part.rows.count * w)
                strips.append((part, c, strip))
            }
            let offsets = try XCTUnwrap(SegmentParts.offsets(strips.map { $0.1 }))
            for (i, (part, c, strip)) in strips.enumerated() {
                for k in 0..<strip.count { out[part.rows.lowerBound * w + k] = SegmentParts.globalId(strip[k], counts: c, offset: offsets[i]) }
            }
            return out
        }
        let whole = try labels(count: 1)
        XCTAssertGreaterThan(Set(whole).count, 50)
        for n in [2, 3, 7] {
            XCTAssertEqual(try labels(count: n), whole, "\(n) parts")
        }
        XCTAssertNil(SegmentParts.offsets([.init(lead: 0, own: 5, last: 2), .init(lead: 3, own: 4, last: 1)]), "seams that disagree")
    }
}
