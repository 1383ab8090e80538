import XCTest
import Foundation
import EpipeCore
import EpipeImage

/// Issue 14, one slide across many workers: `--tiles N --tile I` then `--merge` gives what a single
/// worker gives, through the binaries.
final class TileSplitTests: E2ECase {
    /// One generated slide ingested into two roots: (single-run job, split job).
    func twoJobs(size: Int = 1536, channels: Int = 4, seed: Int = 5) throws -> (String, String) {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: size, channels: channels, seed: seed)
        let a = try exec("epipe-ingest", ["--root", tmp + "/single", "--settle", "0", "--quiet", scans])
        let b = try exec("epipe-ingest", ["--root", tmp + "/split", "--settle", "0", "--quiet", scans])
        XCTAssertEqual(a.code, 0, a.err); XCTAssertEqual(b.code, 0, b.err)
        return (a.lines[0], b.lines[0])
    }

    func sha(_ path: String) throws -> String { try Digest.sha256(file: path).hex }

    /// Runs the parts `parts` of `tool` at once (as array tasks would), each exit 0.
    func runParts(_ tool: String, _ flags: [String], n: Int, parts: [Int], job: String) {
        final class Results: @unchecked Sendable { let lock = NSLock(); var codes: [Int: Int32] = [:]; var errs: [String] = [] }
        let out = Results()
        DispatchQueue.concurrentPerform(iterations: parts.count) { k in
            let r = try? exec(tool, ["-q"] + flags + ["--tiles", "\(n)", "--tile", "\(parts[k])", job])
            out.lock.lock(); out.codes[k] = r?.code ?? -1; if let r, r.code != 0 { out.errs.append(r.err) }; out.lock.unlock()
        }
        for k in 0..<parts.count { XCTAssertEqual(out.codes[k], 0, "\(tool) part \(parts[k]): \(out.errs)") }
    }

    func testSplitEqualsSingleRunAndDownstreamRuns() throws {
        let (single, split) = try twoJobs()
        // single worker; small bands and tiles, so the slide has 6 of each
        for (tool, flags) in [("epipe-denoise", ["--band", "256"]), ("epipe-segment", ["--tile", "256"])] {
            let r = try exec(tool, ["-q"] + flags + [single])
            XCTAssertEqual(r.code, 0, r.err)
        }
        // three workers for denoise: part 0 first, status says 1/3 parts, then 1 and 2 at once
        runParts("epipe-denoise", ["--band", "256"], n: 3, parts: [0], job: split)
        var m = try manifest(split, "denoise")
        XCTAssertEqual(m.status, .running)
        XCTAssertEqual(m.progress, ProgressRef(done: 1, total: 3, unit: "parts"))
        let st = try exec("epipe-status", ["--root", tmp + "/split"])
        XCTAssertTrue(st.out.contains("running 1/3 parts"), st.out)
        let js = try exec("epipe-status", ["--root", tmp + "/split", "--json"])
        XCTAssertTrue(js.out.contains("\"parts_total\""), js.out)
        runParts("epipe-denoise", ["--band", "256"], n: 3, parts: [1, 2], job: split)
        XCTAssertEqual(try manifest(split, "denoise").progress, ProgressRef(done: 3, total: 3, unit: "parts"))
        let md = try exec("epipe-denoise", ["-q", "--band", "256", "--merge", split])
        XCTAssertEqual(md.code, 0, md.err)
        XCTAssertEqual(md.lines, [split])
        XCTAssertFalse(FileManager.default.fileExists(atPath: split + "/denoise/parts"), "the parts' strips go once the merge is complete")

        // three workers for segment
        runParts("epipe-segment", ["--tile-size", "256"], n: 3, parts: [0, 1, 2], job: split)
        let ms = try exec("epipe-segment", ["-q", "--tile", "256", "--merge", "--keep-parts", split])
        XCTAssertEqual(ms.code, 0, ms.err)
        for i in 0..<3 { XCTAssertEqual(try StageManifest.load(split + "/segment/parts/\(i)/manifest.json").status, .complete, "--keep-parts") }

        // the same bytes as the single run: image, both masks, the table
        for f in ["denoise/image.ome.tif", "segment/nuclei.tif", "segment/cells.tif", "segment/cells.csv"] {
            XCTAssertEqual(try sha(single + "/" + f), try sha(split + "/" + f), f)
        }
        for s in ["denoise", "segment"] {
            let a = try manifest(single, s), b = try manifest(split, s)
            XCTAssertEqual(b.status, .complete)
            XCTAssertEqual(a.params, b.params, s)
            XCTAssertEqual(a.metrics, b.metrics, s)
            XCTAssertEqual(a.outputs.map { $0.path }, b.outputs.map { $0.path }, s)
            XCTAssertEqual(a.outputs.map { $0.sha256 }, b.outputs.map { $0.sha256 }, "\(s): outputs and QC pictures")
        }
        // cells: same count, labels identical (so matched IoU 1.0 for every cell)
        m = try manifest(split, "segment")
        let cells = m.metrics["cells"]?.intValue ?? 0
        XCTAssertGreaterThan(cells, 1000)
        XCTAssertEqual(try manifest(single, "segment").metrics["cells"]?.intValue, cells)
        let la = try ImageReader(path: single + "/segment/cells.tif").readChannelUInt32(0)
        let lb = try ImageReader(path: split + "/segment/cells.tif").readChannelUInt32(0)
        XCTAssertEqual(la, lb)
        XCTAssertEqual(Set(lb).count - 1, cells, "ids 1...cells, unique over the slide")

        // downstream runs unchanged on the merged job
        for tool in ["epipe-cluster", "epipe-stats"] {
            let r = try exec(tool, ["-q", split])
            XCTAssertEqual(r.code, 0, "\(tool): \(r.err)")
        }
        XCTAssertEqual(try manifest(split, "stats").status, .complete)
        // a merged stage is up to date; so is a part of it
        XCTAssertTrue(try exec("epipe-segment", ["--tile", "256", "--merge", split]).err.contains("up to date"))
        XCTAssertTrue(try exec("epipe-denoise", ["--band", "256", "--tiles", "3", "--tile", "1", split]).err.contains("up to date"))
    }

    func testMergeRefusesUntilEveryPartIsCompleteAndAFailedPartRerunsAlone() throws {
        let (_, job) = try twoJobs(size: 768, channels: 3)
        let flags = ["--band", "128"]
        runParts("epipe-denoise", flags, n: 3, parts: [0, 2], job: job)
        // part 1 missing: refused, one line naming it and the command that runs it
        var r = try exec("epipe-denoise", ["--merge"] + flags + [job])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(r.errLines.count, 1, r.err)
        XCTAssertTrue(r.err.contains("part 1 of 3 missing") && r.err.contains("epipe-denoise --tiles 3 --tile 1 \(job)"), r.err)
        XCTAssertEqual(try manifest(job, "denoise").status, .running, "a refused merge leaves the stage manifest as it was")

        // part 1 fails (its output path is taken by a folder): the stage says failed, the merge still refuses
        try Files.mkdir(job + "/denoise/parts/1/image.tif/blocked")
        r = try exec("epipe-denoise", ["-q", "--tiles", "3", "--tile", "1"] + flags + [job])
        XCTAssertEqual(r.code, 1, r.err)
        let failed = try manifest(job, "denoise")
        XCTAssertEqual(failed.status, .failed)
        XCTAssertTrue(failed.error?.contains("--tiles 3 --tile 1") ?? false, failed.error ?? "")
        XCTAssertEqual(try StageManifest.load(job + "/denoise/parts/1/manifest.json").status, .failed)
        r = try exec("epipe-denoise", ["--merge"] + flags + [job])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("part 1 failed"), r.err)
        let st = try exec("epipe-status", ["--root", tmp + "/split"])
        XCTAssertTrue(st.out.contains("failed"), st.out)

        // rerun part 1 alone: the others untouched; a complete part says it is up to date
        try FileManager.default.removeItem(atPath: job + "/denoise/parts/1/image.tif")
        let before = try [0, 2].map { try Files.read(job + "/denoise/parts/\($0)/manifest.json") }
        r = try exec("epipe-denoise", ["-q", "--tiles", "3", "--tile", "1"] + flags + [job])
        XCTAssertEqual(r.code, 0, r.err)
        r = try exec("epipe-denoise", ["--tiles", "3", "--tile", "0"] + flags + [job])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("part 0/3 up to date"), r.err)
        XCTAssertEqual(try [0, 2].map { try Files.read(job + "/denoise/parts/\($0)/manifest.json") }, before)
        XCTAssertEqual(try manifest(job, "denoise").progress, ProgressRef(done: 3, total: 3, unit: "parts"))
        r = try exec("epipe-denoise", ["-q", "--merge"] + flags + [job])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try manifest(job, "denoise").status, .complete)
    }

    func testBadTileValuesAreRefusedWithOneLine() throws {
        let j = tmp + "/no-job"
        assertRefused(try exec("epipe-denoise", ["--tiles", "3", "--tile", "3", j]), "out of range")
        assertRefused(try exec("epipe-denoise", ["--tiles", "3", "--tile=-1", j]), "out of range")
        assertRefused(try exec("epipe-denoise", ["--tiles", "0", "--tile", "0", j]), "at least 1")
        assertRefused(try exec("epipe-denoise", ["--tile", "1", j]), "--tile needs --tiles")
        assertRefused(try exec("epipe-denoise", ["--tiles", "2", j]), "needs --tile")
        assertRefused(try exec("epipe-denoise", ["--merge", "--tile", "1", j]), "--merge takes no")
        assertRefused(try exec("epipe-segment", ["--keep-parts", j]), "--keep-parts goes with --merge")
        assertRefused(try exec("epipe-denoise", ["--merge", "--tiles", "2", j]), "--merge takes no")
        assertRefused(try exec("epipe-segment", ["--tiles", "2", "--tile", "5", j]), "--tile-size")
        assertRefused(try exec("epipe-segment", ["--merge", "--tiles", "2", "--tile", "1", j]), "--merge takes no")
        // more parts than the slide has bands: refused, exit 2
        let (_, job) = try twoJobs(size: 320, channels: 2)
        let r = try exec("epipe-denoise", ["-q", "--band", "160", "--tiles", "3", "--tile", "0", job])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("use at most 2 parts"), r.err)
    }
}
