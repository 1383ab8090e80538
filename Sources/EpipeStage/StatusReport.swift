import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// What epipe-status reports about a root (`--json` prints it as is; schema epipe.status/1, documented
/// in epipe(5)): each stage queue's counts, throughput, oldest waiting event and failures; each job's
/// state and its stages' status, progress and ETA; with `detail` each stage's timings, memory, metrics,
/// outputs and last log lines and the command that retries a failed or stale job; with `verify`
/// whether every output still has the digest its manifest recorded, the files no manifest lists, and a
/// verdict per job. Reads only.
public struct StatusReport: Codable, Sendable {
    public struct StageState: Codable, Sendable {
        /// pending (listed, not run yet), running, complete, failed, skipped (not in the job's stages),
        /// stale (its claim's heartbeat is older than --stale-after), dead (running, its worker on this
        /// host is gone), invalid (an unreadable manifest).
        public var stage: String; public var status: String; public var percent: Double?; public var eta_seconds: Double?; public var seconds: Double?
        /// A stage run in parts (`--tiles N --tile I`): parts complete and parts in all, while it runs.
        public var parts_done: Int?; public var parts_total: Int?
        public var error: String?; public var metrics: [String: JSONValue]?; public var qc: [String]?
        public var started: String?; public var finished: String?; public var peak_rss_bytes: Int64?; public var host: String?
        /// Detail only: the stage's outputs (job-relative) and the last lines of its log.
        public var outputs: [String]?; public var log: [String]?
        init(stage: String, status: String) { self.stage = stage; self.status = status }
    }
    public struct JobState: Codable, Sendable {
        public var id: String; public var name: String; public var dir: String; public var state: String; public var created: String
        public var stages: [StageState]; public var verify: [String]?
        /// Detail: warnings every stage's metrics carry; for a failed or stale job, the shell command that retries it.
        public var warnings: [String]?; public var retry: String?
        /// Verify: files under the job directory that no manifest lists, and ok | orphans | damaged.
        public var orphans: [String]?; public var verdict: String?
    }
    public struct Failure: Codable, Sendable { public var job: String; public var error: String }
    public struct QueueState: Codable, Sendable {
        public var stage: String; public var new: Int; public var cur: Int; public var done: Int; public var failed: Int; public var stale: Int
        /// Jobs whose stage completed in the last hour and the last 24 hours (from the manifests).
        public var done_last_hour: Int; public var done_last_day: Int
        /// Age in seconds of the oldest entry waiting in new/; nil when none waits.
        public var oldest_waiting_seconds: Double?
        /// The jobs in failed/ with the first line of their error (at most `failuresShown`).
        public var failures: [Failure]
    }

    public var schema = "epipe.status/1"
    public var root: String
    public var generated: String
    public var queues: [QueueState]
    /// The jobs shown (after --state), in the order asked for.
    public var jobs: [JobState]
    /// Jobs in all and per state over the whole root ("jobs", "complete", ...); "shown" when filtered;
    /// with verify, "mismatches" and "orphans".
    public var summary: [String: Int]
    /// The latest epipe-ingest run report (ROOT/ingest/runs/*.json; its counts, not its item list), with
    /// its path; nil before the first run.
    public var last_ingest: [String: JSONValue]?

    /// Outputs (and raw scans) whose digest differs from their record, or that are missing.
    public var mismatches: Int { summary["mismatches"] ?? 0 }

    public static let jobStates = ["failed", "stale", "interrupted", "running", "partial", "queued", "complete", "invalid"]
    public static let failuresShown = 5

    public struct Query: Sendable {
        public var ids: [String]? = nil
        public var detail = false
        public var verify = false
        public var staleAfter: Double = 600
        /// Job states to keep (nil: all).
        public var states: Set<String>? = nil
        /// "time" (newest first) or "name".
        public var sort = "time"
        /// Log lines per stage in the detail view.
        public var logLines = 5
        public init(ids: [String]? = nil, detail: Bool = false, verify: Bool = false, staleAfter: Double = 600, states: Set<String>? = nil, sort: String = "time") {
            self.ids = ids; self.detail = detail; self.verify = verify; self.staleAfter = staleAfter; self.states = states; self.sort = sort
        }
    }

    public init(root r: Root, ids: [String]? = nil, detail: Bool = false, verify: Bool = false, staleAfter: Double = 600) {
        self.init(root: r, query: Query(ids: ids, detail: detail, verify: verify, staleAfter: staleAfter))
    }

