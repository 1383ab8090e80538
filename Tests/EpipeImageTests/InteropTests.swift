import Foundation
import XCTest
@testable import EpipeImage

/// Cross-checks with Python tifffile when available (EPIPE_PYTHON, else python3); skipped otherwise.
final class InteropTests: TempDirTestCase {
    static func python() -> String? {
        var candidates: [String] = []
        if let e = ProcessInfo.processInfo.environment["EPIPE_PYTHON"], !e.isEmpty { candidates.append(e) }
        candidates.append("python3")
        for c in candidates {
            if let r = try? run(c, ["-c", "import tifffile, numpy"]), r.status == 0 { return c }
        }
        return nil
    }

    static func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        if exe.contains("/") {
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [exe] + args
        }
        let o = Pipe(), e = Pipe()
        p.standardOutput = o
        p.standardError = e
        try p.run()
        let od = o.fileHandleForReading.readDataToEndOfFile()
        let ed = e.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: od, as: UTF8.self), String(decoding: ed, as: UTF8.self))
    }

    func pythonJSON(_ py: String, _ script: String, _ args: [String], quiet: Bool = false) throws -> [String: Any] {
        let r = try InteropTests.run(py, ["-c", script] + args)
        guard r.status == 0 else { XCTFail("python failed: \(r.err)"); return [:] }
        if quiet { XCTAssertEqual(r.err, "", "tifffile complained about our file") }
        let line = r.out.split(separator: "\n").last.map(String.init) ?? ""
        return try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
    }

    func testTifffileReadsOurs() throws {
        guard let py = InteropTests.python() else { throw XCTSkip("tifffile not available (set EPIPE_PYTHON)") }
        let script = """
        import sys, json, tifffile, numpy as np, xml.etree.ElementTree as ET
        with tifffile.TiffFile(sys.argv[1]) as t:
            s = t.series[0]
            a = s.asarray()
            root = ET.fromstring(t.ome_metadata)
            names = [c.get('Name') for c in root.iter() if c.tag.endswith('}Channel')]
            px = [p for p in root.iter() if p.tag.endswith('}Pixels')][0]
            pg = t.pages[0]
            print(json.dumps(dict(is_ome=t.is_ome, is_bigtiff=t.is_bigtiff, shape=list(a.shape), dtype=str(a.dtype), axes=s.axes,
                names=names, psx=float(px.get('PhysicalSizeX')), unit=px.get('PhysicalSizeXUnit'), pages=len(t.pages),
                tiled=pg.is_tiled, tile=[pg.tilelength, pg.tilewidth], compression=int(pg.compression), predictor=int(pg.predictor),
                sum=float(a.astype('float64').sum()), corner=float(a[-1, -1, -1]), first=float(a[0, 0, 1]))))
        """
        for (pt, code) in [(PixelType.uint16, "u16"), (.uint8, "u8"), (.uint32, "u32"), (.float32, "f32")] {
            let w = 301, h = 157
            let names = ["DNA", "CD3 & CD8", "µ-marker"]
            let path = p("ours-\(code).ome.tif")
            let wr = try ImageWriter(path: path, width: w, height: h, channelNames: names, pixelType: pt, tileSize: 128,
                                     physicalSizeX: 0.65, physicalSizeY: 0.65)
            var sum = 0.0
            for c in 0..<3 {
                let plane = Pattern.plane(code, c: c, w: w, h: h)
                sum += plane.reduce(0, +)
                if pt == .uint32 { try wr.writeRows(channel: c, y0: 0, count: h, plane.map { UInt32($0) }) }
                else { try wr.writeRows(channel: c, y0: 0, count: h, plane.map { Float($0) }) }
            }
            try wr.finish()
            let j = try pythonJSON(py, script, [path], quiet: true)
            XCTAssertEqual(j["is_ome"] as? Bool, true)
            XCTAssertEqual(j["is_bigtiff"] as? Bool, true)
            XCTAssertEqual(j["shape"] as? [Int], [3, h, w])
            XCTAssertEqual(j["axes"] as? String, "CYX")
            XCTAssertEqual(j["dtype"] as? String, ["u8": "uint8", "u16": "uint16", "u32": "uint32", "f32": "float32"][code])
            XCTAssertEqual(j["names"] as? [String], names)
            XCTAssertEqual(j["psx"] as? Double, 0.65)
            XCTAssertEqual(j["unit"] as? String, "µm")
            XCTAssertEqual(j["pages"] as? Int, 3)
            XCTAssertEqual(j["tiled"] as? Bool, true)
            XCTAssertEqual(j["tile"] as? [Int], [128, 128])
            XCTAssertEqual(j["compression"] as? Int, 8)
            XCTAssertEqual(j["predictor"] as? Int, pt == .float32 ? 1 : 2)
            XCTAssertEqual(j["sum"] as? Double ?? .nan, sum, accuracy: abs(sum) * 1e-12)
            XCTAssertEqual(j["corner"] as? Double, Pattern.value(code, c: 2, x: w - 1, y: h - 1))
            XCTAssertEqual(j["first"] as? Double, Pattern.value(code, c: 0, x: 1, y: 0))
        }
    }

    func testWeReadTifffileOMEWithPyramid() throws {
        guard let py = InteropTests.python() else { throw XCTSkip("tifffile not available (set EPIPE_PYTHON)") }
        let script = """
        import sys, tifffile, numpy as np
        C, H, W = 4, 150, 170
        c, y, x = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing='ij')
        a = ((c * 1000 + y * 7 + x * 3) % 65536).astype('uint16')
        meta = {'axes': 'CYX', 'Channel': {'Name': ['DAPI', 'CD45', 'Ki67', 'aSMA']}, 'PhysicalSizeX': 0.5, 'PhysicalSizeY': 0.25}
        with tifffile.TiffWriter(sys.argv[1], bigtiff=True) as t:
            t.write(a, subifds=1, tile=(64, 64), compression='zlib', predictor=True, photometric='minisblack', metadata=meta)
            t.write(a[:, ::2, ::2], subfiletype=1, tile=(64, 64), compression='zlib', photometric='minisblack')
        f = (np.sin(np.arange(W) * 0.1)[None, None, :] * 100 + np.arange(H)[None, :, None] + c * 0.5).astype('float32')
        tifffile.imwrite(sys.argv[2], f, ome=True, photometric='minisblack', rowsperstrip=16, metadata={'axes': 'CYX'})
        print('{}')
        """
        let a = p("pyr.ome.tif"), b = p("float.ome.tif")
        _ = try pythonJSON(py, script, [a, b])
        let r = try ImageReader(path: a)
        XCTAssertEqual(r.info, ImageInfo(width: 170, height: 150, channels: 4, pixelType: .uint16,
                                         channelNames: ["DAPI", "CD45", "Ki67", "aSMA"], physicalSizeX: 0.5, physicalSizeY: 0.25))
        for c in 0..<4 {
            let got = try r.readChannel(c)
            var want = [Float](repeating: 0, count: 170 * 150)
            for y in 0..<150 { for x in 0..<170 { want[y * 170 + x] = Float((c * 1000 + y * 7 + x * 3) % 65536) } }
            XCTAssertEqual(got, want, "channel \(c)")
        }
        let f = try ImageReader(path: b)
        XCTAssertEqual(f.info.channels, 4)
        XCTAssertEqual(f.info.pixelType, .float32)
        XCTAssertEqual(f.info.channelNames, ["ch0", "ch1", "ch2", "ch3"])
        let row = try f.readRows(channel: 3, y0: 20, count: 1)
        for x in [0, 1, 50, 169] {
            XCTAssertEqual(row[x], Float(Float(sin(Double(x) * 0.1) * 100) + Float(20) + Float(1.5)), accuracy: 1e-3)
        }
    }

    func testTifffileReadsOurPyramid() throws {
        guard let py = InteropTests.python() else { throw XCTSkip("tifffile not available (set EPIPE_PYTHON)") }
        let w = 301, h = 157, names = ["a", "b"]
        let path = p("pyr-ours.ome.tif")
        XCTAssertEqual(ImageWriter.suggestedPyramidLevels(width: w, height: h, tileSize: 64), 3)
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: names, pixelType: .uint16, tileSize: 64, pyramidLevels: 3)
        var y = 0
        while y < h {
            let n = min(45, h - y)
            for c in 0..<2 {
                try wr.writeRows(channel: c, y0: y, count: n, Array(Pattern.plane("u16", c: c, w: w, h: h)[(y * w)..<((y + n) * w)]).map { Float($0) })
            }
            y += n
        }
        try wr.finish()
        // level 0 through our reader is unchanged, SubIFDs are not channels
        let r = try ImageReader(path: path)
        XCTAssertEqual(r.info.channels, 2)
        assertEqualPlanes(try r.readChannel(1), Pattern.plane("u16", c: 1, w: w, h: h), "level 0")
        // expected level 1 and 2 (2x2 rounded mean, edge pixels duplicated)
        func reduce(_ a: [Double], _ w: Int, _ h: Int) -> ([Double], Int, Int) {
            let ow = (w + 1) / 2, oh = (h + 1) / 2
            var o = [Double](repeating: 0, count: ow * oh)
            for yy in 0..<oh { for xx in 0..<ow {
                let x0 = 2 * xx, x1 = min(2 * xx + 1, w - 1), y0 = 2 * yy, y1 = min(2 * yy + 1, h - 1)
                let s = a[y0 * w + x0] + a[y0 * w + x1] + a[y1 * w + x0] + a[y1 * w + x1]
                o[yy * ow + xx] = ((s + 2) / 4).rounded(.down)
            } }
            return (o, ow, oh)
        }
        let (l1, w1, h1) = reduce(Pattern.plane("u16", c: 1, w: w, h: h), w, h)
        let (l2, w2, h2) = reduce(l1, w1, h1)
        let script = """
        import sys, json, tifffile, numpy as np
        with tifffile.TiffFile(sys.argv[1]) as t:
            s = t.series[0]
            lv = [list(l.shape) for l in s.levels]
            l1 = s.levels[1].asarray()[1].astype('float64')
            l2 = s.levels[2].asarray()[1].astype('float64')
            print(json.dumps(dict(levels=lv, l1=l1.ravel().tolist(), l2=l2.ravel().tolist(),
                subfile=[int(p.subfiletype) for p in t.pages[0].pages] if hasattr(t.pages[0], 'pages') and t.pages[0].pages else [])))
        """
        let j = try pythonJSON(py, script, [path], quiet: true)
        XCTAssertEqual(j["levels"] as? [[Int]], [[2, h, w], [2, h1, w1], [2, h2, w2], [2, 20, 38]])
        XCTAssertEqual(j["l1"] as? [Double], l1)
        XCTAssertEqual(j["l2"] as? [Double], l2)
    }
}
