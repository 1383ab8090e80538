import XCTest
import Foundation
import EpipeCore
import EpipeStore
import EpipeTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Issue 15, nothing lost, nothing corrupted: every stage killed with SIGKILL at many points of a run
/// on a small generated job, then run again.
///
/// The table (`rows`) says, per stage, what the root must hold before it (commands run once into a
/// template root) and the command under test; covering a new stage is one row and a one-line test.
/// For a row: one uninterrupted run (traced with `EPIPE_FAULT=trace:FILE`, see `Fault`) gives the
/// reference: its time, how often each named point was reached, and a fingerprint of the root (every
/// file under jobs/ with its sha256, the complete manifests' outputs, job.json, the store's objects,
/// the ledger, where each job sits in each queue). Then for each kill point the template is restored
/// and the stage started and killed with SIGKILL: (a) after a time spread over the measured run, (b) at
/// a named point, the first, middle and last time it is reached (`EPIPE_FAULT=kill@NAME#N`). A stage
/// that can drain runs as a drain worker in every other trial. Right after the kill no manifest may say
/// complete while an output or input it lists is missing or differs, no ledger entry or job.json may
/// point at a missing or different object, and every manifest must still read. Then the same command
/// runs again and must exit 0 with the reference's fingerprint (outputs equal by sha256, the job once
/// in each queue it was in, in the same folder, no file the uninterrupted run does not leave), no
/// temporary file left under the root, and (every third trial) `epipe-status --verify` must call the
/// job ok (no damage, no orphans).
final class CrashTests: E2ECase {
    nonisolated(unsafe) static var server: SeaweedFS?
    override class func tearDown() { server?.stop(); server = nil; super.tearDown() }

    /// One stage under test. In the commands, ROOT, JOB, SCANS (two scans and a 12 MiB file), SCAN (one
    /// scan), S3 (a fresh s3:// prefix per run) and ENDPOINT are replaced.
    struct Row {
        let name: String
        /// Run in order into the template root (the scan is ingested first for a stage's row).
        let before: [[String]]
        /// The command under test.
        let run: [String]
        /// Whether every other trial runs it as a drain worker (`--root ROOT --drain`) instead.
        var drains = false
    }

    static let ingestScan = ["epipe-ingest", "--root", "ROOT", "--settle", "0", "-q", "--param", "denoise.band=64", "--param", "segment.tile=128", "--param", "stats.perms=200", "SCAN"]
    let rows: [Row] = [
        Row(name: "ingest-file", before: [], run: ["epipe-ingest", "--root", "ROOT", "--settle", "0", "-q", "SCANS"]),
        Row(name: "ingest-s3", before: [], run: ["epipe-ingest", "--root", "ROOT", "--settle", "0", "-q", "--to", "S3", "--endpoint", "ENDPOINT",
                                                 "--part-size", "5", "--parallel", "2", "SCANS"]),
        Row(name: "denoise", before: [ingestScan], run: ["epipe-denoise", "-q", "JOB"], drains: true),
        Row(name: "segment", before: [ingestScan, ["epipe-denoise", "-q", "JOB"]], run: ["epipe-segment", "-q", "JOB"], drains: true),
        Row(name: "cluster", before: [ingestScan, ["epipe-denoise", "-q", "JOB"], ["epipe-segment", "-q", "JOB"]], run: ["epipe-cluster", "-q", "JOB"], drains: true),
        Row(name: "stats", before: [ingestScan, ["epipe-denoise", "-q", "JOB"], ["epipe-segment", "-q", "JOB"], ["epipe-cluster", "-q", "JOB"]],
            run: ["epipe-stats", "-q", "JOB"], drains: true),
        Row(name: "denoise-merge", before: [ingestScan, ["epipe-denoise", "-q", "--tiles", "2", "--tile", "0", "JOB"], ["epipe-denoise", "-q", "--tiles", "2", "--tile", "1", "JOB"]],
            run: ["epipe-denoise", "-q", "--merge", "JOB"]),
        Row(name: "segment-merge", before: [ingestScan, ["epipe-denoise", "-q", "JOB"], ["epipe-segment", "-q", "--tiles", "2", "--tile", "0", "JOB"],
                                            ["epipe-segment", "-q", "--tiles", "2", "--tile", "1", "JOB"]],
            run: ["epipe-segment", "-q", "--merge", "JOB"]),
    ]

