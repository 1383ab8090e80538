import XCTest
import Foundation
import EpipeCore

/// `epipe-ingest --cells`: a per-cell table segmented by another tool becomes a job whose segment stage
/// is done, and cluster and stats run on it; a bad table is refused with one line and leaves nothing.
final class IngestCellsTests: E2ECase {
    static let scimap = Bin.packageRoot + "/Tests/Data/scimap-33plex/example_data.csv"

    /// Every file under `root` but logs, with its sha256.
    func snapshot(_ root: String) throws -> [String: String] {
        var s: [String: String] = [:]
        guard let e = FileManager.default.enumerator(atPath: root) else { return s }
        while let rel = e.nextObject() as? String {
            let p = root + "/" + rel
            if !Files.isDirectory(p), !rel.hasSuffix(".log") { s[rel] = try Digest.sha256(file: p).hex }
        }
        return s
    }

    func testScimapTableThroughClusterAndStats() throws {
        let root = tmp + "/root", src = tmp + "/in/example_data.csv"
        try Files.mkdir(tmp + "/in")
        try FileManager.default.copyItem(atPath: Self.scimap, toPath: src)
        let r = try exec("epipe-ingest", ["--root", root, "--cells", src, "--x", "X_position", "--y", "Y_position", "--stages", "cluster,stats"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.lines.count, 1, r.out)
        let job = try XCTUnwrap(r.lines.first)
        XCTAssertTrue(r.err.contains("3029 cells") && r.err.contains("X_position -> X_centroid"), r.err)

        // job.json: the table in the store with its sha256, kind cells, segment first.
        let spec = try Schema.decode(JobSpec.self, expected: Schema.job, from: Files.read(job + "/job.json"), path: job)
        XCTAssertEqual(spec.kind, "cells"); XCTAssertEqual(spec.stages, ["segment", "cluster", "stats"])
        XCTAssertEqual(spec.raw.sha256, try Digest.sha256(file: src).hex)
        XCTAssertTrue(spec.raw.uri.hasPrefix("file://" + Files.canonical(root) + "/store/example_data-"), spec.raw.uri)
        XCTAssertEqual(try Digest.sha256(file: String(spec.raw.uri.dropFirst(7))).hex, spec.raw.sha256)
        // segment/: written by ingest, complete, MCQuant's column names.
        let seg = try manifest(job, "segment")
        XCTAssertEqual(seg.status, .complete); XCTAssertEqual(seg.tool.name, "epipe-ingest")
        XCTAssertEqual(seg.metrics["cells"]?.intValue, 3029); XCTAssertEqual(seg.metrics["source_tool"]?.stringValue, "scimap")
        XCTAssertEqual(seg.inputs.first?.sha256, spec.raw.sha256)
        let cells = try CSVTable.read(job + "/segment/cells.csv")
        XCTAssertEqual(cells.rows.count, 3029)
        XCTAssertEqual(Array(cells.header.prefix(2)), ["CellID", "DNA1"])
        XCTAssertNotNil(cells.column("X_centroid")); XCTAssertNotNil(cells.column("Y_centroid")); XCTAssertNil(cells.column("X_position"))
        XCTAssertEqual(cells.header.count, 58)
        XCTAssertTrue(Files.exists(root + "/queue/cluster/new/" + spec.id), "queued for cluster")

        // Taking the same file again does nothing.
        let again = try exec("epipe-ingest", ["--root", root, "--cells", src, "--x", "X_position", "--y", "Y_position", "--stages", "cluster,stats"])
        XCTAssertEqual(again.code, 0, again.err); XCTAssertEqual(again.out, "")
        XCTAssertEqual(Files.list(root + "/jobs").count, 1)

        // Cluster and stats run on it; no flags (the cluster's defaults).
        let c = try exec("epipe-cluster", ["-q", job])
        XCTAssertEqual(c.code, 0, c.err); XCTAssertEqual(c.lines, [job])
        XCTAssertEqual(try manifest(job, "cluster").status, .complete)
        XCTAssertEqual(try manifest(job, "cluster").inputs.map(\.path), ["segment/cells.csv"])
        XCTAssertTrue(Files.exists(root + "/queue/stats/new/" + spec.id), "cluster hands the job to stats")
        let s = try exec("epipe-stats", ["-q", job])
        XCTAssertEqual(s.code, 0, s.err)
        XCTAssertEqual(try manifest(job, "stats").status, .complete)
        XCTAssertEqual(try manifest(job, "stats").inputs.map(\.path), ["cluster/cells.csv"])
        let f = try CSVTable.read(job + "/stats/frequencies.csv")
        XCTAssertEqual(f.doubles("count")!.reduce(0, +), 3029)
        XCTAssertTrue(Files.exists(job + "/stats/qc/cell-types-map.png"))

        // The imported stage is complete for the runner and for status; it cannot be rerun.
        let up = try exec("epipe-segment", [job])
        XCTAssertEqual(up.code, 0, up.err); XCTAssertEqual(up.lines, [job]); XCTAssertTrue(up.err.contains("up to date"), up.err)
        let forced = try exec("epipe-segment", ["--force", job])
        XCTAssertEqual(forced.code, 2); XCTAssertEqual(forced.errLines.count, 1, forced.err); XCTAssertTrue(forced.err.contains("epipe-ingest --cells"), forced.err)
        let dn = try exec("epipe-denoise", [job])
        XCTAssertEqual(dn.code, 2); XCTAssertEqual(dn.errLines.count, 1, dn.err); XCTAssertTrue(dn.err.contains("cell-table job"), dn.err)
        XCTAssertFalse(Files.exists(job + "/denoise"))
        let st = try exec("epipe-status", ["--root", root, "--json", "--verify"])
        XCTAssertEqual(st.code, 0, st.err + st.out)
        let rep = try JSONSerialization.jsonObject(with: Data(st.out.utf8)) as! [String: Any]
        let j = (rep["jobs"] as! [[String: Any]])[0]
        XCTAssertEqual(j["state"] as? String, "complete")
        XCTAssertEqual((j["stages"] as! [[String: Any]]).map { $0["status"] as? String }, ["skipped", "complete", "complete", "complete"])
        XCTAssertEqual(j["verify"] as? [String], [])
        XCTAssertEqual(j["orphans"] as? [String], []); XCTAssertEqual(j["verdict"] as? String, "ok")
    }

    func testTypedTableStatsAlone() throws {
        let root = tmp + "/root", src = tmp + "/typed.csv"
        var text = "cell,px,py,cell_type\n"
        for i in 0..<40 { text += "c\(i),\(i * 3),\(i % 7),\(["T", "B", "Mac"][i % 3])\n" }
        try text.write(toFile: src, atomically: true, encoding: .utf8)
        let r = try exec("epipe-ingest", ["--root", root, "-q", "--cells", src, "--x", "px", "--y", "py", "--stages", "stats", "--label", "cell_type"])
        XCTAssertEqual(r.code, 0, r.err)
        let job = try XCTUnwrap(r.lines.first)
        let spec = try Schema.decode(JobSpec.self, expected: Schema.job, from: Files.read(job + "/job.json"), path: job)
        XCTAssertEqual(spec.stages, ["segment", "stats"]); XCTAssertEqual(spec.params["stats"]?["label"], "cell_type")
        XCTAssertEqual(try CSVTable.read(job + "/segment/cells.csv").header, ["CellID", "cell", "X_centroid", "Y_centroid", "cell_type"])
        XCTAssertEqual(Files.list(root + "/queue/cluster/new"), [])
        // From the queue, as a drain worker would.
        let s = try exec("epipe-stats", ["--root", root, "--drain", "-q"])
        XCTAssertEqual(s.code, 0, s.err); XCTAssertEqual(s.lines, [job])
        let m = try manifest(job, "stats")
        XCTAssertEqual(m.status, .complete); XCTAssertEqual(m.inputs.map(\.path), ["segment/cells.csv"])
        let f = try CSVTable.read(job + "/stats/frequencies.csv")
        XCTAssertEqual(f.header, ["cell_type", "count", "proportion"])
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: f.rows.map { ($0[0], Int($0[1])!) }), ["T": 14, "B": 13, "Mac": 13])
        XCTAssertTrue(Files.exists(job + "/stats/qc/cell-types-map.png"))
        XCTAssertEqual(try exec("epipe-stats", ["-q", job]).code, 0, "up to date")
        let st = try exec("epipe-status", ["--root", root, "--json"])
        let j = ((try JSONSerialization.jsonObject(with: Data(st.out.utf8)) as! [String: Any])["jobs"] as! [[String: Any]])[0]
        XCTAssertEqual(j["state"] as? String, "complete")
    }

    func testBadTablesAreRefusedAndNothingIsRegistered() throws {
        let root = tmp + "/root", dir = tmp + "/bad"
        try Files.mkdir(dir)
        let good = dir + "/good.csv"
        try "CellID,X_centroid,Y_centroid,CD3\n1,1,2,5\n2,3,4,6\n".write(toFile: good, atomically: true, encoding: .utf8)
        let first = try exec("epipe-ingest", ["--root", root, "-q", "--cells", good])
        XCTAssertEqual(first.code, 0, first.err)
        let before = try snapshot(root)
        let scan = try synth(tmp + "/scan", size: 64, channels: 2)[0]

        func file(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8); return dir + "/" + name
        }
        let tiff = dir + "/image.csv"
        try FileManager.default.copyItem(atPath: scan, toPath: tiff)
        let cases: [(String, [String], [String])] = [
            ("missing", ["--cells", dir + "/nope.csv"], ["nope.csv", "no such file"]),
            ("folder", ["--cells", dir], ["folder"]),
            ("binary", ["--cells", tiff], ["image.csv", "not a CSV"]),
            ("empty", ["--cells", try file("empty.csv", "")], ["empty.csv", "empty file"]),
            ("no header", ["--cells", try file("blank.csv", "\n\n")], ["blank.csv", "no header"]),
            ("ragged", ["--cells", try file("ragged.csv", "CellID,X_centroid,Y_centroid\n1,2,3\n2,3,4\n3,4\n")], ["ragged.csv", "line 4 has 2 fields, the header has 3"]),
            ("no coordinates", ["--cells", try file("nocoord.csv", "CellID,x,y,CD3\n1,2,3,4\n")], ["nocoord.csv", "X_centroid, Y_centroid", "columns: CellID,x,y,CD3"]),
            ("--x absent", ["--cells", try file("nox.csv", "CellID,x,y\n1,2,3\n"), "--x", "xx", "--y", "y"], ["nox.csv", "no coordinate column xx", "columns: CellID,x,y"]),
            ("non-numeric", ["--cells", try file("text.csv", "CellID,X_centroid,Y_centroid\n1,2,3\n2,left,4\n")], ["text.csv", "line 3 (CellID 2)", "\"left\""]),
            ("NaN", ["--cells", try file("nan.csv", "CellID,X_centroid,Y_centroid\n1,2,3\n2,5,NaN\n")], ["nan.csv", "line 3 (CellID 2)", "\"NaN\""]),
            ("duplicate id", ["--cells", try file("dup.csv", "CellID,X_centroid,Y_centroid\n1,2,3\n2,3,4\n1,5,6\n")], ["dup.csv", "duplicate id CellID 1 on lines 2 and 4"]),
            ("zero rows", ["--cells", try file("header.csv", "CellID,X_centroid,Y_centroid\n")], ["header.csv", "no cells"]),
            ("with scans", ["--cells", good, scan], ["--cells", "no scans"]),
            ("with --from", ["--cells", good, "--from", tmp + "/scan"], ["--cells", "no scans"]),
            ("stats without a label", ["--cells", try file("nolabel.csv", "CellID,X_centroid,Y_centroid\n1,2,3\n"), "--stages", "stats"], ["nolabel.csv", "phenotype", "--label"]),
            ("image stages", ["--cells", good, "--stages", "segment,cluster"], ["--stages", "cluster,stats"]),
            ("--x without --cells", ["--x", "a", scan], ["--x", "only with --cells"]),
        ]
        for (what, args, words) in cases {
            let r = try exec("epipe-ingest", ["--root", root, "--settle", "0"] + args)
            XCTAssertEqual(r.code, 2, "\(what): \(r.err)")
            XCTAssertEqual(r.out, "", what)
            XCTAssertEqual(r.errLines.count, 1, "\(what): one line on stderr: \(r.err)")
            for w in words { XCTAssertTrue(r.err.contains(w), "\(what): \"\(w)\" in \(r.err)") }
            XCTAssertEqual(try snapshot(root), before, "\(what): nothing registered, stored or queued")
        }
        XCTAssertEqual(Files.list(root + "/jobs").count, 1)
    }
}
