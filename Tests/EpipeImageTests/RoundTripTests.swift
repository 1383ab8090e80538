import Foundation
import XCTest
@testable import EpipeImage

final class RoundTripTests: TempDirTestCase {
    func roundTrip(_ pt: PixelType, code: String, w: Int, h: Int, names: [String], tile: Int, band: Int, useU32: Bool) throws {
        let path = p("rt-\(code)-\(tile).ome.tif")
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: names, pixelType: pt,
                                 tileSize: tile, physicalSizeX: 0.325, physicalSizeY: 0.65)
        let planes = (0..<names.count).map { Pattern.plane(code, c: $0, w: w, h: h) }
        var y = 0
        while y < h {   // band-interleaved: every channel's band, then the next band
            let n = min(band, h - y)
            for c in 0..<names.count {
                let rows = Array(planes[c][(y * w)..<((y + n) * w)])
                if useU32 {
                    try wr.writeRows(channel: c, y0: y, count: n, rows.map { UInt32($0) })
                } else {
                    try wr.writeRows(channel: c, y0: y, count: n, rows.map { Float($0) })
                }
            }
            y += n
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "file must appear only at finish()")
        try wr.finish()
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])

        let r = try ImageReader(path: path)
        XCTAssertEqual(r.info, ImageInfo(width: w, height: h, channels: names.count, pixelType: pt,
                                         channelNames: names, physicalSizeX: 0.325, physicalSizeY: 0.65))
        for c in 0..<names.count {
            if pt == .uint32 {
                XCTAssertEqual(try r.readChannelUInt32(c), planes[c].map { UInt32($0) }, "\(code) channel \(c)")
            } else {
                assertEqualPlanes(try r.readChannel(c), planes[c], "\(code) channel \(c)")
            }
        }
    }

    func testRoundTripAllTypes() throws {
        let names = ["DAPI", "CD3 & <CD8>", "Ki-67 \"x\"", "PanCK"]
        try roundTrip(.uint8, code: "u8", w: 300, h: 275, names: names, tile: 256, band: 37, useU32: false)
        try roundTrip(.uint16, code: "u16", w: 300, h: 275, names: names, tile: 64, band: 37, useU32: false)
        try roundTrip(.uint16, code: "u16", w: 1, h: 1, names: ["only"], tile: 16, band: 1, useU32: false)
        try roundTrip(.uint32, code: "u32", w: 129, h: 97, names: names, tile: 32, band: 13, useU32: true)
        try roundTrip(.float32, code: "f32", w: 300, h: 275, names: names, tile: 64, band: 100, useU32: false)
        try roundTrip(.float32, code: "f32", w: 50, h: 70, names: ["a", "b"], tile: 256, band: 70, useU32: false)
    }

    func testClampAndRound() throws {
        let path = p("clamp.tif")
        let src: [Float] = [-5, 3.4, 3.6, 300, .nan, 254.5, .infinity, 0.49]
        for (pt, want) in [(PixelType.uint8, [0, 3, 4, 255, 0, 255, 255, 0] as [Float]),
                           (.uint16, [0, 3, 4, 300, 0, 255, 65535, 0])] {
            let w = try ImageWriter(path: path, width: 8, height: 1, channelNames: ["x"], pixelType: pt, ome: false)
            try w.writeRows(channel: 0, y0: 0, count: 1, src)
            try w.finish()
            XCTAssertEqual(try ImageReader(path: path).readChannel(0), want, "\(pt)")
        }
        let w = try ImageWriter(path: path, width: 3, height: 1, channelNames: ["x"], pixelType: .uint8)
        try w.writeRows(channel: 0, y0: 0, count: 1, [UInt32(7), 255, 100_000])
        try w.finish()
        XCTAssertEqual(try ImageReader(path: path).readChannelUInt32(0), [7, 255, 255])
    }

    func testWriterMisuse() throws {
        let path = p("misuse.tif")
        let w = try ImageWriter(path: path, width: 10, height: 10, channelNames: ["a", "b"], pixelType: .uint16)
        XCTAssertThrowsError(try w.writeRows(channel: 0, y0: 5, count: 1, [Float](repeating: 0, count: 10)))  // gap
        XCTAssertThrowsError(try w.writeRows(channel: 2, y0: 0, count: 1, [Float](repeating: 0, count: 10)))  // channel
        XCTAssertThrowsError(try w.writeRows(channel: 0, y0: 0, count: 2, [Float](repeating: 0, count: 10)))  // size
        try w.writeRows(channel: 0, y0: 0, count: 10, [Float](repeating: 1, count: 100))
        XCTAssertThrowsError(try w.finish()) { assertOneLine($0, contains: "misuse.tif") }  // channel 1 incomplete
        XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        XCTAssertThrowsError(try ImageWriter(path: p("nodir/x.tif"), width: 1, height: 1, channelNames: ["a"], pixelType: .uint8)) {
            assertOneLine($0, contains: "x.tif")
        }
    }

    func testAbortAndDeinitRemoveTemp() throws {
        do {
            let w = try ImageWriter(path: p("a.tif"), width: 10, height: 10, channelNames: ["a"], pixelType: .uint8)
            try w.writeRows(channel: 0, y0: 0, count: 3, [Float](repeating: 1, count: 30))
            w.abort()
        }
        do {
            let w = try ImageWriter(path: p("b.tif"), width: 10, height: 10, channelNames: ["a"], pixelType: .uint8)
            try w.writeRows(channel: 0, y0: 0, count: 3, [Float](repeating: 1, count: 30))
            _ = w
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testBandReadsEqualWholeChannel() throws {
        // ours: tiled 32; libtiff: striped 7 rows and tiled 16
        let path = p("bands.tif")
        let w = 100, h = 90
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: ["a", "b"], pixelType: .uint16, tileSize: 32)
        for c in 0..<2 { try wr.writeRows(channel: c, y0: 0, count: h, Pattern.plane("u16", c: c, w: w, h: h).map { Float($0) }) }
        try wr.finish()
        try LibTIFFFile(width: w, height: h, nchan: 2, compression: 8, predictor: 2, rowsPerStrip: 7).write(p("s.tif"))
        try LibTIFFFile(width: w, height: h, nchan: 2, compression: 5, tile: 16).write(p("t.tif"))
        for file in [path, p("s.tif"), p("t.tif")] {
            let r = try ImageReader(path: file)
            r.cacheLimitBytes = 0   // force re-decoding on every band switch
            for c in 0..<2 {
                let whole = try r.readChannel(c)
                for band in [1, 5, 7, 13, 31, 33, 90] {
                    var y = 0
                    // interleave channels to exercise the cache and page switching
                    while y < h {
                        let n = min(band, h - y)
                        _ = try r.readRows(channel: 1 - c, y0: y, count: n)
                        let part = try r.readRows(channel: c, y0: y, count: n)
                        XCTAssertEqual(part, Array(whole[(y * w)..<((y + n) * w)]), "\(file) band \(band) y \(y)")
                        y += n
                    }
                }
                XCTAssertEqual(try r.readRowsUInt32(channel: c, y0: 20, count: 10), whole[(20 * w)..<(30 * w)].map { UInt32($0) })
            }
            XCTAssertThrowsError(try r.readRows(channel: 0, y0: 85, count: 10)) { assertOneLine($0, contains: (file as NSString).lastPathComponent) }
            XCTAssertThrowsError(try r.readRows(channel: 2, y0: 0, count: 1))
        }
    }

    func testLargerImageBoundedMemoryPath() throws {
        // many tile rows, many channels interleaved: exercises buffer pool and parallel compression
        let path = p("large.tif")
        let w = 1500, h = 700, nc = 5
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: (0..<nc).map { "m\($0)" }, pixelType: .uint16)
        var y = 0
        let bands = [256, 100, 156, 188]   // aligned and unaligned band ends
        var bi = 0
        while y < h {
            let n = min(bands[bi % bands.count], h - y); bi += 1
            for c in 0..<nc {
                var rows = [Float](repeating: 0, count: n * w)
                for r in 0..<n { for x in 0..<w { rows[r * w + x] = Float(Pattern.value("u16", c: c, x: x, y: y + r)) } }
                try wr.writeRows(channel: c, y0: y, count: n, rows)
            }
            y += n
        }
        try wr.finish()
        let r = try ImageReader(path: path)
        XCTAssertEqual(r.info.channels, nc)
        for c in [0, nc - 1] {
            assertEqualPlanes(try r.readChannel(c), Pattern.plane("u16", c: c, w: w, h: h), "large c\(c)")
        }
    }

    func testPyramidWriterKeepsLevel0AndReducesRows() throws {
        for (pt, code) in [(PixelType.uint8, "u8"), (.uint32, "u32"), (.float32, "f32")] {
            let w = 130, h = 77
            let path = p("pyr-\(code).tif")
            let wr = try ImageWriter(path: path, width: w, height: h, channelNames: ["x", "y"], pixelType: pt, tileSize: 16, pyramidLevels: 4)
            for c in 0..<2 {
                let plane = Pattern.plane(code, c: c, w: w, h: h)
                if pt == .uint32 { try wr.writeRows(channel: c, y0: 0, count: h, plane.map { UInt32($0) }) }
                else { try wr.writeRows(channel: c, y0: 0, count: h, plane.map { Float($0) }) }
            }
            try wr.finish()
            let r = try ImageReader(path: path)
            XCTAssertEqual(r.info.channels, 2)
            for c in 0..<2 {
                let want = Pattern.plane(code, c: c, w: w, h: h)
                if pt == .uint32 { XCTAssertEqual(try r.readChannelUInt32(c), want.map { UInt32($0) }) }
                else { assertEqualPlanes(try r.readChannel(c), want, "\(code) c\(c)") }
            }
        }
        // reduction kernels
        var out = [UInt8](repeating: 0, count: 2)
        let a: [UInt8] = [1, 2, 250], b: [UInt8] = [3, 5, 255]
        ImageWriter.reduceRows(.uint8, a, b, &out, widthIn: 3, widthOut: 2)
        XCTAssertEqual(out, [3, 253])   // (1+2+3+5+2)/4 = 3, (250+250+255+255+2)/4 = 253
        var lab = [UInt32](repeating: 0, count: 2)
        ImageWriter.reduceRows(.uint32, [UInt32(7), 8, 9], [UInt32(1), 1, 1], &lab, widthIn: 3, widthOut: 2)
        XCTAssertEqual(lab, [7, 9])
        var f = [Float](repeating: 0, count: 1)
        ImageWriter.reduceRows(.float32, [Float(1), 2], [Float(3), -2], &f, widthIn: 2, widthOut: 1)
        XCTAssertEqual(f, [1])
    }
}

