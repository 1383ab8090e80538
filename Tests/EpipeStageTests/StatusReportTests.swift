import XCTest
import Foundation
import EpipeCore
@testable import EpipeStage

/// StatusReport: what epipe-status prints, built from a root without running the binary.
final class StatusReportTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-status-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func job(_ root: Root, _ id: String, raw: String) throws -> Job {
        try Job.create(root: root, spec: JobSpec(id: id, name: id, raw: RawRef(uri: "file://" + raw, sha256: try Digest.sha256(file: raw).hex, bytes: 4),
                                                 stages: ["denoise", "segment"], params: [:]))
    }
    func manifest(_ job: Job, _ stage: String, _ status: StageManifest.Status, progress: ProgressRef? = nil, pid: Int32 = getpid(),
                  outputs: [String] = []) throws {
        var m = StageManifest(stage: stage, status: status, run: "r", tool: ToolRef(name: "epipe-" + stage, version: "0"), params: [:], inputs: [],
                              progress: progress, started: Time.iso(Date().addingTimeInterval(-100)), pid: pid)
        try Files.mkdir(job.stageDir(stage))
        for o in outputs {
            try Files.mkdir((job.dir + "/" + o as NSString).deletingLastPathComponent)
            try "x".write(toFile: job.dir + "/" + o, atomically: true, encoding: .utf8)
            m.outputs.append(FileRef(path: o, sha256: try Digest.sha256(file: job.dir + "/" + o).hex, bytes: 1))
        }
        m.seconds = 1.5
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath(stage))
    }

    func testStatesProgressVerifyAndQueues() throws {
        let t0 = Date()
        let root = try Root(tmp + "/root")
        let raw = tmp + "/raw.tif"; try "raw!".write(toFile: raw, atomically: true, encoding: .utf8)
        let done = try job(root, "a-done", raw: raw), running = try job(root, "b-running", raw: raw)
        let dead = try job(root, "c-dead", raw: raw), queued = try job(root, "d-queued", raw: raw)
        try manifest(done, "denoise", .complete, outputs: ["denoise/qc/x.png", "denoise/out.tif"])
        try manifest(done, "segment", .complete)
        try manifest(running, "denoise", .complete)
        try manifest(running, "segment", .running, progress: ProgressRef(done: 1, total: 4, unit: "tiles"))
        try manifest(dead, "denoise", .running, pid: 99_999_999)
        try Files.mkdir(root.jobsDir + "/e-invalid"); try "{".write(toFile: root.jobsDir + "/e-invalid/job.json", atomically: true, encoding: .utf8)
        // one stale claim: claimed, heartbeat an hour ago
        let q = Queue(root: root, stage: "segment")
        try q.enqueue(id: queued.spec.id, jobDir: queued.dir)
        let c = try XCTUnwrap(try q.claim())
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: c.path)

        let r = StatusReport(root: root)
        XCTAssertEqual(r.jobs.map { $0.id }, ["a-done", "b-running", "c-dead", "d-queued", "e-invalid"])
        XCTAssertEqual(r.jobs.map { $0.state }, ["complete", "running", "failed", "queued", "invalid"])
        XCTAssertEqual(r.summary, ["jobs": 5, "complete": 1, "running": 1, "failed": 1, "queued": 1, "invalid": 1])
        let seg = r.jobs[1].stages[1]
        // started 100 s before the manifest was written, in whole seconds (ISO 8601): 1 of 4 done in
        // 100 s plus up to 1 s of truncation plus the time this test has taken, so 3 x that to go
        let eta = try XCTUnwrap(seg.eta_seconds)
        XCTAssertEqual(seg.percent, 25)
        XCTAssertGreaterThanOrEqual(eta, 299)
        XCTAssertLessThanOrEqual(eta, 3 * (101 + Date().timeIntervalSince(t0)) + 1)
        XCTAssertEqual(r.jobs[2].stages[0].status, "dead"); XCTAssertTrue(r.jobs[2].stages[0].error?.contains("is gone") ?? false)
        XCTAssertEqual(r.jobs[4].stages.map { $0.status }, ["invalid"])
        XCTAssertNil(r.jobs[0].stages[0].metrics, "metrics and QC only in the detailed view")
        XCTAssertEqual(r.queues.first { $0.stage == "segment" }.map { [$0.new, $0.cur, $0.stale] }, [0, 1, 1])
        XCTAssertEqual(StatusReport(root: root, staleAfter: 7200).queues.first { $0.stage == "segment" }?.stale, 0)
        XCTAssertNil(r.jobs[0].verify); XCTAssertEqual(r.mismatches, 0)

        // Detail and verify for one job: QC pictures listed, a changed output and a changed raw scan found.
        try "y".write(toFile: done.dir + "/denoise/out.tif", atomically: true, encoding: .utf8)
        try "raw?".write(toFile: raw, atomically: true, encoding: .utf8)
        let v = StatusReport(root: root, ids: try StatusReport.jobIDs([done.dir], root: root), detail: true, verify: true)
        XCTAssertEqual(v.jobs.map { $0.id }, ["a-done"])
        XCTAssertEqual(v.jobs[0].stages[0].qc, [done.dir + "/denoise/qc/x.png"])
        XCTAssertEqual(v.jobs[0].verify, [done.dir + "/denoise/out.tif: sha256 differs from denoise/manifest.json", raw + ": raw scan sha256 differs from job.json"])
        XCTAssertEqual(v.mismatches, 2); XCTAssertEqual(v.summary["mismatches"], 2)
        XCTAssertThrowsError(try StatusReport.jobIDs(["nope"], root: root)) { e in XCTAssertEqual("\(e)", "nope: no such job under \(root.jobsDir)") }
        // The JSON epipe-status --json prints.
        let o = try JSONSerialization.jsonObject(with: JSON.encode(r)) as! [String: Any]
        XCTAssertEqual(Set(o.keys), ["schema", "root", "queues", "jobs", "summary"]); XCTAssertEqual(o["schema"] as? String, "epipe.status/1")
    }

    func testJobState() {
        XCTAssertEqual(StatusReport.jobState(["complete", "complete"]), "complete")
        XCTAssertEqual(StatusReport.jobState(["complete", "dead"]), "failed")
        XCTAssertEqual(StatusReport.jobState(["complete", "running", "pending"]), "running")
        XCTAssertEqual(StatusReport.jobState(["complete", "pending"]), "partial")
        XCTAssertEqual(StatusReport.jobState(["pending", "pending"]), "queued")
        XCTAssertEqual(StatusReport.jobState([]), "complete")
    }
}
