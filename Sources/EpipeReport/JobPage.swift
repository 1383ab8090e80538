import Foundation
import EpipeCore

/// jobs/<id>/report.html: provenance, each stage's status, timing, memory, metrics, warnings and
/// QC pictures (linked by path relative to the job directory, each a link to the full-size file).
enum JobPage {
    /// Lines of a failed stage's log shown under its error.
    static let logLines = 20

    /// The page of `job` (escaped HTML). `rootLink` adds a link to ../../report.html.
    static func render(_ job: JobView, rootLink: Bool) -> String {
        var b = ""
        if rootLink { b += "<p class=\"muted\"><a href=\"../../report.html\">← All jobs</a></p>" }
        b += "<h1>\(HTML.esc(job.name)) \(badge(job.state))</h1>"
        b += "<p class=\"sub\">Job <code>\(HTML.esc(job.id))</code>\(job.spec.map { " · created " + HTML.esc($0.created) } ?? "")"
        b += " · report written \(HTML.esc(Time.iso(Date())))</p>"
        guard let spec = job.spec else {
            b += "<div class=\"error\">\(HTML.esc(job.invalid ?? "job.json cannot be read"))</div>"
            return Page.document(title: "epipe QC: \(job.id)", body: b)
        }
        b += "<nav class=\"toc\"><a href=\"#provenance\">Provenance</a>"
        b += job.stages.map { "<a href=\"#stage-\(HTML.esc($0.name))\">\(HTML.esc($0.name))</a>" }.joined() + "</nav>"
        b += attention(job)
        b += overview(job)
        b += provenance(spec, job: job)
        for s in job.stages { b += stage(s, job: job) }
        return Page.document(title: "epipe QC: \(job.name)", body: b)
    }

    static func badge(_ status: String) -> String {
        "<span class=\"badge st-\(HTML.esc(status))\">\(HTML.esc(status))</span>"
    }

    /// Above everything: each failed stage's error and the warnings, linked to their sections.
    static func attention(_ job: JobView) -> String {
        var s = ""
        for st in job.stages where st.isBad {
            s += "<div class=\"error\"><b><a href=\"#stage-\(HTML.esc(st.name))\">\(HTML.esc(st.name))</a> \(HTML.esc(st.status)):</b> \(HTML.esc(st.error ?? "no error recorded"))</div>"
        }
        let w = job.stages.filter { !$0.warnings.isEmpty }
        if !w.isEmpty {
            s += "<ul class=\"warnings\">" + w.flatMap { st in
                st.warnings.map { "<li><a href=\"#stage-\(HTML.esc(st.name))\">\(HTML.esc(st.name))</a>: \(HTML.esc($0))</li>" }
            }.joined() + "</ul>"
        }
        return s
    }

    /// One table: each stage's status, tool, timing, peak memory, warnings and pictures.
    static func overview(_ job: JobView) -> String {
        var s = "<section id=\"overview\"><h2>Stages</h2><div class=\"wrap\"><table><thead><tr><th>stage</th><th>status</th><th>tool</th>"
        s += "<th>started</th><th class=\"n\">time</th><th class=\"n\">peak memory</th><th class=\"n\">warnings</th><th class=\"n\">pictures</th></tr></thead><tbody>"
        for st in job.stages {
            let m = st.manifest
            s += "<tr><td><a href=\"#stage-\(HTML.esc(st.name))\">\(HTML.esc(st.name))</a></td><td>\(badge(st.status))</td>"
            s += "<td>\(m.map { HTML.esc($0.tool.name + " " + $0.tool.version) } ?? "—")</td>"
            s += "<td>\(m.map { HTML.esc($0.started) } ?? "—")</td>"
            s += "<td class=\"n\">\(m?.seconds.map(HTML.seconds) ?? "—")</td>"
            s += "<td class=\"n\">\(m?.peak_rss_bytes.map(HTML.bytes) ?? "—")</td>"
            let w = st.warnings.count
            s += "<td class=\"n\(w > 0 ? " warn" : "")\">\(m == nil ? "—" : String(w))</td>"
            s += "<td class=\"n\">\(m == nil ? "—" : String(st.pictures.count))</td></tr>"
        }
        return s + "</tbody></table></div></section>"
    }

