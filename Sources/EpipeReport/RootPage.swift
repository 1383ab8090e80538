import Foundation
import EpipeCore

/// One job on the root page: what its job.json and manifests say, reduced to the values compared
/// across jobs. Holds no picture and no output list, so fifty jobs cost fifty small rows.
struct JobRow: Sendable {
    struct StageStatus: Sendable { var name: String; var status: String; var error: String? }
    var id: String
    var name: String
    var state: String
    var created: String
    var kind: String
    var invalid: String?
    var stages: [StageStatus]
    /// Numeric columns by key (`RootTable.columns`).
    var numbers: [String: Double]
    var channels: [ChannelQC]
    var warnings: [String]
    /// Whether the job has a page to link to.
    var linked: Bool

    init(_ job: JobView, linked: Bool) {
        id = job.id; name = job.name; state = job.state; created = job.spec?.created ?? ""
        kind = job.spec?.kind ?? JobSpec.scanKind; invalid = job.invalid; self.linked = linked
        stages = job.stages.map { StageStatus(name: $0.name, status: $0.status, error: $0.isBad ? ($0.error ?? "no error recorded") : nil) }
        warnings = job.warnings
        var n: [String: Double] = [:]
        let seg = job.stage("segment")?.metrics ?? [:], clu = job.stage("cluster")?.metrics ?? [:], sta = job.stage("stats")?.metrics ?? [:]
        n["cells"] = seg["cells"]?.doubleValue ?? clu["cells"]?.doubleValue ?? sta["cells"]?.doubleValue
        n["cells_per_mm2"] = seg["cells_per_mm2"]?.doubleValue
        n["median_area_px"] = seg["median_area_px"]?.doubleValue
        n["nucleus_diameter_px"] = seg["nucleus_diameter_px"]?.doubleValue
        n["clusters"] = clu["cluster_sizes"]?.arrayValue.map { Double($0.count) }
        n["types"] = sta["types"]?.doubleValue
        numbers = n
        channels = ChannelQC.list(job.stage("denoise")?.metrics ?? [:])
        for c in channels {
            if let f = c.focus { numbers["focus:" + c.name] = f }
            if let b = c.backgroundBefore { numbers["bg:" + c.name] = b }
        }
    }

    var failed: [StageStatus] { stages.filter { $0.error != nil } }
}

/// Why a row is marked: `bad` (a failed stage, a value far from the other jobs') or `warn`
/// (warnings, a blank channel the other jobs do not have). `column` is the cell it marks.
struct Flag: Sendable, Equatable {
    enum Level: String, Sendable { case bad, warn }
    var level: Level
    var column: String?
    /// The whole reason, and a few words of it for the table.
    var text: String
    var brief: String
}

/// The root page's table: rows, the columns compared, and each row's flags.
struct RootTable: Sendable {
    struct Column: Sendable { var key: String; var label: String; var help: String }
    static let columns = [
        Column(key: "cells", label: "cells", help: "cells segmented (segment; cluster's count for a cell table)"),
        Column(key: "cells_per_mm2", label: "cells / mm²", help: "segment: cells per mm² of tissue"),
        Column(key: "median_area_px", label: "median area px", help: "segment: median cell area in pixels"),
        Column(key: "nucleus_diameter_px", label: "nucleus Ø px", help: "segment: nucleus diameter used, in pixels"),
        Column(key: "clusters", label: "clusters", help: "cluster: number of clusters"),
        Column(key: "types", label: "cell types", help: "stats: cell types compared"),
    ]

    var rows: [JobRow]
    /// Channel names of every job's denoise, first seen first.
    var channels: [String]
    /// Robust z of each row, by column key.
    var z: [[String: Double]]
    /// Median and number of jobs of each column with a scale.
    var centre: [String: (median: Double, count: Int)]
    var flags: [[Flag]]

    init(rows: [JobRow]) {
        self.rows = rows
        var ch: [String] = [], seen: Set<String> = []
        for r in rows { for c in r.channels where seen.insert(c.name).inserted { ch.append(c.name) } }
        channels = ch
        let keys = Self.columns.map { $0.key } + ch.flatMap { ["focus:" + $0, "bg:" + $0] }
        var z = [[String: Double]](repeating: [:], count: rows.count)
        var centre: [String: (median: Double, count: Int)] = [:]
        for k in keys {
            let values = rows.map { $0.numbers[k] }
            guard let (med, _) = RobustZ.centreAndScale(values.compactMap { $0 }) else { continue }
            centre[k] = (med, values.compactMap { $0 }.count)
            for (i, s) in RobustZ.scores(values).enumerated() { if let s { z[i][k] = s } }
        }
        self.z = z
        self.centre = centre
        var share: [String: (having: Int, blank: Int)] = [:]
        for r in rows { for c in r.channels { share[c.name, default: (0, 0)].having += 1; if c.blank { share[c.name]!.blank += 1 } } }
        flags = rows.indices.map { i in Self.flags(rows[i], z: z[i], blankShare: share, centre: centre) }
    }