    public init(root r: Root, query: Query, now: Date = Date()) {
        root = r.path
        generated = Time.iso(now)
        last_ingest = Self.lastIngest(r)
        let staleClaims = Self.staleClaims(r, staleAfter: query.staleAfter, now: now)
        let all = r.allJobIDs()
        let wanted = query.ids ?? all
        // Throughput needs every job's manifests; detail and verify only the jobs asked for.
        var finished: [String: [Date]] = [:]
        var states: [JobState] = []
        var mismatches = 0, orphans = 0
        var errors: [String: [String: String]] = [:]   // stage -> job id -> first error line
        let wantedSet = Set(wanted)
        for id in all {
            let shown = wantedSet.contains(id)
            var js = Self.job(r, id: id, detail: shown && query.detail, staleClaims: staleClaims, logLines: query.logLines)
            for s in js.job.stages {
                if let f = s.finished.flatMap(Time.parse), s.status == "complete" { finished[s.stage, default: []].append(f) }
                if s.status == "failed", let e = Self.firstLine(s.error) { errors[s.stage, default: [:]][id] = e }
            }
            guard shown else { continue }
            if query.verify {
                let v = StatusVerify.check(r, id: id, spec: js.spec)
                js.job.verify = v.problems; js.job.orphans = v.orphans; js.job.verdict = v.verdict
                mismatches += v.problems.count; orphans += v.orphans.count
            }
            states.append(js.job)
        }
        queues = Names.stages.map { s in
            let q = Queue(root: r, stage: s)
            let c = q.counts()
            let ends = finished[s] ?? []
            let waiting = q.entries("new").compactMap { Files.mtime(q.sub("new") + "/" + $0) }.min()
            let failed = q.entries("failed").prefix(Self.failuresShown).map { id in
                Failure(job: id, error: errors[s]?[id] ?? Self.firstLine(Job.errorLine(r, id: id, stage: s)) ?? "no error recorded (see jobs/\(id)/logs/\(s).log)")
            }
            return QueueState(stage: s, new: c.new, cur: c.cur, done: c.done, failed: c.failed,
                              stale: staleClaims.filter { $0.stage == s }.count,
                              done_last_hour: ends.filter { now.timeIntervalSince($0) <= 3600 }.count,
                              done_last_day: ends.filter { now.timeIntervalSince($0) <= 86400 }.count,
                              oldest_waiting_seconds: waiting.map { max(0, now.timeIntervalSince($0).rounded()) },
                              failures: Array(failed))
        }
        var summary = ["jobs": states.count]
        for s in states { summary[s.state, default: 0] += 1 }
        if let keep = query.states {
            states = states.filter { keep.contains($0.state) }
            summary["shown"] = states.count
        }
        switch query.sort {
        case "name": states.sort { ($0.name, $0.id) < ($1.name, $1.id) }
        default: states.sort { ($0.created, $0.id) > ($1.created, $1.id) }
        }
        if query.verify { summary["mismatches"] = mismatches; summary["orphans"] = orphans }
        jobs = states
        self.summary = summary
    }

    /// One job's state; its spec when job.json is readable.
    static func job(_ r: Root, id: String, detail: Bool, staleClaims: [StaleClaim], logLines: Int) -> (job: JobState, spec: JobSpec?) {
        let dir = r.jobsDir + "/" + id
        let job: Job
        do { job = try Job(dir: dir) } catch {
            var s = StageState(stage: "job", status: "invalid"); s.error = describe(error)
            return (JobState(id: id, name: "?", dir: dir, state: "invalid", created: "", stages: [s]), nil)
        }
        let st = Names.stages.map { s -> StageState in
            guard job.spec.stages.contains(s) else { return StageState(stage: s, status: "skipped") }
            return stage(s, of: job, detail: detail, stale: staleClaims.first { $0.stage == s && $0.id == id }, logLines: logLines)
        }
        var js = JobState(id: id, name: job.spec.name, dir: job.dir, state: Self.jobState(st.map { $0.status }), created: job.spec.created, stages: st)
        if detail {
            var w: [String] = []
            for s in st { for x in s.metrics?["warnings"]?.arrayValue ?? [] { w.append("\(s.stage): " + (x.stringValue ?? "\(x)")) } }
            js.warnings = w
            js.retry = retryCommand(job, stages: st, root: r)
        }
        return (js, job.spec)
    }

