import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage
#if canImport(Glibc)
import Glibc
#endif

@main
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-status",
        abstract: "Show queues, job states, progress and ETA, errors, QC pictures; verify outputs. Reads only.",
        discussion: """
        Without job arguments: a table of the queues and of every job. With job directories or ids: \
        each stage's status, metrics, error, the last log lines and where its QC pictures are. \
        --verify re-hashes every output a complete manifest lists (and the raw scan) and reports any \
        mismatch (exit 1).
        """)

    @Option(name: .long, help: "The epipe root (else $EPIPE_ROOT, else ./epipe-data).")
    var root: String?

    @Flag(name: .long, help: "Machine-readable JSON on stdout.")
    var json = false

    @Flag(name: .long, help: "Re-hash outputs and raw scans and compare with the manifests.")
    var verify = false

    @Option(name: .long, help: "Claims older than this many seconds without heartbeat are reported stale.")
    var staleAfter: Double = 600

    @Argument(help: "Job directories or job ids for a detailed view.")
    var jobs: [String] = []

    struct StageState: Codable { var stage: String; var status: String; var percent: Double?; var eta_seconds: Double?; var seconds: Double?; var error: String?; var metrics: [String: JSONValue]?; var qc: [String]? }
    struct JobState: Codable { var id: String; var name: String; var dir: String; var state: String; var created: String; var stages: [StageState]; var verify: [String]? }
    struct QueueState: Codable { var stage: String; var new: Int; var cur: Int; var done: Int; var failed: Int; var stale: Int }
    struct Report: Codable { var schema = "epipe.status/1"; var root: String; var queues: [QueueState]; var jobs: [JobState]; var summary: [String: Int] }

    func run() throws {
        let r = try Root(Root.resolve(root), create: false)
        var queues: [QueueState] = []
        for s in Names.stages {
            let q = Queue(root: r, stage: s)
            let c = q.counts()
            let now = Date()
            let stale = q.entries("cur").filter { (Files.mtime(q.sub("cur") + "/" + $0).map { now.timeIntervalSince($0) } ?? 0) > staleAfter }.count
            queues.append(QueueState(stage: s, new: c.new, cur: c.cur, done: c.done, failed: c.failed, stale: stale))
        }
        var ids = r.allJobIDs()
        if !jobs.isEmpty {
            ids = try jobs.map { j in
                let id = j.contains("/") ? (Files.canonical(j) as NSString).lastPathComponent : j
                guard Files.exists(r.jobsDir + "/" + id + "/job.json") else { throw EpipeError.badInput("\(j): no such job under \(r.jobsDir)") }
                return id
            }
        }
        var states: [JobState] = []
        var mismatches = 0
        for id in ids {
            let dir = r.jobsDir + "/" + id
            let job: Job
            do { job = try Job(dir: dir) } catch {
                states.append(JobState(id: id, name: "?", dir: dir, state: "invalid", created: "", stages: [StageState(stage: "job", status: "invalid", error: describe(error))]))
                continue
            }
            var st: [StageState] = []
            var verifyNotes: [String] = []
            for s in job.spec.stages {
                let mp = job.manifestPath(s)
                guard Files.exists(mp) else { st.append(StageState(stage: s, status: "pending")); continue }
                let m: StageManifest
                do { m = try StageManifest.load(mp) } catch { st.append(StageState(stage: s, status: "invalid", error: describe(error))); continue }
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
                if !jobs.isEmpty { ss.metrics = m.metrics; ss.qc = m.outputs.map { $0.path }.filter { $0.hasSuffix(".png") }.map { job.dir + "/" + $0 } }
                if verify && m.status == .complete {
                    for o in m.outputs {
                        let p = job.dir + "/" + o.path
                        if let (h, _) = try? Digest.sha256(file: p) {
                            if h != o.sha256 { verifyNotes.append("\(p): sha256 differs from \(s)/manifest.json"); mismatches += 1 }
                        } else { verifyNotes.append("\(p): missing"); mismatches += 1 }
                    }
                }
                st.append(ss)
            }
            if verify, job.spec.raw.uri.hasPrefix("file://") {
                let p = String(job.spec.raw.uri.dropFirst(7))
                if let (h, _) = try? Digest.sha256(file: p) {
                    if h != job.spec.raw.sha256 { verifyNotes.append("\(p): raw scan sha256 differs from job.json"); mismatches += 1 }
                } else { verifyNotes.append("\(p): raw scan missing"); mismatches += 1 }
            }
            let statuses = st.map { $0.status }
            let state: String
            if statuses.contains("failed") || statuses.contains("invalid") || statuses.contains("dead") { state = "failed" }
            else if statuses.allSatisfy({ $0 == "complete" }) { state = "complete" }
            else if statuses.contains("running") { state = "running" }
            else if statuses.contains("complete") { state = "partial" }
            else { state = "queued" }
            states.append(JobState(id: id, name: job.spec.name, dir: job.dir, state: state, created: job.spec.created, stages: st, verify: verify ? verifyNotes : nil))
        }
        var summary: [String: Int] = ["jobs": states.count]
        for s in states { summary[s.state, default: 0] += 1 }
        if verify { summary["mismatches"] = mismatches }
        let report = Report(root: r.path, queues: queues, jobs: states, summary: summary)
        if json {
            Term.stdout(String(decoding: try JSON.encode(report), as: UTF8.self).trimmingCharacters(in: .newlines))
        } else if jobs.isEmpty {
            printTables(report)
        } else {
            printDetail(report)
        }
        if verify && mismatches > 0 { throw EpipeExit(1) }
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func cell(_ s: StageState) -> String {
        switch s.status {
        case "running": return "running " + (s.percent.map { String(format: "%.0f%%", $0) } ?? "") + (s.eta_seconds.map { " ETA " + ProgressReporter.clock($0) } ?? "")
        case "complete": return "done" + (s.seconds.map { String(format: " %.1fs", $0) } ?? "")
        default: return s.status
        }
    }

    func printTables(_ r: Report) {
        var out = "root \(r.root)\n\nQUEUE      NEW  CLAIMED  DONE  FAILED  STALE\n"
        for q in r.queues { out += pad(q.stage, 9) + String(format: "%5d %8d %5d %7d %6d\n", q.new, q.cur, q.done, q.failed, q.stale) }
        out += "\n"
        if r.jobs.isEmpty { out += "no jobs yet: epipe-ingest DIR registers one per scan\n" }
        else {
            let idw = max(6, r.jobs.map { $0.id.count }.max() ?? 6) + 2
            var head = pad("JOB", idw) + pad("STATE", 10)
            for s in Names.stages { head += pad(s.uppercased(), 18) }
            out += head + "\n"
            for j in r.jobs {
                var line = pad(j.id, idw) + pad(j.state, 10)
                for s in Names.stages { line += pad(j.stages.first { $0.stage == s }.map(cell) ?? "-", 18) }
                out += line + "\n"
                for s in j.stages where s.error != nil { out += "    \(s.stage): \(s.error!)\n" }
                for v in j.verify ?? [] { out += "    verify: \(v)\n" }
            }
        }
        out += "\n" + r.summary.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        print(out)
    }

    func printDetail(_ r: Report) {
        for j in r.jobs {
            print("\(j.id)  (\(j.name))  \(j.state)\n  dir \(j.dir)\n  created \(j.created)")
            for s in j.stages {
                print("  \(pad(s.stage, 8)) \(cell(s))")
                if let e = s.error { print("           error: \(e)") }
                if let m = s.metrics, !m.isEmpty {
                    let keys = m.keys.sorted().filter { k in if case .object = m[k]! { return false }; if case .array = m[k]! { return false }; return true }
                    for k in keys.prefix(12) { print("           \(k): \(m[k]!)") }
                }
                for q in s.qc ?? [] { print("           qc: \(q)") }
                let logp = j.dir + "/logs/" + s.stage + ".log"
                if s.status == "failed", let t = try? String(contentsOfFile: logp, encoding: .utf8) {
                    for l in t.split(separator: "\n").suffix(3) { print("           log: \(l)") }
                }
            }
            for v in j.verify ?? [] { print("  verify: \(v)") }
            if let v = j.verify, v.isEmpty { print("  verify: every output matches its manifest") }
        }
    }

    static func main() { runMain(Self.self) }
}