    static func label(_ key: String) -> String {
        if key.hasPrefix("focus:") { return String(key.dropFirst(6)) + " focus" }
        if key.hasPrefix("bg:") { return String(key.dropFirst(3)) + " background" }
        return columns.first { $0.key == key }?.label ?? key
    }

    /// A row's flags: job.json unreadable, failed stages, values beyond the z threshold, a channel
    /// blank here but not in most jobs that have it (`blankShare`: jobs with the channel, and with it
    /// blank), warnings.
    static func flags(_ r: JobRow, z: [String: Double], blankShare: [String: (having: Int, blank: Int)],
                      centre: [String: (median: Double, count: Int)]) -> [Flag] {
        var f: [Flag] = []
        if let e = r.invalid { f.append(Flag(level: .bad, column: nil, text: "job.json: " + e, brief: "job.json unreadable")) }
        for s in r.failed { f.append(Flag(level: .bad, column: "stages", text: "\(s.name) \(s.status): \(s.error ?? "")", brief: "\(s.name) \(s.status)")) }
        for (k, v) in z.sorted(by: { abs($0.value) > abs($1.value) }) where abs(v) > RobustZ.threshold {
            let c = centre[k]!
            let z = String(format: "%+.1f", v)
            f.append(Flag(level: .bad, column: k, text: "\(label(k)) \(HTML.num(r.numbers[k]!)) is far from the median \(HTML.num(c.median)) of \(c.count) jobs (robust z \(z))",
                          brief: "\(label(k)) z \(z)"))
        }
        for c in r.channels where c.blank {
            guard let (having, blank) = blankShare[c.name], 2 * blank < having else { continue }
            f.append(Flag(level: .warn, column: "focus:" + c.name, text: "\(c.name) is blank here, not in \(having - blank) of \(having) jobs", brief: "\(c.name) blank"))
        }
        if !r.warnings.isEmpty {
            let n = "\(r.warnings.count) warning\(r.warnings.count == 1 ? "" : "s")"
            f.append(Flag(level: .warn, column: "warnings", text: n + ": " + r.warnings.joined(separator: "; "), brief: n))
        }
        return f
    }
}

/// ROOT/report.html: every job in one table with its key metrics, values far from the other jobs'
/// marked, and a link to each job's page.
enum RootPage {
    static func render(_ t: RootTable, root: String) -> String {
        var b = "<h1>epipe QC report</h1><p class=\"sub\">Root <code>\(HTML.esc(root))</code> · \(t.rows.count) job\(t.rows.count == 1 ? "" : "s")"
        var states: [String: Int] = [:]
        for r in t.rows { states[r.state, default: 0] += 1 }
        b += states.keys.sorted().map { " · \(states[$0]!) \(HTML.esc($0))" }.joined()
        b += " · written \(HTML.esc(Time.iso(Date())))</p>"
        let marked = t.rows.indices.filter { !t.flags[$0].isEmpty }
        if t.rows.isEmpty {
            b += "<p class=\"note\">No jobs yet: run epipe-ingest --root \(HTML.esc(root)) on a folder of scans.</p>"
            return Page.document(title: "epipe QC report", body: b, wide: true)
        }
        if marked.isEmpty {
            b += "<p class=\"note\">Nothing marked: no failed stage, no warning, no value far from the other jobs' values.</p>"
        } else {
            b += "<section id=\"marked\"><h2>\(marked.count) of \(t.rows.count) job\(t.rows.count == 1 ? "" : "s") to look at</h2><ul>"
            for i in marked {
                let r = t.rows[i]
                b += "<li id=\"marked-\(HTML.esc(r.id))\"><a href=\"#job-\(HTML.esc(r.id))\">\(HTML.esc(r.name))</a> <span class=\"muted\">(\(HTML.esc(r.id)))</span><ul class=\"flags\">"
                b += t.flags[i].map { "<li class=\"\($0.level.rawValue)\">\(HTML.esc($0.text))</li>" }.joined() + "</ul></li>"
            }
            b += "</ul></section>"
        }
        b += table(t)
        b += "<p class=\"legend\">A marked value (⚑, red) is more than \(HTML.num(RobustZ.threshold)) robust z from the median of the jobs that have it: "
        b += "z = (value − median) / (1.4826 · MAD), at least \(HTML.num(RobustZ.relativeFloor * 100))% of the median, with \(RobustZ.minCount) or more jobs. "
        b += "Hover a marked cell for its z. Focus and background are denoise's per-channel focus and raw 10th percentile. Stage squares: "
        b += ["complete", "running", "failed", "pending"].map { "<span class=\"pill st-\($0)\"></span>\($0)" }.joined(separator: " ") + ".</p>"
        return Page.document(title: "epipe QC report", body: b, wide: true)
    }

