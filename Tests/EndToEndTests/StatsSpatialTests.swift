import XCTest
import Foundation
import EpipeCore

/// epipe-stats' spatial statistics through the binary: every flag changes what it promises, the
/// tables and pictures are there, bad tables are refused with one line and lose nothing, and
/// --cohort gathers the jobs of a root. Inputs are generated with planted niches (epipe-synth
/// --cells N --layout niches: types t and t + 4 share one of four niches).
final class StatsSpatialTests: E2ECase {
    /// A job of ROOT whose segment stage is stood in for by `csv` (stages segment, stats).
    func job(_ csv: String, name: String, root: String? = nil) throws -> String {
        let root = try Root(root ?? tmp + "/root")
        let raw = tmp + "/\(name)-raw.csv"
        try csv.write(toFile: raw, atomically: true, encoding: .utf8)
        let spec = JobSpec(id: "job-" + name, name: name, raw: RawRef(uri: "file://" + raw, sha256: try Digest.sha256(file: raw).hex, bytes: Files.size(raw)!),
                           stages: ["segment", "stats"])
        let job = try Job.create(root: root, spec: spec)
        try place(csv, job.dir)
        return job.dir
    }

    /// Writes segment/cells.csv and a complete segment manifest naming it.
    func place(_ csv: String, _ dir: String, metrics: [String: JSONValue] = [:]) throws {
        try Files.mkdir(dir + "/segment")
        try AtomicFile.write(csv, to: dir + "/segment/cells.csv")
        var m = StageManifest(stage: "segment", status: .complete, run: "import", tool: ToolRef(name: "epipe-segment", version: Version.string),
                              params: [:], inputs: [], started: Time.iso(Date()))
        let (h, b) = try Digest.sha256(file: dir + "/segment/cells.csv")
        m.outputs = [FileRef(path: "segment/cells.csv", sha256: h, bytes: b)]
        m.metrics = metrics
        try AtomicFile.write(JSON.encode(m), to: dir + "/segment/manifest.json")
    }

    func niches(_ n: Int = 3000, types: Int = 8, layout: String = "niches", seed: Int = 1) throws -> String {
        let r = try exec("epipe-synth", ["--cells", "\(n)", "--types", "\(types)", "--layout", layout, "--seed", "\(seed)",
                                         "--out", tmp + "/gen", "--truth", tmp + "/gen-truth", "--name", "g\(seed)\(layout)", "-q"])
        XCTAssertEqual(r.code, 0, r.err)
        return try String(contentsOfFile: r.lines[0], encoding: .utf8)
    }

    func stats(_ args: [String], _ job: String) throws -> RunResult { try exec("epipe-stats", ["-q", "--force"] + args + [job]) }
    func metric(_ job: String, _ key: String) throws -> Double? { try manifest(job, "stats").metrics[key]?.doubleValue }
    func table(_ job: String, _ file: String) throws -> CSVTable { try CSVTable.read(job + "/stats/" + file) }

