import XCTest
import Foundation
import EpipeCore

/// Every flag of epipe-ingest and epipe-status changes the jobs registered, what is printed,
/// or the exit code. Small generated slides (96 x 96 x 2), so these tests take a few seconds.
final class IngestStatusFlagTests: E2ECase {
    func ingest(_ args: [String]) throws -> RunResult { try exec("epipe-ingest", args) }

    // MARK: epipe-ingest

    func testIngestRootFromAndPositional() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 96, channels: 2)
        let a = try ingest(["-q", "--root", tmp + "/a", "--settle", "0", scans])
        XCTAssertEqual(a.code, 0, a.err)
        XCTAssertEqual(a.lines.count, 1)
        XCTAssertTrue(a.lines[0].hasPrefix(Files.canonical(tmp + "/a") + "/jobs/"), a.out)
        // --from DIR does what a positional DIR does.
        let b = try ingest(["-q", "--root", tmp + "/b", "--settle", "0", "--from", scans])
        XCTAssertEqual(b.code, 0, b.err)
        XCTAssertEqual(b.lines.count, 1)
        XCTAssertTrue(b.lines[0].hasPrefix(Files.canonical(tmp + "/b") + "/jobs/"), b.out)
        XCTAssertEqual((a.lines[0] as NSString).lastPathComponent, (b.lines[0] as NSString).lastPathComponent)
        // Without --root: $EPIPE_ROOT.
        let c = try exec("epipe-ingest", ["-q", "--settle", "0", scans], env: ["EPIPE_ROOT": tmp + "/c"])
        XCTAssertTrue(c.lines.first?.hasPrefix(Files.canonical(tmp + "/c") + "/jobs/") ?? false, c.out + c.err)
    }

    func testIngestSettle() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 96, channels: 2)   // just written: mtime is now
        let young = try ingest(["--root", tmp + "/root", "--settle", "3600", scans])
        XCTAssertEqual(young.code, 0, young.err)
        XCTAssertEqual(young.out, "")
        XCTAssertTrue(young.err.contains("1 still settling"), young.err)
        XCTAssertTrue(try Root(tmp + "/root").allJobIDs().isEmpty)
        let settled = try ingest(["--root", tmp + "/root", "--settle", "0", scans])
        XCTAssertEqual(settled.lines.count, 1, settled.err)
    }

    func testIngestStagesNameParam() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 96, channels: 2)
        let r = try ingest(["-q", "--root", tmp + "/root", "--settle", "0", "--stages", "segment,cluster", "--name", "slide-A",
                            "--param", "segment.nuclear=DAPI", "--param", "cluster.k=3", "--param", "segment.split=false", scans])
        XCTAssertEqual(r.code, 0, r.err)
        let spec = try Job(dir: r.lines[0]).spec
        XCTAssertEqual(spec.stages, ["segment", "cluster"])
        XCTAssertEqual(spec.name, "slide-A")
        XCTAssertTrue(spec.id.contains("slide-A"), spec.id)
        XCTAssertEqual(spec.params["segment"]?["nuclear"], .string("DAPI"))
        XCTAssertEqual(spec.params["cluster"]?["k"], .number(3))
        XCTAssertEqual(spec.params["segment"]?["split"], .bool(false))
        let root = try Root(tmp + "/root")
        XCTAssertEqual(Queue(root: root, stage: "segment").counts().new, 1, "queued for the first stage listed")
        XCTAssertEqual(Queue(root: root, stage: "denoise").counts().new, 0)
        // Refused before anything is registered.
        let other = tmp + "/other"
        _ = try synth(other, size: 96, channels: 2, seed: 5)
        for (args, word) in [(["--stages", "segment,nosuch"], "nosuch"), (["--param", "cluster.k"], "cluster.k"),
                             (["--param", "nosuch.k=1"], "nosuch"), (["--name", "a/b"], "a/b")] {
            let bad = try ingest(["-q", "--root", tmp + "/root", "--settle", "0"] + args + [other])
            XCTAssertEqual(bad.code, 2, "\(args): \(bad.err)")
            XCTAssertEqual(bad.errLines.count, 1, bad.err)
            XCTAssertTrue(bad.err.contains(word), bad.err)
        }
        XCTAssertEqual(try Root(tmp + "/root").allJobIDs().count, 1)
    }

    func testIngestMaxPixels() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 96, channels: 2)
        let small = try ingest(["-q", "--root", tmp + "/root", "--settle", "0", "--max-pixels", "10000", scans])
        XCTAssertEqual(small.code, 2)
        XCTAssertEqual(small.out, "")
        XCTAssertEqual(small.errLines.count, 1, small.err)
        XCTAssertTrue(try Root(tmp + "/root").allJobIDs().isEmpty)
        let enough = try ingest(["-q", "--root", tmp + "/root", "--settle", "0", "--max-pixels", "\(96 * 96 * 2)", scans])
        XCTAssertEqual(enough.code, 0, enough.err)
        XCTAssertEqual(enough.lines.count, 1)
    }

    func testIngestJsonQuiet() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, count: 2, size: 96, channels: 2)
        let loud = try ingest(["--root", tmp + "/a", "--settle", "0", scans])
        XCTAssertTrue(loud.err.contains("2 new job(s)"), loud.err)
        let quiet = try ingest(["--quiet", "--root", tmp + "/b", "--settle", "0", scans])
        XCTAssertEqual(quiet.code, 0)
        XCTAssertEqual(quiet.err, "")
        XCTAssertEqual(quiet.lines.count, 2)
        let js = try ingest(["-q", "--json", "--root", tmp + "/c", "--settle", "0", "--stages", "segment,stats", scans])
        XCTAssertEqual(js.lines.count, 2)
        for l in js.lines {
            let ev = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            XCTAssertEqual(ev["stage"] as? String, "ingest")
            XCTAssertEqual(ev["next"] as? String, "segment")
            XCTAssertTrue(Files.exists((ev["job"] as! String) + "/job.json"))
        }
    }

    // MARK: epipe-status

    /// A root with one complete job (all four stages) and one queued job.
    func statusRoot() throws -> (root: String, done: String, queued: String) {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 2, size: 128, channels: 3)
        let jobs = try ingest(["-q", "--root", root, "--settle", "0", scans]).lines
        XCTAssertEqual(jobs.count, 2)
        let r = try sh("epipe-denoise -q \(jobs[0]) | epipe-segment -q | epipe-cluster -q | epipe-stats -q")
        XCTAssertEqual(r.code, 0, r.err)
        return (root, jobs[0], jobs[1])
    }

    func testStatusRootJsonJobs() throws {
        let (root, done, queued) = try statusRoot()
        let doneID = (done as NSString).lastPathComponent, queuedID = (queued as NSString).lastPathComponent
        // --root chooses the root; $EPIPE_ROOT is its default.
        let table = try exec("epipe-status", ["--root", root])
        XCTAssertEqual(table.code, 0, table.err)
        XCTAssertTrue(table.out.contains(doneID) && table.out.contains(queuedID), table.out)
        // (the queue lines carry the waiting entry's age, which moves between the two calls)
        func steady(_ r: RunResult) -> [String] { r.lines.filter { l in !Names.stages.contains { l.hasPrefix($0 + " ") } } }
        XCTAssertEqual(steady(try exec("epipe-status", [], env: ["EPIPE_ROOT": root])), steady(table))
        _ = try Root(tmp + "/empty")
        let empty = try exec("epipe-status", ["--root", tmp + "/empty"])
        XCTAssertTrue(empty.out.contains("no jobs yet"), empty.out)
        // --json: the same facts, machine-readable.
        let js = try exec("epipe-status", ["--root", root, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(js.out.utf8)) as! [String: Any]
        XCTAssertEqual(obj["schema"] as? String, "epipe.status/1")
        let states = Dictionary(uniqueKeysWithValues: (obj["jobs"] as! [[String: Any]]).map { ($0["id"] as! String, $0["state"] as! String) })
        XCTAssertEqual(states, [doneID: "complete", queuedID: "queued"])
        // Job arguments (a directory or an id): the detail view of those jobs only, with metrics and QC pictures.
        for arg in [done, doneID] {
            let d = try exec("epipe-status", ["--root", root, arg])
            XCTAssertEqual(d.code, 0, d.err)
            XCTAssertTrue(d.out.contains("cells:"), d.out)
            XCTAssertTrue(d.out.contains("qc: " + done + "/cluster/qc/cluster-heatmap.png"), d.out)
            XCTAssertFalse(d.out.contains(queuedID), d.out)
        }
        let dj = try exec("epipe-status", ["--root", root, "--json", doneID])
        let dobj = try JSONSerialization.jsonObject(with: Data(dj.out.utf8)) as! [String: Any]
        XCTAssertEqual((dobj["jobs"] as! [[String: Any]]).map { $0["id"] as! String }, [doneID])
        let nope = try exec("epipe-status", ["--root", root, "no-such-job"])
        XCTAssertEqual(nope.code, 2)
        XCTAssertTrue(nope.err.contains("no-such-job"), nope.err)
    }

    func testStatusVerify() throws {
        let (root, done, _) = try statusRoot()
        let plain = try exec("epipe-status", ["--root", root, "--json"])
        let p = try JSONSerialization.jsonObject(with: Data(plain.out.utf8)) as! [String: Any]
        XCTAssertNil((p["summary"] as! [String: Int])["mismatches"], "no hashing without --verify")
        let ok = try exec("epipe-status", ["--root", root, "--verify", done])
        XCTAssertEqual(ok.code, 0, ok.err)
        XCTAssertTrue(ok.out.contains("every output matches its manifest"), ok.out)
        try "tampered".write(toFile: done + "/cluster/markers.csv", atomically: true, encoding: .utf8)
        XCTAssertEqual(try exec("epipe-status", ["--root", root]).code, 0, "without --verify nothing is re-hashed")
        let bad = try exec("epipe-status", ["--root", root, "--verify", "--json"])
        XCTAssertEqual(bad.code, 1)
        let b = try JSONSerialization.jsonObject(with: Data(bad.out.utf8)) as! [String: Any]
        XCTAssertEqual((b["summary"] as! [String: Int])["mismatches"], 1)
        XCTAssertTrue(bad.out.contains("cluster/markers.csv"), bad.out)
    }

    func testStatusStaleAfter() throws {
        let (root, _, queued) = try statusRoot()
        // The queued job's denoise claim, its heartbeat last touched 120 s ago.
        let q = Queue(root: try Root(root), stage: "denoise")
        let id = (queued as NSString).lastPathComponent
        let claim = q.sub("cur") + "/" + id + "@gone-host.1"
        XCTAssertEqual(rename(q.sub("new") + "/" + id, claim), 0)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-120)], ofItemAtPath: claim)
        func stale(_ args: [String]) throws -> Int {
            let r = try exec("epipe-status", ["--root", root, "--json"] + args)
            let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any]
            return (obj["queues"] as! [[String: Any]]).first { $0["stage"] as? String == "denoise" }!["stale"] as! Int
        }
        XCTAssertEqual(try stale([]), 0, "600 s by default")
        XCTAssertEqual(try stale(["--stale-after", "60"]), 1)
        XCTAssertEqual(try stale(["--stale-after", "300"]), 0)
        let table = try exec("epipe-status", ["--root", root, "--stale-after", "60"])
        // new, running, done (the first job), failed, stale, done in the last hour and day, oldest waiting
        let line = table.lines.first { $0.hasPrefix("denoise ") } ?? ""
        XCTAssertEqual(line.split(separator: " ").map(String.init), ["denoise", "0", "1", "1", "0", "1", "1", "1", "-"], table.out)
    }
}
