import XCTest
import Foundation
import EpipeCore
@testable import EpipeStage

/// StatusReport, its text, its Prometheus file and verify, on a root built to hold every case:
/// complete, running with progress, stale (claimed, no heartbeat), failed with an error, queued,
/// a skipped stage, a dead worker, an unreadable job.json.
final class StatusReportTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-status-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    let t0 = Date()
    func iso(_ ago: Double) -> String { Time.iso(t0.addingTimeInterval(-ago)) }

    func job(_ root: Root, _ id: String, raw: String, stages: [String] = Names.stages, created: Double) throws -> Job {
        try Job.create(root: root, spec: JobSpec(id: id, name: id, raw: RawRef(uri: "file://" + raw, sha256: try Digest.sha256(file: raw).hex, bytes: 4),
                                                 stages: stages, params: [:], created: iso(created)))
    }
    @discardableResult
    func manifest(_ job: Job, _ stage: String, _ status: StageManifest.Status, progress: ProgressRef? = nil, pid: Int32 = getpid(), host: String = Host.name,
                  outputs: [String] = [], metrics: [String: JSONValue] = [:], error: String? = nil, seconds: Double = 1.5, finished: Double? = 50) throws -> StageManifest {
        var m = StageManifest(stage: stage, status: status, run: "r", tool: ToolRef(name: "epipe-" + stage, version: "0"), params: [:], inputs: [],
                              metrics: metrics, progress: progress, started: iso(100), host: host, pid: pid)
        try Files.mkdir(job.stageDir(stage))
        for o in outputs {
            try Files.mkdir((job.dir + "/" + o as NSString).deletingLastPathComponent)
            try "x".write(toFile: job.dir + "/" + o, atomically: true, encoding: .utf8)
            m.outputs.append(FileRef(path: o, sha256: try Digest.sha256(file: job.dir + "/" + o).hex, bytes: 1))
        }
        if status != .running { m.seconds = seconds; m.finished = finished.map(iso); m.peak_rss_bytes = 300 << 20 }
        m.error = error
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath(stage))
        return m
    }
    func age(_ path: String, _ seconds: Double) throws {
        try FileManager.default.setAttributes([.modificationDate: t0.addingTimeInterval(-seconds)], ofItemAtPath: path)
    }

    struct Case { var root: Root; var raw: String; var jobs: [String: Job] }

    /// The root of every case. Created times make the newest-first order h, g(invalid: none), f, e, d, c, b, a.
    func everyCase() throws -> Case {
        let root = try Root(tmp + "/root")
        // in the root's store: verify reads a job's raw scan only there
        let raw = root.storeDir + "/raw.tif"; try "raw!".write(toFile: raw, atomically: true, encoding: .utf8)
        var jobs: [String: Job] = [:]
        for (i, id) in ["a-complete", "b-running", "c-stale", "d-failed", "e-queued", "f-skipped", "h-dead"].enumerated() {
            jobs[id] = try job(root, id, raw: raw, stages: id == "f-skipped" ? ["denoise", "segment"] : Names.stages, created: Double(1000 - 100 * i))
        }
        let a = jobs["a-complete"]!
        try manifest(a, "denoise", .complete, outputs: ["denoise/image.ome.tif", "denoise/qc/0-DAPI.png"], finished: 7200)
        try manifest(a, "segment", .complete, outputs: ["segment/cells.csv"], metrics: ["cells": .number(1234), "warnings": .array([.string("few cells")])], seconds: 10)
        try manifest(a, "cluster", .complete, outputs: ["cluster/cells.csv"], seconds: 3)
        try manifest(a, "stats", .complete, outputs: ["stats/frequencies.csv"], seconds: 2)
        for s in Names.stages { try AtomicFile.write("\(a.dir)\n", to: root.path + "/queue/\(s)/done/a-complete") }

        let b = jobs["b-running"]!
        try manifest(b, "denoise", .complete, seconds: 4)
        try manifest(b, "segment", .running, progress: ProgressRef(done: 1, total: 4, unit: "tiles"))
        let qs = Queue(root: root, stage: "segment")
        try qs.enqueue(id: "b-running", jobDir: b.dir); _ = try qs.claim()

        // c: claimed by a worker on another host that stopped beating an hour ago
        let c = jobs["c-stale"]!
        try manifest(c, "denoise", .running, pid: 4242, host: "gone-host")
        try Queue(root: root, stage: "denoise").ensure()
        let claim = root.path + "/queue/denoise/cur/c-stale@gone-host.4242"
        try AtomicFile.write("\(c.dir)\n", to: claim); try age(claim, 3600)

        let d = jobs["d-failed"]!
        try manifest(d, "denoise", .failed, error: "raw.tif: not a TIFF (bad magic)\nsecond line", finished: 30)
        try AtomicFile.write("\(d.dir)\n", to: root.path + "/queue/denoise/failed/d-failed")

        let e = jobs["e-queued"]!
        try Queue(root: root, stage: "denoise").enqueue(id: "e-queued", jobDir: e.dir)
        try age(root.path + "/queue/denoise/new/e-queued", 120)

        let f = jobs["f-skipped"]!
        try manifest(f, "denoise", .complete, seconds: 6); try manifest(f, "segment", .complete, seconds: 8)

        try manifest(jobs["h-dead"]!, "denoise", .running, pid: 99_999_999)
        try Files.mkdir(root.jobsDir + "/g-invalid"); try "{".write(toFile: root.jobsDir + "/g-invalid/job.json", atomically: true, encoding: .utf8)
        return Case(root: root, raw: raw, jobs: jobs)
    }

    func testEveryCaseStatesQueuesAndOrder() throws {
        let k = try everyCase()
        let r = StatusReport(root: k.root, query: .init(), now: t0)
        XCTAssertEqual(r.jobs.map { $0.id }, ["h-dead", "f-skipped", "e-queued", "d-failed", "c-stale", "b-running", "a-complete", "g-invalid"], "newest first")
        let state = Dictionary(uniqueKeysWithValues: r.jobs.map { ($0.id, $0.state) })
        XCTAssertEqual(state, ["a-complete": "complete", "b-running": "running", "c-stale": "stale", "d-failed": "failed", "e-queued": "queued",
                               "f-skipped": "complete", "g-invalid": "invalid", "h-dead": "stale"])
        XCTAssertEqual(r.summary, ["jobs": 8, "complete": 2, "running": 1, "stale": 2, "failed": 1, "queued": 1, "invalid": 1])
        func st(_ id: String) -> [String] { r.jobs.first { $0.id == id }!.stages.map { $0.status } }
        XCTAssertEqual(st("f-skipped"), ["complete", "complete", "skipped", "skipped"])
        XCTAssertEqual(st("c-stale"), ["stale", "pending", "pending", "pending"])
        XCTAssertEqual(st("h-dead").first, "dead")
        XCTAssertEqual(st("g-invalid"), ["invalid"])
        let c = r.jobs.first { $0.id == "c-stale" }!.stages[0]
        XCTAssertTrue(c.error?.contains("gone-host.4242") ?? false, c.error ?? "")
        let seg = r.jobs.first { $0.id == "b-running" }!.stages[1]
        XCTAssertEqual(seg.percent, 25)
        // 1 of 4 tiles in 100 s (ISO 8601 whole seconds, plus the test's own time): 3 x that to go
        let eta = try XCTUnwrap(seg.eta_seconds)
        XCTAssertGreaterThanOrEqual(eta, 299); XCTAssertLessThanOrEqual(eta, 3 * (101 + Date().timeIntervalSince(t0)) + 1)
        XCTAssertNil(r.jobs[0].stages[0].metrics, "metrics, logs and outputs only in the detailed view")

        let q = Dictionary(uniqueKeysWithValues: r.queues.map { ($0.stage, $0) })
        XCTAssertEqual(q["denoise"].map { [$0.new, $0.cur, $0.done, $0.failed, $0.stale] }, [1, 1, 1, 1, 1])
        XCTAssertEqual(q["segment"].map { [$0.new, $0.cur, $0.stale] }, [0, 1, 0], "a fresh claim is running, not stale")
        // completions from the manifests: a's denoise 2 h ago, the rest 50 s ago
        XCTAssertEqual(q["denoise"].map { [$0.done_last_hour, $0.done_last_day] }, [2, 3])
        XCTAssertEqual(q["segment"].map { [$0.done_last_hour, $0.done_last_day] }, [2, 2])
        XCTAssertEqual(q["denoise"]?.oldest_waiting_seconds ?? 0, 120, accuracy: 2)
        XCTAssertNil(q["segment"]?.oldest_waiting_seconds)
        XCTAssertEqual(q["denoise"]?.failures.map { [$0.job, $0.error] }, [["d-failed", "raw.tif: not a TIFF (bad magic)"]])

        // --stale-after longer than the silence: the claim is running again
        let lax = StatusReport(root: k.root, query: .init(staleAfter: 7200), now: t0)
        XCTAssertEqual(lax.jobs.first { $0.id == "c-stale" }?.state, "running")
        XCTAssertEqual(lax.queues[0].stale, 0)
        // --state and --sort
        let failed = StatusReport(root: k.root, query: .init(states: ["failed", "stale"], sort: "name"), now: t0)
        XCTAssertEqual(failed.jobs.map { $0.id }, ["c-stale", "d-failed", "h-dead"])
        XCTAssertEqual(failed.summary["shown"], 3); XCTAssertEqual(failed.summary["jobs"], 8)
        XCTAssertEqual(StatusText.countLine(failed), "8 jobs: 1 failed, 2 stale, 1 running, 1 queued, 2 complete, 1 invalid (3 shown)")

        // The JSON epipe-status --json prints.
        let o = try JSONSerialization.jsonObject(with: JSON.encode(r)) as! [String: Any]
        XCTAssertEqual(Set(o.keys), ["schema", "root", "generated", "queues", "jobs", "summary"]); XCTAssertEqual(o["schema"] as? String, "epipe.status/1")
        let q0 = (o["queues"] as! [[String: Any]])[0]
        XCTAssertEqual(Set(q0.keys), ["stage", "new", "cur", "done", "failed", "stale", "done_last_hour", "done_last_day", "oldest_waiting_seconds", "failures"])

        // The overview text: queue line, failure line, job lines, count line.
        let text = StatusText.overview(r)
        XCTAssertTrue(text.contains("denoise      1        1     1       1      1        2         3  2:00"), text)
        XCTAssertTrue(text.contains("  denoise  d-failed: raw.tif: not a TIFF (bad magic)"), text)
        XCTAssertTrue(text.contains("b-running   running   done 4.0s           running 25% ETA"), text)
        XCTAssertTrue(text.hasSuffix("8 jobs: 1 failed, 2 stale, 1 running, 1 queued, 2 complete, 1 invalid"), text)
    }

    func testDetailRetryAndLog() throws {
        let k = try everyCase()
        try "line 1\nline 2\nboom\n".write(toFile: k.jobs["d-failed"]!.logPath("denoise"), atomically: true, encoding: .utf8)
        let r = StatusReport(root: k.root, query: .init(ids: ["a-complete", "c-stale", "d-failed", "h-dead"], detail: true, sort: "name"), now: t0)
        XCTAssertEqual(r.jobs.map { $0.id }, ["a-complete", "c-stale", "d-failed", "h-dead"])
        XCTAssertEqual(r.summary["jobs"], 4)
        let a = r.jobs[0], c = r.jobs[1], d = r.jobs[2], h = r.jobs[3]
        XCTAssertEqual(a.warnings, ["segment: few cells"]); XCTAssertNil(a.retry)
        XCTAssertEqual(a.stages[0].qc, [a.dir + "/denoise/qc/0-DAPI.png"])
        XCTAssertEqual(a.stages[0].peak_rss_bytes, 300 << 20)
        XCTAssertEqual(d.retry, "epipe-denoise \(d.dir) | epipe-segment | epipe-cluster | epipe-stats")
        XCTAssertEqual(h.retry, "epipe-denoise \(h.dir) | epipe-segment | epipe-cluster | epipe-stats")
        XCTAssertEqual(c.retry, "epipe-status --root \(k.root.path) --requeue-stale && epipe-denoise --root \(k.root.path) --drain")
        XCTAssertEqual(d.stages[0].log, ["line 1", "line 2", "boom"])
        let text = StatusText.detail(r)
        XCTAssertTrue(text.contains("  retry: epipe-denoise \(d.dir) | epipe-segment"), text)
        XCTAssertTrue(text.contains("           log: boom"), text)
        XCTAssertTrue(text.contains("           cells: 1234"), text)
        XCTAssertTrue(text.contains("  warning: segment: few cells"), text)
        XCTAssertTrue(text.contains("peak 300 MiB"), text)
        XCTAssertEqual(shellQuote("/a b/it's"), "'/a b/it'\\''s'"); XCTAssertEqual(shellQuote("/plain/path-1"), "/plain/path-1")
    }

    func testVerifyFlippedByteMissingFileOrphan() throws {
        let k = try everyCase()
        let a = k.jobs["a-complete"]!
        let clean = StatusReport(root: k.root, query: .init(ids: ["a-complete", "f-skipped"], verify: true), now: t0)
        XCTAssertEqual(clean.jobs.map { $0.verdict }, ["ok", "ok"])
        XCTAssertEqual(clean.mismatches, 0); XCTAssertEqual(clean.summary["orphans"], 0)
        // a flipped byte, a missing file, an orphan (and debris of an interrupted write), and a log and a report that belong there
        try "y".write(toFile: a.dir + "/segment/cells.csv", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: a.dir + "/stats/frequencies.csv")
        try "old".write(toFile: a.dir + "/denoise/qc/9-old.png", atomically: true, encoding: .utf8)
        try "tmp".write(toFile: a.dir + "/cluster/.cells.csv.tmp-1-ab", atomically: true, encoding: .utf8)
        try "<html>".write(toFile: a.dir + "/report.html", atomically: true, encoding: .utf8)
        let v = StatusReport(root: k.root, query: .init(ids: ["a-complete"], verify: true), now: t0)
        let j = v.jobs[0]
        XCTAssertEqual(j.verify, [a.dir + "/segment/cells.csv: sha256 differs from segment/manifest.json", a.dir + "/stats/frequencies.csv: missing"])
        XCTAssertEqual(j.orphans, ["cluster/.cells.csv.tmp-1-ab", "denoise/qc/9-old.png"])
        XCTAssertEqual(j.verdict, "damaged")
        XCTAssertEqual(v.mismatches, 2); XCTAssertEqual(v.summary["orphans"], 2)
        // orphans alone
        let f = k.jobs["f-skipped"]!
        try "?".write(toFile: f.dir + "/stray.txt", atomically: true, encoding: .utf8)
        try Files.mkdir(f.dir + "/stats"); try "?".write(toFile: f.dir + "/stats/left.csv", atomically: true, encoding: .utf8)
        let o = StatusReport(root: k.root, query: .init(ids: ["f-skipped"], verify: true), now: t0).jobs[0]
        XCTAssertEqual(o.orphans, ["stats/left.csv", "stray.txt"]); XCTAssertEqual(o.verdict, "orphans"); XCTAssertEqual(o.verify, [])
        // a changed raw scan; a running stage's folder is not judged
        try "raw?".write(toFile: k.raw, atomically: true, encoding: .utf8)
        try "partial".write(toFile: k.jobs["b-running"]!.dir + "/segment/.cells.tif.tmp-9-cd", atomically: true, encoding: .utf8)
        let b = StatusReport(root: k.root, query: .init(ids: ["b-running"], verify: true), now: t0).jobs[0]
        XCTAssertEqual(b.verify, [k.raw + ": raw scan sha256 differs from job.json"]); XCTAssertEqual(b.orphans, [])
        XCTAssertThrowsError(try StatusReport.jobIDs(["nope"], root: k.root)) { e in XCTAssertEqual("\(e)", "nope: no such job under \(k.root.jobsDir)") }
    }

    func testPrometheusFileParsesStrictly() throws {
        let k = try everyCase()
        try "{\"schema\":\"epipe.ingest-run/1\",\"bytes_transferred\":1000,\"transferred\":2,\"skipped\":1,\"failed\":0,\"finished\":\"2026-11-30T10:00:00Z\"}"
            .write(toFile: try { try Files.mkdir(k.root.path + "/ingest/runs"); return k.root.path + "/ingest/runs/a.json" }(), atomically: true, encoding: .utf8)
        try "{\"schema\":\"epipe.ingest-run/1\",\"bytes_transferred\":500,\"transferred\":1,\"skipped\":3,\"failed\":1,\"finished\":\"2026-11-30T11:00:00Z\"}"
            .write(toFile: k.root.path + "/ingest/runs/b.json", atomically: true, encoding: .utf8)
        let text = StatusPrometheus.render(StatusReport(root: k.root, query: .init(), now: t0), root: k.root, now: t0)
        let m = try ExpositionParser.parse(text)
        XCTAssertEqual(m.types["epipe_stage_duration_seconds"], "summary")
        XCTAssertEqual(m.types["epipe_ingest_bytes_total"], "counter")
        XCTAssertEqual(m.value("epipe_queue_entries", ["stage": "denoise", "state": "stale"]), 1)
        XCTAssertEqual(m.value("epipe_queue_entries", ["stage": "denoise", "state": "new"]), 1)
        XCTAssertEqual(m.value("epipe_queue_oldest_waiting_seconds", ["stage": "denoise"]) ?? 0, 120, accuracy: 2)
        XCTAssertEqual(m.value("epipe_jobs", ["state": "stale"]), 2)
        XCTAssertEqual(m.value("epipe_jobs", ["state": "complete"]), 2)
        XCTAssertEqual(m.value("epipe_stage_failed_jobs", ["stage": "denoise"]), 1)
        // segment ran 10 s (a) and 8 s (f); denoise 1.5 (a), 4 (b), 6 (f)
        XCTAssertEqual(m.value("epipe_stage_duration_seconds_count", ["stage": "segment"]), 2)
        XCTAssertEqual(m.value("epipe_stage_duration_seconds_sum", ["stage": "denoise"]), 11.5)
        XCTAssertEqual(m.value("epipe_stage_duration_seconds", ["stage": "denoise", "quantile": "0.5"]), 4)
        XCTAssertEqual(m.value("epipe_stage_duration_seconds", ["stage": "denoise", "quantile": "0.99"]), 6)
        XCTAssertTrue(m.value("epipe_stage_duration_seconds", ["stage": "stats", "quantile": "0.5"])?.isNaN == false)
        XCTAssertEqual(m.value("epipe_ingest_bytes_total", [:]), 1500)
        XCTAssertEqual(m.value("epipe_ingest_files_total", ["result": "failed"]), 1)
        XCTAssertEqual(m.value("epipe_ingest_runs_total", [:]), 2)
        XCTAssertEqual(m.value("epipe_ingest_last_run_timestamp_seconds", [:]), Time.parse("2026-11-30T11:00:00Z")!.timeIntervalSince1970)
        // promtool, where it is installed, agrees
        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let p = Process(); p.executableURL = URL(fileURLWithPath: promtool); p.arguments = ["check", "metrics"]
            let pipe = Pipe(); p.standardInput = pipe; p.standardOutput = FileHandle.nullDevice
            try p.run(); pipe.fileHandleForWriting.write(Data(text.utf8)); try pipe.fileHandleForWriting.close(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        // the parser is strict: it refuses what Prometheus refuses
        for bad in ["x 1\n", "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n", "# TYPE x gauge\nx{a=1} 1\n", "# TYPE x gauge\nx 1", "# TYPE x gauge\nx one\n",
                    "# TYPE x gauge\n# TYPE x gauge\nx 1\n", "# TYPE x sumary\nx 1\n", "# TYPE x gauge\nx{a=\"\\q\"} 1\n", "# TYPE 1x gauge\n1x 1\n",
                    "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n"] {
            XCTAssertThrowsError(try ExpositionParser.parse(bad), bad)
        }
    }

    /// A dead worker's job claimed again by a live one that has not yet written its own manifest: running.
    func testDeadWorkersJobClaimedAgainIsRunning() throws {
        let k = try everyCase()
        let q = Queue(root: k.root, stage: "denoise")
        try AtomicFile.write(k.jobs["h-dead"]!.dir + "\n", to: q.sub("cur") + "/h-dead@\(Host.name).\(getpid())")
        let r = StatusReport(root: k.root, query: .init(ids: ["h-dead"]), now: t0)
        XCTAssertEqual(r.jobs[0].stages[0].status, "running"); XCTAssertEqual(r.jobs[0].state, "running")
        XCTAssertEqual(r.queues[0].stale, 1, "only c-stale's claim")
    }

    func testJobState() {
        XCTAssertEqual(StatusReport.jobState(["complete", "complete"]), "complete")
        XCTAssertEqual(StatusReport.jobState(["complete", "skipped"]), "complete")
        XCTAssertEqual(StatusReport.jobState(["complete", "dead"]), "stale")
        XCTAssertEqual(StatusReport.jobState(["stale", "failed"]), "failed")
        XCTAssertEqual(StatusReport.jobState(["complete", "running", "pending"]), "running")
        XCTAssertEqual(StatusReport.jobState(["complete", "pending"]), "partial")
        XCTAssertEqual(StatusReport.jobState(["pending", "pending"]), "queued")
        XCTAssertEqual(StatusReport.jobState([]), "complete")
    }
}