    /// The raw scan (URI, sha256, bytes), where it came from, and the per-job params of job.json.
    static func provenance(_ spec: JobSpec, job: JobView) -> String {
        var rows: [(String, String)] = [
            ("name", HTML.esc(spec.name)), ("id", "<code>\(HTML.esc(spec.id))</code>"),
            ("kind", HTML.esc(spec.kind ?? JobSpec.scanKind) + (spec.isCellTable ? " <span class=\"muted\">(a per-cell table from epipe-ingest --cells; no image stages)</span>" : "")),
            ("raw", "<code>\(HTML.esc(spec.raw.uri))</code>"),
            ("raw sha256", "<span class=\"hash\">\(HTML.esc(spec.raw.sha256))</span>"),
            ("raw bytes", "\(HTML.bytes(spec.raw.bytes)) <span class=\"muted\">(\(spec.raw.bytes) bytes)</span>"),
        ]
        if let e = spec.raw.endpoint { rows.append(("raw endpoint", HTML.esc(e) + (spec.raw.region.map { " (" + HTML.esc($0) + ")" } ?? ""))) }
        if let s = spec.source { rows.append(("source", "<code>\(HTML.esc(s))</code>")) }
        if let m = spec.markers { rows.append(("markers", "<code>\(HTML.esc(m))</code>")) }
        rows.append(("created", HTML.esc(spec.created)))
        rows.append(("stages", HTML.esc(spec.stages.joined(separator: " → "))))
        rows.append(("job params", spec.params.isEmpty ? "<span class=\"muted\">none (each stage's defaults and flags)</span>"
                                                       : spec.params.keys.sorted().map { "<code>\(HTML.esc($0))</code> \(MetricsHTML.text(.object(spec.params[$0]!)))" }.joined(separator: "<br>")))
        var s = "<section id=\"provenance\"><h2>Provenance</h2><table class=\"kv\"><tbody>"
        s += rows.map { "<tr><th>\(HTML.esc($0.0))</th><td>\($0.1)</td></tr>" }.joined()
        s += "</tbody></table><p class=\"muted\">Each stage below lists its tool and version, its params and every input and output with its sha256.</p></section>"
        return s
    }

