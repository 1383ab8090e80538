import XCTest
import Foundation
import EpipeCore

/// epipe-cluster --method rules on the real scimap 33-plex table, taken in by epipe-ingest --cells,
/// against the labels scimap 2.3.6 computes (Tests/Data/scimap-33plex/scimap_reference.py).
final class ClusterRulesTests: E2ECase {
    let data = Bin.packageRoot + "/Tests/Data/scimap-33plex"

    func job() throws -> String {
        let r = try exec("epipe-ingest", ["--root", tmp + "/root", "-q", "--cells", data + "/example_data.csv", "--x", "X_position", "--y", "Y_position"])
        XCTAssertEqual(r.code, 0, r.err)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func agreement(_ job: String, _ reference: String) throws -> (Int, Int) {
        let ours = try CSVTable.read(job + "/cluster/cells.csv"), ref = try CSVTable.read(data + "/" + reference)
        let mine = Dictionary(uniqueKeysWithValues: zip(ours.strings("CellID")!, ours.strings("phenotype")!))
        let pairs = zip(ref.strings("CellID")!, ref.strings("phenotype")!)
        return (pairs.filter { mine[$0.0] == $0.1 }.count, ref.rows.count)
    }

    func testRulesMatchScimap() throws {
        let j = try job()
        let wf = data + "/phenotype_workflow.csv"
        // SCIMAP's manual gates are on log1p of the raw means: with the same gates, the same label for every cell
        var r = try exec("epipe-cluster", ["-q", "--method", "rules", "--transform", "log1p", "--workflow", wf, "--gates", data + "/manual_gates.csv", j])
        XCTAssertEqual(r.code, 0, r.err)
        let (same, n) = try agreement(j, "scimap_phenotypes_manual.csv")
        XCTAssertEqual(same, n, "manual gates: \(same) of \(n) labels equal SCIMAP's")
        let m = try manifest(j, "cluster")
        XCTAssertEqual(m.metrics["gates_manual"]?.intValue, 20); XCTAssertEqual(m.metrics["gates_automatic"]?.intValue, 0)
        let rules = try CSVTable.read(j + "/cluster/rules.csv")
        XCTAssertEqual(rules.rows.count, 32, "one row per workflow row"); XCTAssertEqual(rules.header, ["parent", "phenotype", "cells"])
        XCTAssertTrue(Files.exists(j + "/cluster/qc/cluster-rules.png"))
        XCTAssertTrue(try manifest(j, "cluster").inputs.contains { $0.path.hasSuffix("manual_gates.csv") })
        // gates found by the Gaussian mixture: close to SCIMAP's sklearn fit (measured 2,994 of 3,029)
        r = try exec("epipe-cluster", ["-q", "--method", "rules", "--transform", "log1p", "--workflow", wf, j])
        XCTAssertEqual(r.code, 0, r.err)
        let (a, _) = try agreement(j, "scimap_phenotypes_auto.csv")
        XCTAssertGreaterThanOrEqual(Double(a) / Double(n), 0.985, "automatic gates: \(a) of \(n)")
        XCTAssertEqual(try manifest(j, "cluster").metrics["gates_automatic"]?.intValue, 20)
        XCTAssertEqual(try manifest(j, "cluster").metrics["gates"]?.objectValue?.count, 33, "a gate entry per marker")
    }

    func testBadWorkflowsAndGates() throws {
        let j = try job()
        func refused(_ wf: String, gates: String? = nil, _ word: String, line: UInt = #line) throws {
            let w = tmp + "/wf.csv"; try wf.write(toFile: w, atomically: true, encoding: .utf8)
            var args = ["-q", "--method", "rules", "--workflow", w]
            if let gates { let g = tmp + "/g.csv"; try gates.write(toFile: g, atomically: true, encoding: .utf8); args += ["--gates", g] }
            let r = try exec("epipe-cluster", args + [j])
            XCTAssertEqual(r.code, 2, r.err, line: line)
            XCTAssertEqual(r.errLines.count, 1, r.err, line: line)
            XCTAssertTrue(r.err.contains(word), "\(word): \(r.err)", line: line)
            XCTAssertFalse(Files.exists(j + "/cluster/cells.csv"), line: line)
        }
        try refused(",,CD3D,CD99\nall,T,pos,pos\n", "CD99")
        try refused(",,CD3D,CD20\nall,A,pos,\nA,B,,pos\nB,A,pos,\n", "cycle")
        try refused(",,CD3D\nall,T,often\n", "often")
        try refused(",,CD3D\nall,T,pos\n", gates: "CD3D,high\n", "gates line 1")
    }
}
