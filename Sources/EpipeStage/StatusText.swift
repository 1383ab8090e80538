import Foundation
import EpipeCore

/// How epipe-status prints a StatusReport for people: the overview (queues, failures, jobs, a count
/// line, the last ingest run) and the detail of jobs (stages with timings, memory, key metrics,
/// outputs, log lines, the retry command, verify findings).
public enum StatusText {
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    static func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

    /// One table cell for a stage: "done 3.2s", "running 40% ETA 1:10", "failed", "skipped" ...
    public static func cell(_ s: StatusReport.StageState) -> String {
        switch s.status {
        case "running" where s.parts_total != nil: return "running \(s.parts_done ?? 0)/\(s.parts_total!) parts"
        case "running": return "running " + (s.percent.map { String(format: "%.0f%%", $0) } ?? "") + (s.eta_seconds.map { " ETA " + ProgressReporter.clock($0) } ?? "")
        case "complete": return "done" + (s.seconds.map { String(format: " %.1fs", $0) } ?? "")
        case "skipped": return "-"
        default: return s.status
        }
    }

    static func age(_ s: Double?) -> String { s.map { ProgressReporter.clock($0) } ?? "-" }

    /// "12 jobs: 8 complete, 2 failed, 1 running, 1 stale"
    public static func countLine(_ r: StatusReport) -> String {
        let n = r.summary["jobs"] ?? 0
        let parts = StatusReport.jobStates.compactMap { s in r.summary[s].map { "\($0) \(s)" } }
        var line = "\(n) job\(n == 1 ? "" : "s")" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
        if let shown = r.summary["shown"] { line += " (\(shown) shown)" }
        if let m = r.summary["mismatches"] { line += "; verify: \(m) file\(m == 1 ? "" : "s") damaged or missing, \(r.summary["orphans"] ?? 0) orphan" }
        return line
    }

    public static func overview(_ r: StatusReport) -> String {
        var out = "root \(r.root)\n\n"
        out += "QUEUE      NEW  RUNNING  DONE  FAILED  STALE  DONE/1H  DONE/24H  OLDEST WAITING\n"
        for q in r.queues {
            out += pad(q.stage, 9) + String(format: "%5d %8d %5d %7d %6d %8d %9d  ", q.new, q.cur, q.done, q.failed, q.stale, q.done_last_hour, q.done_last_day)
                + age(q.oldest_waiting_seconds) + "\n"
        }
        let failures = r.queues.flatMap { q in q.failures.map { (q.stage, $0) } }
        if !failures.isEmpty {
            out += "\nFAILURES\n"
            for (s, f) in failures { out += "  \(pad(s, 8)) \(f.job): \(f.error)\n" }
            for q in r.queues where q.failed > q.failures.count {
                out += "  \(pad(q.stage, 8)) and \(q.failed - q.failures.count) more: epipe-status --state failed\n"
            }
        }
        out += "\n"
        if r.summary["jobs"] ?? 0 == 0 { out += "no jobs yet: epipe-ingest DIR registers one per scan\n" }
        else if !r.jobs.isEmpty {
            let idw = max(6, r.jobs.map { $0.id.count }.max() ?? 6) + 2
            let stw = max(10, (r.jobs.map { $0.state.count }.max() ?? 0) + 1)   // "interrupted" takes 12
            var head = pad("JOB", idw) + pad("STATE", stw)
            for s in Names.stages { head += pad(s.uppercased(), 20) }
            out += head.trimmingCharacters(in: .whitespaces) + "\n"
            for j in r.jobs {
                var line = pad(j.id, idw) + pad(j.state, stw)
                for s in Names.stages { line += pad(j.stages.first { $0.stage == s }.map(cell) ?? "-", 20) }
                out += line.trimmingCharacters(in: .whitespaces) + "\n"
                for s in j.stages where s.error != nil && s.status != "complete" { out += "    \(s.stage): \(s.error!)\n" }
                if let v = j.verdict, v != "ok" { out += "    verify: \(v)\n" }
                for v in j.verify ?? [] { out += "    verify: \(v)\n" }
                for o in (j.orphans ?? []).prefix(5) { out += "    orphan: \(j.dir)/\(o)\n" }
                if (j.orphans?.count ?? 0) > 5 { out += "    orphan: and \(j.orphans!.count - 5) more (epipe-status --verify \(j.id))\n" }
            }
        }
        out += countLine(r)
        if let i = r.last_ingest {
            func n(_ k: String) -> String { i[k]?.stringValue ?? "?" }
            let mb = String(format: "%.1f", (i["bytes_transferred"]?.doubleValue ?? 0) / 1e6)
            out += "\nlast ingest \(n("started"))\(i["dry_run"]?.boolValue == true ? " (dry run)" : "") to \(n("destination")): \(n("seen")) seen, "
                + "\(n("skipped")) unchanged, \(n("transferred")) transferred (\(mb) MB, \(n("mb_per_second")) MB/s), \(n("failed")) failed; \(n("path"))"
        }
        return out
    }