    static func table(_ t: RootTable) -> String {
        let cols = RootTable.columns.filter { c in t.rows.contains { $0.numbers[c.key] != nil } }
        var h = "<div class=\"wrap\"><table class=\"jobs\"><thead><tr>"
        h += "<th>job</th><th>state</th><th>stages</th><th>created</th>"
        h += cols.map { "<th class=\"n\" title=\"\(HTML.esc($0.help))\">\(HTML.esc($0.label))</th>" }.joined()
        h += "<th class=\"n\">warnings</th><th>failed</th>"
        h += t.channels.map { "<th class=\"n\" title=\"denoise, per channel: focus (above) and raw background, 10th percentile (below)\">\(HTML.esc($0))<br><span class=\"muted\">focus<br>bg</span></th>" }.joined()
        h += "<th>why marked</th></tr></thead><tbody>"
        for (i, r) in t.rows.enumerated() {
            let fl = t.flags[i]
            let rowClass = fl.contains { $0.level == .bad } ? "flagged" : fl.isEmpty ? "" : "warned"
            h += "<tr id=\"job-\(HTML.esc(r.id))\"\(rowClass.isEmpty ? "" : " class=\"\(rowClass)\"")>"
            let name = r.linked ? "<a href=\"jobs/\(HTML.esc(r.id))/report.html\">\(HTML.esc(r.name))</a>" : HTML.esc(r.name)
            h += "<td class=\"job\">\(name)<br><span class=\"muted mono\">\(HTML.esc(r.id))</span>\(r.kind == JobSpec.cellsKind ? " <span class=\"muted\">(cells)</span>" : "")</td>"
            h += "<td><span class=\"badge st-\(HTML.esc(r.state))\">\(HTML.esc(r.state))</span></td>"
            h += "<td class=\"pills\">" + r.stages.map { "<span class=\"pill st-\(HTML.esc($0.status))\" title=\"\(HTML.esc($0.name + ": " + $0.status))\"></span>" }.joined() + "</td>"
            h += "<td class=\"muted\" title=\"\(HTML.esc(r.created))\" style=\"white-space:nowrap\">\(HTML.esc(String(r.created.prefix(10))))</td>"
            for c in cols { h += cell(r.numbers[c.key], key: c.key, row: i, t) }
            let wt = r.warnings.joined(separator: "\n")
            h += "<td class=\"n\(r.warnings.isEmpty ? "" : " warn")\"\(wt.isEmpty ? "" : " title=\"\(HTML.esc(wt))\"")>\(r.warnings.count)</td>"
            let failed = r.failed
            h += failed.isEmpty ? "<td></td>" : "<td class=\"out\" title=\"\(HTML.esc(failed.map { "\($0.name): \($0.error ?? "")" }.joined(separator: "\n")))\">\(HTML.esc(failed.map { $0.name }.joined(separator: ", ")))</td>"
            for c in t.channels {
                guard let ch = r.channels.first(where: { $0.name == c }) else { h += "<td class=\"n muted\">—</td>"; continue }
                let focus: String
                if ch.blank, let f = fl.first(where: { $0.column == "focus:" + c }) {
                    focus = "<div class=\"warn\" title=\"\(HTML.esc(f.text))\">blank</div>"
                } else {
                    focus = value(r.numbers["focus:" + c], key: "focus:" + c, row: i, t, tag: "div")
                }
                h += "<td class=\"n ch\">" + focus + value(r.numbers["bg:" + c], key: "bg:" + c, row: i, t, tag: "div", extra: "bgv") + "</td>"
            }
            h += "<td class=\"flags\">" + fl.prefix(3).map { "<div class=\"\($0.level.rawValue)\" title=\"\(HTML.esc($0.text))\">\(HTML.esc($0.brief))</div>" }.joined()
            if fl.count > 3 {
                h += "<div title=\"\(HTML.esc(fl.dropFirst(3).map { $0.text }.joined(separator: "\n")))\"><a href=\"#marked-\(HTML.esc(r.id))\">+\(fl.count - 3) more</a></div>"
            }
            h += "</td></tr>"
        }
        return h + "</tbody></table></div>"
    }

    /// A numeric cell, marked with its z when beyond the threshold.
    static func cell(_ v: Double?, key: String, row: Int, _ t: RootTable) -> String {
        value(v, key: key, row: row, t, tag: "td", extra: "n")
    }

    /// A value in `tag` (with class `extra`), class "out" and its z as the title when beyond the threshold.
    static func value(_ v: Double?, key: String, row: Int, _ t: RootTable, tag: String, extra: String = "") -> String {
        guard let v else { return "<\(tag) class=\"\(extra) muted\">—</\(tag)>" }
        if let z = t.z[row][key], abs(z) > RobustZ.threshold, let c = t.centre[key] {
            let tip = "robust z \(String(format: "%+.1f", z)): median \(HTML.num(c.median)) over \(c.count) jobs"
            return "<\(tag) class=\"\(extra) out\" title=\"\(HTML.esc(tip))\">\(HTML.esc(HTML.num(v)))</\(tag)>"
        }
        return "<\(tag)\(extra.isEmpty ? "" : " class=\"\(extra)\"")>\(HTML.esc(HTML.num(v)))</\(tag)>"
    }
}