    func testOutputsTablesPicturesAndMetrics() throws {
        let j = try job(try niches(), name: "a")
        let r = try exec("epipe-stats", ["-q", j])
        XCTAssertEqual(r.code, 0, r.err); XCTAssertEqual(r.lines, [j])
        let inter = try table(j, "interactions.csv")
        XCTAssertEqual(Array(inter.header.prefix(9)), ["type_a", "type_b", "observed", "expected", "z", "p_enriched", "p_depleted", "q_enriched", "q_depleted"])
        XCTAssertEqual(inter.rows.count, 64, "8 x 8 ordered pairs")
        let z = Dictionary(uniqueKeysWithValues: inter.rows.map { ($0[0] + "|" + $0[1], Double($0[4])!) })
        XCTAssertGreaterThan(z["T0|T4"]!, 5, "planted together"); XCTAssertLessThan(z["T0|T1"]!, -5, "planted apart")
        XCTAssertGreaterThan(z["T2|T2"]!, 5)
        let sig = inter.rows.first { $0[0] == "T0" && $0[1] == "T4" }!
        XCTAssertLessThan(Double(sig[7])!, 0.05); XCTAssertGreaterThan(Double(sig[2])!, Double(sig[3])!, "observed above expected")
        let m = try manifest(j, "stats")
        XCTAssertEqual(m.metrics["graph"]?.stringValue, "knn"); XCTAssertEqual(m.metrics["edges"]?.doubleValue, 18_000)
        XCTAssertEqual(m.metrics["perms"]?.doubleValue, 1000); XCTAssertEqual(m.metrics["seed"]?.doubleValue, 0)
        XCTAssertNotNil(m.metrics["seconds_enrichment"]?.doubleValue)
        XCTAssertEqual(m.metrics["top_enriched"]?.arrayValue?.count, 5); XCTAssertEqual(m.metrics["top_depleted"]?.arrayValue?.count, 5)
        let nb = try table(j, "neighborhoods.csv")
        XCTAssertEqual(nb.rows.count, 10); XCTAssertEqual(Array(nb.header.prefix(4)), ["neighborhood", "cells", "proportion", "top_types"])
        let cells = try table(j, "cells.csv")
        XCTAssertEqual(cells.header, ["CellID", "X_centroid", "Y_centroid", "phenotype", "neighborhood"]); XCTAssertEqual(cells.rows.count, 3000)
        for q in ["frequencies", "cell-types-map", "interactions", "neighborhoods-map", "neighborhoods"] {
            XCTAssertTrue(Files.exists(j + "/stats/qc/\(q).png"), q)
            XCTAssertTrue(m.outputs.contains { $0.path == "stats/qc/\(q).png" }, q)
        }
        XCTAssertEqual(try exec("epipe-stats", ["-q", j]).code, 0, "up to date")
    }

    func testGraphFlags() throws {
        let j = try job(try niches(), name: "g")
        XCTAssertEqual(try stats(["--k", "10"], j).code, 0)
        XCTAssertEqual(try metric(j, "edges"), 30_000, "--k 10")
        XCTAssertEqual(try stats(["--graph", "radius", "--radius", "20"], j).code, 0)
        let radiusEdges = try XCTUnwrap(try metric(j, "edges"))
        XCTAssertEqual(try manifest(j, "stats").metrics["graph"]?.stringValue, "radius")
        XCTAssertEqual(try metric(j, "radius_px"), 20); XCTAssertLessThanOrEqual(try XCTUnwrap(try metric(j, "edge_max_px")), 20)
        XCTAssertEqual(try stats(["--graph", "radius", "--radius", "30"], j).code, 0)
        XCTAssertGreaterThan(try XCTUnwrap(try metric(j, "edges")), radiusEdges * 1.5, "a larger radius, more edges")
        XCTAssertEqual(try stats(["--graph", "radius", "--radius-um", "10", "--pixel-size", "0.5"], j).code, 0)
        XCTAssertEqual(try metric(j, "edges"), radiusEdges, "10 µm at 0.5 µm/px = 20 px")
        assertRefused(try stats(["--graph", "radius", "--radius-um", "10"], j), "pixel size")
        // the segmented image's pixel size (segment's metric pixel_size_um)
        try place(try String(contentsOfFile: j + "/segment/cells.csv", encoding: .utf8), j, metrics: ["pixel_size_um": 0.5])
        XCTAssertEqual(try stats(["--graph", "radius", "--radius-um", "10"], j).code, 0)
        XCTAssertEqual(try metric(j, "radius_px"), 20); XCTAssertEqual(try metric(j, "edges"), radiusEdges)
        XCTAssertEqual(try stats(["--graph", "delaunay"], j).code, 0)
        let del = try XCTUnwrap(try metric(j, "edges"))
        XCTAssertGreaterThan(del, 2 * 2.95 * 3000); XCTAssertLessThanOrEqual(del, 2 * (3 * 3000 - 6), "a triangulation: 3n - 3 - h edges, each both ways")
        XCTAssertEqual(try stats(["--graph", "delaunay", "--max-edge", "15"], j).code, 0)
        XCTAssertLessThan(try XCTUnwrap(try metric(j, "edges")), del); XCTAssertLessThanOrEqual(try XCTUnwrap(try metric(j, "edge_max_px")), 15)
        assertRefused(try stats(["--graph", "delaunay", "--k", "4"], j), "--k")
        assertRefused(try stats(["--graph", "knn", "--radius", "20"], j), "radius")
        assertRefused(try stats(["--graph", "radius"], j), "radius")
        assertRefused(try stats(["--graph", "voronoi"], j), "graph")
    }

