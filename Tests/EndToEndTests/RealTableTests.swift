import XCTest
import Foundation
import EpipeCore

/// epipe-cluster and epipe-stats on the real scimap 33-plex per-cell table (3,029 cells).
final class RealTableTests: E2ECase {
    func testClusterAndStatsOnRealTable() throws {
        let src = Bin.packageRoot + "/Tests/Data/scimap-33plex/example_data.csv"
        let root = try Root(tmp + "/root")
        let spec = JobSpec(id: "scimap-33plex", name: "scimap-33plex", raw: RawRef(uri: "file://" + src, sha256: try Digest.sha256(file: src).hex, bytes: Files.size(src)!),
                           stages: ["segment", "cluster", "stats"], params: ["cluster": ["k": 10, "method": "kmeans"]])
        let job = try Job.create(root: root, spec: spec)
        // Stand in for a segment run that produced this table.
        try Files.mkdir(job.stageDir("segment"))
        try FileManager.default.copyItem(atPath: src, toPath: job.dir + "/segment/cells.csv")
        var m = StageManifest(stage: "segment", status: .complete, run: "import", tool: ToolRef(name: "epipe-segment", version: Version.string),
                              params: [:], inputs: [], started: Time.iso(Date()))
        let (h, n) = try Digest.sha256(file: job.dir + "/segment/cells.csv")
        m.outputs = [FileRef(path: "segment/cells.csv", sha256: h, bytes: n)]
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath("segment"))

        let r = try exec("epipe-cluster", ["-q", job.dir])
        XCTAssertEqual(r.code, 0, r.err)
        let cm = try manifest(job.dir, "cluster")
        XCTAssertEqual(cm.params["k"]?.intValue, 10, "per-job params from job.json")
        let markers = cm.metrics["markers"]!.arrayValue!.compactMap { $0.stringValue }
        XCTAssertEqual(markers.count, 33, "DNA and background channels are left out: \(markers)")
        XCTAssertFalse(markers.contains { $0.hasPrefix("DNA") || $0.hasPrefix("BG") })
        let sizes = cm.metrics["cluster_sizes"]!.arrayValue!.compactMap { $0.intValue }
        XCTAssertEqual(sizes.count, 10); XCTAssertEqual(sizes.reduce(0, +), 3029)
        XCTAssertTrue(sizes.allSatisfy { $0 > 0 })
        let cells = try CSVTable.read(job.dir + "/cluster/cells.csv")
        XCTAssertEqual(cells.rows.count, 3029)
        XCTAssertNotNil(cells.column("phenotype"))
        // Immune markers separate: some cluster is named by CD45 or a lineage marker.
        let names = cm.metrics["phenotypes"]!.arrayValue!.compactMap { $0.stringValue }
        XCTAssertTrue(names.contains { $0.contains("CD") }, "\(names)")

        let s = try exec("epipe-stats", ["-q", job.dir])
        XCTAssertEqual(s.code, 0, s.err)
        let f = try CSVTable.read(job.dir + "/stats/frequencies.csv")
        XCTAssertEqual(f.doubles("count")!.reduce(0, +), 3029)
        XCTAssertEqual(f.doubles("proportion")!.reduce(0, +), 1, accuracy: 1e-3)
        XCTAssertTrue(Files.exists(job.dir + "/stats/qc/cell-types-map.png"), "map drawn from X_position/Y_position")
        // Deterministic: a forced rerun gives the same assignment.
        let before = try Digest.sha256(file: job.dir + "/cluster/cells.csv").hex
        XCTAssertEqual(try exec("epipe-cluster", ["-q", "--force", job.dir]).code, 0)
        XCTAssertEqual(try Digest.sha256(file: job.dir + "/cluster/cells.csv").hex, before)
    }
}