    public static func detail(_ r: StatusReport) -> String {
        var out: [String] = []
        for j in r.jobs {
            out.append("\(j.id)  (\(j.name))  \(j.state)\n  dir \(j.dir)\n  created \(j.created)")
            for s in j.stages {
                var head = "  \(pad(s.stage, 8)) \(pad(cell(s), 20))"
                if let p = s.peak_rss_bytes { head += "  peak " + pad("\(p >> 20) MiB", 9) }
                if let t = s.started, s.status != "skipped" { head += "  started \(t)" + (s.host.map { " on \($0)" } ?? "") }
                while head.hasSuffix(" ") { head.removeLast() }
                out.append(head)
                if let e = s.error { out.append("           error: \(e)") }
                for (k, v) in keyMetrics(stage: s.stage, s.metrics ?? [:]) { out.append("           \(k): \(v)") }
                if let o = s.outputs, !o.isEmpty {
                    let files = o.filter { !$0.hasSuffix(".png") && !$0.contains(".zarr/") }
                    let zarr = Set(o.compactMap { p in p.range(of: ".zarr/").map { String(p[..<$0.lowerBound]) + ".zarr" } })
                    out.append("           outputs: " + (files + zarr.sorted()).map { j.dir + "/" + $0 }.joined(separator: " "))
                }
                for q in s.qc ?? [] { out.append("           qc: \(q)") }
                // the log's last lines: all that were read for a stage that did not complete, two otherwise
                let log = s.log ?? []
                for l in (s.status == "complete" ? Array(log.suffix(2)) : log) { out.append("           log: \(l)") }
            }
            for w in j.warnings ?? [] { out.append("  warning: \(w)") }
            if let c = j.retry { out.append("  retry: \(c)") }
            for v in j.verify ?? [] { out.append("  verify: \(v)") }
            for o in j.orphans ?? [] { out.append("  orphan: \(j.dir)/\(o) (in no manifest)") }
            if j.verdict == "ok" { out.append("  verify: every output matches its manifest") }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    static func num(_ v: JSONValue?) -> String? {
        guard let d = v?.doubleValue else { return v?.stringValue }
        if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
        return String(format: abs(d) >= 100 ? "%.0f" : (abs(d) >= 1 ? "%.2f" : "%.3g"), d)
    }

    /// The few metrics of a stage that tell whether it went well, as (label, value) lines.
    public static func keyMetrics(stage: String, _ m: [String: JSONValue]) -> [(String, String)] {
        guard !m.isEmpty else { return [] }
        var out: [(String, String)] = []
        func add(_ label: String, _ key: String) { if let v = num(m[key]) { out.append((label, v)) } }
        switch stage {
        case "denoise":
            add("channels", "channels")
            if let pc = m["per_channel"]?.objectValue {
                let blank = pc.keys.sorted().filter { pc[$0]?["blank"]?.boolValue == true }
                out.append(("blank channels", blank.isEmpty ? "none" : blank.joined(separator: ", ")))
                let hot = pc.values.compactMap { $0["hot_pixels_replaced"]?.doubleValue }.reduce(0, +)
                out.append(("hot pixels replaced", String(Int64(hot))))
                let line = pc.keys.sorted().map { k in "\(k) " + (num(pc[k]?["background_before"]) ?? "?") + "→" + (num(pc[k]?["background_after"]) ?? "?") }
                out.append(("background", line.joined(separator: ", ")))
                let focus = pc.keys.sorted().map { k in "\(k) " + (num(pc[k]?["focus"]) ?? "?") }
                out.append(("focus", focus.joined(separator: ", ")))
            }
        case "segment":
            add("cells", "cells"); add("cells per mm²", "cells_per_mm2"); add("median area px", "median_area_px")
            add("nucleus diameter px", "nucleus_diameter_px"); add("fraction segmented", "fraction_segmented")
        case "cluster":
            add("cells", "cells"); add("method", "method")
            if let n = m["cluster_sizes"]?.arrayValue?.count { out.append(("clusters", String(n))) }
            if let q = m["quality"]?.objectValue, let name = q["name"]?.stringValue, let v = num(q["value"]) { out.append((name, v)) }
        case "stats":
            add("cells", "cells"); add("graph", "graph"); add("edges", "edges")
            add("pairs enriched (q<0.05)", "pairs_enriched_q05"); add("pairs depleted (q<0.05)", "pairs_depleted_q05")
            for (label, key) in [("top enriched", "top_enriched"), ("top depleted", "top_depleted")] {
                let top = (m[key]?.arrayValue ?? []).prefix(3).compactMap { p -> String? in
                    guard let a = p["type_a"]?.stringValue, let b = p["type_b"]?.stringValue, let z = num(p["z"]) else { return nil }
                    return "\(a) & \(b) z=\(z)"
                }
                if !top.isEmpty { out.append((label, top.joined(separator: "; "))) }
            }
        default:
            for k in m.keys.sorted().prefix(12) { if let v = num(m[k]), m[k]?.objectValue == nil, m[k]?.arrayValue == nil { out.append((k, v)) } }
        }
        return out
    }
}
