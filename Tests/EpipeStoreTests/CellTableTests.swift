import XCTest
import Foundation
import EpipeCore
import EpipeStore

/// `epipe-ingest --cells` without the binary: how a per-cell table from another tool is checked and
/// normalised to MCQuant's columns, and how it becomes a job whose segment stage is complete.
final class CellTableTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-cells-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func norm(_ text: String, _ o: CellTable.Options = .init()) throws -> CellTable.Normalised {
        try CellTable.normalise(data: Data(text.utf8), source: "t.csv", options: o)
    }

    func testColumnsAreRecognisedAndRenamed() throws {
        // MCQuant: already in epipe's columns.
        let mc = try norm("CellID,CD45,X_centroid,Y_centroid,Area\n1,5,10.5,20,30\n2,6,11,21,31\n")
        XCTAssertEqual(mc.table.header, ["CellID", "CD45", "X_centroid", "Y_centroid", "Area"])
        XCTAssertEqual(mc.table.rows[1], ["2", "6", "11", "21", "31"], "values as written")
        XCTAssertEqual(try norm("CellID, X_centroid, Y_centroid\n1, 2.5 ,\t3\n").table.rows, [["1", "2.5", "3"]], "spaces around fields dropped")
        XCTAssertEqual(mc.id, "CellID"); XCTAssertEqual(mc.tool, "mcquant"); XCTAssertEqual(mc.warnings, [])
        // SCIMAP: X_position/Y_position.
        let sc = try norm("CellID,CD3D,X_position,Y_position\n1,5,10,20\n")
        XCTAssertEqual(sc.table.header, ["CellID", "CD3D", "X_centroid", "Y_centroid"]); XCTAssertEqual(sc.tool, "scimap")
        // steinbock: Object, centroid-0 is the row (y), centroid-1 the column (x).
        let st = try norm("Image,Object,Ir191,centroid-0,centroid-1\nimg.tiff,7,3.5,100,200\n")
        XCTAssertEqual(st.table.header, ["Image", "CellID", "Ir191", "Y_centroid", "X_centroid"])
        XCTAssertEqual([st.x, st.y, st.tool], ["centroid-1", "centroid-0", "steinbock"])
        // CellProfiler.
        let cp = try norm("ImageNumber,ObjectNumber,Location_Center_X,Location_Center_Y\n1,1,3,4\n")
        XCTAssertEqual(cp.table.header, ["ImageNumber", "CellID", "X_centroid", "Y_centroid"]); XCTAssertEqual(cp.tool, "cellprofiler")
        // --x/--y/--id name other columns; the id order: cell_id before label.
        let named = try norm("cell_id,label,px,py\na1,3,1,2\na2,4,1,2\n", .init(x: "px", y: "py"))
        XCTAssertEqual(named.table.header, ["CellID", "label", "X_centroid", "Y_centroid"])
        XCTAssertEqual(try norm("k,label,px,py\n9,3,1,2\n", .init(id: "k", x: "px", y: "py")).table.header, ["CellID", "label", "X_centroid", "Y_centroid"])
        // label is the id only when it holds whole numbers (scikit-image); else it is data and CellID is made.
        XCTAssertEqual(try norm("label,X_centroid,Y_centroid\n5,1,2\n6,1,2\n").table.header, ["CellID", "X_centroid", "Y_centroid"])
        let typed = try norm("X_centroid,Y_centroid,label\n1,2,T\n3,4,T\n5,6,B\n")
        XCTAssertEqual(typed.table.header, ["CellID", "X_centroid", "Y_centroid", "label"])
        XCTAssertEqual(typed.table.rows.map { $0[0] }, ["1", "2", "3"]); XCTAssertNil(typed.id)
        XCTAssertEqual(typed.warnings.count, 1)
        XCTAssertEqual(typed.metrics["id_column"], "generated 1..n"); XCTAssertEqual(typed.metrics["cells"], 3)
        XCTAssertEqual(typed.params["id"], .null)
        // pandas' unnamed index column, a byte-order mark, CRLF, quoted fields, a blank last line.
        let pd = try norm("\u{FEFF},CellID,X_centroid,Y_centroid,note\r\n0,1,1,2,\"a, b\"\r\n\r\n")
        XCTAssertEqual(pd.table.header, ["index", "CellID", "X_centroid", "Y_centroid", "note"])
        XCTAssertEqual(pd.table.rows, [["0", "1", "1", "2", "a, b"]])
        XCTAssertTrue(pd.table.render().contains("\"a, b\""))
    }

    func testClusterColumnsAndStatsLabel() throws {
        let t = "CellID,X_centroid,Y_centroid,phenotype\n1,1,2,T\n2,3,4,B\n"
        // Cluster runs: its own phenotype column would shadow the table's, which is kept under another name.
        let c = try norm(t, .init(clusterRuns: true))
        XCTAssertEqual(c.table.header, ["CellID", "X_centroid", "Y_centroid", "input_phenotype"])
        XCTAssertEqual(c.warnings, ["column phenotype kept as input_phenotype (cluster adds its own phenotype)"])
        // Stats alone: the label column is checked and kept.
        let s = try norm(t, .init(required: ["phenotype"], clusterRuns: false))
        XCTAssertEqual(s.table.header, ["CellID", "X_centroid", "Y_centroid", "phenotype"])
        XCTAssertThrowsError(try norm(t, .init(required: ["cell_type"], clusterRuns: false))) { e in
            XCTAssertEqual("\(e)", "t.csv: no column \"cell_type\" for stats' cell types (stats runs on this table without cluster); name the column with --label COLUMN; columns: CellID,X_centroid,Y_centroid,phenotype")
        }
    }

    func testBadTablesAreRefusedWithOneLine() throws {
        let cases: [(String, CellTable.Options, String)] = [
            ("", .init(), "t.csv: empty file; expected a CSV table with a header line"),
            ("II*\0\u{8}\0\0\0", .init(), "t.csv: not a CSV table (binary or not UTF-8 text); expected comma-separated text with a header line"),
            ("\n\n", .init(), "t.csv: no header line; expected a CSV table whose first line names the columns"),
            ("CellID\tX\tY\n1\t2\t3\n", .init(), "t.csv: the header is one tab-separated field; epipe reads comma-separated tables (convert it, e.g. tr '\\t' ',')"),
            ("CellID,X_centroid,Y_centroid\n", .init(), "t.csv: no cells (a header line and no rows)"),
            ("CellID,X_centroid,Y_centroid\n1,2,3\n2,3\n", .init(), "t.csv: line 3 has 2 fields, the header has 3"),
            ("CellID,X_centroid,Y_centroid,n\n1,2,3,\"two\nlines\"\n2,3\n", .init(), "t.csv: line 4 has 2 fields, the header has 4"),
            ("CellID,x,y\n1,2,3\n", .init(), "t.csv: no coordinate columns X_centroid, Y_centroid; name them with --x/--y; columns: CellID,x,y"),
            ("CellID,x,y\n1,2,3\n", .init(x: "x", y: "Y"), "t.csv: no coordinate column Y; columns: CellID,x,y"),
            ("CellID,X_centroid,Y_centroid\n1,2,3\n2,abc,3\n", .init(), "t.csv: line 3 (CellID 2): coordinate X_centroid is \"abc\", not a finite number"),
            ("CellID,X_centroid,Y_centroid\n1,2,NaN\n", .init(), "t.csv: line 2 (CellID 1): coordinate Y_centroid is \"NaN\", not a finite number"),
            ("X_centroid,Y_centroid\n1,\n", .init(), "t.csv: line 2: coordinate Y_centroid is \"\", not a finite number"),
            ("Object,X_centroid,Y_centroid\n1,2,3\n2,2,3\n1,5,6\n", .init(), "t.csv: duplicate id Object 1 on lines 2 and 4; ids must be unique (a table per image: split tables of several images)"),
            ("CellID,X_centroid,Y_centroid\n ,2,3\n", .init(), "t.csv: line 2: empty id (CellID)"),
            ("CellID,X_centroid,CellID\n1,2,3\n", .init(), "t.csv: column \"CellID\" appears twice in the header (columns 1 and 3)"),
            ("CellID,,X_centroid,Y_centroid\n1,2,3,4\n", .init(), "t.csv: column 2 of the header has no name"),
            ("CellID,X_position,Y_position,X_centroid\n1,2,3,4\n", .init(x: "X_position", y: "Y_position"),
             "t.csv: --x X_position becomes X_centroid, but the table has a column X_centroid too; name that one with --x or drop one"),
            ("CellID,a,b\n1,2,3\n", .init(x: "a", y: "a"), "t.csv: --x and --y name the same column a"),
            ("CellID,a,b\n1,2,3\n", .init(id: "k", x: "a", y: "b"), "t.csv: no id column k (--id); columns: CellID,a,b"),
        ]
        for (text, o, want) in cases {
            XCTAssertThrowsError(try norm(text, o), want) { e in
                XCTAssertEqual("\(e)", want)
                XCTAssertEqual((e as? EpipeError)?.exitCode, 2)
            }
        }
    }

    func testStageList() throws {
        XCTAssertEqual(try IngestParams().cellStageList(), ["segment", "cluster", "stats"])
        XCTAssertEqual(try IngestParams(stages: "stats").cellStageList(), ["segment", "stats"])
        XCTAssertEqual(try IngestParams(stages: "cluster, stats").cellStageList(), ["segment", "cluster", "stats"])
        for bad in ["segment,cluster,stats", "stats,cluster", "denoise", ""] {
            XCTAssertThrowsError(try IngestParams(stages: bad).cellStageList()) { e in
                XCTAssertEqual("\(e)", "--stages \(bad): a cell table (--cells) stands in for denoise and segment; give cluster,stats, cluster or stats")
            }
        }
        XCTAssertEqual(CellTable.jobName("/x/my cells.CSV"), "my_cells")
    }

    func testTakeCellsRegistersAJobWithItsSegmentStage() throws {
        let root = try Root(tmp + "/root")
        let intake = Intake(root: root, store: try FileStore(base: root.storeDir), ledger: try Ledger(dir: root.ledgerDir),
                            stages: ["segment", "stats"], params: ["stats": ["label": "type"]])
        let src = tmp + "/typed.csv"
        try "id,x,y,type\n1,0,0,T\n2,5,5,B\n3,9,1,T\n".write(toFile: src, atomically: true, encoding: .utf8)
        let o = CellTable.Options(x: "x", y: "y", required: ["type"], clusterRuns: false)
        let (first, table) = try intake.takeCells(src, name: "typed", mtime: Files.mtime(src)!, options: o)
        guard case .registered(let id, let dir, let raw) = first else { return XCTFail("\(first)") }
        XCTAssertEqual(table.table.header, ["CellID", "id", "X_centroid", "Y_centroid", "type"], "id is not an id name: CellID is made")
        // The table in the store with its sha256, like a scan.
        XCTAssertEqual(raw.sha256, try Digest.sha256(file: src).hex)
        XCTAssertTrue(raw.uri.hasSuffix("/store/typed-\(raw.sha256.prefix(8)).csv"), raw.uri)
        XCTAssertEqual(try Digest.sha256(file: String(raw.uri.dropFirst(7))).hex, raw.sha256)
        XCTAssertFalse(Files.list(root.storeDir).contains { $0.contains("incoming") })
        let job = try Job(dir: dir)
        XCTAssertEqual(job.spec.id, id); XCTAssertEqual(job.spec.kind, "cells"); XCTAssertTrue(job.spec.isCellTable)
        XCTAssertEqual(job.spec.stages, ["segment", "stats"]); XCTAssertEqual(job.spec.raw, raw); XCTAssertEqual(job.spec.source, src)
        XCTAssertEqual(job.spec.params["stats"]?["label"], "type")
        // segment/ written like a stage's: a complete manifest with the stored table as input, outputs with sha256.
        let m = try XCTUnwrap(job.manifest("segment"))
        XCTAssertEqual(m.schema, "epipe.stage/1"); XCTAssertEqual(m.status, .complete); XCTAssertEqual(m.tool.name, "epipe-ingest")
        XCTAssertEqual(m.inputs, [FileRef(path: raw.uri, sha256: raw.sha256, bytes: raw.bytes)])
        let (h, n) = try Digest.sha256(file: dir + "/segment/cells.csv")
        XCTAssertEqual(m.outputs, [FileRef(path: "segment/cells.csv", sha256: h, bytes: n)])
        XCTAssertEqual(m.metrics["cells"], 3); XCTAssertEqual(m.metrics["source_tool"], "unknown")
        XCTAssertEqual(m.params, ["id": .null, "x": "x", "y": "y"])
        XCTAssertNotNil(m.finished)
        XCTAssertEqual(try CSVTable.read(dir + "/segment/cells.csv").rows[1], ["2", "2", "5", "5", "B"])
        XCTAssertEqual(Queue(root: root, stage: "stats").counts().new, 1, "queued for the first stage after segment")
        XCTAssertEqual(Queue(root: root, stage: "segment").counts().new, 0)
        XCTAssertEqual(try intake.ledger.entry(for: src)?.job, id)
        // The same file again: unchanged; a changed file: a new job.
        XCTAssertTrue(try intake.alreadyTaken(src, bytes: Files.size(src)!, mtime: Files.mtime(src)!))
        XCTAssertEqual(try intake.takeCells(src, name: "typed", mtime: Files.mtime(src)!, options: o).0, .unchanged)
        try "id,x,y,type\n1,0,0,T\n2,5,5,B\n".write(toFile: src, atomically: true, encoding: .utf8)
        guard case .registered(let id2, _, _) = try intake.takeCells(src, name: "typed", mtime: Files.mtime(src)!, options: o).0 else { return XCTFail() }
        XCTAssertNotEqual(id2, id)
        XCTAssertEqual(root.allJobIDs().count, 2)
    }

    func testABadTableLeavesNothing() throws {
        let root = try Root(tmp + "/root")
        let intake = Intake(root: root, store: try FileStore(base: root.storeDir), ledger: try Ledger(dir: root.ledgerDir),
                            stages: ["segment", "cluster", "stats"], params: [:])
        let src = tmp + "/bad.csv"
        try "CellID,X_centroid,Y_centroid\n1,2,3\n1,4,5\n".write(toFile: src, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try intake.takeCells(src, name: "bad", mtime: Files.mtime(src)!, options: .init())) { e in
            XCTAssertEqual("\(e)", "\(src): duplicate id CellID 1 on lines 2 and 3; ids must be unique (a table per image: split tables of several images)")
        }
        XCTAssertEqual(Files.list(root.storeDir), [], "the stored copy is removed")
        XCTAssertEqual(Files.list(root.jobsDir), [])
        XCTAssertEqual(Files.list(root.ledgerDir), [])
        XCTAssertEqual(Queue(root: root, stage: "cluster").counts().new, 0)
    }

    func testJobKindIsOptionalAndChecked() throws {
        let raw = RawRef(uri: "file:///x.csv", sha256: "ab", bytes: 1)
        let scan = JobSpec(id: "a", name: "a", raw: raw, stages: ["denoise"])
        XCTAssertFalse(String(decoding: try JSON.encode(scan), as: UTF8.self).contains("kind"), "a scan's job.json is as before")
        XCTAssertNoThrow(try JobSpec(id: "a", name: "a", raw: raw, stages: ["segment"], kind: "cells").validate(path: "j"))
        XCTAssertThrowsError(try JobSpec(id: "a", name: "a", raw: raw, stages: ["segment"], kind: "mesh").validate(path: "j")) { e in
            XCTAssertEqual("\(e)", "j: unknown \"kind\" \"mesh\"; this epipe knows \"scan\" and \"cells\" (upgrade epipe)")
        }
    }
}
