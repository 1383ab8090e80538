import XCTest
import Foundation
import EpipeCore
import EpipeStore

/// What epipe-ingest decides, without the binary: its params, which files are scans and their
/// names, and how a scan becomes a job (once per content, resumable, recorded in the ledger).
final class IntakeTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-intake-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func testParams() throws {
        let d = try IngestParams()
        XCTAssertEqual(d.settle, 30); XCTAssertEqual(d.maxPixels, 20_000_000_000); XCTAssertEqual(d.params, [:])
        let p = try IngestParams(param: ["segment.nuclear=DAPI", "cluster.k=3", "segment.split=false", "stats.label=a=b"])
        XCTAssertEqual(p.params, ["segment": ["nuclear": "DAPI", "split": false], "cluster": ["k": 3], "stats": ["label": "a=b"]])
        let cfg = RootConfig(store: "file:///s", stages: ["segment", "cluster"])
        XCTAssertEqual(try d.stageList(config: cfg), ["segment", "cluster"], "the root's list by default")
        XCTAssertEqual(try IngestParams(stages: "denoise, stats").stageList(config: cfg), ["denoise", "stats"])
        for (make, want) in [({ try IngestParams(param: ["cluster.k"]) }, "--param cluster.k: expected stage.key=value, e.g. segment.nuclear=DAPI"),
                             ({ try IngestParams(param: ["nosuch.k=1"]) }, "--param nosuch.k=1: unknown stage \"nosuch\""),
                             ({ _ = try IngestParams(stages: "segment,nosuch").stageList(config: cfg); return try IngestParams() },
                              "--stages: unknown stage \"nosuch\"; known: denoise,segment,cluster,stats"),
                             ({ _ = try IngestParams(stages: "").stageList(config: cfg); return try IngestParams() }, "--stages: empty stage list"),
                             ({ try IngestParams(name: "a/b") }, "a/b")] as [(() throws -> IngestParams, String)] {
            XCTAssertThrowsError(try make()) { e in XCTAssertTrue("\(e)".contains(want), "\(e)"); XCTAssertFalse("\(e)".contains("\n")) }
        }
        XCTAssertNoThrow(try IngestParams(name: "one").check(scans: 1))
        XCTAssertThrowsError(try IngestParams(name: "one").check(scans: 2)) { e in
            XCTAssertEqual("\(e)", "--name: given, but 2 scans were found; --name needs exactly one")
        }
        XCTAssertNoThrow(try IngestParams().check(scans: 2))
    }

    func testScans() throws {
        for f in ["b.ome.tiff", "a.TIF", "sub/c.qptiff", "notes.txt", ".hidden.tif", ".cache/d.tif", "e.tif/f.btf"] {
            try Files.mkdir((tmp + "/in/" + f as NSString).deletingLastPathComponent)
            try "x".write(toFile: tmp + "/in/" + f, atomically: true, encoding: .utf8)
        }
        XCTAssertEqual(Scans.find(in: tmp + "/in").map { String($0.dropFirst(tmp.count + 4)) }, ["a.TIF", "b.ome.tiff", "e.tif/f.btf", "sub/c.qptiff"])
        XCTAssertEqual(try Scans.collect([tmp + "/in/sub", tmp + "/in/notes.txt"]).count, 2, "a file given is taken as it is")
        XCTAssertThrowsError(try Scans.collect([tmp + "/nope"])) { e in XCTAssertEqual("\(e)", "\(tmp)/nope: no such file or folder") }
        XCTAssertEqual(Scans.jobName("/x/Slide 1.ome.tif"), Names.sanitize("Slide 1"))
        XCTAssertEqual(Scans.jobName("/x/s001.QPTIFF"), "s001")
        XCTAssertEqual(Scans.ext("/x/s.OME.TIFF"), ".ome.tiff"); XCTAssertEqual(Scans.ext("/x/s.raw"), ".tif")
        XCTAssertEqual(Scans.jobID(name: "s001", sha256: "3f9a2c77", date: Date(timeIntervalSince1970: 1_795_000_000)),
                       String(Time.iso(Date(timeIntervalSince1970: 1_795_000_000)).prefix(10)) + "-s001-3f9a2c")
    }

    func testTakeRegistersOnceAndRecords() throws {
        let root = try Root(tmp + "/root")
        let intake = Intake(root: root, store: try FileStore(base: tmp + "/store"), ledger: try Ledger(dir: root.ledgerDir),
                            stages: ["segment", "cluster"], params: ["cluster": ["k": 3]])
        try Files.mkdir(tmp + "/scans")
        let src = tmp + "/scans/s1.ome.tif"
        try "pixels".write(toFile: src, atomically: true, encoding: .utf8)
        try "marker_name\nDAPI\n".write(toFile: tmp + "/scans/markers.csv", atomically: true, encoding: .utf8)
        let mtime = Files.mtime(src)!
        XCTAssertFalse(try intake.alreadyTaken(src, bytes: 6, mtime: mtime))
        var copied = 0
        let first = try intake.take(src, name: "s1", mtime: mtime, copied: { copied += 1 })
        guard case .registered(let id, let dir, let raw) = first else { return XCTFail("\(first)") }
        XCTAssertEqual(copied, 1)
        XCTAssertEqual(raw.sha256, try Digest.sha256(file: src).hex)
        XCTAssertTrue(raw.uri.hasSuffix("/store/s1-\(raw.sha256.prefix(8)).ome.tif"), raw.uri)
        let spec = try Job(dir: dir).spec
        XCTAssertEqual(spec.id, id); XCTAssertEqual(spec.stages, ["segment", "cluster"]); XCTAssertEqual(spec.params["cluster"]?["k"], 3)
        XCTAssertTrue(spec.markers?.hasSuffix("-markers.csv") ?? false, "the markers.csv beside the scan travels")
        XCTAssertEqual(Queue(root: root, stage: "segment").counts().new, 1)
        XCTAssertEqual(try intake.ledger.entry(for: src)?.job, id)
        XCTAssertTrue(try intake.alreadyTaken(src, bytes: 6, mtime: mtime))
        XCTAssertFalse(try intake.alreadyTaken(src, bytes: 6, mtime: mtime.addingTimeInterval(5)), "touched: looked at again")
        // Touched, same content: the same job, nothing new queued; changed content: a new job.
        XCTAssertEqual(try intake.take(src, name: "s1", mtime: mtime.addingTimeInterval(5)), .unchanged)
        XCTAssertEqual(Queue(root: root, stage: "segment").counts().new, 1)
        try "pixels, changed".write(toFile: src, atomically: true, encoding: .utf8)
        guard case .registered(let id2, _, _) = try intake.take(src, name: "s1", mtime: Files.mtime(src)!) else { return XCTFail() }
        XCTAssertNotEqual(id2, id)
        XCTAssertEqual(root.allJobIDs().count, 2)
        XCTAssertEqual(Files.list(tmp + "/store").filter { $0.contains("incoming") }, [], "no temporary copy is left")
    }
}
