import Foundation
import EpipeCore
import EpipeKernels

/// `epipe-stats --cohort ROOT`: gathers the per-image results of every job under ROOT whose stats
/// stage is complete into ROOT/cohort/, to compare samples. Nothing is pooled: each row is one job's
/// own figure.
/// - frequencies.csv: job, name, type, count, proportion (every job x every type seen, zeros included);
/// - interactions.csv: job, name, type_a, type_b, observed, expected, z, q_enriched, q_depleted;
/// - frequencies.png: one stacked bar of type proportions per job;
/// - cohort.json: the jobs included (with their stats run) and those left out with the reason.
public enum Cohort {
    public static func run(rootPath: String, json: Bool) throws {
        let root = try Root(rootPath, create: false)
        var included: [(job: Job, freq: CSVTable, inter: CSVTable?)] = []
        var skipped: [(String, String)] = []
        for id in root.allJobIDs().sorted() {
            guard let job = try? Job(dir: try root.jobDir(id)) else { skipped.append((id, "unreadable job.json")); continue }
            guard let m = job.manifest("stats") else { skipped.append((id, "no stats yet")); continue }
            guard m.status == .complete else { skipped.append((id, "stats \(m.status.rawValue)")); continue }
            guard let f = try? CSVTable.read(try job.path("stats/frequencies.csv")), f.header.count >= 3 else {
                skipped.append((id, "stats/frequencies.csv missing or unreadable")); continue
            }
            included.append((job, f, try? CSVTable.read(try job.path("stats/interactions.csv"))))
        }
        guard !included.isEmpty else {
            throw EpipeError.badInput("\(root.path): no job has complete stats (\(skipped.count) jobs); run epipe-stats on them first")
        }
        // types in order of their total count over the cohort
        var total: [String: Int] = [:]
        for j in included { for r in j.freq.rows { total[r[0], default: 0] += Int(r[1]) ?? 0 } }
        let types = total.keys.sorted { total[$0]! != total[$1]! ? total[$0]! > total[$1]! : $0 < $1 }
        let label = included[0].freq.header[0]
        var freq = CSVTable(header: ["job", "name", label, "count", "proportion"])
        var parts: [[Double]] = []
        for j in included {
            let counts = Dictionary(j.freq.rows.map { ($0[0], Int($0[1]) ?? 0) }, uniquingKeysWith: +)
            let n = max(1, counts.values.reduce(0, +))
            var row: [Double] = []
            for t in types {
                let c = counts[t] ?? 0
                freq.rows.append([j.job.spec.id, j.job.spec.name, t, String(c), CSVTable.num(Double(c) / Double(n), digits: 5)])
                row.append(Double(c) / Double(n))
            }
            parts.append(row)
        }
        var inter = CSVTable(header: ["job", "name", "type_a", "type_b", "observed", "expected", "z", "q_enriched", "q_depleted"])
        for j in included {
            guard let t = j.inter, let cols = Optional(["type_a", "type_b", "observed", "expected", "z", "q_enriched", "q_depleted"].map { t.header.firstIndex(of: $0) }),
                  !cols.contains(nil) else { continue }
            for r in t.rows { inter.rows.append([j.job.spec.id, j.job.spec.name] + cols.map { r[$0!] }) }
        }
        let dir = root.path + "/cohort"
        try Files.mkdir(dir)
        try freq.write(dir + "/frequencies.csv")
        try inter.write(dir + "/interactions.csv")
        try Canvas.stackedBars(rows: included.map { $0.job.spec.name }, columns: types, parts: parts).write(dir + "/frequencies.png")
        let summary: JSONValue = .object([
            "schema": "epipe.cohort/1", "created": .string(Time.iso(Date())),
            "jobs": .array(included.map { .object(["id": .string($0.job.spec.id), "name": .string($0.job.spec.name),
                                                    "stats_run": .string($0.job.manifest("stats")?.run ?? "")]) }),
            "skipped": .array(skipped.map { .object(["id": .string($0.0), "reason": .string($0.1)]) }),
            "types": .array(types.map { .string($0) })])
        try AtomicFile.write(JSON.encode(summary), to: dir + "/cohort.json")
        Term.stderr("epipe-stats: cohort of \(included.count) jobs, \(types.count) types in \(dir)"
                    + (skipped.isEmpty ? "" : "; left out \(skipped.count): " + skipped.prefix(5).map { "\($0.0) (\($0.1))" }.joined(separator: ", ")))
        Term.stdout(json ? String(decoding: try JSON.encode(summary, pretty: false), as: UTF8.self) : dir)
    }
}
