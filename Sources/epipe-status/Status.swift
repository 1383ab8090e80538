import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage
import EpipeReport
#if canImport(Glibc)
import Glibc
#endif

@main
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-status",
        abstract: "Show queues, throughput, job states, progress and ETA, errors; verify outputs; metrics for Prometheus.",
        discussion: """
        Without job arguments: per stage queue counts (new, running, done, failed, stale), completions \
        in the last hour and day, the oldest waiting entry's age and the failures with their first error \
        line; then every job with each stage's state, newest first, and a count line; then the last \
        ingest run. With job directories or ids: each stage's timings, peak memory, key metrics, \
        outputs, QC pictures and last log lines, the job's warnings and, for a failed or stale job, the \
        command that retries it. --json prints any view as one JSON document (schema epipe.status/1, \
        see epipe(5)). Reads only, except --requeue-stale (moves stale claims back to their queue) and \
        --prometheus (writes its file). Exit status: 0; 1 when --verify found damage or --fail-on \
        matched; 2 bad usage or input.
        """)

    @Option(name: .long, help: "The epipe root (else $EPIPE_ROOT, else ./epipe-data).")
    var root: String?

    @Flag(name: .long, help: "Machine-readable JSON on stdout (one line per redraw with --watch).")
    var json = false

    @Flag(name: .long, help: "Re-hash outputs and raw scans against the manifests, list files no manifest lists (orphans), and give each job a verdict: ok, orphans or damaged (exit 1).")
    var verify = false

    @Option(name: .long, help: "Claims without a heartbeat for this many seconds are stale.")
    var staleAfter: Double = 600

    @Flag(name: .long, help: "Give stale claims back to their queue (their worker, should it still run, stops when it notices).")
    var requeueStale = false

    @Option(name: .long, help: "Order of the jobs: time (newest first) or name.")
    var sort: String = "time"

    @Option(name: .long, help: "Show only jobs in these states (comma-separated: \(StatusReport.jobStates.joined(separator: ","))).")
    var state: String?

    @Option(name: .long, help: "Exit 1 when any job is in one of these states (comma-separated job states, or damaged/orphans with --verify).")
    var failOn: String?

    @Option(name: .long, help: "Redraw every SECONDS (default 2) until interrupted; in place on a terminal.")
    var watch: Double?

    @Option(name: .long, help: "Also write the operators' metrics (Prometheus text format) to FILE, atomically, for node_exporter's textfile collector.")
    var prometheus: String?

    @Flag(name: .long, help: "Write the QC report: with jobs, each one's jobs/<id>/report.html; without (or with the root itself), ROOT/report.html and every job's page. Prints the paths.")
    var report = false

    @Argument(help: "Job directories or job ids for a detailed view.")
    var jobs: [String] = []

    func states(_ s: String?, extra: [String] = []) throws -> Set<String>? {
        guard let s else { return nil }
        let set = Set(s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        let known = StatusReport.jobStates + extra
        if let bad = set.first(where: { !known.contains($0) }) {
            throw EpipeError.badInput("unknown state \"\(bad)\"; known: \(known.joined(separator: ","))")
        }
        return set
    }

    func check() throws {
        guard ["time", "name"].contains(sort) else { throw EpipeError.badInput("--sort \(sort): use time or name") }
        _ = try states(state); _ = try states(failOn, extra: ["damaged", "orphans"])
        if let w = watch, !(w > 0) { throw EpipeError.badInput("--watch \(w): give a number of seconds above 0") }
        guard staleAfter >= 0 else { throw EpipeError.badInput("--stale-after \(staleAfter): give seconds, 0 or more") }
    }

    func run() throws {
        try check()
        let r = try Root(Root.resolve(root), create: false)
        if report { try r.requireWritable("epipe-status --report", writes: "report.html (the root's and each job's)"); return try writeReports(r) }
        if requeueStale { try r.requireWritable("epipe-status --requeue-stale", writes: "queue entries") }
        let ids = jobs.isEmpty ? nil : try StatusReport.jobIDs(jobs, root: r)
        if let p = prometheus {
            let d = (p as NSString).deletingLastPathComponent.isEmpty ? "." : (p as NSString).deletingLastPathComponent
            guard Files.isDirectory(d), access(d, W_OK) == 0 else {
                throw EpipeError.badInput("--prometheus \(p): \(d) is not a writable directory; create it or choose another path")
            }
        }
        var query = StatusReport.Query(ids: ids, detail: !jobs.isEmpty, verify: verify, staleAfter: staleAfter, states: try states(state), sort: sort)
        query.logLines = jobs.isEmpty ? 0 : 5
        let tty = isatty(1) == 1
        while true {
            if requeueStale { requeue(r) }
            let report = StatusReport(root: r, query: query)
            if let p = prometheus {
                let all = query.states == nil && ids == nil && !query.verify ? report : StatusReport(root: r, query: StatusReport.Query(staleAfter: staleAfter))
                try AtomicFile.write(StatusPrometheus.render(all, root: r), to: p)
            }
            let text: String
            if json { text = String(decoding: try JSON.encode(report), as: UTF8.self).trimmingCharacters(in: .newlines) }
            else { text = jobs.isEmpty ? StatusText.overview(report) : StatusText.detail(report) }
            guard let every = watch else {
                Term.stdout(text)
                if let code = exitCode(report) { throw EpipeExit(code) }
                return
            }
            if json { Term.stdout(JSON.line(report)) }
            else if tty { Term.stdout("\u{1B}[H\u{1B}[2J" + text + "\n\n\(report.generated), every \(every) s; Ctrl-C stops") }
            else { Term.stdout(report.generated + "\n" + text + "\n") }
            usleep(useconds_t(min(every, 86400) * 1_000_000))
        }
    }

    /// 1 when --verify found damage or --fail-on matched (with a line on stderr saying which).
    func exitCode(_ r: StatusReport) -> Int32? {
        var code: Int32? = verify && r.mismatches > 0 ? 1 : nil
        if let want = try? states(failOn, extra: ["damaged", "orphans"]) {
            let hit = r.jobs.filter { want.contains($0.state) || ($0.verdict.map { want.contains($0) } ?? false) }
            if !hit.isEmpty {
                Term.stderr("epipe-status: \(hit.count) job\(hit.count == 1 ? "" : "s") matched --fail-on \(failOn!): " + hit.prefix(5).map { "\($0.id) (\($0.verdict.flatMap { want.contains($0) ? $0 : nil } ?? $0.state))" }.joined(separator: ", "))
                code = 1
            }
        }
        return code
    }

    /// --report: the root's page (and every job's) when no job, or the root itself, is named; else each job's page.
    func writeReports(_ r: Root) throws {
        let canon = Files.canonical(r.path)
        if jobs.isEmpty || jobs.contains(where: { Files.canonical($0) == canon }) {
            let path = try QCReport.writeRoot(root: r)
            Term.stdout(path)
            if !json { Term.stderr("epipe-status: wrote \(path) and the page of each of its \(r.allJobIDs().count) jobs") }
            return
        }
        for id in try StatusReport.jobIDs(jobs, root: r) { Term.stdout(try QCReport.writeJob(root: r, id: id)) }
    }

    func requeue(_ r: Root) {
        for s in Names.stages {
            for c in Queue(root: r, stage: s).reapStale(staleAfter: staleAfter) {
                Term.stderr("epipe-status: \(c.id): requeued to queue/\(s)/new (\(c.ownerGone ? "its worker \(c.owner) is gone" : "claimed by \(c.owner), no heartbeat for \(ProgressReporter.clock(c.age))"))")
            }
        }
    }

    /// `--watch` may come without its number of seconds: then 2.
    static func arguments() -> [String] {
        var a = Array(CommandLine.arguments.dropFirst())
        var i = 0
        while i < a.count {
            if a[i] == "--" { break }
            if a[i] == "--watch" && (i + 1 == a.count || Double(a[i + 1]) == nil) { a[i] = "--watch=2" }
            i += 1
        }
        return a
    }

    static func main() { runMain(Self.self, arguments: arguments()) }
}
