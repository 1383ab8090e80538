import Foundation
import EpipeCore

/// `epipe-status --prometheus FILE`: the operators' metrics in the Prometheus text exposition format
/// (version 0.0.4), for node_exporter's textfile collector: queue entries by state, the oldest
/// waiting entry, completions in the last hour and day, jobs by state, stage wall time as a summary
/// and peak memory, failed stages, and what epipe-ingest moved over all its runs.
public enum StatusPrometheus {
    struct Family {
        var name: String; var help: String; var type: String
        var samples: [(suffix: String, labels: [(String, String)], value: Double)] = []
        mutating func add(_ labels: [(String, String)], _ v: Double, suffix: String = "") { samples.append((suffix, labels, v)) }
    }

    static func value(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// A quantile of sorted values (nearest rank); NaN when there are none.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let i = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
        return sorted[i]
    }

    /// The exposition text of a report over every job of the root (build it without a --state filter).
    public static func render(_ r: StatusReport, root: Root, now: Date = Date()) -> String {
        var fams: [Family] = []
        var q = Family(name: "epipe_queue_entries", help: "Entries in a stage's queue by state: new (waiting), running (claimed), done, failed, stale (claimed, no heartbeat).", type: "gauge")
        var oldest = Family(name: "epipe_queue_oldest_waiting_seconds", help: "Age of the oldest entry waiting in a stage's queue (0 when none waits).", type: "gauge")
        var hour = Family(name: "epipe_stage_completed_last_hour", help: "Jobs whose stage completed in the last hour.", type: "gauge")
        var day = Family(name: "epipe_stage_completed_last_day", help: "Jobs whose stage completed in the last 24 hours.", type: "gauge")
        for s in r.queues {
            for (k, v) in [("new", s.new), ("running", s.cur), ("done", s.done), ("failed", s.failed), ("stale", s.stale)] {
                q.add([("stage", s.stage), ("state", k)], Double(v))
            }
            oldest.add([("stage", s.stage)], s.oldest_waiting_seconds ?? 0)
            hour.add([("stage", s.stage)], Double(s.done_last_hour)); day.add([("stage", s.stage)], Double(s.done_last_day))
        }
        fams += [q, oldest, hour, day]

        var jobs = Family(name: "epipe_jobs", help: "Jobs by state.", type: "gauge")
        for s in StatusReport.jobStates { jobs.add([("state", s)], Double(r.jobs.filter { $0.state == s }.count)) }
        fams.append(jobs)

        var dur = Family(name: "epipe_stage_duration_seconds", help: "Wall time of each job's complete run of a stage.", type: "summary")
        var rss = Family(name: "epipe_stage_peak_rss_bytes", help: "Largest peak resident memory of a complete stage run.", type: "gauge")
        var failed = Family(name: "epipe_stage_failed_jobs", help: "Jobs whose stage's last run failed.", type: "gauge")
        for s in Names.stages {
            let states = r.jobs.compactMap { j in j.stages.first { $0.stage == s } }
            let secs = states.filter { $0.status == "complete" }.compactMap { $0.seconds }.sorted()
            for qq in [0.5, 0.9, 0.99] { dur.add([("stage", s), ("quantile", String(qq))], quantile(secs, qq)) }
            dur.add([("stage", s)], secs.reduce(0, +), suffix: "_sum")
            dur.add([("stage", s)], Double(secs.count), suffix: "_count")
            rss.add([("stage", s)], Double(states.filter { $0.status == "complete" }.compactMap { $0.peak_rss_bytes }.max() ?? 0))
            failed.add([("stage", s)], Double(states.filter { $0.status == "failed" }.count))
        }
        fams += [dur, rss, failed]

        // epipe-ingest's run reports, all of them (counters over the root's life)
        var bytes = 0.0, runs = 0.0, last = 0.0
        var files: [String: Double] = ["transferred": 0, "skipped": 0, "failed": 0]
        let dir = root.path + "/ingest/runs"
        for f in Files.list(dir) where f.hasSuffix(".json") {
            guard let d = try? Files.read(dir + "/" + f), let o = (try? JSONDecoder().decode(JSONValue.self, from: d))?.objectValue,
                  o["dry_run"]?.boolValue != true else { continue }
            runs += 1
            bytes += o["bytes_transferred"]?.doubleValue ?? 0
            for k in files.keys { files[k]! += o[k]?.doubleValue ?? 0 }
            if let t = o["finished"]?.stringValue.flatMap(Time.parse) { last = max(last, t.timeIntervalSince1970) }
        }
        var b = Family(name: "epipe_ingest_bytes_total", help: "Bytes epipe-ingest transferred into the store over all its runs.", type: "counter")
        b.add([], bytes)
        var fl = Family(name: "epipe_ingest_files_total", help: "Files epipe-ingest saw over all its runs, by result.", type: "counter")
        for k in files.keys.sorted() { fl.add([("result", k)], files[k]!) }
        var rn = Family(name: "epipe_ingest_runs_total", help: "epipe-ingest runs (dry runs aside).", type: "counter")
        rn.add([], runs)
        var lt = Family(name: "epipe_ingest_last_run_timestamp_seconds", help: "When the latest epipe-ingest run finished (Unix time; 0 before the first).", type: "gauge")
        lt.add([], last)
        var gen = Family(name: "epipe_status_generated_timestamp_seconds", help: "When epipe-status wrote this file (Unix time).", type: "gauge")
        gen.add([], now.timeIntervalSince1970.rounded())
        fams += [b, fl, rn, lt, gen]

        var out = ""
        for f in fams {
            out += "# HELP \(f.name) \(f.help)\n# TYPE \(f.name) \(f.type)\n"
            for s in f.samples {
                let labels = s.labels.isEmpty ? "" : "{" + s.labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
                out += "\(f.name)\(s.suffix)\(labels) \(value(s.value))\n"
            }
        }
        return out
    }
}
