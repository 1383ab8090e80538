import XCTest
import Foundation
import EpipeKernels
@testable import EpipeCore

final class CoreTests: XCTestCase {
    var tmp: String = ""
    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "epipe-core-" + UUID().uuidString
        try Files.mkdir(tmp)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func makeJob(_ root: Root, id: String = "2026-11-25-s001-abc123", stages: [String] = Names.defaultStages) throws -> Job {
        let spec = JobSpec(id: id, name: "s001", raw: RawRef(uri: "file:///x.tif", sha256: String(repeating: "a", count: 64), bytes: 10), stages: stages,
                           params: ["segment": ["nuclear": "DAPI", "nucleus-diameter": 14]])
        return try Job.create(root: root, spec: spec)
    }

    func testJobAndManifestRoundTrip() throws {
        let root = try Root(tmp + "/root")
        let job = try makeJob(root)
        let again = try Job(dir: job.dir)
        XCTAssertEqual(again.spec, job.spec)
        XCTAssertEqual(again.spec.params["segment"]?["nucleus-diameter"]?.doubleValue, 14)
        XCTAssertEqual(again.spec.next(after: "denoise"), "segment")
        XCTAssertNil(again.spec.next(after: "stats"))
        var m = StageManifest(stage: "segment", status: .complete, run: "b71d0e", tool: ToolRef(name: "epipe-segment", version: "0.1.0"),
                              params: ["k": 3, "x": "y", "f": 1.5, "b": true, "arr": [1, "a"], "obj": ["n": .null]],
                              inputs: [FileRef(path: "denoise/image.ome.tif", sha256: "00")], started: Time.iso(Date()))
        m.outputs = [FileRef(path: "segment/cells.csv", sha256: "11", bytes: 456)]
        m.metrics = ["cells": 182113, "warnings": []]
        m.seconds = 41.2; m.peak_rss_bytes = 812_000_000
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath("segment"))
        let back = try StageManifest.load(job.manifestPath("segment"))
        XCTAssertEqual(back, m)
        let text = try String(contentsOfFile: job.manifestPath("segment"), encoding: .utf8)
        XCTAssertTrue(text.contains("\"schema\" : \"epipe.stage/1\""))
        XCTAssertTrue(text.contains("\"cells\" : 182113"), "integers stay integers")
    }

    func testUnknownSchemaIsRefused() throws {
        let root = try Root(tmp + "/root")
        let job = try makeJob(root)
        var text = try String(contentsOfFile: job.dir + "/job.json", encoding: .utf8)
        text = text.replacingOccurrences(of: "epipe.job/1", with: "epipe.job/9")
        try text.write(toFile: job.dir + "/job.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Job(dir: job.dir)) { e in
            let err = e as! EpipeError
            XCTAssertEqual(err.exitCode, 2)
            XCTAssertTrue(err.message.contains("unknown schema version \"epipe.job/9\""), err.message)
            XCTAssertTrue(err.message.contains("job.json"))
            XCTAssertFalse(err.message.contains("\n"))
        }
        try "{not json".write(toFile: job.dir + "/job.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Job(dir: job.dir)) { e in XCTAssertTrue((e as! EpipeError).message.contains("not valid JSON")) }
    }

    func testNamesAreValidated() throws {
        for bad in ["../evil", "a/b", "..", ".hidden", "", "a\u{7}b", "-x", String(repeating: "a", count: 300)] {
            XCTAssertThrowsError(try Names.validateName(bad), bad)
            XCTAssertThrowsError(try Names.validateID(bad), bad)
        }
        for good in ["s001", "2026-11-25-s001-3f9a2c", "slide_A.1"] { XCTAssertNoThrow(try Names.validateID(good)) }
        XCTAssertEqual(Names.sanitize("s 01 (1)"), "s_01__1_")
        XCTAssertEqual(Names.sanitize("../..x"), "_.x")
        let root = try Root(tmp + "/root")
        let spec = JobSpec(id: "../../etc", name: "x", raw: RawRef(uri: "file:///x", sha256: "", bytes: 0), stages: ["denoise"])
        XCTAssertThrowsError(try Job.create(root: root, spec: spec))
        XCTAssertFalse(Files.exists(tmp + "/etc"))
        XCTAssertThrowsError(try root.checkInside(root.path + "/jobs/../../outside"))
        XCTAssertNoThrow(try root.checkInside(root.path + "/jobs/a/b"))
        try FileManager.default.createSymbolicLink(atPath: root.path + "/jobs/link", withDestinationPath: tmp)
        XCTAssertThrowsError(try root.checkInside(root.path + "/jobs/link/file"), "a symlink cannot lead out of the root")
    }

    func testAtomicWriteLeavesNoTemporaryAndReplacesWhole() throws {
        let p = tmp + "/a/b/file.json"
        try AtomicFile.write("one", to: p)
        try AtomicFile.write(String(repeating: "x", count: 1 << 20), to: p)
        XCTAssertEqual(Files.size(p), 1 << 20)
        XCTAssertEqual(Files.list(tmp + "/a/b"), ["file.json"])
        // A write into a folder that cannot be created fails and leaves the old file.
        try "keep".write(toFile: tmp + "/plain", atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AtomicFile.write("x", to: tmp + "/plain/child"))
        XCTAssertEqual(try String(contentsOfFile: tmp + "/plain", encoding: .utf8), "keep")
    }

    func testQueueClaimIsExclusiveAcrossThreads() throws {
        let root = try Root(tmp + "/root")
        let q = Queue(root: root, stage: "segment")
        for i in 0..<200 { try q.enqueue(id: "job-\(i)", jobDir: root.jobsDir + "/job-\(i)") }
        XCTAssertEqual(q.counts().new, 200)
        let lock = NSLock()
        nonisolated(unsafe) var got: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            while let c = try? q.claim() {
                lock.lock(); got.append(c.id); lock.unlock()
                q.finish(c, ok: true)
            }
        }
        XCTAssertEqual(got.count, 200)
        XCTAssertEqual(Set(got).count, 200, "each job claimed exactly once")
        let c = q.counts()
        XCTAssertEqual([c.new, c.cur, c.done, c.failed], [0, 0, 200, 0])
    }

    func testStaleClaimReturnsToNew() throws {
        let root = try Root(tmp + "/root")
        let q = Queue(root: root, stage: "denoise")
        try q.enqueue(id: "j1", jobDir: "/x/j1")
        let c = try XCTUnwrap(try q.claim())
        XCTAssertEqual(c.jobDir, root.jobsDir + "/j1", "the root's own job, whatever path the entry holds")
        XCTAssertTrue(c.path.contains("j1@"))
        XCTAssertEqual(q.reapStale(staleAfter: 60).map(\.id), [], "fresh claim stays (its owner, this process, is alive)")
        var old = [timeval(tv_sec: time(nil) - 3600, tv_usec: 0), timeval(tv_sec: time(nil) - 3600, tv_usec: 0)]
        utimes(c.path, &old)
        let back = q.reapStale(staleAfter: 60)
        XCTAssertEqual(back.map(\.id), ["j1"]); XCTAssertEqual(back.first?.ownerGone, false)
        XCTAssertEqual(back.first?.age ?? 0, 3600, accuracy: 5)
        XCTAssertEqual(q.counts().new, 1)
        XCTAssertEqual(Date().timeIntervalSince(Files.mtime(q.sub("new") + "/j1")!), 0, accuracy: 5, "waiting since it came back")
        // A claim of a process of this host that is gone is stale at once; one of another host waits out the limit.
        let again = try XCTUnwrap(try q.claim())
        XCTAssertTrue(q.holds(again))
        XCTAssertEqual(rename(again.path, q.sub("cur") + "/j1@\(Host.name).99999999"), 0)
        XCTAssertFalse(q.holds(again), "its worker sees the claim is no longer its own")
        try AtomicFile.write("/x/j2\n", to: q.sub("cur") + "/j2@other-host.99999999")
        let dead = q.reapStale(staleAfter: 60)
        XCTAssertEqual(dead.map(\.id), ["j1"]); XCTAssertEqual(dead.first?.ownerGone, true)
        XCTAssertEqual(q.entries("cur"), ["j2@other-host.99999999"])
        let c3 = try XCTUnwrap(try q.claim())
        q.finish(c3, ok: true)
        XCTAssertEqual(q.entries("done"), ["j1"])
        XCTAssertEqual(Date().timeIntervalSince(Files.mtime(q.sub("done") + "/j1")!), 0, accuracy: 5, "done/ entries carry their finish time")
        // Enqueueing a job that is pending is a no-op; one in done is re-queued.
        try q.enqueue(id: "j1", jobDir: "/x/j1")
        XCTAssertEqual(q.counts().new, 1)
    }

    func testCSVRoundTripAndQuoting() throws {
        var t = CSVTable(header: ["CellID", "name", "v"])
        t.rows = [["1", "a,b", "1.5"], ["2", "say \"hi\"", "NaN"]]
        try t.write(tmp + "/t.csv")
        let r = try CSVTable.read(tmp + "/t.csv")
        XCTAssertEqual(r.header, t.header)
        XCTAssertEqual(r.rows, t.rows)
        XCTAssertEqual(r.doubles("v")?.first, 1.5)
        XCTAssertEqual(CSVTable.num(3.0), "3")
        XCTAssertEqual(CSVTable.num(0.12345678), "0.1235")
        // the fast formatter agrees with printf (trailing zeros removed)
        func printfNum(_ v: Double, _ d: Int) -> String {
            var s = String(format: "%.\(d)f", v)
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
            return s == "-0" ? "0" : s
        }
        var g = SplitMix64(seed: 20261130)
        for k in 0..<20000 {
            let scale = [1e-5, 1e-3, 0.5, 7, 123.456, 1e5, 3e9][k % 7]
            let v = Double.random(in: -scale...scale, using: &g)
            for d in [3, 4] { XCTAssertEqual(CSVTable.num(v, digits: d), printfNum(v, d), "\(v) digits \(d)") }
        }
        for v in [0.5, 1.25, 2.00005, 0.00015, -0.00005, 1234.56785, 0.1, 0.7, 99.99995] {
            XCTAssertEqual(CSVTable.num(v), printfNum(v, 4), "\(v)")
        }
        // within 1e-6 of a half: printf's path, and a negative that rounds to zero is "0", not "-0"
        XCTAssertEqual(CSVTable.num(-0.0004999994087481298, digits: 3), "0")
        try "a,b\n1,2,3\n".write(toFile: tmp + "/bad.csv", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CSVTable.read(tmp + "/bad.csv")) { e in XCTAssertTrue("\(e)".contains("line 2")) }
    }

    func testDigestAndLock() throws {
        XCTAssertEqual(Digest.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        try "abc".write(toFile: tmp + "/f", atomically: true, encoding: .utf8)
        let (h, n) = try Digest.sha256(file: tmp + "/f")
        XCTAssertEqual(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"); XCTAssertEqual(n, 3)
        let l1 = FileLock(path: tmp + "/.lock")
        XCTAssertNotNil(l1)
        XCTAssertNil(FileLock(path: tmp + "/.lock", wait: false), "a second lock fails while the first is held")
        _ = l1
    }

    func testProgressClock() {
        XCTAssertEqual(ProgressReporter.clock(65), "1:05")
        XCTAssertEqual(ProgressReporter.clock(3725), "1:02:05")
        XCTAssertEqual(ProgressReporter.clock(.infinity), "--:--")
    }
}
