import Foundation
import XCTest
@testable import EpipeImage

final class NamesTests: TempDirTestCase {
    func writePlain(_ path: String, nchan: Int, ome: Bool) throws {
        let w = try ImageWriter(path: path, width: 20, height: 10, channelNames: (0..<nchan).map { "name\($0)" }, pixelType: .uint8, ome: ome)
        for c in 0..<nchan { try w.writeRows(channel: c, y0: 0, count: 10, [Float](repeating: Float(c), count: 200)) }
        try w.finish()
    }

    func testChannelNameFallbacks() throws {
        try writePlain(p("plain.tif"), nchan: 3, ome: false)
        // no OME, no markers.csv: ch0..
        XCTAssertEqual(try ImageReader(path: p("plain.tif")).info.channelNames, ["ch0", "ch1", "ch2"])
        // markers.csv beside the image (MCMICRO layout, quoted field, BOM, CRLF)
        try "\u{FEFF}cycle,marker_name,Filter\r\n1,DNA_1,DAPI\r\n1,\"CD3, epsilon\",FITC\r\n2,Ki67,Cy5\r\n".write(toFile: p("markers.csv"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try ImageReader(path: p("plain.tif")).info.channelNames, ["DNA_1", "CD3, epsilon", "Ki67"])
        // explicit CSV
        try "marker_name\nA\nB\nC\n".write(toFile: p("other.csv"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try ImageReader(path: p("plain.tif"), markersCSV: p("other.csv")).info.channelNames, ["A", "B", "C"])
        // explicit CSV with the wrong count: refused
        try "marker_name\nA\nB\n".write(toFile: p("short.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ImageReader(path: p("plain.tif"), markersCSV: p("short.csv"))) { assertOneLine($0, contains: "short.csv") }
        // markers.csv beside with the wrong count is ignored
        try "marker_name\nA\n".write(toFile: p("markers.csv"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try ImageReader(path: p("plain.tif")).info.channelNames, ["ch0", "ch1", "ch2"])
        // OME names win over markers.csv
        try "marker_name\nA\nB\nC\n".write(toFile: p("markers.csv"), atomically: true, encoding: .utf8)
        try writePlain(p("ome.tif"), nchan: 3, ome: true)
        XCTAssertEqual(try ImageReader(path: p("ome.tif")).info.channelNames, ["name0", "name1", "name2"])
    }

    func testMarkersParsing() throws {
        try "cycle,Marker_Name\n1,X\n".write(toFile: p("m.csv"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Markers.read(csvPath: p("m.csv")), ["X"])
        try "cycle,name\n1,X\n".write(toFile: p("bad.csv"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Markers.read(csvPath: p("bad.csv"))) { assertOneLine($0, contains: "bad.csv") }
        XCTAssertThrowsError(try Markers.read(csvPath: p("missing.csv"))) { assertOneLine($0, contains: "missing.csv") }
        XCTAssertEqual(try Markers.table(text: "a,marker_name,c,d\r\n1,\"b,\"\"c\"\"\",,d\r\n\r\n", path: "t.csv").names(), ["b,\"c\""])
        XCTAssertEqual(try Markers.table(text: "\u{FEFF}marker_name\rX\rY", path: "t.csv").names(), ["X", "Y"], "BOM and CR line ends")
    }

    func testOMEXMLEscapingRoundTrip() {
        let xml = OMEXML.make(name: "x&y.tif", width: 3, height: 2, channelNames: ["a<b>", "c&d", "e\"f'g", "µ"], pixelType: .uint16,
                              physicalSizeX: 0.5, physicalSizeY: nil)
        let m = OMEXML.parse(xml)
        XCTAssertEqual(m?.channelNames, ["a<b>", "c&d", "e\"f'g", "µ"])
        XCTAssertEqual(m?.sizeC, 4)
        XCTAssertEqual(m?.physicalSizeX, 0.5)
        XCTAssertNil(m?.physicalSizeY)
        XCTAssertNil(OMEXML.parse("ImageJ=1.53\nchannels=3\n"))
    }
}

final class PNGPreviewTests: TempDirTestCase {
    func testPNGRoundTrip() throws {
        let w = 37, h = 23
        let gray = (0..<(w * h)).map { UInt8(($0 * 7) & 0xFF) }
        try PNG.writeGray(path: p("g.png"), width: w, height: h, pixels: gray)
        let g = try PNG.read(path: p("g.png"))
        XCTAssertEqual(g.width, w); XCTAssertEqual(g.height, h); XCTAssertEqual(g.channels, 1)
        XCTAssertEqual(g.pixels, gray)
        let rgb = (0..<(w * h * 3)).map { UInt8(($0 * 13 + 5) & 0xFF) }
        try PNG.writeRGB(path: p("c.png"), width: w, height: h, pixels: rgb)
        let c = try PNG.read(path: p("c.png"))
        XCTAssertEqual(c.channels, 3); XCTAssertEqual(c.pixels, rgb)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["c.png", "g.png"])
        XCTAssertThrowsError(try PNG.writeGray(path: p("bad.png"), width: 2, height: 2, pixels: [1])) { assertOneLine($0, contains: "bad.png") }
        try "hello".write(toFile: p("text.png"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PNG.read(path: p("text.png"))) { assertOneLine($0, contains: "text.png") }
        XCTAssertThrowsError(try PNG.writeGray(path: p("nodir/x.png"), width: 1, height: 1, pixels: [1])) { assertOneLine($0, contains: "x.png") }
    }

    func testStretchPercentiles() {
        // values 0..9999 in scrambled order, 100 x 100
        let n = 10_000
        var plane = [Float](repeating: 0, count: n)
        for i in 0..<n { plane[(i * 7919) % n] = Float(i) }
        let (lo, hi) = Preview.percentiles(plane, count: n, low: 0.5, high: 99.5)
        XCTAssertEqual(Double(lo), 49.995, accuracy: 1e-3)     // numpy: 49.995
        XCTAssertEqual(Double(hi), 9949.005, accuracy: 1e-3)   // numpy: 9949.005
        let s = Preview.stretch(plane, width: 100, height: 100)
        XCTAssertEqual(s.width, 100); XCTAssertEqual(s.height, 100)
        for i in 0..<n {
            let v = plane[i]
            if v <= 49 { XCTAssertEqual(s.pixels[i], 0) }
            if v >= 9950 { XCTAssertEqual(s.pixels[i], 255) }
        }
        let mid = plane.firstIndex(of: 5000)!
        XCTAssertEqual(Int(s.pixels[mid]), 128, accuracy: 1)
        // monotone
        let order = (0..<n).sorted { plane[$0] < plane[$1] }
        for k in 1..<n { XCTAssertLessThanOrEqual(s.pixels[order[k - 1]], s.pixels[order[k]]) }
        // NaN and constant planes
        let c = Preview.stretch([Float](repeating: 3, count: 16) + [.nan], width: 17, height: 1)
        XCTAssertEqual(c.pixels, [UInt8](repeating: 0, count: 17))
        // custom percentiles 0..100 = min..max
        let full = Preview.stretch([0, 10, 20, 30], width: 4, height: 1, lowPercentile: 0, highPercentile: 100)
        XCTAssertEqual(full.pixels, [0, 85, 170, 255])
    }

    func testStretchDownsampling() {
        let big = [Float](repeating: 1, count: 5000 * 300)
        let a = Preview.stretch(big, width: 5000, height: 300)
        XCTAssertEqual(a.width, 2048); XCTAssertEqual(a.height, 123)
        XCTAssertEqual(a.pixels.count, 2048 * 123)
        let b = Preview.stretch([Float](repeating: 0, count: 300 * 900), width: 300, height: 900, maxSide: 100)
        XCTAssertEqual(b.width, 33); XCTAssertEqual(b.height, 100)
        // area average: 4x4 -> 2x2 averages exact
        let p: [Float] = [0, 2, 4, 6,
                          2, 4, 6, 8,
                          10, 10, 20, 20,
                          10, 10, 20, 20]
        let (d, w, h) = Preview.downsample(p, width: 4, height: 4, maxSide: 2)
        XCTAssertEqual(w, 2); XCTAssertEqual(h, 2)
        XCTAssertEqual(d, [2, 6, 10, 20])
        // fractional factor 3 -> 2 keeps the mean
        let (e, _, _) = Preview.downsample([0, 3, 6], width: 3, height: 1, maxSide: 2)
        XCTAssertEqual(e.count, 2)
        XCTAssertEqual(Double(e[0]), (0 * 1 + 3 * 0.5) / 1.5, accuracy: 1e-5)
        XCTAssertEqual(Double(e[1]), (3 * 0.5 + 6 * 1) / 1.5, accuracy: 1e-5)
    }
}
