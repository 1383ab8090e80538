import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage

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

    func run() throws {
        let r = try Root(Root.resolve(root), create: false)
        let ids = jobs.isEmpty ? nil : try StatusReport.jobIDs(jobs, root: r)
        let report = StatusReport(root: r, ids: ids, detail: !jobs.isEmpty, verify: verify, staleAfter: staleAfter)
        if json {
            Term.stdout(String(decoding: try JSON.encode(report), as: UTF8.self).trimmingCharacters(in: .newlines))
        } else if jobs.isEmpty {
            printTables(report)
        } else {
            printDetail(report)
        }
        if verify && report.mismatches > 0 { throw EpipeExit(1) }
    }

    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func cell(_ s: StatusReport.StageState) -> String {
        switch s.status {
        case "running": return "running " + (s.percent.map { String(format: "%.0f%%", $0) } ?? "") + (s.eta_seconds.map { " ETA " + ProgressReporter.clock($0) } ?? "")
        case "complete": return "done" + (s.seconds.map { String(format: " %.1fs", $0) } ?? "")
        default: return s.status
        }
    }

    func printTables(_ r: StatusReport) {
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
        if let i = r.last_ingest {
            func n(_ k: String) -> String { i[k]?.stringValue ?? "?" }
            let mb = String(format: "%.1f", (i["bytes_transferred"]?.doubleValue ?? 0) / 1e6)
            out += "\nlast ingest \(n("started"))\(i["dry_run"]?.boolValue == true ? " (dry run)" : "") to \(n("destination")): \(n("seen")) seen, "
                + "\(n("skipped")) unchanged, \(n("transferred")) transferred (\(mb) MB, \(n("mb_per_second")) MB/s), \(n("failed")) failed; \(n("path"))"
        }
        print(out)
    }

    func printDetail(_ r: StatusReport) {
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
