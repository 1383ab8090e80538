import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// What epipe-status reports about a root (`--json` prints it as is, schema epipe.status/1): each
/// stage queue's counts, each job's state and its stages' status, progress and ETA, and with
/// `verify` whether every output still has the digest its manifest recorded. Reads only.
public struct StatusReport: Codable, Sendable {
    public struct StageState: Codable, Sendable {
        public var stage: String; public var status: String; public var percent: Double?; public var eta_seconds: Double?; public var seconds: Double?
        public var error: String?; public var metrics: [String: JSONValue]?; public var qc: [String]?
    }
    public struct JobState: Codable, Sendable {
        public var id: String; public var name: String; public var dir: String; public var state: String; public var created: String
        public var stages: [StageState]; public var verify: [String]?
    }
    public struct QueueState: Codable, Sendable { public var stage: String; public var new: Int; public var cur: Int; public var done: Int; public var failed: Int; public var stale: Int }

    public var schema = "epipe.status/1"
    public var root: String
    public var queues: [QueueState]
    public var jobs: [JobState]
    /// Jobs in all and per state; with verify, "mismatches".
    public var summary: [String: Int]
    /// The latest epipe-ingest run report (ROOT/ingest/runs/*.json; its counts, not its item list), with
    /// its path; nil before the first run.
    public var last_ingest: [String: JSONValue]?

    /// Outputs (and raw scans) whose digest differs from their record, or that are missing.
    public var mismatches: Int { summary["mismatches"] ?? 0 }

    /// The report on `ids` (every job when nil). `detail` adds each stage's metrics and QC pictures;
    /// `verify` re-hashes every output a complete manifest lists, and the raw scan; a claim older than
    /// `staleAfter` seconds without heartbeat counts as stale.
    public init(root r: Root, ids: [String]? = nil, detail: Bool = false, verify: Bool = false, staleAfter: Double = 600) {
        root = r.path
        last_ingest = Self.lastIngest(r)
        queues = Names.stages.map { s in
            let q = Queue(root: r, stage: s)
            let c = q.counts()
            let now = Date()
            let stale = q.entries("cur").filter { (Files.mtime(q.sub("cur") + "/" + $0).map { now.timeIntervalSince($0) } ?? 0) > staleAfter }.count
            return QueueState(stage: s, new: c.new, cur: c.cur, done: c.done, failed: c.failed, stale: stale)
        }
        var mismatches = 0
        jobs = (ids ?? r.allJobIDs()).map { id in
            let dir = r.jobsDir + "/" + id
            let job: Job
            do { job = try Job(dir: dir) } catch {
                return JobState(id: id, name: "?", dir: dir, state: "invalid", created: "", stages: [StageState(stage: "job", status: "invalid", error: describe(error))])
            }
            var notes: [String] = []
            let st = job.spec.stages.map { Self.stage($0, of: job, detail: detail, verify: verify, notes: &notes) }
            if verify, job.spec.raw.uri.hasPrefix("file://") {
                let p = String(job.spec.raw.uri.dropFirst(7))
                if let (h, _) = try? Digest.sha256(file: p) {
                    if h != job.spec.raw.sha256 { notes.append("\(p): raw scan sha256 differs from job.json") }
                } else { notes.append("\(p): raw scan missing") }
            }
            mismatches += notes.count
            return JobState(id: id, name: job.spec.name, dir: job.dir, state: Self.jobState(st.map { $0.status }), created: job.spec.created,
                            stages: st, verify: verify ? notes : nil)
        }
        summary = ["jobs": jobs.count]
        for s in jobs { summary[s.state, default: 0] += 1 }
        if verify { summary["mismatches"] = mismatches }
    }

    /// One stage of a job from its manifest: pending without one; a running stage whose worker on
    /// this host is gone is "dead"; progress gives percent and ETA. Verify notes go to `notes`.
    static func stage(_ s: String, of job: Job, detail: Bool, verify: Bool, notes: inout [String]) -> StageState {
        let mp = job.manifestPath(s)
        guard Files.exists(mp) else { return StageState(stage: s, status: "pending") }
        let m: StageManifest
        do { m = try StageManifest.load(mp) } catch { return StageState(stage: s, status: "invalid", error: describe(error)) }
        var ss = StageState(stage: s, status: m.status.rawValue, seconds: m.seconds, error: m.error)
        if m.status == .running {
            if m.host == Host.name && kill(m.pid, 0) != 0 && errno == ESRCH {
                ss.status = "dead"; ss.error = "worker pid \(m.pid) on \(m.host) is gone; rerun the stage"
            }
            if let p = m.progress, p.total > 0 {
                ss.percent = (100 * Double(p.done) / Double(p.total) * 10).rounded() / 10
                if let t0 = Time.parse(m.started), p.done > 0 {
                    let el = Date().timeIntervalSince(t0)
                    ss.eta_seconds = (el / Double(p.done) * Double(p.total - p.done)).rounded()
                }
            }
        }
        if detail { ss.metrics = m.metrics; ss.qc = m.outputs.map { $0.path }.filter { $0.hasSuffix(".png") }.map { job.dir + "/" + $0 } }
        if verify && m.status == .complete {
            for o in m.outputs {
                let p = job.dir + "/" + o.path
                if let (h, _) = try? Digest.sha256(file: p) {
                    if h != o.sha256 { notes.append("\(p): sha256 differs from \(s)/manifest.json") }
                } else { notes.append("\(p): missing") }
            }
        }
        return ss
    }

    /// A job's state from its stages' statuses: failed (any failed, invalid or dead), complete (all),
    /// running (any), partial (some complete), else queued.
    static func lastIngest(_ r: Root) -> [String: JSONValue]? {
        let dir = r.path + "/ingest/runs"
        guard let f = Files.list(dir).filter({ $0.hasSuffix(".json") }).sorted().last,
              let d = try? Files.read(dir + "/" + f), var o = (try? JSONDecoder().decode(JSONValue.self, from: d))?.objectValue else { return nil }
        o["items"] = nil
        o["path"] = .string(dir + "/" + f)
        return o
    }

    public static func jobState(_ statuses: [String]) -> String {
        if statuses.contains("failed") || statuses.contains("invalid") || statuses.contains("dead") { return "failed" }
        if statuses.allSatisfy({ $0 == "complete" }) { return "complete" }
        if statuses.contains("running") { return "running" }
        if statuses.contains("complete") { return "partial" }
        return "queued"
    }

    /// Job directories or job ids as ids of jobs under the root; an unknown one is bad input.
    public static func jobIDs(_ args: [String], root r: Root) throws -> [String] {
        try args.map { j in
            let id = j.contains("/") ? (Files.canonical(j) as NSString).lastPathComponent : j
            guard Files.exists(r.jobsDir + "/" + id + "/job.json") else { throw EpipeError.badInput("\(j): no such job under \(r.jobsDir)") }
            return id
        }
    }
}