    func testPermsSeedNeighborhoodsWindow() throws {
        let j = try job(try niches(), name: "p")
        XCTAssertEqual(try stats(["--perms", "0"], j).code, 0)
        XCTAssertTrue(try table(j, "interactions.csv").rows.allSatisfy { $0[4].isEmpty && $0[5].isEmpty && !$0[2].isEmpty }, "counts only")
        XCTAssertEqual(try stats(["--perms", "50"], j).code, 0)
        let p50 = try table(j, "interactions.csv")
        XCTAssertEqual(p50.rows.compactMap { Double($0[5]) }.min()!, 1.0 / 51, accuracy: 1e-6, "p cannot go below 1/(perms+1)")
        XCTAssertEqual(try stats(["--perms", "50", "--seed", "7"], j).code, 0)
        let s7 = try table(j, "interactions.csv")
        XCTAssertEqual(p50.rows.map { $0[2] }, s7.rows.map { $0[2] }, "observed does not depend on the seed")
        XCTAssertNotEqual(p50.rows.map { $0[3] }, s7.rows.map { $0[3] }, "the null does")
        XCTAssertEqual(try stats(["--neighborhoods", "4"], j).code, 0)
        XCTAssertEqual(try table(j, "neighborhoods.csv").rows.count, 4)
        let w10 = try table(j, "cells.csv").rows.map { $0[4] }
        XCTAssertEqual(try stats(["--neighborhoods", "4", "--window", "30"], j).code, 0)
        XCTAssertNotEqual(try table(j, "cells.csv").rows.map { $0[4] }, w10, "--window changes the windows")
        XCTAssertEqual(try stats(["--neighborhoods", "0"], j).code, 0)
        XCTAssertFalse(Files.exists(j + "/stats/neighborhoods.csv")); XCTAssertFalse(Files.exists(j + "/stats/cells.csv"))
        XCTAssertNil(try manifest(j, "stats").metrics["neighborhoods"])
    }

    /// --label, --x, --y name the columns; the defaults fall back to X_position/Y_position.
    func testColumnFlags() throws {
        let base = try niches(600)
        let renamed = base.replacingOccurrences(of: "CellID,X_centroid,Y_centroid,phenotype", with: "CellID,cx,cy,celltype")
        let j = try job(renamed, name: "c")
        assertRefused(try stats([], j), "no column \"phenotype\"")
        assertRefused(try stats(["--label", "celltype"], j), "no column \"X_centroid\"")
        XCTAssertEqual(try stats(["--label", "celltype", "--x", "cx", "--y", "cy"], j).code, 0)
        XCTAssertEqual(try table(j, "cells.csv").header, ["CellID", "cx", "cy", "celltype", "neighborhood"])
        let old = try job(base.replacingOccurrences(of: "X_centroid,Y_centroid", with: "X_position,Y_position"), name: "o")
        XCTAssertEqual(try stats([], old).code, 0)
        XCTAssertEqual(try metric(old, "edges"), 3600)
    }

    /// Bad tables: exit 2, one line, and the stats already on disk stay as they were.
    func testBadInputRefusedAndNothingLost() throws {
        let good = try niches(600)
        let j = try job(good, name: "b")
        XCTAssertEqual(try stats([], j).code, 0)
        let before = try Digest.sha256(file: j + "/stats/interactions.csv").hex
        let lines = good.split(separator: "\n").map(String.init)
        let oneType = ([lines[0]] + lines.dropFirst().map { $0.split(separator: ",").prefix(3).joined(separator: ",") + ",T0" }).joined(separator: "\n") + "\n"
        var nan = lines; nan[5] = "5,,12.5,T1"
        for (csv, word) in [(lines.prefix(6).joined(separator: "\n") + "\n", "too few for --k 6"), (oneType, "one cell type"),
                            (nan.joined(separator: "\n") + "\n", "row 5 (CellID 5): X_centroid is not a number"),
                            ("CellID,Y_centroid,phenotype\n1,2,T0\n", "no column \"X_centroid\"")] {
            try place(csv, j)
            assertRefused(try stats([], j), word)
            XCTAssertEqual(try Digest.sha256(file: j + "/stats/interactions.csv").hex, before, word)
        }
    }

