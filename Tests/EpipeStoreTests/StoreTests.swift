import XCTest
import Foundation
import EpipeCore
import EpipeStore

final class StoreTests: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws { tmp = NSTemporaryDirectory() + "epipe-store-" + UUID().uuidString; try Files.mkdir(tmp) }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func randomFile(_ path: String, bytes: Int, seed: UInt64) throws -> Data {
        var s = seed
        var d = Data(count: bytes)
        d.withUnsafeMutableBytes { (p: UnsafeMutableRawBufferPointer) in
            for i in 0..<bytes { s = s &* 6364136223846793005 &+ 1442695040888963407; p[i] = UInt8(truncatingIfNeeded: s >> 33) }
        }
        try d.write(to: URL(fileURLWithPath: path))
        return d
    }

    func testPutCopiesWithChecksum() throws {
        let src = tmp + "/scan.tif"
        let data = try randomFile(src, bytes: 20 << 20 | 12345, seed: 1)
        let store = try FileStore(base: tmp + "/store")
        var calls = 0
        let put = try store.put(source: src, key: { "scan-\($0.prefix(8)).tif" }) { _, _ in calls += 1 }
        let ref = put.raw, key = "scan-\(ref.sha256.prefix(8)).tif"
        XCTAssertEqual(put.key, key); XCTAssertEqual(put.sent, Int64(data.count))
        XCTAssertEqual(ref.sha256, Digest.sha256(data))
        XCTAssertEqual(ref.bytes, Int64(data.count))
        XCTAssertEqual(ref.uri, "file://" + store.root + "/" + key); XCTAssertEqual(store.base, "file://" + store.root)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.path(key))), data)
        XCTAssertGreaterThan(calls, 1)
        XCTAssertEqual(Files.list(store.root), [key], "no partial left behind")
        XCTAssertTrue(try store.verify(key: key, sha256: ref.sha256, bytes: ref.bytes))
        XCTAssertFalse(try store.verify(key: key, sha256: String(repeating: "0", count: 64), bytes: ref.bytes))
        XCTAssertThrowsError(try store.put(source: src, key: { _ in "../escape.tif" }, progress: nil))
        // fetch: back out, checked; a wrong expected digest is refused and leaves nothing
        try store.fetch(key: key, to: tmp + "/back.tif", sha256: ref.sha256, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp + "/back.tif")), data)
        XCTAssertThrowsError(try store.fetch(key: key, to: tmp + "/bad.tif", sha256: String(repeating: "1", count: 64), progress: nil))
        XCTAssertFalse(Files.exists(tmp + "/bad.tif"))
        try store.delete(key: key); XCTAssertFalse(Files.exists(store.path(key))); try store.delete(key: key)
    }

    func testInterruptedCopyResumesAndBadPartialIsReplaced() throws {
        let src = tmp + "/scan.tif"
        let data = try randomFile(src, bytes: 19 << 20, seed: 2)
        let store = try FileStore(base: tmp + "/store")
        let partial = store.partialPath(for: src)
        // A partial holding the first 9 MiB of the source: the copy continues from there.
        try data.prefix(9 << 20).write(to: URL(fileURLWithPath: partial))
        var first: Int64 = -1
        let ref = try store.put(source: src, key: { _ in "s.tif" }) { d, _ in if first < 0 { first = d } }.raw
        XCTAssertEqual(first, 9 << 20, "resumed after the matching prefix")
        XCTAssertEqual(ref.sha256, Digest.sha256(data))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.path("s.tif"))), data)
        // A partial that does not match the source is discarded and the copy starts over.
        var wrong = data.prefix(5 << 20); wrong[100] ^= 0xFF
        try wrong.write(to: URL(fileURLWithPath: store.partialPath(for: src)))
        let r2 = try store.put(source: src, key: { _ in "t.tif" }, progress: nil).raw
        XCTAssertEqual(r2.sha256, Digest.sha256(data))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.path("t.tif"))), data)
    }

    func testLedgerRoundTripAndSchema() throws {
        let l = try Ledger(dir: tmp + "/ledger")
        XCTAssertNil(try l.entry(for: "/a/b.tif"))
        let e = LedgerEntry(source: "/a/b.tif", bytes: 10, mtime: 1.5, sha256: "ab", dest: "file:///s/b.tif", job: "j")
        try l.record(e)
        XCTAssertEqual(try l.entry(for: "/a/b.tif"), e)
        XCTAssertEqual(l.all().count, 1)
        let f = try XCTUnwrap(Files.list(l.dir).first)
        try "{\"schema\":\"epipe.ledger/2\"}".write(toFile: l.dir + "/" + f, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try l.entry(for: "/a/b.tif")) { XCTAssertTrue("\($0)".contains("epipe.ledger/2")) }
    }
}
