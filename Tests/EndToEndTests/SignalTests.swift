import XCTest
import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15, SIGTERM and SIGINT: a stage stops at its next safe point, its manifest says interrupted,
/// its queue claim goes back to new/, its temporary files are gone, and it exits 143 (TERM) or 130
/// (INT); a drain worker leaves no job claimed and finishes no job half; a rerun completes with the
/// outputs of an undisturbed run. The signals come from outside (kill(2) from the test, once the run is
/// under way) or, where the moment matters (between two jobs of a drain, inside ingest's copy), from the
/// test-only fault hook (`EPIPE_FAULT=term@POINT`: the process sends the signal to itself there).
final class SignalTests: E2ECase {
    let signals: [(sig: Int32, code: Int32, name: String)] = [(SIGTERM, 143, "SIGTERM"), (SIGINT, 130, "SIGINT")]

    /// Scans in DIR: `count` slides of 1024 x 1024 x 4 (16 bands of 64 rows: long enough to be signalled mid-run).
    func scans(_ dir: String, count: Int, size: Int = 1024) throws {
        _ = try synth(dir, count: count, size: size, channels: 4, seed: 9, name: "g")
        for f in Files.list(dir) { try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: dir + "/" + f) }
    }

    func ingest(_ root: String, _ dir: String) throws -> [String] {
        let r = try exec("epipe-ingest", ["--root", root, "--settle", "0", "-q", "--param", "denoise.band=64", dir])
        XCTAssertEqual(r.code, 0, r.err)
        return r.lines
    }

    /// A stage's files (outputs and QC, not the manifest or lock) with their sha256.
    func outputs(_ job: String, _ stage: String) throws -> [String: String] {
        var f: [String: String] = [:]
        let d = job + "/" + stage
        guard let walk = FileManager.default.enumerator(atPath: d) else { return f }
        while let rel = walk.nextObject() as? String {
            if let t = walk.fileAttributes?[.type] as? FileAttributeType, t == .typeDirectory { continue }
            if rel == "manifest.json" || rel.hasSuffix(".lock") { continue }
            f[rel] = try Digest.sha256(file: d + "/" + rel).hex
        }
        return f
    }

    /// The outputs an undisturbed run of `stage` gives on the scans of `dir`, by job name.
    func reference(_ dir: String, stage: String = "denoise") throws -> [String: [String: String]] {
        let root = tmp + "/reference-" + UUID().uuidString
        var out: [String: [String: String]] = [:]
        for j in try ingest(root, dir) {
            let r = try exec("epipe-" + stage, ["-q", j])
            XCTAssertEqual(r.code, 0, r.err)
            out[try Job(dir: j).spec.name] = try outputs(j, stage)
        }
        return out
    }

    func start(_ args: [String], env extra: [String: String] = [:], stdin: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path(args[0]))
        p.arguments = Array(args.dropFirst())
        p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        if let stdin { p.standardInput = stdin } else { p.standardInput = FileHandle.nullDevice }
        try p.run()
        return p
    }

    /// Waits (up to 60 s) for `cond`.
    func wait(_ what: String, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(60)
        while !cond() && Date() < deadline { usleep(5000) }
        XCTAssertTrue(cond(), "timed out waiting for \(what)")
    }

    /// Whether a job's stage manifest says running (the stage is past its start-up, signals are handled).
    func running(_ job: String, _ stage: String = "denoise") -> Bool { (try? manifest(job, stage))?.status == .running }

    /// Temporary files anywhere under `root` (resumable `.partial-` copies of ingest aside when allowed).
    func temporaries(_ root: String, partialsAllowed: Bool = false) -> [String] {
        var found: [String] = []
        guard let walk = FileManager.default.enumerator(atPath: root) else { return [] }
        while let rel = walk.nextObject() as? String {
            let n = (rel as NSString).lastPathComponent
            if AtomicFile.isTemporary(n) || n == ".cache" || (!partialsAllowed && n.hasPrefix(".partial-")) { found.append(rel) }
        }
        return found
    }

    func statusJSON(_ root: String, _ args: [String] = []) throws -> (RunResult, [String: Any]) {
        let r = try exec("epipe-status", ["--root", root, "--json"] + args)
        return (r, (try? JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]) ?? [:])
    }

    /// A whole run signalled mid-way (from outside), for TERM and INT: exit status, the manifest, the
    /// queue, no temporary file, epipe-status, then a rerun equal to an undisturbed run.
    func testSignalledWholeRunStopsAtASafePointAndReruns() throws {
        let dir = tmp + "/scans"
        try scans(dir, count: 1)
        let want = try reference(dir)
        for s in signals {
            let root = tmp + "/root-" + s.name
            let job = try XCTUnwrap(try ingest(root, dir).first)
            let id = try Job(dir: job).spec.id
            let p = try start(["epipe-denoise", "-q", job])
            wait("the running manifest") { running(job) }
            kill(p.processIdentifier, s.sig)   // 16 bands to go: it stops at the first band's end
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit, "\(s.name): an exit, not death by the signal")
            XCTAssertEqual(p.terminationStatus, s.code, "\(s.name): exit status")
            let m = try manifest(job, "denoise")
            XCTAssertEqual(m.status, .interrupted, s.name)
            XCTAssertTrue(m.error?.contains(s.name) == true, "\(s.name): \(m.error ?? "no error")")
            XCTAssertNotNil(m.finished)
            XCTAssertEqual(temporaries(root), [], "\(s.name): temporary files removed")
            XCTAssertEqual(Queue(root: try Root(root, create: false), stage: "denoise").places(of: id), ["new"], "\(s.name): the job still waits in new/")
            let log = try String(contentsOfFile: job + "/logs/denoise.log", encoding: .utf8)
            XCTAssertTrue(log.contains("interrupted by \(s.name)"), log)
            // epipe-status: the stage and the job say interrupted; --fail-on and --state know the state
            let (st, o) = try statusJSON(root)
            XCTAssertEqual(st.code, 0, st.err)
            let j = try XCTUnwrap((o["jobs"] as? [[String: Any]])?.first)
            XCTAssertEqual(j["state"] as? String, "interrupted")
            XCTAssertEqual((j["stages"] as? [[String: Any]])?.first { $0["stage"] as? String == "denoise" }?["status"] as? String, "interrupted")
            XCTAssertEqual((o["summary"] as? [String: Any])?["interrupted"] as? Int, 1)
            XCTAssertEqual(try exec("epipe-status", ["--root", root, "--fail-on", "interrupted"]).code, 1)
            XCTAssertEqual(try exec("epipe-status", ["--root", root, "--fail-on", "failed,stale"]).code, 0, "interrupted is neither failed nor stale")
            let text = try exec("epipe-status", ["--root", root, "--state", "interrupted", job])
            XCTAssertEqual(text.code, 0, text.err)
            XCTAssertTrue(text.out.contains("interrupted by \(s.name)"), text.out)
            XCTAssertTrue(text.out.contains("epipe-denoise \(job)"), "the retry command: \(text.out)")
            // the rerun completes, with the undisturbed run's outputs
            let again = try exec("epipe-denoise", ["-q", job])
            XCTAssertEqual(again.code, 0, again.err)
            XCTAssertEqual(try manifest(job, "denoise").status, .complete)
            XCTAssertEqual(try outputs(job, "denoise"), want[try Job(dir: job).spec.name], "\(s.name): rerun equals an undisturbed run")
            XCTAssertEqual(Queue(root: try Root(root, create: false), stage: "denoise").places(of: id), ["done"])
        }
        // a stage waiting for job directories on stdin ends at once, 143
        let pipe = Pipe()
        let idle = try start(["epipe-denoise", "-q"], stdin: pipe)
        usleep(300_000)
        kill(idle.processIdentifier, SIGTERM)
        let t0 = Date()
        idle.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5)
        XCTAssertEqual(idle.terminationReason, .exit)
        XCTAssertEqual(idle.terminationStatus, 143)
        try? pipe.fileHandleForWriting.close()
    }

    /// A drain worker signalled inside a job (from outside): that job's manifest says interrupted and
    /// its claim is back in new/, a job it had not reached is untouched, nothing is left claimed, no job
    /// is half done (each is complete and handed on, interrupted, or not started); a second worker
    /// drains them, equal to undisturbed runs.
    func testSignalledDrainWorkerGivesBackItsClaim() throws {
        let dir = tmp + "/scans"
        try scans(dir, count: 2, size: 768)
        let want = try reference(dir)
        for s in signals {
            let root = tmp + "/root-" + s.name
            let jobs = try ingest(root, dir)
            XCTAssertEqual(jobs.count, 2)
            let q = Queue(root: try Root(root, create: false), stage: "denoise")
            let p = try start(["epipe-denoise", "-q", "--root", root, "--drain"])
            wait("a claimed job running") { q.counts().cur == 1 && jobs.contains { running($0) } }
            kill(p.processIdentifier, s.sig)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .exit)
            XCTAssertEqual(p.terminationStatus, s.code, s.name)
            XCTAssertEqual(q.counts().cur, 0, "\(s.name): no job left claimed")
            let r = try Root(root, create: false)
            var seen: [String] = []
            for j in jobs {
                let id = try Job(dir: j).spec.id, st = (try? manifest(j, "denoise"))?.status
                let here = q.places(of: id), next = Queue(root: r, stage: "segment").places(of: id)
                switch st {
                case .complete?: XCTAssertEqual([here, next], [["done"], ["new"]], "\(s.name): a finished job is done and handed on")
                case .interrupted?: XCTAssertEqual([here, next], [["new"], []], "\(s.name): the interrupted job is back in new/")
                case nil: XCTAssertEqual([here, next], [["new"], []], "\(s.name): a job not started waits in new/")
                default: XCTFail("\(s.name): \(j): denoise is \(st!.rawValue)")
                }
                seen.append(st?.rawValue ?? "none")
            }
            XCTAssertEqual(seen.filter { $0 == "interrupted" }.count, 1, "\(s.name): \(seen)")
            XCTAssertEqual(temporaries(root), [], s.name)
            let again = try exec("epipe-denoise", ["-q", "--root", root, "--drain"])
            XCTAssertEqual(again.code, 0, again.err)
            XCTAssertEqual([q.counts().new, q.counts().cur, q.counts().done], [0, 0, 2])
            for j in jobs { XCTAssertEqual(try outputs(j, "denoise"), want[try Job(dir: j).spec.name], "\(s.name): \(j)") }
        }
    }

    /// A signal while a drain worker writes a job's complete manifest (the fault hook sends it there):
    /// that job is finished whole (done, queued for segment), the next is not started, exit 143.
    func testDrainStopsBetweenJobs() throws {
        let dir = tmp + "/scans"
        try scans(dir, count: 2, size: 384)
        let root = tmp + "/root"
        let jobs = try ingest(root, dir)
        let r = try exec("epipe-denoise", ["-q", "--root", root, "--drain"], env: ["EPIPE_FAULT": "term@manifest-complete#1"])
        XCTAssertEqual(r.code, 143, r.err)
        let q = Queue(root: try Root(root, create: false), stage: "denoise"), next = Queue(root: try Root(root, create: false), stage: "segment")
        XCTAssertEqual([q.counts().new, q.counts().cur, q.counts().done], [1, 0, 1])
        XCTAssertEqual(next.counts().new, 1, "the finished job went on to segment")
        let states = jobs.map { (try? manifest($0, "denoise"))?.status }
        XCTAssertEqual(Set(states.map { $0?.rawValue ?? "none" }), ["complete", "none"])
        XCTAssertEqual(temporaries(root), [])
    }

    /// A --watch worker waiting on an empty queue ends at once on SIGTERM, 143, and leaves nothing.
    func testWatchingWorkerStopsWhileWaiting() throws {
        let root = tmp + "/root"
        _ = try Root(root, create: true)
        let p = try start(["epipe-segment", "-q", "--root", root, "--watch", "--poll-interval", "0.2"])
        usleep(500_000)
        XCTAssertTrue(p.isRunning)
        let t0 = Date()
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2)
        XCTAssertEqual(p.terminationReason, .exit)
        XCTAssertEqual(p.terminationStatus, 143)
        XCTAssertEqual(Queue(root: try Root(root, create: false), stage: "segment").counts().cur, 0)
    }

    /// A part of a split stage signalled (fault hook: its first tile row written): the part's manifest
    /// says interrupted, the stage's says 0 of 2 parts; rerunning the part and merging completes.
    func testSignalledPart() throws {
        let dir = tmp + "/scans"
        try scans(dir, count: 1, size: 384)
        let root = tmp + "/root"
        let job = try XCTUnwrap(try ingest(root, dir).first)
        XCTAssertEqual(try exec("epipe-denoise", ["-q", job]).code, 0)
        let part = ["-q", "--tile-size", "128", "--tiles", "2", "--tile", "0", job]
        let r = try exec("epipe-segment", part, env: ["EPIPE_FAULT": "int@output-chunk#1"])
        XCTAssertEqual(r.code, 130, r.err)
        XCTAssertEqual(try StageManifest.load(job + "/segment/parts/0/manifest.json").status, .interrupted)
        XCTAssertEqual(try manifest(job, "segment").progress, ProgressRef(done: 0, total: 2, unit: "parts"))
        XCTAssertEqual(temporaries(root), [])
        for i in 0..<2 { XCTAssertEqual(try exec("epipe-segment", ["-q", "--tile-size", "128", "--tiles", "2", "--tile", "\(i)", job]).code, 0) }
        let m = try exec("epipe-segment", ["-q", "--tile-size", "128", "--merge", job])
        XCTAssertEqual(m.code, 0, m.err)
        XCTAssertEqual(try manifest(job, "segment").status, .complete)
    }

    /// Ingest signalled inside a copy (fault hook: after its first 8 MiB block), TERM and INT: exit
    /// status, the run report says interrupted, no temporary file (the resumable partial copy aside),
    /// nothing registered half; the rerun completes, as an undisturbed ingest does.
    func testSignalledIngest() throws {
        let dir = tmp + "/scans"
        try scans(dir, count: 1, size: 256)
        var data = Data(count: 20 << 20)
        data.withUnsafeMutableBytes { p in var x: UInt64 = 5; for i in 0..<p.count { x = x &* 6364136223846793005 &+ 1442695040888963407; p[i] = UInt8(truncatingIfNeeded: x >> 33) } }
        try data.write(to: URL(fileURLWithPath: dir + "/archive.bin"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: dir + "/archive.bin")
        let undisturbed = try exec("epipe-ingest", ["--root", tmp + "/reference", "--settle", "0", "-q", dir])
        XCTAssertEqual(undisturbed.code, 0, undisturbed.err)
        func stored(_ root: String) throws -> [String: String] {
            var f: [String: String] = [:]
            for n in Files.list(root + "/store") where !n.hasPrefix(".") && !Files.isDirectory(root + "/store/" + n) { f[n] = try Digest.sha256(file: root + "/store/" + n).hex }
            f["files/scans/archive.bin"] = try? Digest.sha256(file: root + "/store/files/scans/archive.bin").hex
            f["jobs"] = try Root(root, create: false).allJobIDs().joined(separator: ",")
            return f
        }
        let want = try stored(tmp + "/reference")
        for s in signals {
            let root = tmp + "/root-" + s.name
            let r = try exec("epipe-ingest", ["--root", root, "--settle", "0", "-q", dir], env: ["EPIPE_FAULT": "\(s.name == "SIGTERM" ? "term" : "int")@output-chunk#1"])
            XCTAssertEqual(r.code, s.code, r.err)
            XCTAssertTrue(r.err.contains("interrupted by \(s.name)"), r.err)
            let runs = Files.list(root + "/ingest/runs").filter { $0.hasSuffix(".json") }
            XCTAssertEqual(runs.count, 1)
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/ingest/runs/" + runs[0]))) as? [String: Any]
            XCTAssertEqual(report?["interrupted"] as? String, s.name)
            XCTAssertEqual(temporaries(root, partialsAllowed: true), [], s.name)
            for id in try Root(root, create: false).allJobIDs() {   // a job registered is whole: its scan stored, queued once
                let spec = try Job(dir: root + "/jobs/" + id).spec
                XCTAssertEqual(try Digest.sha256(file: String(spec.raw.uri.dropFirst(7))).hex, spec.raw.sha256)
                XCTAssertEqual(Queue(root: try Root(root, create: false), stage: "denoise").places(of: id), ["new"])
            }
            let again = try exec("epipe-ingest", ["--root", root, "--settle", "0", "-q", dir])
            XCTAssertEqual(again.code, 0, again.err)
            let got = try stored(root)
            // the job ids are the reference's (same names, same content); the store holds the same objects
            XCTAssertEqual(got, want, s.name)
            XCTAssertEqual(temporaries(root), [], "\(s.name): the partial copy was completed by the rerun")
        }
    }
}
