import XCTest
import Foundation
import EpipeCore
import EpipeImage

/// epipe-denoise on images with known content, through the binary.
final class DenoiseStageTests: E2ECase {
    /// Writes a uint16 OME-TIFF scan (and an optional markers.csv beside it), ingests it, returns the job dir.
    func job(_ planes: [[Float]], names: [String], w: Int, h: Int, markers: String? = nil, name: String = "t") throws -> String {
        let dir = tmp + "/scan-" + name
        try Files.mkdir(dir)
        let wr = try ImageWriter(path: dir + "/\(name).ome.tif", width: w, height: h, channelNames: names, pixelType: .uint16)
        for (c, p) in planes.enumerated() { try wr.writeRows(channel: c, y0: 0, count: h, p) }
        try wr.finish()
        if let m = markers { try m.write(toFile: dir + "/markers.csv", atomically: true, encoding: .utf8) }
        let r = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", dir])
        XCTAssertEqual(r.code, 0, r.err)
        return r.lines[0]
    }
    func output(_ job: String) throws -> (ImageReader, [[Float]]) {
        let r = try ImageReader(path: job + "/denoise/image.ome.tif")
        return (r, try (0..<r.info.channels).map { try r.readChannel($0) })
    }

    func testBandSizeDoesNotChangeTheResult() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 300, channels: 3)
        let j = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", scans]).lines[0]
        var results: [[[Float]]] = []
        for band in ["16", "64", "300"] {
            let r = try exec("epipe-denoise", ["-q", "--band", band, "--median", "true", "--gaussian", "1.5", "--rolling-ball", "20", j])
            XCTAssertEqual(r.code, 0, r.err)
            results.append(try output(j).1)
        }
        XCTAssertEqual(results[0], results[1]); XCTAssertEqual(results[0], results[2])
        let m = try manifest(j, "denoise")
        XCTAssertEqual(m.params["band"]?.intValue, 300)
        XCTAssertNotNil(m.metrics["per_channel"]?["DAPI"]?["focus"])
    }

    func testIdentityRecipeKeepsPixelsAndHotPixelsAreCounted() throws {
        let w = 300, h = 270
        var p = (0..<(w * h)).map { Float(1000 + ($0 * 37) % 200) }
        for (x, y) in [(5, 5), (150, 0), (299, 269), (77, 133)] { p[y * w + x] = 60000 }
        let j = try job([p, p], names: ["DAPI", "CD3"], w: w, h: h, name: "id")
        XCTAssertEqual(try exec("epipe-denoise", ["-q", "--hot-pixels", "off", "--rolling-ball", "off", "--band", "64", j]).code, 0)
        XCTAssertEqual(try output(j).1, [p, p], "nothing asked, nothing changed")
        XCTAssertEqual(try exec("epipe-denoise", ["-q", "--hot-pixels", "5000", "--rolling-ball", "off", "--band", "64", j]).code, 0)
        let m = try manifest(j, "denoise")
        XCTAssertEqual(m.metrics["per_channel"]?["CD3"]?["hot_pixels_replaced"]?.intValue, 4)
        let out = try output(j).1[0]
        for (x, y) in [(5, 5), (150, 0), (299, 269), (77, 133)] { XCTAssertLessThan(out[y * w + x], 1300) }
    }

    func testBlankCyclesAreSubtractedByCycle() throws {
        let w = 64, h = 48
        // Autofluorescence grows with cycle: blank of cycle 1 = 100, of cycle 3 = 300; a marker in cycle 2
        // sees 200 of it, plus its own signal (a bright square).
        func plane(_ f: (Int, Int) -> Float) -> [Float] { (0..<(w * h)).map { f($0 % w, $0 / w) } }
        let signal = plane { x, y in (20..<40).contains(x) && (10..<30).contains(y) ? 1000 : 0 }
        let planes = [plane { _, _ in 100 }, plane { x, y in 200 + signal[y * w + x] }, plane { _, _ in 300 }, plane { _, _ in 5000 }]
        let csv = "channel_number,cycle_number,marker_name\n1,1,Blank1\n2,2,CD3\n3,3,Blank3\n4,3,DAPI\n"
        let j = try job(planes, names: ["Blank1", "CD3", "Blank3", "DAPI"], w: w, h: h, markers: csv)
        let r = try exec("epipe-denoise", ["-q", "--rolling-ball", "off", "--hot-pixels", "off", j])
        XCTAssertEqual(r.code, 0, r.err)
        let (_, out) = try output(j)
        XCTAssertEqual(out[1], signal, "CD3 minus the blank interpolated at cycle 2")
        XCTAssertEqual(out[0], planes[0], "blanks are kept unchanged")
        XCTAssertEqual(out[3], [Float](repeating: 4700, count: w * h), "DAPI in cycle 3 minus blank 3")
    }

    func testMCMICROBackgroundColumnAndExplicitBlanks() throws {
        let w = 40, h = 30
        let planes: [[Float]] = [[Float](repeating: 700, count: w * h), [Float](repeating: 250, count: w * h), [Float](repeating: 50, count: w * h)]
        let csv = "cycle_number,marker_name,background\n1,DAPI,\n1,CD8,AF488\n1,AF488,\n"
        let j = try job(planes, names: ["DAPI", "CD8", "AF488"], w: w, h: h, markers: csv, name: "mc")
        XCTAssertEqual(try exec("epipe-denoise", ["-q", "--rolling-ball", "off", j]).code, 0)
        let (_, out) = try output(j)
        XCTAssertEqual(out[1], [Float](repeating: 200, count: w * h))
    }

    func testFlatFieldAutoFlattensVignetting() throws {
        let w = 512, h = 512
        var rng = SystemRandomNumberGenerator()
        var p = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w {
            let dx = Double(x - w / 2) / Double(w), dy = Double(y - h / 2) / Double(h)
            let vig = 1 - 0.4 * (dx * dx + dy * dy) * 2     // 0.6 at the corners, 1 at the centre
            var v = 1000.0
            if (x / 16 + y / 16) % 7 == 0 && x % 16 > 4 && x % 16 < 12 && y % 16 > 4 && y % 16 < 12 { v += 3000 }
            p[y * w + x] = Float(v * vig + Double(Int.random(in: -20...20, using: &rng)))
        } }
        let j = try job([p], names: ["CD45"], w: w, h: h, name: "ff")
        XCTAssertEqual(try exec("epipe-denoise", ["-q", "--rolling-ball", "off", "--flatfield", "auto", j]).code, 0)
        let (_, out) = try output(j)
        func bg(_ plane: [Float], _ x0: Int, _ y0: Int) -> Float {
            var v: [Float] = []
            for y in y0..<(y0 + 32) { for x in x0..<(x0 + 32) { v.append(plane[y * w + x]) } }
            v.sort(); return v[v.count / 10]
        }
        let rawRatio = bg(p, 0, 0) / bg(p, 240, 240)
        let ratio = bg(out[0], 0, 0) / bg(out[0], 240, 240)
        XCTAssertLessThan(rawRatio, 0.7)
        // within 8%, where the raw image is 40% darker at the corners
        XCTAssertEqual(ratio, 1, accuracy: 0.08, "corner/centre background after flat-field (before: \(rawRatio))")
    }

    func testWarningsForEmptyAndSaturatedChannelsStillComplete() throws {
        let w = 64, h = 64
        let planes: [[Float]] = [(0..<(w * h)).map { Float(($0 * 7919) % 5000) }, [Float](repeating: 0, count: w * h), [Float](repeating: 65535, count: w * h)]
        let j = try job(planes, names: ["DAPI", "CD4", "Sat"], w: w, h: h, name: "warn")
        let r = try exec("epipe-denoise", [j])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("warning") && r.err.contains("CD4"), r.err)
        let warn = try manifest(j, "denoise").metrics["warnings"]!.arrayValue!.compactMap { $0.stringValue }
        XCTAssertTrue(warn.contains { $0.contains("CD4") && $0.contains("empty") }, "\(warn)")
        XCTAssertTrue(warn.contains { $0.contains("Sat") && $0.contains("saturated") }, "\(warn)")
    }

    /// Writes a uint16 TIFF (one plane per entry) at PATH, for flat-field and dark-field references.
    func reference(_ path: String, _ planes: [[Float]], w: Int, h: Int) throws {
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: planes.indices.map { "ref\($0)" }, pixelType: .uint16)
        for (c, p) in planes.enumerated() { try wr.writeRows(channel: c, y0: 0, count: h, p) }
        try wr.finish()
    }

    /// Issue 9: `--darkfield FILE` was read, hashed and logged, then dropped. A fixed, non-uniform dark pattern
    /// (a per-pixel offset, as a camera's dark frame) added to a known image must be removed pixel by pixel,
    /// channel c by the file's plane c, before the flat-field: corrected = (raw - dark) / flat.
    func testDarkFieldFileIsSubtractedPerPixel() throws {
        let w = 96, h = 80
        func plane(_ f: (Int, Int) -> Float) -> [Float] { (0..<(w * h)).map { f($0 % w, $0 / w) } }
        let signal = [plane { x, y in (20..<40).contains(x) && (10..<30).contains(y) ? 2000 : 500 },
                      plane { x, y in (50..<70).contains(x) && (40..<60).contains(y) ? 1500 : 300 }]
        // Not smooth, not constant: 100...400 per pixel, a different pattern per channel.
        let dark = [plane { x, y in 100 + Float((x * 7 + y * 13) % 11) * 30 }, plane { x, y in 150 + Float((x * 5 + y * 3) % 7) * 40 }]
        let darkFile = tmp + "/dark.tif"
        try reference(darkFile, dark, w: w, h: h)
        let raw = (0..<2).map { c in zip(signal[c], dark[c]).map { $0 + $1 } }
        let j = try job(raw, names: ["CD3", "CD8"], w: w, h: h, name: "dark")
        func residual(_ out: [[Float]]) -> Float { (0..<2).map { c in zip(out[c], signal[c]).map { abs($0 - $1) }.max()! }.max()! }
        let base = ["-q", "--rolling-ball", "off", "--hot-pixels", "off", "--blanks", "false"]

        var r = try exec("epipe-denoise", base + ["--darkfield", darkFile, j])
        XCTAssertEqual(r.code, 0, r.err)
        let withFile = try output(j).1
        let fileResidual = residual(withFile)
        print("dark-field file: max |out - truth| = \(fileResidual) (raw: \(residual(raw)))")
        XCTAssertLessThanOrEqual(fileResidual, 0.5, "the per-pixel dark pattern is removed")
        XCTAssertTrue(try manifest(j, "denoise").inputs.contains { $0.path.hasSuffix("/dark.tif") })

        // A constant dark-field (the pattern's mean) is a different correction and leaves the pattern in.
        let mean = dark[0].reduce(0, +) / Float(w * h)
        r = try exec("epipe-denoise", base + ["--darkfield", "\(Int(mean))", j])
        XCTAssertEqual(r.code, 0, r.err)
        let withConstant = try output(j).1
        XCTAssertNotEqual(withConstant, withFile)
        XCTAssertGreaterThan(residual(withConstant), 100)

        // With a flat-field file: raw = truth * flat + dark, and (raw - dark) / flat gives the truth back.
        let flat = plane { x, _ in x < w / 2 ? 800 : 1200 }   // mean 1000: the model is 0.8 | 1.2
        let flatFile = tmp + "/flat.tif"
        try reference(flatFile, [flat], w: w, h: h)
        let raw2: [[Float]] = (0..<2).map { c -> [Float] in
            (0..<(w * h)).map { (i: Int) -> Float in let lit: Float = signal[c][i] * flat[i] / 1000; return lit + dark[c][i] }
        }
        let j2 = try job(raw2, names: ["CD3", "CD8"], w: w, h: h, name: "darkflat")
        r = try exec("epipe-denoise", base + ["--darkfield", darkFile, "--flatfield", flatFile, "--band", "16", j2])
        XCTAssertEqual(r.code, 0, r.err)
        let both = try output(j2).1
        print("dark-field + flat-field files: max |out - truth| = \(residual(both)) (raw: \(residual(raw2)))")
        XCTAssertLessThanOrEqual(residual(both), 1)

        // A dark-field of the wrong size: one line, exit 2.
        let small = tmp + "/small.tif"
        try reference(small, [[Float](repeating: 1, count: 16 * 16)], w: 16, h: 16)
        r = try exec("epipe-denoise", ["-q", "--darkfield", small, j])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(r.errLines.count, 1, r.err)
        XCTAssertTrue(r.err.contains("dark-field is 16x16"), r.err)
        r = try exec("epipe-denoise", ["-q", "--darkfield", tmp + "/missing.tif", j])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(r.errLines.count, 1, r.err)
    }

    /// Issue 9: every flag must do something. On one small image with hot pixels, vignetting, spots and a
    /// blank channel, each flag changed from the default run must change the pixels (or, for --band, only
    /// the manifest: results do not depend on the band size). A flag parsed and then dropped fails here.
    func testEveryFlagChangesTheOutput() throws {
        let w = 64, h = 64
        var g = SystemRandomNumberGenerator()
        func plane(_ f: (Int, Int) -> Float) -> [Float] { (0..<(w * h)).map { f($0 % w, $0 / w) } }
        func tissue(_ level: Float, hot: [(Int, Int)]) -> [Float] {
            var p = plane { x, y in
                let dx = Float(x - w / 2) / Float(w), dy = Float(y - h / 2) / Float(h)
                let spot: Float = (x / 8 + y / 8) % 3 == 0 && x % 8 > 1 && x % 8 < 6 && y % 8 > 1 && y % 8 < 6 ? 3000 : 0
                return ((level + spot) * (1 - 0.8 * (dx * dx + dy * dy))).rounded()
            }
            for i in p.indices { p[i] += Float(Int.random(in: 0...40, using: &g)) }
            for (x, y) in hot { p[y * w + x] = 60000 }
            return p
        }
        let j = try job([tissue(800, hot: [(3, 4), (40, 33)]), tissue(600, hot: [(60, 10), (20, 50)]), tissue(200, hot: [])], names: ["DAPI", "CD3", "Blank1"], w: w, h: h, name: "flags")
        let dark = tmp + "/dark.tif"
        try reference(dark, [plane { x, y in Float((x * 7 + y * 13) % 11) * 20 }], w: w, h: h)
        func run(_ args: [String]) throws -> (PixelType, [[Float]], StageManifest) {
            let r = try exec("epipe-denoise", ["-q", "--force"] + args + [j])
            XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
            let (rd, planes) = try output(j)
            return (rd.info.pixelType, planes, try manifest(j, "denoise"))
        }
        let base = try run([])
        let cases: [[String]] = [
            ["--hot-pixels", "off"], ["--hot-pixels", "100"], ["--median", "true"], ["--rolling-ball", "5"], ["--rolling-ball", "off"],
            ["--light-background"], ["--tophat", "5"], ["--blanks", "false"], ["--blank-pattern", "^none$"],
            ["--flatfield", "auto"], ["--darkfield", "50"], ["--darkfield", dark], ["--gaussian", "1"], ["--channels", "DAPI"],
            ["--float"],
            ["--channel-param", "CD3:hot-pixels=off"], ["--channel-param", "CD3:median=true"], ["--channel-param", "CD3:rolling-ball=off"],
            ["--channel-param", "CD3:light-background=true"], ["--channel-param", "CD3:rolling-ball=off", "--channel-param", "CD3:tophat=5"],
            ["--channel-param", "CD3:gaussian=1"], ["--channel-param", "CD3:flatfield=auto"], ["--channel-param", "CD3:blanks=false"],
        ]
        var seen: [[[Float]]] = [base.1]
        for args in cases {
            let (t, planes, _) = try run(args)
            XCTAssertTrue(t != base.0 || planes != base.1, "\(args) did not change the output")
            if args.first == "--darkfield" || args == ["--blanks", "false"] { XCTAssertFalse(seen.contains(planes), "\(args) same as another case") }
            seen.append(planes)
        }
        let (_, banded, m) = try run(["--band", "16"])
        XCTAssertEqual(banded, base.1, "the band size does not change the pixels")
        XCTAssertEqual(m.metrics["band_rows"]?.intValue, 16)
        XCTAssertNotEqual(base.2.metrics["band_rows"]?.intValue, 16)
        // A per-channel key the recipe does not know is refused, not ignored.
        let r = try exec("epipe-denoise", ["-q", "--force", "--channel-param", "CD3:rolling_ball=off", j])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(r.errLines.count, 1, r.err)
        XCTAssertTrue(r.err.contains("rolling_ball"), r.err)
    }

    func testBadRecipeIsRefused() throws {
        let j = try job([[Float](repeating: 1, count: 256)], names: ["A"], w: 16, h: 16, name: "bad")
        let r = try exec("epipe-denoise", ["--rolling-ball", "20", "--tophat", "10", j])
        XCTAssertEqual(r.code, 2)
        XCTAssertEqual(r.errLines.count, 1, r.err)
        XCTAssertTrue(r.err.contains("choose one background method"), r.err)
        let g = try exec("epipe-denoise", ["--gaussian", "-1", j])
        XCTAssertEqual(g.code, 2)
    }
}
