import XCTest
import Foundation
import EpipeKernels
@testable import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// The library pieces of issue 15's crash safety: the sweep of what a killed writer leaves, the
/// temporary names, the interrupted status, a queue entry that a crash left in two folders.
/// (The end-to-end kills are Tests/EndToEndTests/CrashTests.swift and SignalTests.swift.)
final class CrashSafetyTests: XCTestCase {
    var tmp: String = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "epipe-crash-" + UUID().uuidString
        try Files.mkdir(tmp)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func touch(_ rel: String) throws {
        try Files.mkdir((tmp + "/" + rel as NSString).deletingLastPathComponent)
        try Data("x".utf8).write(to: URL(fileURLWithPath: tmp + "/" + rel))
    }

    func testSweepRemovesTemporaryFilesAndFoldersBelowButNotSkippedOnesNorPartials() throws {
        let dead: Int32 = 999_999_999   // no such process
        let names = ["stage/.manifest.json.tmp-\(dead)-ab12", "stage/qc/.a.png.tmp-\(dead)-cd34", "stage/.cells.zarr.tmp-\(dead)-ef56/X/0.0",
                     "stage/.parts.old-\(dead)-0a0b/0/image.tif", "stage/parts/0/.image.tif.tmp-\(dead)-1111",
                     "stage/.lock", "stage/qc/b.png", "stage/.partial-00aa", "stage/cells.csv"]
        for n in names { try touch(n) }
        let removed = AtomicFile.sweep(directory: tmp + "/stage", olderThan: 0, recursive: true, skip: ["parts"])
        XCTAssertEqual(Set(removed.map { String($0.dropFirst(tmp.count + 1)) }),
                       ["stage/.manifest.json.tmp-\(dead)-ab12", "stage/qc/.a.png.tmp-\(dead)-cd34", "stage/.cells.zarr.tmp-\(dead)-ef56",
                        "stage/.parts.old-\(dead)-0a0b"])
        for n in ["stage/parts/0/.image.tif.tmp-\(dead)-1111", "stage/.lock", "stage/qc/b.png", "stage/.partial-00aa", "stage/cells.csv"] {
            XCTAssertTrue(Files.exists(tmp + "/" + n), n)
        }
        XCTAssertFalse(Files.exists(tmp + "/stage/.cells.zarr.tmp-\(dead)-ef56"), "a temporary folder goes whole")
    }

    func testSweepOfDeadOwnersKeepsALiveWritersFile() throws {
        let mine = ".j.tmp-\(getpid())-aa", gone = ".j.tmp-999999999-bb", other = ".k.tmp-999999999-cc"
        for n in [mine, gone, other] { try touch("d/" + n) }
        let removed = AtomicFile.sweep(directory: tmp + "/d", olderThan: 3600, deadOwner: true) { $0.hasPrefix(".j.tmp-") }
        XCTAssertEqual(removed, [tmp + "/d/" + gone])
        XCTAssertTrue(Files.exists(tmp + "/d/" + mine), "a live writer's temporary file stays")
        XCTAssertTrue(Files.exists(tmp + "/d/" + other), "only the names matched")
    }

    func testTemporaryNamesAndTheirOwner() {
        let t = AtomicFile.temporaryPath(for: "/a/b/manifest.json")
        XCTAssertTrue(t.hasPrefix("/a/b/.manifest.json.tmp-\(getpid())-"), t)
        XCTAssertTrue(AtomicFile.isTemporary((t as NSString).lastPathComponent))
        XCTAssertEqual(AtomicFile.pid(of: (t as NSString).lastPathComponent), getpid())
        XCTAssertEqual(AtomicFile.pid(of: ".parts.old-42-ff"), 42)
        XCTAssertFalse(AtomicFile.isTemporary("image.tmp-1-2"), "not hidden: an output's own name")
        XCTAssertFalse(AtomicFile.isTemporary(".partial-00aa"))
    }

    func testAWriteLeavesNoTemporaryFileAndTheFaultHookIsOffByDefault() throws {
        XCTAssertFalse(Fault.armed, "EPIPE_FAULT is for the crash tests only")
        try AtomicFile.write("{}", to: tmp + "/x/m.json")
        XCTAssertEqual(Files.list(tmp + "/x"), ["m.json"])
        let w = try AtomicStreamWriter(path: tmp + "/x/s.csv")
        try w.write("a,b\n")
        XCTAssertEqual(Files.list(tmp + "/x").count, 2, "the stream's temporary file while it is open")
        w.abort()
        XCTAssertEqual(Files.list(tmp + "/x"), ["m.json"])
    }

    func testInterruptedStatusReadsBack() throws {
        var m = StageManifest(stage: "denoise", status: .interrupted, run: "a1b2c3", tool: ToolRef(name: "epipe-denoise", version: "0"),
                              params: [:], inputs: [], started: Time.iso(Date()))
        m.error = "interrupted by SIGTERM; rerun the stage"
        try AtomicFile.write(JSON.encode(m), to: tmp + "/manifest.json")
        let back = try StageManifest.load(tmp + "/manifest.json")
        XCTAssertEqual(back.status, .interrupted)
        XCTAssertEqual(back, m)
    }

    /// A crash between writing new/<id> and removing done/<id> left the job in both; the next
    /// enqueue (of a job already pending) puts it right: once, in new/.
    func testEnqueueRepairsAJobLeftInTwoFolders() throws {
        let root = try Root(tmp + "/root")
        let q = Queue(root: root, stage: "segment")
        try q.enqueue(id: "j1", jobDir: root.jobsDir + "/j1")
        try Data().write(to: URL(fileURLWithPath: q.sub("done") + "/j1"))
        XCTAssertEqual(q.places(of: "j1"), ["new", "done"])
        try q.enqueue(id: "j1", jobDir: root.jobsDir + "/j1")
        XCTAssertEqual(q.places(of: "j1"), ["new"])
        // and the temporary entry of a crashed enqueue of the job goes
        try Data().write(to: URL(fileURLWithPath: q.sub("new") + "/.j2.tmp-999999999-ab"))
        try q.enqueue(id: "j2", jobDir: root.jobsDir + "/j2")
        XCTAssertEqual(q.entries("new"), ["j1", "j2"])
        XCTAssertFalse(Files.exists(q.sub("new") + "/.j2.tmp-999999999-ab"))
    }
}
