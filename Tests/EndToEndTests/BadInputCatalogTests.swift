import XCTest
import Foundation
import EpipeCore

/// Issue 15, bad input: every image, table and job file of the catalogue below is either refused
/// (exit 2, one line on stderr naming the file and the problem, no other job touched, nothing
/// deleted) or, where it is odd but valid, processed to the end with a warning.
/// The images are Tests/Data/bad-input (written by its make.py with tifffile).
final class BadInputCatalogTests: E2ECase {
    let data = Bin.packageRoot + "/Tests/Data/bad-input"

    /// sha256 of every file under `dir` but logs and ingest's run reports.
    func snapshot(_ dir: String) throws -> [String: String] {
        var s: [String: String] = [:]
        guard let e = FileManager.default.enumerator(atPath: dir) else { return s }
        while let rel = e.nextObject() as? String {
            let p = dir + "/" + rel
            if !Files.isDirectory(p), !rel.hasSuffix(".log"), !rel.hasPrefix("ingest/runs/") { s[rel] = try Digest.sha256(file: p).hex }
        }
        return s
    }

    /// A root holding one good job, and a scan folder holding `file` (and `extra` files beside it).
    func ingestOne(_ file: String, root: String, extra: [String: String] = [:]) throws -> (RunResult, String) {
        let dir = tmp + "/scan-" + file
        try Files.mkdir(dir)
        try FileManager.default.copyItem(atPath: data + "/" + file, toPath: dir + "/" + file)
        for (name, from) in extra { try FileManager.default.copyItem(atPath: data + "/" + from, toPath: dir + "/" + name) }
        return (try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", dir]), dir + "/" + file)
    }

    func testBadImagesAreRefusedAtIngestWithOneLine() throws {
        let root = tmp + "/root"
        let (good, _) = try ingestOne("striped.tif", root: root)
        XCTAssertEqual(good.code, 0, good.err)
        let before = try snapshot(root)
        let cases: [(file: String, word: String, extra: [String: String])] = [
            ("striped-header-cut.tif", "truncated", [:]), ("tiled-header-cut.tif", "truncated", [:]),
            ("striped-data-cut.tif", "truncated TIFF: image directory 1", [:]), ("tiled-data-cut.tif", "truncated", [:]),
            ("tile-width-0.tif", "tiles", [:]),
            ("bilevel.tif", "1 bits per sample", [:]), ("float16.tif", "16 bits per sample, sample format 3", [:]),
            ("uint64.tif", "64 bits per sample, sample format 1", [:]), ("complex.tif", "sample format 6", [:]),
            ("rgb.tif", "RGB colour", [:]), ("palette.tif", "palette-colour", [:]),
            ("tiled.tif", "lists 3 markers but the image has 2 channels", ["markers.csv": "three-markers.csv"]),
        ]
        for c in cases {
            let (r, src) = try ingestOne(c.file, root: root, extra: c.extra)
            XCTAssertEqual(r.code, 2, "\(c.file): \(r.err)")
            XCTAssertEqual(r.out, "", c.file)
            XCTAssertEqual(r.errLines.count, 1, "\(c.file): one line: \(r.err)")
            XCTAssertTrue(r.err.contains(src), "\(c.file): names the file: \(r.err)")
            XCTAssertTrue(r.err.contains(c.word), "\(c.file): \(c.word): \(r.err)")
            XCTAssertTrue(Files.exists(src), "\(c.file): the source is not deleted")
            // a markers.csv beside a scan also travels on its own (store/files/, with its ledger entry), as any non-scan file
            func scans(_ s: [String: String]) -> [String: String] { s.filter { !$0.key.hasPrefix("store/files/") && !$0.key.hasPrefix("ledger/") } }
            XCTAssertEqual(scans(try snapshot(root)), scans(before), "\(c.file): no job registered, nothing else touched")
        }
    }

    func testNaNInAFloatImageIsRefusedByTheFirstStageThatReadsPixels() throws {
        let root = tmp + "/root"
        let (a, _) = try ingestOne("nan.tif", root: root), (b, _) = try ingestOne("striped.tif", root: root)
        XCTAssertEqual(a.code, 0, a.err); XCTAssertEqual(b.code, 0, b.err)
        let nan = a.lines[0], good = b.lines[0]
        let alone = try exec("epipe-denoise", ["-q", nan])
        XCTAssertEqual(alone.code, 2, alone.err)
        XCTAssertEqual(alone.errLines.count, 1, alone.err)
        XCTAssertTrue(alone.err.contains("nan-") && alone.err.contains(".tif") && alone.err.contains("NaN pixel value at x 5, y 5"), alone.err)
        let r = try exec("epipe-denoise", ["-q", "--force", nan, good])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(r.errLines.filter { $0.contains("error") }.count, 1, r.err)
        XCTAssertEqual(r.lines, [good], "the good job beside it completes")
        XCTAssertEqual(try manifest(nan, "denoise").status, .failed)
        XCTAssertEqual(try manifest(good, "denoise").status, .complete)
        XCTAssertFalse(Files.exists(nan + "/denoise/image.ome.tif"), "nothing half-written")
    }

    /// Odd but valid: no nuclei, a 1 x 1 image, a 100,000 x 8 strip, float64, tiled and striped
    /// copies of one image. Each runs through; no nuclei gives 0 cells and a warning at every stage.
    func testOddButValidImagesRunThrough() throws {
        let root = tmp + "/root"
        var jobs: [String: String] = [:]
        for f in ["blank.tif", "one-pixel.tif", "strip-100k-x-8.tif", "float64.tif", "tiled.tif", "striped.tif"] {
            let (r, _) = try ingestOne(f, root: root)
            XCTAssertEqual(r.code, 0, "\(f): \(r.err)")
            jobs[f] = r.lines.first
        }
        for f in ["blank.tif", "one-pixel.tif"] {
            let job = try XCTUnwrap(jobs[f])
            for (stage, word) in [("denoise", ""), ("segment", "no cells found"), ("cluster", "no cells"), ("stats", "no cells")] {
                let r = try exec("epipe-" + stage, ["-q", job])
                XCTAssertEqual(r.code, 0, "\(f) \(stage): \(r.err)")
                if !word.isEmpty { XCTAssertTrue(r.err.contains("warning") && r.err.contains(word), "\(f) \(stage): \(r.err)") }
                let m = try manifest(job, stage)
                XCTAssertEqual(m.status, .complete, "\(f) \(stage)")
                if stage != "denoise" {
                    XCTAssertEqual(m.metrics["cells"]?.intValue, 0, "\(f) \(stage)")
                    XCTAssertFalse(m.metrics["warnings"]?.arrayValue?.isEmpty ?? true, "\(f) \(stage): a warning in the manifest")
                }
            }
            let header = try String(contentsOfFile: job + "/cluster/cells.csv", encoding: .utf8)
            XCTAssertTrue(header.hasPrefix("CellID,") && header.hasSuffix(",cluster,phenotype\n") && header.split(separator: "\n").count == 1, header)
            try assertComplete(job)
        }
        // the strip: 198 marks of 4 x 1 px in channel 0, each a nucleus
        let strip = try XCTUnwrap(jobs["strip-100k-x-8.tif"])
        for stage in ["denoise", "segment"] { XCTAssertEqual(try exec("epipe-" + stage, ["-q", strip]).code, 0, stage) }
        XCTAssertEqual(try manifest(strip, "segment").metrics["cells"]?.intValue, 198)
        // float64 is read (as float32)
        let f64 = try XCTUnwrap(jobs["float64.tif"])
        for stage in ["denoise", "segment"] { XCTAssertEqual(try exec("epipe-" + stage, ["-q", f64]).code, 0, stage) }
        // tiled and striped copies of one image: the same masks and table
        let t = try XCTUnwrap(jobs["tiled.tif"]), s = try XCTUnwrap(jobs["striped.tif"])
        for job in [t, s] { for stage in ["denoise", "segment"] { XCTAssertEqual(try exec("epipe-" + stage, ["-q", job]).code, 0, stage) } }
        XCTAssertEqual(try manifest(t, "segment").metrics["cells"]?.intValue, 4)
        for f in ["segment/nuclei.tif", "segment/cells.tif", "segment/cells.csv"] {
            XCTAssertEqual(try Digest.sha256(file: t + "/" + f).hex, try Digest.sha256(file: s + "/" + f).hex, f)
        }
    }

    /// Cell tables (epipe-ingest --cells): broken ones refused with their line; the dialects a
    /// spreadsheet writes (BOM, CRLF, quoted fields with commas) read as the plain file.
    func testCellTables() throws {
        let r0 = try exec("epipe-synth", ["--cells", "300", "--markers", "5", "--types", "3", "--seed", "1", "--out", tmp + "/t", "--truth", tmp + "/tr", "--name", "cells", "--quiet"])
        XCTAssertEqual(r0.code, 0, r0.err)
        let text = try String(contentsOfFile: tmp + "/t/cells.csv", encoding: .utf8)
        var lines = text.split(separator: "\n").map(String.init)
        let header = lines.removeFirst()
        XCTAssertEqual(header, "CellID,CD45,CD3,CD4,CD8,FOXP3,X_centroid,Y_centroid,Area")
        func fields(_ l: String) -> [String] { l.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        func edit(_ row: Int, _ col: Int, _ v: String) -> [String] {
            var b = lines; var f = fields(b[row]); f[col] = v; b[row] = f.joined(separator: ","); return b
        }
        func write(_ name: String, _ content: String) throws -> String {
            let p = tmp + "/" + name; try content.write(toFile: p, atomically: true, encoding: .utf8); return p
        }
        let root = tmp + "/root"
        let plain = try exec("epipe-ingest", ["--root", root, "--quiet", "--cells", tmp + "/t/cells.csv"])
        XCTAssertEqual(plain.code, 0, plain.err)
        let plainJob = plain.lines[0]
        let before = try snapshot(root)
        var ragged = lines; ragged[10] = fields(ragged[10]).prefix(7).joined(separator: ",")
        var dup = lines; var d = fields(dup[41]); d[0] = fields(dup[5])[0]; dup[41] = d.joined(separator: ",")
        let bad: [(String, String, String)] = [
            ("missing-xy.csv", "no coordinate columns", ([header] + lines).map { fields($0).enumerated().filter { $0.offset != 6 && $0.offset != 7 }.map { $0.element }.joined(separator: ",") }.joined(separator: "\n") + "\n"),
            ("ragged.csv", "line 12 has 7 fields, the header has 9", ([header] + ragged).joined(separator: "\n") + "\n"),
            ("non-numeric.csv", "line 32 (CellID 31): column CD4 is \"abc\", not a number", ([header] + edit(30, 3, "abc")).joined(separator: "\n") + "\n"),
            ("empty-x.csv", "coordinate X_centroid is \"\"", ([header] + edit(40, 6, "")).joined(separator: "\n") + "\n"),
            ("nan-y.csv", "coordinate Y_centroid is \"NaN\"", ([header] + edit(40, 7, "NaN")).joined(separator: "\n") + "\n"),
            ("dup-id.csv", "duplicate id CellID 6 on lines 7 and 43", ([header] + dup).joined(separator: "\n") + "\n"),
            ("header-only.csv", "no cells", header + "\n"),
        ]
        for (name, word, content) in bad {
            let p = try write(name, content)
            let r = try exec("epipe-ingest", ["--root", root, "--quiet", "--cells", p])
            XCTAssertEqual(r.code, 2, "\(name): \(r.err)")
            XCTAssertEqual(r.errLines.count, 1, "\(name): \(r.err)")
            XCTAssertTrue(r.err.contains(p) && r.err.contains(word), "\(name): \(word): \(r.err)")
            XCTAssertEqual(try snapshot(root), before, name)
            XCTAssertTrue(Files.exists(p), name)
        }
        // NaN in a marker: taken in (a table may mark a missing value so); cluster refuses it by name
        let nan = try exec("epipe-ingest", ["--root", root, "--quiet", "--name", "nan", "--cells", try write("nan.csv", ([header] + edit(20, 2, "NaN")).joined(separator: "\n") + "\n")])
        XCTAssertEqual(nan.code, 0, nan.err)
        let c = try exec("epipe-cluster", ["-q", nan.lines[0], plainJob])
        XCTAssertEqual(c.code, 2, c.err)
        XCTAssertEqual(c.errLines.count, 1, c.err)
        XCTAssertTrue(c.err.contains("segment/cells.csv") && c.err.contains("CD3") && c.err.contains("row 21"), c.err)
        XCTAssertEqual(c.lines, [plainJob], "the other job in the call completes")
        // dialects: the normalised table equals the plain file's
        let plainTable = try Digest.sha256(file: plainJob + "/segment/cells.csv").hex
        let crlf = ([header] + lines).joined(separator: "\r\n") + "\r\n"
        let quotedValues = ([header] + lines.map { fields($0).enumerated().map { $0.offset == 1 ? "\"\($0.element)\"" : $0.element }.joined(separator: ",") }).joined(separator: "\n") + "\n"
        for (name, content) in [("bom.csv", "\u{FEFF}" + text), ("crlf.csv", crlf), ("quoted-values.csv", quotedValues)] {
            let r = try exec("epipe-ingest", ["--root", tmp + "/root-" + name, "--quiet", "--cells", try write(name, content)])
            XCTAssertEqual(r.code, 0, "\(name): \(r.err)")
            XCTAssertEqual(try Digest.sha256(file: r.lines[0] + "/segment/cells.csv").hex, plainTable, name)
        }
        // a quoted marker name with a comma in it stays one column through cluster
        let q = try exec("epipe-ingest", ["--root", tmp + "/root-q", "--quiet", "--cells",
                                          try write("quoted-name.csv", header.replacingOccurrences(of: "CD45", with: "\"CD45, total\"") + "\n" + lines.joined(separator: "\n") + "\n")])
        XCTAssertEqual(q.code, 0, q.err)
        XCTAssertEqual(try exec("epipe-cluster", ["-q", q.lines[0]]).code, 0)
        XCTAssertTrue(try String(contentsOfFile: q.lines[0] + "/cluster/cells.csv", encoding: .utf8).hasPrefix("CellID,\"CD45, total\",CD3,"))
        XCTAssertTrue(try manifest(q.lines[0], "cluster").metrics["markers"]?.arrayValue?.contains(.string("CD45, total")) ?? false)
    }

    /// job.json that is not JSON, or whose id holds '/', '..' or a control character: the stage
    /// refuses that job with one line naming its job.json and runs the other.
    func testBadJobFiles() throws {
        let root = tmp + "/root"
        _ = try synth(tmp + "/scans", count: 2, size: 128, channels: 2)
        let ing = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", tmp + "/scans"])
        XCTAssertEqual(ing.code, 0, ing.err)
        let (bad, good) = (ing.lines[0], ing.lines[1])
        let original = try String(contentsOfFile: bad + "/job.json", encoding: .utf8)
        let id = try Job(dir: bad).spec.id
        let cases: [(String, String)] = [
            ("{\"schema\": \"epipe.job/1\", \"id\": ", "not valid JSON"),
            (original.replacingOccurrences(of: "\"\(id)\"", with: "\"a/b\""), "path separator"),
            (original.replacingOccurrences(of: "\"\(id)\"", with: "\"..\""), "\"..\""),
            (original.replacingOccurrences(of: "\"\(id)\"", with: "\"a\\u0007b\""), "control character"),
        ]
        for (content, word) in cases {
            try content.write(toFile: bad + "/job.json", atomically: true, encoding: .utf8)
            let r = try exec("epipe-denoise", ["-q", "--force", bad, good])
            XCTAssertEqual(r.code, 2, "\(word): \(r.err)")
            XCTAssertEqual(r.errLines.count, 1, "\(word): \(r.err)")
            XCTAssertTrue(r.err.contains(bad + "/job.json") && r.err.contains(word), "\(word): \(r.err)")
            XCTAssertEqual(r.lines, [good], word)
            XCTAssertFalse(Files.exists(bad + "/denoise"), "\(word): nothing written for the bad job")
            XCTAssertEqual(try String(contentsOfFile: bad + "/job.json", encoding: .utf8), content, "\(word): job.json left as it was")
        }
    }
}