    func testIngestToFileStore() throws { try crash("ingest-file") }
    func testIngestToS3() throws { try crash("ingest-s3") }
    func testDenoise() throws { try crash("denoise") }
    func testSegment() throws { try crash("segment") }
    func testCluster() throws { try crash("cluster") }
    func testStats() throws { try crash("stats") }
    func testDenoiseMerge() throws { try crash("denoise-merge") }
    func testSegmentMerge() throws { try crash("segment-merge") }

    /// Kills by time per row (spread over the measured run), and at most this many named points.
    let timeKills = 8, namedKillsMax = 12

    // MARK: - the harness

    var root: String { tmp + "/root" }
    var template: String { tmp + "/template" }
    var s3Prefix = "raw"
    var s3Client: S3Client?
    var weed: SeaweedFS? { Self.server }
    var env: [String: String] { weed.map { ["AWS_ACCESS_KEY_ID": $0.accessKey, "AWS_SECRET_ACCESS_KEY": $0.secretKey, "HOME": tmp] } ?? [:] }

    /// The scanner's folders: SCANS (two scans and a 12 MiB file that travels: two 8 MiB blocks to a
    /// file store, three 5 MiB parts to S3) and SCAN (one scan, 384 x 384 x 4: 6 bands of 64 rows,
    /// 3 tile rows of 128).
    func scanner() throws {
        _ = try synth(tmp + "/scans", count: 2, size: 256, channels: 3, seed: 7, name: "s")
        var data = Data(count: 12 << 20)
        data.withUnsafeMutableBytes { p in var s: UInt64 = 11; for i in 0..<p.count { s = s &* 6364136223846793005 &+ 1442695040888963407; p[i] = UInt8(truncatingIfNeeded: s >> 33) } }
        try data.write(to: URL(fileURLWithPath: tmp + "/scans/archive.bin"))
        _ = try synth(tmp + "/scan", count: 1, size: 384, channels: 4, seed: 3, name: "t")
        for f in Files.list(tmp + "/scans") + Files.list(tmp + "/scan").map({ "../scan/" + $0 }) {
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: tmp + "/scans/" + f)
        }
    }

    func words(_ cmd: [String], job: String?) -> [String] {
        cmd.map { w in
            switch w {
            case "ROOT": return root
            case "JOB": return job ?? "JOB?"
            case "SCANS": return tmp + "/scans"
            case "SCAN": return tmp + "/scan"
            case "S3": return "s3://scans/" + s3Prefix
            case "ENDPOINT": return weed?.endpoint ?? "ENDPOINT?"
            default: return w
            }
        }
    }

    /// The command of a trial: the row's, or its drain-worker form.
    func command(_ row: Row, job: String?, drain: Bool) -> [String] {
        drain ? [row.run[0], "-q", "--root", root, "--drain"] : words(row.run, job: job)
    }

    func restore() throws {
        try? FileManager.default.removeItem(atPath: root)
        let r = try exec("/bin/cp", ["-a", template, root])
        XCTAssertEqual(r.code, 0, r.err)
    }

    /// The job of a stage's row (the one the template holds).
    func theJob() -> String? { (try? Root(root, create: false))?.allJobIDs().first.map { root + "/jobs/" + $0 } }

    struct Launch { var code: Int32; var killed: Bool; var seconds: Double; var err: String }

    /// Runs `args` with `extraEnv`; with `killAfter`, SIGKILLs it after that many seconds.
    func launch(_ args: [String], extraEnv: [String: String] = [:], killAfter: Double? = nil) throws -> Launch {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path(args[0]))
        p.arguments = Array(args.dropFirst())
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env.merging(extraEnv, uniquingKeysWith: { $1 }) { e[k] = v }
        p.environment = e
        let errFile = tmp + "/launch.err"
        FileManager.default.createFile(atPath: errFile, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errFile))
        p.standardInput = FileHandle.nullDevice
        let t0 = Date()
        try p.run()
        if let k = killAfter {
            usleep(useconds_t(max(0, k) * 1e6))
            kill(p.processIdentifier, SIGKILL)
        }
        let deadline = Date().addingTimeInterval(300)
        while p.isRunning && Date() < deadline { usleep(2000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        let killed = p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL
        return Launch(code: p.terminationStatus, killed: killed, seconds: Date().timeIntervalSince(t0),
                      err: (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "")
    }

    struct Outcome { var point: String; var killed: Bool; var rerun: String }

    func crash(_ name: String) throws {
        let row = try XCTUnwrap(rows.first { $0.name == name })
        let usesS3 = row.run.contains("S3")
        if usesS3 {
            if Self.server == nil { Self.server = try SeaweedFS.start() }
            let w = weed!
            let c = try S3Client(config: S3Config(credentials: S3Credentials(accessKeyId: w.accessKey, secretAccessKey: w.secretKey),
                                                  endpoint: w.endpoint, retries: 2, backoffBase: 0.05))
            try? c.createBucket("scans")
            s3Client = c
        }
        try scanner()
        // the template: the root as the stage finds it
        _ = try Root(root, create: true)
        for cmd in row.before {
            let r = try exec(cmd[0], Array(words(cmd, job: theJob()).dropFirst()), env: env)
            XCTAssertEqual(r.code, 0, "\(name) setup \(cmd.joined(separator: " ")): \(r.err)")
        }
        try FileManager.default.moveItem(atPath: root, toPath: template)

        // the reference: one run, traced
        try restore()
        s3Prefix = "ref"
        let trace = tmp + "/trace"
        let ref = try launch(command(row, job: theJob(), drain: false), extraEnv: ["EPIPE_FAULT": "trace:" + trace])
        XCTAssertEqual(ref.code, 0, "\(name) reference run: \(ref.err)")
        let expected = try fingerprint()
        // its time: the shorter of it and a second run (the first may pay for a cold server or cache)
        try restore()
        s3Prefix = "ref2"
        let trace2 = tmp + "/trace2"
        let ref2 = try launch(command(row, job: theJob(), drain: false), extraEnv: ["EPIPE_FAULT": "trace:" + trace2])
        XCTAssertEqual(ref2.code, 0, "\(name) second reference run: \(ref2.err)")
        XCTAssertFalse(expected.isEmpty)
        let hits = ((try? String(contentsOfFile: trace, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        var counts: [String: Int] = [:], order: [String] = [], counts2: [String: Int] = [:]
        for h in hits { if counts[h] == nil { order.append(h) }; counts[h, default: 0] += 1 }
        for h in ((try? String(contentsOfFile: trace2, encoding: .utf8)) ?? "").split(separator: "\n") { counts2[String(h), default: 0] += 1 }
        // a point reached a varying number of times (a retry, a timer) counts as often as the fewer run reached it
        for (n, c) in counts { counts[n] = min(c, counts2[n] ?? 0) }
        order = order.filter { counts[$0]! > 0 }
        XCTAssertFalse(counts.isEmpty, "\(name): no fault point reached (EPIPE_FAULT=trace)")

        // the kill points: by time, then named (first, middle, last of each, in the order first reached)
        var points: [(label: String, fault: String?, after: Double?)] = []
        let T = min(ref.seconds, ref2.seconds)
        for i in 0..<timeKills {
            let t = T * (Double(i) + 0.5) / Double(timeKills)
            points.append((String(format: "t=%.3fs", t), nil, t))
        }
        var named: [(String, Int)] = []
        for n in order {
            let c = counts[n]!
            for k in Array(Set([1, (c + 1) / 2, c])).sorted() { named.append((n, k)) }
        }
        if named.count > namedKillsMax {   // keep every name's first, then spread the rest
            let firsts = named.filter { $0.1 == 1 }, rest = named.filter { $0.1 != 1 }
            let room = max(0, namedKillsMax - firsts.count)
            named = firsts + (0..<min(room, rest.count)).map { rest[$0 * rest.count / max(1, min(room, rest.count))] }
        }
        for (n, k) in named { points.append(("\(n)#\(k)", "kill@\(n)#\(k)", nil)) }

        var outcomes: [Outcome] = []
        for (i, pt) in points.enumerated() {
            try restore()
            s3Prefix = "t\(i)"
            let drain = row.drains && i % 2 == 1
            let what = "\(name) \(pt.label)\(drain ? " (drain)" : "")"
            let cmd = command(row, job: theJob(), drain: drain)
            let l = try launch(cmd, extraEnv: pt.fault.map { ["EPIPE_FAULT": $0] } ?? [:], killAfter: pt.after)
            if pt.fault != nil { XCTAssertTrue(l.killed, "\(what): the named point was not reached (exit \(l.code)): \(l.err)") }
            if !l.killed { XCTAssertEqual(l.code, 0, "\(what): \(l.err)") }
            // right after the kill: nothing says complete that is not
            checkNothingFalse(what)
            // the rerun
            let again = try launch(cmd)
            XCTAssertEqual(again.code, 0, "\(what): the rerun failed: \(again.err)")
            let got = try fingerprint()
            if got != expected {
                let keys = Set(got.keys).union(expected.keys).filter { got[$0] != expected[$0] }.sorted()
                XCTFail("\(what): after the rerun the root differs from an uninterrupted run's in \(keys.count) entries: "
                        + keys.prefix(6).map { "\($0): \(expected[$0] ?? "(none)") vs \(got[$0] ?? "(none)")" }.joined(separator: "; "))
            }
            for (k, v) in got where k.hasPrefix("queue ") {
                XCTAssertLessThanOrEqual(v.split(separator: ",").count, 1, "\(what): \(k): the job is in the queue more than once (\(v))")
            }
            let debris = temporaries()
            XCTAssertEqual(debris, [], "\(what): temporary files left after the rerun")
            checkNothingFalse(what + " rerun")
            if i % 3 == 0 || i == points.count - 1 { try checkVerify(what) }   // the same from epipe-status (a process: every third)
            outcomes.append(Outcome(point: pt.label + (drain ? " (drain)" : ""), killed: l.killed, rerun: again.code == 0 ? "ok" : "exit \(again.code)"))
        }
        let killed = outcomes.filter(\.killed).count
        print("crash \(name): run \(String(format: "%.2f", T)) s; \(points.count) kill points, \(killed) killed mid-run, \(points.count - killed) finished first; "
              + "named points reached: " + order.map { "\($0) x\(counts[$0]!)" }.joined(separator: ", "))
        print("crash \(name): " + outcomes.map { "\($0.point)\($0.killed ? "" : " (finished)") \($0.rerun)" }.joined(separator: " | "))
        XCTAssertGreaterThanOrEqual(points.count, 20, "\(name): at least 20 kill points")
        XCTAssertGreaterThanOrEqual(killed, points.count / 2, "\(name): most points must kill the run mid-way")
    }

    // MARK: - checks

    var rootObj: Root? { try? Root(root, create: false) }

    /// Right after a kill: every manifest reads; a complete one's outputs (and job-relative inputs)
    /// are there with the sizes and sha256 it lists; every ledger entry and job.json names an object
    /// that is there with its sha256; every queue entry names a registered job.
    func checkNothingFalse(_ what: String) {
        guard let r = rootObj else { XCTFail("\(what): the root does not open"); return }
        for id in Files.list(r.jobsDir) where !id.hasPrefix(".") {
            let dir = r.jobsDir + "/" + id
            guard Files.exists(dir + "/job.json") else { continue }
            guard let job = try? Job(dir: dir) else { XCTFail("\(what): \(dir)/job.json does not read"); continue }
            checkObject(job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes, what: "\(what): job.json of \(id)")
            var manifests: [String] = []
            for s in Names.stages {
                manifests.append(dir + "/" + s + "/manifest.json")
                for p in Files.list(dir + "/" + s + "/parts") { manifests.append(dir + "/" + s + "/parts/" + p + "/manifest.json") }
            }
            for mp in manifests where Files.exists(mp) {
                let m: StageManifest
                do { m = try StageManifest.load(mp) } catch { XCTFail("\(what): \(mp) does not read: \(error)"); continue }
                guard m.status == .complete else { continue }
                for o in m.outputs {
                    let p = dir + "/" + o.path
                    guard let (h, n) = try? Digest.sha256(file: p) else { XCTFail("\(what): \(mp) says complete but \(o.path) is missing"); continue }
                    XCTAssertEqual(h, o.sha256, "\(what): \(mp) says complete but \(o.path) is not the file it lists (partial or stale)")
                    if let b = o.bytes { XCTAssertEqual(n, b, "\(what): \(o.path) size") }
                }
                for i in m.inputs where !i.path.contains("://") {
                    guard let (h, _) = try? Digest.sha256(file: dir + "/" + i.path) else { continue }
                    XCTAssertEqual(h, i.sha256, "\(what): \(mp) says complete but its input \(i.path) has changed since (stale)")
                }
            }
        }
        for e in (try? Ledger(dir: r.ledgerDir))?.all() ?? [] {
            checkObject(e.dest, sha256: e.sha256, bytes: e.bytes, what: "\(what): ledger entry of \(e.source)")
        }
        for s in Names.stages {
            let q = Queue(root: r, stage: s)
            for sub in ["new", "cur"] {
                for n in q.entries(sub) {
                    let id = n.split(separator: "@").first.map(String.init) ?? n
                    XCTAssertTrue(Files.exists(r.jobsDir + "/" + id + "/job.json"), "\(what): queue/\(s)/\(sub)/\(n) names no registered job")
                }
            }
        }
    }

    /// An object of the store (file:// or s3://) is there with this sha256 and size.
    func checkObject(_ uri: String, sha256: String, bytes: Int64, what: String) {
        if uri.hasPrefix("file://") {
            let got = try? Digest.sha256(file: String(uri.dropFirst(7)))
            XCTAssertEqual(got?.hex, sha256, "\(what): \(uri) missing or different")
            XCTAssertEqual(got?.bytes, bytes, "\(what): \(uri) size")
        } else if uri.hasPrefix("s3://"), let c = s3Client {
            let parts = uri.dropFirst(5).split(separator: "/", maxSplits: 1).map(String.init)
            let info = try? c.headObject(bucket: parts[0], key: parts[1])
            XCTAssertEqual(info?.size, bytes, "\(what): \(uri) missing or of another size")
            XCTAssertEqual(info?.metadata["sha256"], sha256, "\(what): \(uri) has another sha256")
        } else {
            XCTFail("\(what): \(uri): unexpected URI")
        }
    }

    /// What an uninterrupted run leaves, as name -> value.
    func fingerprint() throws -> [String: String] {
        var f: [String: String] = [:]
        let r = try Root(root, create: false)
        let norm = { (s: String) in s.replacingOccurrences(of: "s3://scans/" + self.s3Prefix + "/", with: "s3://scans/PREFIX/") }
        // every file under jobs/ but logs, manifests and locks, with its sha256
        if let walk = FileManager.default.enumerator(atPath: r.jobsDir) {
            while let rel = walk.nextObject() as? String {
                if let t = walk.fileAttributes?[.type] as? FileAttributeType, t == .typeDirectory { continue }
                let name = (rel as NSString).lastPathComponent
                if rel.split(separator: "/").dropFirst().first == "logs" || name == "manifest.json" || name.hasSuffix(".lock") { continue }
                if name == "job.json" {
                    var spec = try Job(dir: r.jobsDir + "/" + (rel as NSString).deletingLastPathComponent).spec
                    spec.created = ""; spec.raw.uri = norm(spec.raw.uri); spec.markers = spec.markers.map(norm)
                    f["jobs/" + rel] = String(decoding: try JSON.encode(spec), as: UTF8.self)
                    continue
                }
                f["jobs/" + rel] = try Digest.sha256(file: r.jobsDir + "/" + rel).hex
            }
        }
        // each manifest's status and outputs; where each job is in each queue
        for id in r.allJobIDs() {
            for s in Names.stages {
                if let m = try? StageManifest.load(r.jobsDir + "/" + id + "/" + s + "/manifest.json") {
                    f["manifest \(id)/\(s)"] = m.status.rawValue + " " + m.outputs.map { "\($0.path)=\($0.sha256)" }.joined(separator: ",")
                }
                f["queue \(s) \(id)"] = Queue(root: r, stage: s).places(of: id).joined(separator: ",")
            }
        }
        // the store: the file store's files; the S3 objects that job.json and the ledger name
        if let walk = FileManager.default.enumerator(atPath: r.storeDir) {
            while let rel = walk.nextObject() as? String {
                if let t = walk.fileAttributes?[.type] as? FileAttributeType, t == .typeDirectory { continue }
                f["store/" + rel] = try Digest.sha256(file: r.storeDir + "/" + rel).hex
            }
        }
        for e in try Ledger(dir: r.ledgerDir).all() {
            f["ledger " + e.source] = "\(e.sha256) \(e.bytes) \(norm(e.dest)) \(e.job ?? "-") \(e.verified != nil)"
            if e.dest.hasPrefix("s3://"), let c = s3Client {
                let parts = e.dest.dropFirst(5).split(separator: "/", maxSplits: 1).map(String.init)
                let info = try c.headObject(bucket: parts[0], key: parts[1])
                var v = "\(info?.size ?? -1) \(info?.metadata["sha256"] ?? "-") \(info?.etag ?? "-")"
                if let info, info.size <= 4 << 20 { v += " " + Digest.sha256(try c.getObject(bucket: parts[0], key: parts[1])) }
                f["s3 " + norm(e.dest)] = v
            }
        }
        if let c = s3Client {
            f["s3 incomplete uploads"] = "\(try c.listMultipartUploads(bucket: "scans", prefix: s3Prefix + "/").count)"
        }
        return f
    }

    /// Temporary files and folders anywhere under the root (and the raw-image cache of a stage).
    func temporaries() -> [String] {
        var found: [String] = []
        guard let walk = FileManager.default.enumerator(atPath: root) else { return [] }
        while let rel = walk.nextObject() as? String {
            let n = (rel as NSString).lastPathComponent
            if AtomicFile.isTemporary(n) || n.hasPrefix(".partial-") || n.hasSuffix(".partial") || n == ".cache" { found.append(rel) }
        }
        return found
    }

    /// epipe-status --verify: every job ok (no output damaged or missing, no orphan file).
    func checkVerify(_ what: String) throws {
        let v = try exec("epipe-status", ["--root", root, "--verify", "--json"], env: env)
        guard let o = try? JSONSerialization.jsonObject(with: Data(v.out.utf8)) as? [String: Any], let jobs = o["jobs"] as? [[String: Any]] else {
            XCTFail("\(what): epipe-status --verify --json: \(v.err)"); return
        }
        for j in jobs {
            XCTAssertEqual(j["verdict"] as? String, "ok", "\(what): \(j["id"] ?? "?"): verify \(j["verify"] ?? []) orphans \(j["orphans"] ?? [])")
        }
    }
}
