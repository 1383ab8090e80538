import XCTest
import Foundation
import EpipeCore

/// epipe-status on real roots: --requeue-stale with a killed worker and a stopped one, --state,
/// --sort, --fail-on, --watch, --prometheus, the detail view's retry command, verify's orphans.
final class StatusFlagTests: E2ECase {
    func start(_ exe: String, _ args: [String], stderr: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path(exe))
        p.arguments = args
        FileManager.default.createFile(atPath: stderr, contents: nil)
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle(forWritingAtPath: stderr)
        try p.run()
        return p
    }
    func claims(_ root: String, _ stage: String) -> [String] { Files.list(root + "/queue/" + stage + "/cur").filter { !$0.hasPrefix(".") } }
    func waitFor(_ what: String, timeout: Double = 60, _ cond: () -> Bool) throws {
        let t0 = Date()
        while !cond() {
            if Date().timeIntervalSince(t0) > timeout { XCTFail("timed out waiting for \(what)"); throw XCTSkip("no \(what)") }
            usleep(5_000)
        }
    }
    func json(_ r: RunResult) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as! [String: Any] }

    /// A worker killed (kill -9) leaves a claim whose process is gone: stale at once. One stopped
    /// (SIGSTOP, as a hung worker) stops beating: stale after --stale-after. --fail-on stale alerts,
    /// --requeue-stale gives each back; the stopped worker, resumed, finds its claim gone and stops
    /// (exit 75) without finishing; a new worker runs both jobs.
    func testRequeueStaleKilledAndStoppedWorkers() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 2, size: 1536, channels: 4)
        let jobs = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines
        XCTAssertEqual(jobs.count, 2)
        let w1 = try start("epipe-denoise", ["--root", root, "--drain", "--stale-after", "2"], stderr: tmp + "/w1.err")
        try waitFor("the first claim") { claims(root, "denoise").count == 1 }
        kill(w1.processIdentifier, SIGKILL); w1.waitUntilExit()
        let killed = try exec("epipe-status", ["--root", root, "--json", "--fail-on", "stale"])
        XCTAssertEqual(killed.code, 1)
        XCTAssertEqual((try json(killed)["queues"] as! [[String: Any]])[0]["stale"] as? Int, 1)
        XCTAssertEqual((try json(killed)["jobs"] as! [[String: Any]]).map { $0["state"] as! String }.sorted(), ["queued", "stale"])
        let rq1 = try exec("epipe-status", ["--root", root, "--requeue-stale"])
        XCTAssertEqual(rq1.errLines.filter { $0.contains("requeued to queue/denoise/new (its worker") && $0.contains("is gone") }.count, 1, rq1.err)
        XCTAssertEqual(claims(root, "denoise"), [])
        XCTAssertEqual(Files.list(root + "/queue/denoise/new").count, 2)

        let w2 = try start("epipe-denoise", ["--root", root, "--drain", "--stale-after", "2"], stderr: tmp + "/w2.err")
        try waitFor("the second worker's claim") { claims(root, "denoise").count == 1 }
        kill(w2.processIdentifier, SIGSTOP)
        defer { kill(w2.processIdentifier, SIGCONT); if w2.isRunning { w2.terminate() } }
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--fail-on", "stale"]).code, 0, "600 s by default: not stale yet")
        try waitFor("silence past --stale-after") {
            claims(root, "denoise").allSatisfy { Date().timeIntervalSince(Files.mtime(root + "/queue/denoise/cur/" + $0) ?? Date()) > 2.5 }
        }
        let st = try exec("epipe-status", ["--root", root, "--stale-after", "2", "--json", "--fail-on", "stale"])
        XCTAssertEqual(st.code, 1, st.err)
        XCTAssertTrue(st.err.contains("1 job matched --fail-on stale"), st.err)
        let o = try json(st)
        XCTAssertEqual((o["queues"] as! [[String: Any]])[0]["stale"] as? Int, 1)
        XCTAssertEqual((o["jobs"] as! [[String: Any]]).map { $0["state"] as! String }.sorted(), ["queued", "stale"])

        let rq = try exec("epipe-status", ["--root", root, "--stale-after", "2", "--requeue-stale"])
        XCTAssertEqual(rq.code, 0, rq.err)
        XCTAssertEqual(rq.errLines.filter { $0.contains("requeued to queue/denoise/new (claimed by") && $0.contains("no heartbeat for") }.count, 1, rq.err)
        XCTAssertEqual(claims(root, "denoise"), [])
        XCTAssertEqual(Files.list(root + "/queue/denoise/new").count, 2)

        kill(w2.processIdentifier, SIGCONT)
        w2.waitUntilExit()
        XCTAssertEqual(w2.terminationStatus, 75)
        let w2err = try String(contentsOfFile: tmp + "/w2.err", encoding: .utf8)
        XCTAssertTrue(w2err.contains("was given back to the queue"), w2err)
        XCTAssertEqual(Files.list(root + "/queue/denoise/new").count, 2, "the stopped worker took nothing back")
        for j in jobs { XCTAssertNotEqual((try? manifest(j, "denoise"))?.status, .complete, "nothing finished by the old workers") }

        let d = try exec("epipe-denoise", ["-q", "--root", root, "--drain"])
        XCTAssertEqual(d.code, 0, d.err)
        for j in jobs { XCTAssertEqual(try manifest(j, "denoise").status, .complete) }
        let after = try json(try exec("epipe-status", ["--root", root, "--json", "--stale-after", "2"]))
        let q = (after["queues"] as! [[String: Any]])[0]
        XCTAssertEqual([q["new"], q["cur"], q["done"], q["stale"]].map { $0 as? Int }, [0, 0, 2, 0])
        XCTAssertEqual((after["queues"] as! [[String: Any]])[1]["new"] as? Int, 2, "forwarded to segment")
    }

    /// One complete job, one failed (its stored scan cut short), one queued.
    func mixedRoot() throws -> (root: String, done: String, failed: String, queued: String) {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 3, size: 128, channels: 3)
        let jobs = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines
        XCTAssertEqual(jobs.count, 3)
        let r = try sh("epipe-denoise -q \(jobs[0]) | epipe-segment -q | epipe-cluster -q | epipe-stats -q")
        XCTAssertEqual(r.code, 0, r.err)
        let spec = try JSONSerialization.jsonObject(with: Files.read(jobs[1] + "/job.json")) as! [String: Any]
        let raw = String(((spec["raw"] as! [String: Any])["uri"] as! String).dropFirst(7))
        XCTAssertEqual(truncate(raw, 2000), 0)
        XCTAssertNotEqual(try exec("epipe-denoise", ["-q", jobs[1]]).code, 0)
        return (root, jobs[0], jobs[1], jobs[2])
    }

    func testStateSortFailOnDetailAndPrometheus() throws {
        let (root, done, failed, queued) = try mixedRoot()
        let id = { (p: String) in (p as NSString).lastPathComponent }
        func ids(_ args: [String]) throws -> [String] {
            let r = try exec("epipe-status", ["--root", root, "--json"] + args)
            XCTAssertEqual(r.code, 0, r.err)
            return (try json(r)["jobs"] as! [[String: Any]]).map { $0["id"] as! String }
        }
        XCTAssertEqual(try ids(["--state", "failed"]), [id(failed)])
        XCTAssertEqual(try ids(["--state", "complete,queued", "--sort", "name"]).sorted(), [id(done), id(queued)].sorted())
        XCTAssertEqual(try ids(["--sort", "name"]), [id(done), id(failed), id(queued)].sorted { $0 < $1 })
        let table = try exec("epipe-status", ["--root", root, "--state", "failed"])
        XCTAssertTrue(table.out.contains("FAILURES\n  denoise  \(id(failed)): "), table.out)
        XCTAssertTrue(table.lines.contains("3 jobs: 1 failed, 1 queued, 1 complete (1 shown)"), table.out)
        XCTAssertFalse(table.out.contains(id(queued) + "  "), table.out)
        assertRefused(try exec("epipe-status", ["--root", root, "--state", "broken"]), "unknown state \"broken\"")
        assertRefused(try exec("epipe-status", ["--root", root, "--sort", "size"]), "--sort size")

        let alert = try exec("epipe-status", ["--root", root, "--fail-on", "failed,stale"])
        XCTAssertEqual(alert.code, 1)
        XCTAssertTrue(alert.err.contains("1 job matched --fail-on failed,stale: \(id(failed)) (failed)"), alert.err)
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--fail-on", "stale"]).code, 0)

        // the failed job's detail: its error, log lines and the command that retries it
        let d = try exec("epipe-status", ["--root", root, id(failed)])
        XCTAssertEqual(d.code, 0, d.err)
        XCTAssertTrue(d.out.contains("  retry: epipe-denoise \(failed) | epipe-segment | epipe-cluster | epipe-stats"), d.out)
        XCTAssertTrue(d.out.contains("           error: "), d.out)
        XCTAssertTrue(d.out.contains("           log: "), d.out)
        let dd = try exec("epipe-status", ["--root", root, id(done)])
        XCTAssertTrue(dd.out.contains("peak ") && dd.out.contains(" \(done)/segment/cells.csv"), dd.out)
        XCTAssertFalse(dd.out.contains("retry:"), dd.out)

        let prom = tmp + "/metrics/epipe.prom"
        assertRefused(try exec("epipe-status", ["--root", root, "--prometheus", prom]), "not a writable directory")
        try Files.mkdir(tmp + "/metrics")
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--prometheus", prom, "--state", "failed"]).code, 0)
        let text = try String(contentsOfFile: prom, encoding: .utf8)
        for line in ["epipe_jobs{state=\"failed\"} 1", "epipe_jobs{state=\"complete\"} 1", "epipe_jobs{state=\"queued\"} 1",
                     "epipe_stage_failed_jobs{stage=\"denoise\"} 1", "epipe_stage_duration_seconds_count{stage=\"stats\"} 1",
                     "epipe_ingest_runs_total 1", "# TYPE epipe_stage_duration_seconds summary"] {
            XCTAssertTrue(text.contains(line + "\n"), line + "\n" + text)
        }
        XCTAssertEqual(Files.list(tmp + "/metrics"), ["epipe.prom"], "written atomically: no temporary left")
    }

    func testWatchRedraws() throws {
        let (root, _, _, _) = try mixedRoot()
        func watch(_ args: [String], seconds: Double) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Bin.path("epipe-status"))
            p.arguments = ["--root", root] + args
            let out = Pipe(); p.standardOutput = out; p.standardError = FileHandle.nullDevice
            try p.run()
            usleep(useconds_t(seconds * 1e6))
            p.terminate(); p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        let plain = try watch(["--watch", "0.1"], seconds: 2)
        XCTAssertGreaterThanOrEqual(plain.components(separatedBy: "root \(root)").count - 1, 3, plain)
        XCTAssertFalse(plain.contains("\u{1B}[2J"), "no screen control when stdout is not a terminal")
        let js = try watch(["--watch", "0.1", "--json"], seconds: 2).split(separator: "\n")
        XCTAssertGreaterThanOrEqual(js.count, 3)
        for l in js { XCTAssertEqual((try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any])?["schema"] as? String, "epipe.status/1") }
        // --watch without its number: every 2 s, the first drawing at once; a job argument after it stays a job
        let one = try watch(["--watch", "--state", "failed"], seconds: 1.5)
        XCTAssertEqual(one.components(separatedBy: "root \(root)").count - 1, 1, one)
        assertRefused(try exec("epipe-status", ["--root", root, "--watch", "0"]), "--watch")
    }

    func testVerifyOrphansAndVerdicts() throws {
        let (root, done, _, _) = try mixedRoot()
        let ok = try exec("epipe-status", ["--root", root, "--verify", "--json", (done as NSString).lastPathComponent])
        XCTAssertEqual(ok.code, 0, ok.err)
        XCTAssertEqual((try json(ok)["jobs"] as! [[String: Any]])[0]["verdict"] as? String, "ok")
        try "left over".write(toFile: done + "/segment/qc/overlay-crop-9.png", atomically: true, encoding: .utf8)
        let doneID = (done as NSString).lastPathComponent
        let orphan = try exec("epipe-status", ["--root", root, "--verify", doneID])
        XCTAssertEqual(orphan.code, 0, "orphans alone are not damage")
        XCTAssertTrue(orphan.out.contains("  orphan: \(done)/segment/qc/overlay-crop-9.png (in no manifest)"), orphan.out)
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--verify", "--fail-on", "orphans", doneID]).code, 1)
        let table = try exec("epipe-status", ["--root", root, "--verify"])
        XCTAssertEqual(table.code, 1, "the failed job's stored scan was cut short: damaged")
        XCTAssertTrue(table.out.contains("    verify: orphans\n    orphan: \(done)/segment/qc/overlay-crop-9.png"), table.out)
        XCTAssertTrue(table.out.contains("raw scan sha256 differs from job.json"), table.out)
        try FileManager.default.removeItem(atPath: done + "/stats/frequencies.csv")
        let bad = try exec("epipe-status", ["--root", root, "--verify", "--json"])
        XCTAssertEqual(bad.code, 1)
        let j = (try json(bad)["jobs"] as! [[String: Any]]).first { $0["dir"] as? String == done }!
        XCTAssertEqual(j["verdict"] as? String, "damaged")
        XCTAssertEqual(j["verify"] as? [String], [done + "/stats/frequencies.csv: missing"])
        XCTAssertEqual(j["orphans"] as? [String], ["segment/qc/overlay-crop-9.png"])
    }

    func testReportFlag() throws {
        let (root, done, failed, _) = try mixedRoot()
        let id = (done as NSString).lastPathComponent
        // a job's page only
        let one = try exec("epipe-status", ["--root", root, "--report", id])
        XCTAssertEqual(one.code, 0, one.err)
        XCTAssertEqual(one.lines, [done + "/report.html"])
        XCTAssertFalse(Files.exists(root + "/report.html")); XCTAssertFalse(Files.exists(failed + "/report.html"))
        let page = try String(contentsOfFile: done + "/report.html", encoding: .utf8)
        XCTAssertTrue(page.contains("segment/qc/area-histogram.png"), "every QC picture linked")
        // the root's page and every job's: with no job, or with the root itself
        for args in [["--report"], ["--report", root]] {
            try? FileManager.default.removeItem(atPath: root + "/report.html")
            let all = try exec("epipe-status", ["--root", root] + args)
            XCTAssertEqual(all.code, 0, all.err)
            XCTAssertEqual(all.lines, [Files.canonical(root) + "/report.html"])
            XCTAssertTrue(Files.exists(failed + "/report.html"))
            let index = try String(contentsOfFile: root + "/report.html", encoding: .utf8)
            XCTAssertTrue(index.contains("jobs/\(id)/report.html"), "links to each job's page")
        }
        assertRefused(try exec("epipe-status", ["--root", root, "--report", "no-such-job"]), "no-such-job")
        // a report is not an orphan
        XCTAssertEqual(try exec("epipe-status", ["--root", root, "--verify", id]).code, 0)
    }
}