/// `readWindow` / `readWindowUInt32`: the same values as the rows read whole, for windows inside one
/// tile, across tile seams, at the right and bottom edges, the full width, and on a striped TIFF
/// (whole rows decoded, then cut); a window past the image is refused with one line.
final class WindowReadTests: TempDirTestCase {
    func testWindowsMatchRows() throws {
        let w = 700, h = 530
        for (pt, code) in [(PixelType.uint16, "u16"), (.float32, "f32"), (.uint32, "u32")] {
            let path = p("win-\(code).ome.tif")
            let wr = try ImageWriter(path: path, width: w, height: h, channelNames: ["a", "b"], pixelType: pt, tileSize: 256)
            let planes = (0..<2).map { Pattern.plane(code, c: $0, w: w, h: h) }
            for c in 0..<2 {
                if pt == .uint32 { try wr.writeRows(channel: c, y0: 0, count: h, planes[c].map { UInt32($0) }) }
                else { try wr.writeRows(channel: c, y0: 0, count: h, planes[c].map { Float($0) }) }
            }
            try wr.finish()
            let r = try ImageReader(path: path)
            for c in 0..<2 {
                let whole = try r.readChannel(c), wholeU = try r.readChannelUInt32(c)
                for (x0, y0, ww, hh) in [(10, 20, 100, 50), (200, 230, 120, 90), (600, 500, 100, 30), (0, 0, w, 17), (255, 255, 2, 2), (3, 4, 0, 0)] {
                    let got = try r.readWindow(channel: c, x0: x0, y0: y0, width: ww, height: hh)
                    let gotU = try r.readWindowUInt32(channel: c, x0: x0, y0: y0, width: ww, height: hh)
                    var want: [Float] = [], wantU: [UInt32] = []
                    for y in y0..<(y0 + hh) { for x in x0..<(x0 + ww) { want.append(whole[y * w + x]); wantU.append(wholeU[y * w + x]) } }
                    XCTAssertEqual(got, want, "\(code) c\(c) window \(x0),\(y0) \(ww)x\(hh)")
                    XCTAssertEqual(gotU, wantU, "\(code) c\(c) window \(x0),\(y0) \(ww)x\(hh)")
                }
            }
            XCTAssertThrowsError(try r.readWindow(channel: 0, x0: 650, y0: 0, width: 100, height: 10)) { e in
                XCTAssertTrue("\(e)".contains("columns 650..<750 out of range"), "\(e)")
            }
            XCTAssertThrowsError(try r.readWindow(channel: 0, x0: 0, y0: 500, width: 10, height: 40))
            XCTAssertThrowsError(try r.readWindow(channel: 2, x0: 0, y0: 0, width: 10, height: 10))
        }
    }

    /// libtiff-written files: striped (whole rows decoded, then cut) and tiled 16 px, with a predictor.
    func testWindowsOfLibTIFFFiles() throws {
        let w = 100, h = 90
        try LibTIFFFile(width: w, height: h, nchan: 2, compression: 8, predictor: 2, rowsPerStrip: 7).write(p("s.tif"))
        try LibTIFFFile(width: w, height: h, nchan: 2, compression: 5, tile: 16).write(p("t.tif"))
        for file in [p("s.tif"), p("t.tif")] {
            let r = try ImageReader(path: file)
            for c in 0..<2 {
                let whole = try r.readChannel(c)
                for (x0, y0, ww, hh) in [(5, 6, 20, 30), (15, 15, 3, 3), (80, 70, 20, 20), (0, 0, w, h)] {
                    var want: [Float] = []
                    for y in y0..<(y0 + hh) { for x in x0..<(x0 + ww) { want.append(whole[y * w + x]) } }
                    XCTAssertEqual(try r.readWindow(channel: c, x0: x0, y0: y0, width: ww, height: hh), want, "\(file) \(x0),\(y0)")
                }
            }
        }
    }
}