/// A strict reader of the Prometheus text exposition format 0.0.4: HELP/TYPE once per family and
/// before its samples, a family's samples together, valid metric and label names, quoted label
/// values with only \\, \" and \n escapes, float values (NaN, +Inf, -Inf), no duplicate series,
/// summary/histogram suffixes only on their families, a final newline.
enum ExpositionParser {
    struct Parsed {
        var types: [String: String] = [:]
        var samples: [String: [(labels: [String: String], value: Double)]] = [:]
        func value(_ name: String, _ labels: [String: String]) -> Double? { samples[name]?.first { $0.labels == labels }?.value }
    }
    struct Bad: Error, CustomStringConvertible { var description: String }

    static func isName(_ s: Substring, colon: Bool) -> Bool {
        guard let f = s.first, f == "_" || f.isASCII && f.isLetter || (colon && f == ":") else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) || (colon && $0 == ":") }
    }

    static func parse(_ text: String) throws -> Parsed {
        guard text.hasSuffix("\n") else { throw Bad(description: "no final newline") }
        var p = Parsed()
        var help = Set<String>(), seen = Set<String>(), closed = Set<String>()
        var current: String? = nil
        func family(of name: String) -> String? {
            if p.types[name] != nil { return name }
            for suf in ["_sum", "_count", "_bucket"] where name.hasSuffix(suf) {
                let base = String(name.dropLast(suf.count))
                if let t = p.types[base], t == "summary" || t == "histogram", suf != "_bucket" || t == "histogram" { return base }
            }
            return nil
        }
        for (n, raw) in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = Substring(raw)
            func bad(_ why: String) -> Bad { Bad(description: "line \(n + 1): \(why): \(line)") }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[0] == "#" else { continue }
                let name = String(parts[2])
                guard isName(parts[2], colon: true) else { throw bad("bad metric name") }
                if parts[1] == "TYPE" {
                    guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw bad("bad type") }
                    guard p.types[name] == nil, !seen.contains(name) else { throw bad("TYPE twice or after samples") }
                    p.types[name] = String(parts[3])
                    if let c = current, c != name { closed.insert(c) }
                    current = name
                } else if parts[1] == "HELP" {
                    guard !help.contains(name) else { throw bad("HELP twice") }
                    help.insert(name)
                }
                continue
            }
            guard !line.isEmpty else { throw bad("empty line") }
            var i = line.startIndex
            while i < line.endIndex, line[i] != "{", line[i] != " " { i = line.index(after: i) }
            let name = String(line[..<i])
            guard isName(line[..<i], colon: true) else { throw bad("bad metric name") }
            guard let fam = family(of: name) else { throw bad("sample without TYPE") }
            guard !closed.contains(fam) else { throw bad("family's samples not together") }
            if let c = current, c != fam { closed.insert(c) }
            current = fam
            var labels: [String: String] = [:]
            if i < line.endIndex, line[i] == "{" {
                i = line.index(after: i)
                while true {
                    guard i < line.endIndex else { throw bad("unterminated labels") }
                    if line[i] == "}" { i = line.index(after: i); break }
                    var j = i
                    while j < line.endIndex, line[j] != "=" { j = line.index(after: j) }
                    guard j < line.endIndex, isName(line[i..<j], colon: false) else { throw bad("bad label name") }
                    let key = String(line[i..<j])
                    j = line.index(after: j)
                    guard j < line.endIndex, line[j] == "\"" else { throw bad("label value not quoted") }
                    j = line.index(after: j)
                    var v = ""
                    while true {
                        guard j < line.endIndex else { throw bad("unterminated label value") }
                        let ch = line[j]
                        if ch == "\"" { break }
                        if ch == "\\" {
                            j = line.index(after: j)
                            guard j < line.endIndex else { throw bad("bad escape") }
                            switch line[j] { case "\\": v.append("\\"); case "\"": v.append("\""); case "n": v.append("\n"); default: throw bad("bad escape") }
                        } else { v.append(ch) }
                        j = line.index(after: j)
                    }
                    guard labels[key] == nil else { throw bad("label twice") }
                    labels[key] = v
                    i = line.index(after: j)
                    if i < line.endIndex, line[i] == "," { i = line.index(after: i) }
                }
            }
            guard i < line.endIndex, line[i] == " " else { throw bad("no value") }
            let rest = line[line.index(after: i)...].split(separator: " ")
            guard rest.count == 1 || rest.count == 2 else { throw bad("bad value") }
            let value: Double
            switch rest[0] {
            case "NaN": value = .nan
            case "+Inf": value = .infinity
            case "-Inf": value = -.infinity
            default:
                guard let d = Double(rest[0]), d.isFinite else { throw bad("bad value") }
                value = d
            }
            if rest.count == 2 { guard Int64(rest[1]) != nil else { throw bad("bad timestamp") } }
            let key = name + "{" + labels.keys.sorted().map { "\($0)=\(labels[$0]!)" }.joined(separator: ",") + "}"
            guard !seen.contains(key) else { throw bad("duplicate series") }
            seen.insert(key); seen.insert(name)
            if p.types[fam] == "summary" && name == fam && labels["quantile"] == nil { throw bad("summary sample without quantile") }
            p.samples[name, default: []].append((labels, value))
        }
        return p
    }
}
