import XCTest
import Foundation
import EpipeCore
import EpipeImage
@testable import EpipeReport

/// The QC report's pages, from roots built by hand (job.json and manifests, small real PNGs).
final class QCReportTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-report-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func job(_ root: Root, _ id: String, name: String? = nil, stages: [String] = Names.defaultStages, kind: String? = nil) throws -> Job {
        try Job.create(root: root, spec: JobSpec(id: id, name: name ?? id, raw: RawRef(uri: "file:///scans/\(id).ome.tif", sha256: String(repeating: "ab", count: 32), bytes: 123_456),
                                                 stages: stages, params: ["segment": ["nuclear": "DAPI"]], created: "2026-11-30T10:00:00Z", source: "/scans/\(id).ome.tif", kind: kind))
    }

    /// Writes a manifest; `pictures` become real PNGs under the stage's qc/ (listed among outputs).
    @discardableResult
    func manifest(_ job: Job, _ stage: String, _ status: StageManifest.Status = .complete, metrics: [String: JSONValue] = [:],
                  pictures: [String] = [], error: String? = nil) throws -> StageManifest {
        var m = StageManifest(stage: stage, status: status, run: "r1", tool: ToolRef(name: "epipe-" + stage, version: "0.1.0"),
                              params: ["tile": "auto"], inputs: [FileRef(path: "raw.tif", sha256: String(repeating: "0", count: 64), bytes: 10)],
                              metrics: metrics, started: "2026-11-30T10:00:01Z")
        m.seconds = 2.5; m.peak_rss_bytes = 300 << 20; m.error = error
        for p in pictures {
            let rel = stage + "/qc/" + p
            try Files.mkdir(job.dir + "/" + stage + "/qc")
            try PNG.writeGray(path: job.dir + "/" + rel, width: 8, height: 6, pixels: (0..<48).map { UInt8($0 * 5) })
            m.outputs.append(FileRef(path: rel, sha256: try Digest.sha256(file: job.dir + "/" + rel).hex, bytes: Files.size(job.dir + "/" + rel)))
        }
        try Files.mkdir(job.stageDir(stage))
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath(stage))
        return m
    }

    static func denoise(dapiBackground: Double = 480, dapiFocus: Double = 0.11, cd3Blank: Bool = false, warnings: [String] = []) -> [String: JSONValue] {
        func ch(_ bg: Double, _ focus: Double, blank: Bool = false) -> JSONValue {
            ["background_before": .number(bg), "background_after": 34, "focus": .number(focus), "signal_to_background": 12.5,
             "hot_pixels_replaced": 80, "saturated_fraction": 0, "blank": .bool(blank), "processed": .bool(!blank), "p99_before": 4000, "p99_after": 3600]
        }
        return ["channels": 3, "width": 512, "height": 512,
                "per_channel": ["DAPI": ch(dapiBackground, dapiFocus), "CD3": ch(380, 0.75, blank: cd3Blank), "CD45": ch(400, 0.42)],
                "recipe": ["DAPI: hot-pixels 3277, rolling-ball 50", "CD3: hot-pixels 3277, rolling-ball 50", "CD45: hot-pixels 3277, rolling-ball 50"],
                "warnings": .array(warnings.map { .string($0) })]
    }

    /// A complete job with every stage's usual metrics and pictures.
    @discardableResult
    func completeJob(_ root: Root, _ id: String, cells: Double = 11_700, denoise: [String: JSONValue] = denoise()) throws -> Job {
        let j = try job(root, id)
        try manifest(j, "denoise", metrics: denoise, pictures: ["0-DAPI-before-after.png", "1-CD3-before-after.png", "2-CD45-before-after.png", "contact-sheet.png"])
        try manifest(j, "segment", metrics: ["cells": .number(cells), "cells_per_mm2": .number(cells / 1.05), "median_area_px": 202, "nucleus_diameter_px": 10.5, "warnings": []],
                     pictures: ["overlay-thumbnail.png", "overlay-crop-1.png", "area-histogram.png"])
        try manifest(j, "cluster", metrics: ["cells": .number(cells), "method": "leiden", "cluster_sizes": [700, 300], "phenotypes": ["c0 PanCK+", "c1 CD3+"],
                                            "quality": ["name": "modularity", "value": 0.85], "warnings": []],
                     pictures: ["cluster-heatmap.png", "cluster-embedding.png"])
        try manifest(j, "stats", metrics: ["cells": .number(cells), "types": 2, "frequencies": ["c0 PanCK+": 0.7, "c1 CD3+": 0.3],
                                          "top_enriched": [["type_a": "c0 PanCK+", "type_b": "c0 PanCK+", "z": 12.5, "q": 0.003]],
                                          "top_depleted": [["type_a": "c1 CD3+", "type_b": "c0 PanCK+", "z": -8.25, "q": 0.003]], "warnings": []],
                     pictures: ["frequencies.png", "interactions.png", "neighborhoods-map.png"])
        return j
    }

    func read(_ p: String) throws -> String { try String(contentsOfFile: p, encoding: .utf8) }

    func testJobPageHasProvenanceMetricsAndEveryPicture() throws {
        let root = try Root(tmp + "/root")
        let j = try completeJob(root, "2026-11-30-s1-aaaaaa")
        let path = try QCReport.writeJob(root: root, id: j.spec.id)
        XCTAssertEqual(path, j.dir + "/report.html")
        XCTAssertFalse(Files.list(j.dir).contains { $0.contains(".tmp-") }, "no temporary file left")
        let html = try read(path)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        // provenance: raw URI, sha256, bytes, source, created, job params; each stage's tool and version, params, in- and outputs
        for s in ["file:///scans/2026-11-30-s1-aaaaaa.ome.tif", String(repeating: "ab", count: 32), "123456 bytes", "/scans/2026-11-30-s1-aaaaaa.ome.tif",
                  "2026-11-30T10:00:00Z", "nuclear: DAPI", "epipe-denoise 0.1.0", "epipe-stats 0.1.0", "tile", String(repeating: "0", count: 64), "300 MiB", "2.50 s"] {
            XCTAssertTrue(html.contains(s), s)
        }
        // nested metrics as tables: per channel in channel order, clusters, frequencies, top pairs
        let dapi = try XCTUnwrap(html.range(of: "<th>DAPI</th>")), cd45 = try XCTUnwrap(html.range(of: "<th>CD45</th>"))
        XCTAssertLessThan(dapi.lowerBound, cd45.lowerBound)
        for s in ["background (p10)", "480 → 34", "signal / background", "hot pixels", "saturated", "Recipe", "c0 PanCK+", "70.0%", "modularity", "Most enriched pairs", "-8.25"] {
            XCTAssertTrue(html.contains(s), s)
        }
        // every QC picture of every manifest: an <img> inside a link to the file, by relative path
        for st in Names.defaultStages {
            for o in try StageManifest.load(j.manifestPath(st)).outputs where o.path.hasSuffix(".png") {
                XCTAssertTrue(html.contains("<a href=\"\(o.path)\"><img src=\"\(o.path)\""), o.path)
            }
        }
        XCTAssertEqual(html.components(separatedBy: "<img ").count - 1, 12)
        XCTAssertTrue(html.contains("DAPI: before | after"))
        XCTAssertTrue(html.contains("width=\"8\" height=\"6\""))
        // self-contained: no URL that leaves the page's folder
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("src=\"/") || html.contains("href=\"/"))
        XCTAssertTrue(html.contains("<div id=\"qc-status\""))
    }

    func testEscapingOfNamesErrorsMetricsAndPaths() throws {
        let root = try Root(tmp + "/root")
        let evil = "<img src=x onerror=alert(1)>&\"q\""
        let j = try job(root, "2026-11-30-evil-bbbbbb", name: evil)
        try manifest(j, "denoise", .failed, metrics: ["note<script>": "a & b < c", "warnings": ["<b>bold</b> & \"quoted\""]],
                     error: "cannot read <script>alert(\"x\")</script> & more")
        try Files.mkdir(j.dir + "/logs")
        try "line one\n<script>alert(2)</script>\nlast & final line\n".write(toFile: j.dir + "/logs/denoise.log", atomically: true, encoding: .utf8)
        // A manifest that lists a picture outside the job and one with characters a URL must encode.
        var m = try StageManifest.load(j.manifestPath("denoise"))
        m.outputs = [FileRef(path: "../../../etc/x.png", sha256: "00"), FileRef(path: "denoise/qc/a b#c?.png", sha256: "00")]
        try AtomicFile.write(JSON.encode(m), to: j.manifestPath("denoise"))
        try Files.mkdir(j.dir + "/denoise/qc")
        try PNG.writeGray(path: j.dir + "/denoise/qc/a b#c?.png", width: 2, height: 2, pixels: [0, 1, 2, 3])

        let html = try read(try QCReport.writeJob(root: root, id: j.spec.id))
        let body = String(html[html.range(of: "<body>")!.upperBound...])
        for raw in ["<img src=x", "<script>alert", "<b>bold</b>", "note<script>", "\"q\""] { XCTAssertFalse(body.contains(raw), raw) }
        for escaped in ["&lt;img src=x onerror=alert(1)&gt;&amp;&quot;q&quot;", "cannot read &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more",
                        "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;", "note&lt;script&gt;", "a &amp; b &lt; c", "last &amp; final line", "&lt;script&gt;alert(2)"] {
            XCTAssertTrue(body.contains(escaped), escaped)
        }
        XCTAssertTrue(body.contains("src=\"denoise/qc/a%20b%23c%3F.png\""), "the file name is percent-encoded")
        XCTAssertFalse(body.contains("href=\"../../../etc"), "no link out of the job directory")
        XCTAssertTrue(body.contains("path leaves the job directory"))
        // the root page escapes the name too
        let rootHTML = try read(try QCReport.writeRoot(root: root))
        XCTAssertFalse(rootHTML.contains("<img src=x"))
        XCTAssertTrue(rootHTML.contains("&lt;img src=x onerror=alert(1)&gt;"))
    }

    func testFailedAndPendingStagesAndCellTableJob() throws {
        let root = try Root(tmp + "/root")
        let j = try job(root, "2026-11-30-bad-cccccc")
        try manifest(j, "denoise", metrics: Self.denoise(), pictures: ["0-DAPI-before-after.png"])
        try manifest(j, "segment", .failed, error: "segment/cells.tif: TIFF read failed (truncated strip)")
        try Files.mkdir(j.dir + "/logs")
        let log = (1...40).map { "log line \($0)" }.joined(separator: "\n") + "\nerror: the very last line\n"
        try log.write(toFile: j.dir + "/logs/segment.log", atomically: true, encoding: .utf8)
        let cells = try job(root, "2026-11-30-tbl-dddddd", stages: ["segment", "cluster", "stats"], kind: JobSpec.cellsKind)
        var seg = try manifest(cells, "segment", metrics: ["cells": 900, "source_tool": "scimap", "warnings": []])
        seg.tool = ToolRef(name: "epipe-ingest", version: "0.1.0")
        try AtomicFile.write(JSON.encode(seg), to: cells.manifestPath("segment"))
        try manifest(cells, "cluster", metrics: ["cells": 900, "cluster_sizes": [600, 300], "warnings": []], pictures: ["cluster-heatmap.png"])

        let rootPath = try QCReport.writeRoot(root: root)
        XCTAssertEqual(rootPath, root.path + "/report.html")
        let page = try read(j.dir + "/report.html")
        XCTAssertTrue(page.contains("segment/cells.tif: TIFF read failed (truncated strip)"))
        XCTAssertTrue(page.contains("error: the very last line") && page.contains("log line 22") && !page.contains("log line 21\n"), "the last 20 log lines")
        XCTAssertTrue(page.contains("Pending: no manifest yet; epipe-cluster has not run on this job (an earlier stage failed)"))
        XCTAssertTrue(page.contains("Pending: no manifest yet; epipe-stats"))
        XCTAssertTrue(page.contains("href=\"../../report.html\""), "links back to the root page")
        let tbl = try read(cells.dir + "/report.html")
        XCTAssertTrue(tbl.contains("per-cell table") && tbl.contains("epipe-ingest 0.1.0") && tbl.contains("scimap"))
        XCTAssertTrue(tbl.contains("<a href=\"cluster/qc/cluster-heatmap.png\"><img"))
        XCTAssertFalse(tbl.contains("id=\"stage-denoise\""), "no denoise section for a cell table")

        let html = try read(rootPath)
        XCTAssertTrue(html.contains("href=\"jobs/2026-11-30-bad-cccccc/report.html\"") && html.contains("href=\"jobs/2026-11-30-tbl-dddddd/report.html\""))
        XCTAssertTrue(html.contains("segment failed: segment/cells.tif: TIFF read failed"))
        let t = RootTable(rows: root.allJobIDs().map { JobRow(JobView.load(root: root, id: $0), linked: true) })
        XCTAssertEqual(t.rows.map { $0.state }, ["failed", "partial"])
        XCTAssertEqual(t.rows[0].failed.map { $0.name }, ["segment"])
        XCTAssertEqual(t.rows[1].numbers["cells"], 900)
        XCTAssertEqual(t.rows[1].channels, [])
        XCTAssertEqual(t.flags[1], [])
    }

    func testOutliersAreMarkedOnThePlantedBadJob() throws {
        let root = try Root(tmp + "/root")
        // seven ordinary slides, a little different each
        for i in 0..<7 {
            try completeJob(root, "2026-11-3\(0)-ok\(i)-aaaaa\(i)", cells: 11_000 + Double(i) * 250,
                            denoise: Self.denoise(dapiBackground: 460 + Double(i) * 8, dapiFocus: 0.10 + Double(i) * 0.004))
        }
        // one bad slide: DAPI background absurd, out of focus, CD3 blank, few cells, a warning
        try completeJob(root, "2026-11-30-zbad-ffffff", cells: 800,
                        denoise: Self.denoise(dapiBackground: 30_000, dapiFocus: 0.01, cd3Blank: true, warnings: ["DAPI: low signal-to-background 1.10"]))
        let html = try read(try QCReport.writeRoot(root: root))
        let t = RootTable(rows: root.allJobIDs().map { JobRow(JobView.load(root: root, id: $0), linked: true) })
        XCTAssertEqual(t.rows.count, 8)
        for i in 0..<7 { XCTAssertEqual(t.flags[i], [], t.rows[i].id) }
        let bad = t.flags[7]
        let cols = Set(bad.compactMap { $0.column })
        for c in ["bg:DAPI", "focus:DAPI", "cells", "cells_per_mm2", "focus:CD3", "warnings"] { XCTAssertTrue(cols.contains(c), c) }
        XCTAssertTrue(bad.contains { $0.level == .bad && $0.column == "bg:DAPI" && $0.text.contains("robust z") })
        XCTAssertTrue(bad.contains { $0.level == .warn && $0.text.contains("CD3 is blank here, not in 7 of 8 jobs") })
        XCTAssertGreaterThan(try XCTUnwrap(t.z[7]["bg:DAPI"]), RobustZ.threshold)
        // on the page: the row is flagged, the cell marked with its reason, the job listed above the table
        XCTAssertEqual(html.components(separatedBy: "<tr id=\"job-").count - 1, 8)
        XCTAssertEqual(html.components(separatedBy: "class=\"flagged\"").count - 1, 1)
        XCTAssertTrue(html.contains("<tr id=\"job-2026-11-30-zbad-ffffff\" class=\"flagged\">"))
        XCTAssertTrue(html.contains("<td class=\"n out\" title=\"robust z -"))
        XCTAssertTrue(html.contains("<div class=\"bgv out\" title=\"robust z +") && html.contains(">30\u{2009}000</div>"))
        XCTAssertTrue(html.contains("<div class=\"warn\" title=\"CD3 is blank here, not in 7 of 8 jobs\">blank</div>"))
        XCTAssertTrue(html.contains("1 of 8 jobs to look at"))
        XCTAssertTrue(html.contains("DAPI background 30\u{2009}000 is far from the median"))
    }

    func testRobustZ() {
        XCTAssertNil(RobustZ.centreAndScale([1, 2, 3, 4]), "too few values")
        XCTAssertNil(RobustZ.centreAndScale([0, 0, 0, 0, 0]), "no spread")
        let z = RobustZ.scores([10, 11, 9, 10.5, 9.5, nil, 40, 10])
        XCTAssertNil(z[5])
        XCTAssertEqual(z[0]!, 0, accuracy: 1e-9)
        XCTAssertGreaterThan(z[6]!, 3.5)
        XCTAssertLessThan(abs(z[1]!), 3.5)
        // near-identical values: the floor of 2% of the median keeps 35 among 34s unmarked
        XCTAssertLessThan(RobustZ.scores([34, 34, 34, 34, 35])[4]!, 3.5)
        // MAD 0 but some spread: mean absolute deviation
        XCTAssertGreaterThan(RobustZ.scores([0, 0, 0, 0, 0, 0, 0, 0, 0, 0.01])[9]!, 3.5)
    }

    func testFormatting() {
        XCTAssertEqual(HTML.num(11735), "11\u{2009}735")
        XCTAssertEqual(HTML.num(1234), "1234")
        XCTAssertEqual(HTML.num(0.8971), "0.8971")
        XCTAssertEqual(HTML.num(16.572811), "16.57")
        XCTAssertEqual(HTML.num(3.457e-5), "3.46e-05")
        XCTAssertEqual(HTML.num(.nan), "—")
        XCTAssertEqual(HTML.bytes(47_398_164), "45.2 MiB")
        XCTAssertEqual(HTML.seconds(125), "2 min 05 s")
        XCTAssertEqual(HTML.href("denoise/qc/0-DAPI-before-after.png"), "denoise/qc/0-DAPI-before-after.png")
        XCTAssertNil(HTML.href("/etc/passwd")); XCTAssertNil(HTML.href("a/../../b.png")); XCTAssertNil(HTML.href(""))
        XCTAssertEqual(HTML.href("qc/x:y.png"), "qc/x%3Ay.png")
        XCTAssertEqual(JobPage.caption("denoise/qc/12-CD3 e-before-after.png", stage: "denoise"), "CD3 e: before | after")
        XCTAssertEqual(JobPage.caption("segment/qc/overlay-crop-1.png", stage: "segment"), "overlay crop 1")
    }

    func testUnknownJobIsBadInput() throws {
        let root = try Root(tmp + "/root")
        XCTAssertThrowsError(try QCReport.writeJob(root: root, id: "no-such-job")) { e in
            XCTAssertTrue((e as? EpipeError)?.message.contains("no such job") ?? false, "\(e)")
        }
        XCTAssertThrowsError(try QCReport.writeJob(root: root, id: "../x"))
        // an empty root still gets a page
        XCTAssertTrue(try read(try QCReport.writeRoot(root: root)).contains("No jobs yet"))
        // a job.json that cannot be read: a row that says why, no page; writeJob refuses it
        try Files.mkdir(root.jobsDir + "/2026-11-30-broken-eeeeee")
        try "{".write(toFile: root.jobsDir + "/2026-11-30-broken-eeeeee/job.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try QCReport.writeJob(root: root, id: "2026-11-30-broken-eeeeee"))
        let html = try read(try QCReport.writeRoot(root: root))
        XCTAssertTrue(html.contains("job.json unreadable") && html.contains("not valid JSON"))
        XCTAssertFalse(html.contains("href=\"jobs/2026-11-30-broken-eeeeee/report.html\""))
        XCTAssertFalse(Files.exists(root.jobsDir + "/2026-11-30-broken-eeeeee/report.html"))
    }

    func testRunningAndDeadStages() throws {
        let root = try Root(tmp + "/root")
        let j = try job(root, "2026-11-30-run-gggggg", stages: ["denoise", "segment"])
        var m = try manifest(j, "denoise", .running)
        m.progress = ProgressRef(done: 3, total: 4, unit: "bands")
        try AtomicFile.write(JSON.encode(m), to: j.manifestPath("denoise"))
        let k = try job(root, "2026-11-30-dead-hhhhhh", stages: ["denoise", "segment"])
        m.pid = 99_999_999
        try AtomicFile.write(JSON.encode(m), to: k.manifestPath("denoise"))
        try QCReport.writeRoot(root: root)
        let running = try read(j.dir + "/report.html"), dead = try read(k.dir + "/report.html")
        XCTAssertTrue(running.contains("Running 75% (3 of 4 bands)"), running)
        XCTAssertTrue(dead.contains("worker pid 99999999 on \(Host.name) is gone"))
        let t = RootTable(rows: root.allJobIDs().map { JobRow(JobView.load(root: root, id: $0), linked: true) })
        XCTAssertEqual(t.rows.map { $0.state }, ["stale", "running"], "a dead worker: stale, as epipe-status says")
        XCTAssertEqual(t.flags[0].first?.brief, "denoise dead")
        XCTAssertEqual(t.flags[1], [])
    }
}