    /// One stage of a job from its manifest: pending without one; a running stage whose worker on
    /// this host is gone is "dead", one whose claim has no heartbeat is "stale"; progress gives
    /// percent and ETA.
    static func stage(_ s: String, of job: Job, detail: Bool, stale: StaleClaim?, logLines: Int) -> StageState {
        let mp = job.manifestPath(s)
        var ss = StageState(stage: s, status: "pending")
        if detail { ss.log = tail(job.logPath(s), logLines) }
        guard Files.exists(mp) else {
            if let c = stale { ss.status = "stale"; ss.error = c.describe }
            return ss
        }
        let m: StageManifest
        do { m = try StageManifest.load(mp) } catch { ss.status = "invalid"; ss.error = describe(error); return ss }
        ss.status = m.status.rawValue; ss.seconds = m.seconds; ss.error = m.error
        ss.started = m.started; ss.finished = m.finished; ss.peak_rss_bytes = m.peak_rss_bytes; ss.host = m.host
        if m.status == .running, let p = m.progress, p.unit == "parts" {
            // parts run as independent workers (any host, any pid): no single worker to be gone
            ss.parts_done = p.done; ss.parts_total = p.total
            ss.percent = p.total > 0 ? (100 * Double(p.done) / Double(p.total) * 10).rounded() / 10 : nil
        } else if m.status == .running {
            if let c = stale {
                ss.status = "stale"; ss.error = c.describe
            } else if m.host == Host.name && kill(m.pid, 0) != 0 && errno == ESRCH {
                let q = Queue(root: job.root, stage: s)
                if !q.claims(of: job.spec.id).isEmpty {
                    // another worker holds it now and has not yet written its own manifest
                } else if Files.exists(q.sub("new") + "/" + job.spec.id) {
                    ss.status = "pending"; ss.error = "requeued: worker pid \(m.pid) on \(m.host) stopped"
                } else {
                    ss.status = "dead"; ss.error = "worker pid \(m.pid) on \(m.host) is gone; rerun the stage"
                }
            }
            if ss.status == "running", let p = m.progress, p.total > 0 {
                ss.percent = (100 * Double(p.done) / Double(p.total) * 10).rounded() / 10
                // a worker whose clock runs ahead wrote a start in the future: no ETA rather than a negative one
                if let t0 = Time.parse(m.started), p.done > 0, Date().timeIntervalSince(t0) > 0 {
                    let el = Date().timeIntervalSince(t0)
                    ss.eta_seconds = (el / Double(p.done) * Double(p.total - p.done)).rounded()
                }
            }
        }
        if detail {
            ss.metrics = m.metrics
            ss.outputs = m.outputs.map { $0.path }
            ss.qc = m.outputs.map { $0.path }.filter { $0.hasSuffix(".png") }.map { job.dir + "/" + $0 }
        }
        return ss
    }

    /// The shell command that retries a failed, dead or stale job from its first such stage through
    /// the rest of its stages.
    static func retryCommand(_ job: Job, stages: [StageState], root: Root) -> String? {
        guard let bad = stages.first(where: { ["failed", "dead", "stale", "invalid", "interrupted"].contains($0.status) }),
              let i = job.spec.stages.firstIndex(of: bad.stage) else { return nil }
        let rest = job.spec.stages[(i + 1)...].map { "epipe-" + $0 }
        let pipe = (["epipe-\(bad.stage) \(shellQuote(job.dir))"] + rest).joined(separator: " | ")
        if bad.status == "stale" {
            return "epipe-status --root \(shellQuote(root.path)) --requeue-stale && epipe-\(bad.stage) --root \(shellQuote(root.path)) --drain"
        }
        return pipe
    }

    /// A stale claim of a stage's queue.
    public struct StaleClaim: Sendable {
        public var stage: String; public var claim: Queue.StaleClaim
        var id: String { claim.id }
        var describe: String { claim.describe }
    }

    public static func staleClaims(_ r: Root, staleAfter: Double, now: Date = Date()) -> [StaleClaim] {
        Names.stages.flatMap { s in Queue(root: r, stage: s).staleClaims(staleAfter: staleAfter, now: now).map { StaleClaim(stage: s, claim: $0) } }
    }

    static func lastIngest(_ r: Root) -> [String: JSONValue]? {
        let dir = r.path + "/ingest/runs"
        guard let f = Files.list(dir).filter({ $0.hasSuffix(".json") }).sorted().last,
              let d = try? Files.read(dir + "/" + f), var o = (try? JSONDecoder().decode(JSONValue.self, from: d))?.objectValue else { return nil }
        o["items"] = nil
        o["path"] = .string(dir + "/" + f)
        return o
    }

    /// A job's state from its stages' statuses (skipped ones aside): failed (any failed or invalid),
    /// stale (any stale or dead: the work stopped and can be given back), interrupted (a stage stopped
    /// by SIGTERM/SIGINT and not run since: rerun it), complete (all), running (any), partial (some
    /// complete), else queued.
    public static func jobState(_ all: [String]) -> String {
        let statuses = all.filter { $0 != "skipped" }
        if statuses.contains("failed") || statuses.contains("invalid") { return "failed" }
        if statuses.contains("stale") || statuses.contains("dead") { return "stale" }
        if statuses.contains("interrupted") { return "interrupted" }
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

    static func firstLine(_ s: String?) -> String? {
        s.flatMap { $0.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) }
    }

    /// The last `n` lines of a log file (reads only its end).
    static func tail(_ path: String, _ n: Int) -> [String]? {
        guard n > 0, let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        let from = size > 65536 ? size - 65536 : 0
        try? h.seek(toOffset: from)
        let text = String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        if from > 0 && !lines.isEmpty { lines.removeFirst() }
        return Array(lines.suffix(n))
    }
}

/// A word for a POSIX shell: as is when it is plain, else in single quotes.
public func shellQuote(_ s: String) -> String {
    let plain = s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-+:=@,".unicodeScalars.contains($0) }
    return plain && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

extension Job {
    /// The error a stage's manifest records for a job, if it has one.
    static func errorLine(_ r: Root, id: String, stage: String) -> String? {
        (try? StageManifest.load(r.jobsDir + "/" + id + "/" + stage + "/manifest.json"))?.error
    }
}