    /// A stage's section: its state (error and log tail when it failed), warnings, metrics, pictures,
    /// then params, inputs and outputs.
    static func stage(_ st: JobView.Stage, job: JobView) -> String {
        var s = "<section id=\"stage-\(HTML.esc(st.name))\" class=\"stage\"><h2>\(HTML.esc(st.name)) \(badge(st.status))"
        if let m = st.manifest { s += " <span class=\"muted\" style=\"font-size:13px;font-weight:400\">\(HTML.esc(m.tool.name)) \(HTML.esc(m.tool.version))</span>" }
        s += "</h2>"
        if !st.listed { s += "<p class=\"note\">job.json does not list this stage; it was run by hand.</p>" }
        switch st.status {
        case "pending":
            s += "<p class=\"note\">Pending: no manifest yet; epipe-\(HTML.esc(st.name)) has not run on this job\(job.stages.contains { $0.isBad } ? " (an earlier stage failed)" : "").</p>"
            return s + "</section>"
        case "running":
            let p = st.manifest?.progress
            let pct = p.map { $0.total > 0 ? String(format: " %.0f%%", 100 * Double($0.done) / Double($0.total)) + " (\($0.done) of \($0.total) \($0.unit))" : "" } ?? ""
            s += "<p class=\"note\">Running\(HTML.esc(pct)) since \(HTML.esc(st.manifest?.started ?? "?")) on \(HTML.esc(st.manifest?.host ?? "?")).</p>"
        default: break
        }
        if st.isBad {
            s += "<h3>Error</h3><div class=\"error\">\(HTML.esc(st.error ?? "no error recorded"))</div>"
            let rel = "logs/\(st.name).log"
            let lines = LogTail.lines(job.dir + "/" + rel, count: logLines)
            if lines.isEmpty { s += "<p class=\"muted\">No log at \(HTML.esc(rel)).</p>" }
            else {
                s += "<h3>Last log lines (<a href=\"\(HTML.href(rel) ?? "")\">\(HTML.esc(rel))</a>)</h3>"
                s += "<pre class=\"log\">\(HTML.esc(lines.joined(separator: "\n")))</pre>"
            }
        }
        guard let m = st.manifest else { return s + "</section>" }
        let ran = [m.started, m.finished.map { "finished " + $0 }, m.seconds.map { HTML.seconds($0) }, m.peak_rss_bytes.map { "peak memory " + HTML.bytes($0) },
                   "host " + m.host, "pid \(m.pid)", "run " + m.run].compactMap { $0 }
        s += "<p class=\"sub\">Started \(HTML.esc(ran.joined(separator: " · ")))</p>"
        let warnings = st.warnings
        if !warnings.isEmpty { s += "<ul class=\"warnings\">" + warnings.map { "<li>\(HTML.esc($0))</li>" }.joined() + "</ul>" }
        if !m.metrics.isEmpty { s += MetricsHTML.render(stage: st.name, metrics: m.metrics, warnings: warnings) }
        let pics = st.pictures.map { ($0, HTML.href($0.path) == nil ? nil : PNGSize.of(job.dir + "/" + $0.path)) }
        if !pics.isEmpty {
            // Mostly wide pictures (before/after pairs): two a row; else three, a wide one spanning two.
            let wide = 2 * pics.filter { ($0.1?.width ?? 0) >= 900 }.count > pics.count
            s += "<h3>QC pictures</h3><div class=\"figs\(wide ? " two" : "")\">"
            s += pics.map { figure($0.0, size: $0.1, job: job, stage: st.name, spanWide: !wide) }.joined() + "</div>"
        }
        s += "<details><summary>Params (\(m.params.count))</summary>\(m.params.isEmpty ? "<p class=\"muted\">none</p>" : MetricsHTML.keyValue(m.params))</details>"
        s += "<details><summary>Inputs (\(m.inputs.count)) and outputs (\(m.outputs.count)) with sha256</summary>"
        s += files("Inputs", m.inputs) + files("Outputs", m.outputs) + "</details>"
        return s + "</section>"
    }

    static func files(_ title: String, _ refs: [FileRef]) -> String {
        guard !refs.isEmpty else { return "<h3>\(title)</h3><p class=\"muted\">none</p>" }
        var s = "<h3>\(title)</h3><div class=\"wrap\"><table><thead><tr><th>path</th><th class=\"n\">bytes</th><th>sha256</th></tr></thead><tbody>"
        for r in refs {
            let path = HTML.href(r.path).map { "<a href=\"\($0)\">\(HTML.esc(r.path))</a>" } ?? "<code>\(HTML.esc(r.path))</code>"
            s += "<tr><td>\(path)</td><td class=\"n\"\(r.bytes.map { " title=\"\($0) bytes\"" } ?? "")>\(r.bytes.map(HTML.bytes) ?? "—")</td>"
            s += "<td class=\"hash\">\(HTML.esc(r.sha256))</td></tr>"
        }
        return s + "</tbody></table></div>"
    }

    /// One QC picture: scaled to fit, a link to the full-size file; a note instead when the file is
    /// missing, not a PNG, or its path would leave the job directory.
    static func figure(_ ref: FileRef, size: (width: Int, height: Int)?, job: JobView, stage: String, spanWide: Bool) -> String {
        let cap = caption(ref.path, stage: stage)
        guard let href = HTML.href(ref.path) else {
            return "<figure class=\"missing\"><figcaption>\(HTML.esc(ref.path)): path leaves the job directory; not shown</figcaption></figure>"
        }
        guard let size else {
            let why = Files.exists(job.dir + "/" + ref.path) ? "not a readable PNG" : "missing"
            return "<figure class=\"missing\"><figcaption><b>\(HTML.esc(cap))</b>: \(HTML.esc(ref.path)) is \(why)</figcaption></figure>"
        }
        let cls = size.width >= 1800 ? " class=\"full\"" : size.width >= 900 && spanWide ? " class=\"wide\"" : ""
        return "<figure\(cls)><a href=\"\(href)\"><img src=\"\(href)\" alt=\"\(HTML.esc(cap))\" width=\"\(size.width)\" height=\"\(size.height)\"></a>"
            + "<figcaption><b>\(HTML.esc(cap))</b> · <a href=\"\(href)\">\(HTML.esc(ref.path))</a> · \(size.width) × \(size.height) px\(ref.bytes.map { " · " + HTML.bytes($0) } ?? "")</figcaption></figure>"
    }

    /// "denoise/qc/0-DAPI-before-after.png" -> "DAPI: before | after"; else the file name without
    /// .png, dashes as spaces.
    static func caption(_ path: String, stage: String) -> String {
        var base = (path as NSString).lastPathComponent
        if base.lowercased().hasSuffix(".png") { base = String(base.dropLast(4)) }
        if stage == "denoise", base.hasSuffix("-before-after"), let dash = base.firstIndex(of: "-"),
           base[..<dash].allSatisfy({ $0.isNumber }) {
            let name = base[base.index(after: dash)...].dropLast("-before-after".count)
            if !name.isEmpty { return "\(name): before | after" }
        }
        return base.replacingOccurrences(of: "-", with: " ")
    }
}
