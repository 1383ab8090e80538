import XCTest
import Foundation
import EpipeCore

final class PipelineTests: E2ECase {
    /// (1) by hand, stage by stage; (5) rerun is up to date, --force reruns.
    func testByHandStageByStage() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, size: 384, channels: 5)
        let ing = try exec("epipe-ingest", ["--root", root, "--settle", "0", scans])
        XCTAssertEqual(ing.code, 0, ing.err)
        XCTAssertEqual(ing.lines.count, 1)
        let job = ing.lines[0]
        XCTAssertTrue(Files.exists(job + "/job.json"))
        let spec = try Job(dir: job).spec
        XCTAssertEqual(spec.stages, ["denoise", "segment", "cluster", "stats"])
        XCTAssertEqual(Queue(root: try Root(root), stage: "denoise").counts().new, 1)

        for stage in ["denoise", "segment", "cluster", "stats"] {
            let r = try exec("epipe-\(stage)", [job])
            XCTAssertEqual(r.code, 0, "\(stage): \(r.err)")
            XCTAssertEqual(r.lines, [job], stage)
            let m = try manifest(job, stage)
            XCTAssertEqual(m.status, .complete)
            XCTAssertEqual(m.tool.name, "epipe-\(stage)")
            XCTAssertNotNil(m.peak_rss_bytes); XCTAssertNotNil(m.seconds)
            XCTAssertTrue(m.outputs.contains { $0.path.hasSuffix(".png") }, "\(stage) writes a QC picture")
            XCTAssertTrue(Files.exists(job + "/logs/\(stage).log"))
        }
        try assertComplete(job)
        // The per-cell table has MCQuant's columns.
        let cells = try CSVTable.read(job + "/segment/cells.csv")
        for c in ["CellID", "DAPI", "X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation", "DAPI_nucleus"] {
            XCTAssertNotNil(cells.column(c), c)
        }
        XCTAssertGreaterThan(cells.rows.count, 20)
        let freq = try CSVTable.read(job + "/stats/frequencies.csv")
        XCTAssertEqual(freq.doubles("proportion")!.reduce(0, +), 1, accuracy: 1e-3)
        XCTAssertEqual(freq.doubles("count")!.reduce(0, +), Double(cells.rows.count))
        // Status: complete, as JSON too; queues show the events travelled.
        let st = try exec("epipe-status", ["--root", root, "--json"])
        XCTAssertEqual(st.code, 0, st.err)
        let obj = try JSONSerialization.jsonObject(with: Data(st.out.utf8)) as! [String: Any]
        let jobs = obj["jobs"] as! [[String: Any]]
        XCTAssertEqual(jobs.first?["state"] as? String, "complete")
        let table = try exec("epipe-status", ["--root", root])
        XCTAssertTrue(table.out.contains("complete"), table.out)

        // (5) A rerun is up to date and changes nothing; --force reruns.
        let before = try manifest(job, "segment")
        let again = try exec("epipe-segment", [job])
        XCTAssertEqual(again.code, 0)
        XCTAssertTrue(again.err.contains("up to date"), again.err)
        XCTAssertEqual(try manifest(job, "segment").run, before.run)
        let forced = try exec("epipe-segment", ["--force", job])
        XCTAssertEqual(forced.code, 0, forced.err)
        XCTAssertNotEqual(try manifest(job, "segment").run, before.run)
        XCTAssertEqual(try manifest(job, "segment").outputs.first { $0.path == "segment/cells.csv" }?.sha256,
                       before.outputs.first { $0.path == "segment/cells.csv" }?.sha256, "deterministic")
        // A changed param makes the stage stale.
        let k = try exec("epipe-cluster", ["--k", "3", job])
        XCTAssertFalse(k.err.contains("up to date"))
        XCTAssertEqual(try manifest(job, "cluster").params["k"]?.intValue, 3)
        // --verify finds every output intact, then notices a changed one.
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--verify"]).code, 0)
        try "tampered".write(toFile: job + "/stats/frequencies.csv", atomically: true, encoding: .utf8)
        let v = try exec("epipe-status", ["--root", root, "--verify"])
        XCTAssertEqual(v.code, 1)
        XCTAssertTrue(v.out.contains("frequencies.csv"), v.out)
    }

    /// (2) epipe-ingest DIR | epipe-denoise | epipe-segment | epipe-cluster | epipe-stats
    func testShellPipeline() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 2, size: 320, channels: 4)
        let r = try sh("set -o pipefail; epipe-ingest --root \(root) --settle 0 --quiet \(scans) | epipe-denoise -q | epipe-segment -q | epipe-cluster -q | epipe-stats -q --json")
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.lines.count, 2)
        for l in r.lines {
            let ev = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            XCTAssertEqual(ev["stage"] as? String, "stats")
            XCTAssertEqual(ev["status"] as? String, "complete")
            try assertComplete(ev["job"] as! String)
        }
        // A second run ingests nothing new, so nothing flows.
        let r2 = try sh("set -o pipefail; epipe-ingest --root \(root) --settle 0 \(scans) | epipe-denoise | epipe-stats")
        XCTAssertEqual(r2.code, 0, r2.err)
        XCTAssertEqual(r2.out, "")
        XCTAssertTrue(r2.err.contains("0 new job(s), 2 unchanged"), r2.err)
    }

    /// (3) examples/Makefile with make -j2 over 4 samples; a second make does nothing.
    func testMakefileExample() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 4, size: 192, channels: 3)
        let mk = "make -f \(Bin.packageRoot)/examples/Makefile SCANS=\(scans) ROOT=\(root) BIN=\(Bin.dir)"
        let r = try sh(mk + " -j2")
        XCTAssertEqual(r.code, 0, r.out + r.err)
        let jobs = try Root(root).allJobIDs()
        XCTAssertEqual(jobs.count, 4)
        for j in jobs { try assertComplete(root + "/jobs/" + j) }
        let stamp = try jobs.map { try manifest(root + "/jobs/" + $0, "stats").run }
        let r2 = try sh(mk + " -j2")
        XCTAssertEqual(r2.code, 0, r2.err)
        XCTAssertFalse(r2.out.contains("epipe-denoise"), "second make runs no stage: \(r2.out)")
        XCTAssertTrue(r2.out.contains("Nothing to be done") || r2.out.isEmpty, r2.out)
        XCTAssertEqual(try jobs.map { try manifest(root + "/jobs/" + $0, "stats").run }, stamp)
    }

    /// (4) two --drain workers on one queue of 8 jobs: every job done exactly once, and forwarded.
    func testTwoDrainWorkersProcessEachJobOnce() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        // 200 px: every slide has cells (epipe-cluster refuses a table without any)
        _ = try synth(scans, count: 8, size: 200, channels: 3)
        let ing = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", scans])
        XCTAssertEqual(ing.code, 0, ing.err)
        XCTAssertEqual(ing.lines.count, 8)
        for stage in ["denoise", "segment", "cluster", "stats"] {
            let r = try sh("epipe-\(stage) --root \(root) --drain --json > \(tmp)/\(stage).a 2>\(tmp)/\(stage).ea & epipe-\(stage) --root \(root) --drain --json > \(tmp)/\(stage).b 2>\(tmp)/\(stage).eb & wait")
            XCTAssertEqual(r.code, 0)
            let a = try String(contentsOfFile: "\(tmp)/\(stage).a", encoding: .utf8).split(separator: "\n")
            let b = try String(contentsOfFile: "\(tmp)/\(stage).b", encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(a.count + b.count, 8, "\(stage): each job once across both workers")
            let q = Queue(root: try Root(root), stage: stage).counts()
            XCTAssertEqual([q.new, q.cur, q.done, q.failed], [0, 0, 8, 0], stage)
        }
        for id in try Root(root).allJobIDs() {
            let dir = root + "/jobs/" + id
            try assertComplete(dir)
            for s in Names.defaultStages {
                let log = try String(contentsOfFile: dir + "/logs/\(s).log", encoding: .utf8)
                XCTAssertEqual(log.components(separatedBy: ": started").count - 1, 1, "\(id) \(s) ran once")
            }
        }
        // Draining an empty queue is quick and fine.
        XCTAssertEqual(try exec("epipe-denoise", ["--root", root, "--drain"]).code, 0)
    }
}