    /// epipe-synth --layout and --niches: the structure the stats tests rely on.
    func testSynthLayoutFlags() throws {
        let r = try exec("epipe-synth", ["--cells", "2000", "--types", "6", "--layout", "niches", "--niches", "2", "--out", tmp + "/l", "--truth", tmp + "/lt", "--name", "n", "-q"])
        XCTAssertEqual(r.code, 0, r.err)
        let truth = try CSVTable.read(tmp + "/lt/n-types.csv")
        XCTAssertEqual(truth.header, ["CellID", "type", "niche"]); XCTAssertEqual(Set(truth.rows.map { $0[2] }), ["0", "1"])
        // in niche g, most cells are of types t with t mod 2 == g
        let inGroup = truth.rows.filter { Int($0[1].dropFirst())! % 2 == Int($0[2])! }.count
        XCTAssertGreaterThan(Double(inGroup) / 2000, 0.85)
        let u = try exec("epipe-synth", ["--cells", "2000", "--types", "6", "--layout", "uniform", "--out", tmp + "/l", "--truth", tmp + "/lt", "--name", "u", "-q"])
        XCTAssertEqual(u.code, 0, u.err)
        XCTAssertEqual(Set(try CSVTable.read(tmp + "/lt/u-types.csv").rows.map { $0[2] }), ["0"])
        let j = try job(try String(contentsOfFile: u.lines[0], encoding: .utf8), name: "u")
        XCTAssertEqual(try stats([], j).code, 0)
        let z = try table(j, "interactions.csv").rows.compactMap { Double($0[4]) }
        XCTAssertLessThan(z.map(abs).max()!, 5, "no planted structure, no strong z")
        let bad = try exec("epipe-synth", ["--cells", "10", "--layout", "stripes", "--out", tmp + "/l", "-q"])
        XCTAssertEqual(bad.code, 2); XCTAssertTrue(bad.err.contains("--layout"), bad.err)
    }

    func testCohort() throws {
        let root = tmp + "/cohort-root"
        let a = try job(try niches(800, seed: 1), name: "s1", root: root), b = try job(try niches(900, seed: 2), name: "s2", root: root)
        _ = try job(try niches(700, seed: 3), name: "s3", root: root)  // no stats yet
        assertRefused(try exec("epipe-stats", ["--cohort", root]), "no job has complete stats")
        XCTAssertEqual(try exec("epipe-stats", ["-q", a, b]).code, 0)
        let r = try exec("epipe-stats", ["--cohort", root])
        XCTAssertEqual(r.code, 0, r.err)
        let dir = Files.canonical(root) + "/cohort"
        XCTAssertEqual(r.lines, [dir]); XCTAssertTrue(r.err.contains("left out 1"), r.err)
        let f = try CSVTable.read(dir + "/frequencies.csv")
        XCTAssertEqual(f.header, ["job", "name", "phenotype", "count", "proportion"])
        XCTAssertEqual(f.rows.count, 16, "2 jobs x 8 types"); XCTAssertEqual(Set(f.rows.map { $0[1] }), ["s1", "s2"])
        XCTAssertEqual(f.rows.filter { $0[1] == "s2" }.reduce(0) { $0 + Int($1[3])! }, 900, "each job its own counts, not pooled")
        XCTAssertEqual(try CSVTable.read(dir + "/interactions.csv").rows.count, 128)
        XCTAssertTrue(Files.exists(dir + "/frequencies.png"))
        let c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/cohort.json"))) as! [String: Any]
        XCTAssertEqual((c["jobs"] as! [Any]).count, 2); XCTAssertEqual((c["skipped"] as! [[String: Any]]).first?["id"] as? String, "job-s3")
    }
}
