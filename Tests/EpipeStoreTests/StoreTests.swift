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
        let ref = try store.put(source: src, key: "scan-1.tif") { _, _ in calls += 1 }
        XCTAssertEqual(ref.sha256, Digest.sha256(data))
        XCTAssertEqual(ref.bytes, Int64(data.count))
        XCTAssertEqual(ref.uri, "file://" + store.base + "/scan-1.tif")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.path("scan-1.tif"))), data)
        XCTAssertGreaterThan(calls, 1)
        XCTAssertEqual(Files.list(store.base), ["scan-1.tif"], "no partial left behind")
        XCTAssertThrowsError(try store.put(source: src, key: "../escape.tif"))
    }

    func testInterruptedCopyResumesAndBadPartialIsReplaced() throws {
        let src = tmp + "/scan.tif"
        let data = try randomFile(src, bytes: 19 << 20, seed: 2)
        let store = try FileStore(base: tmp + "/store")
        let partial = store.base + "/.s.tif.partial"
        // A partial holding the first 9 MiB of the source: the copy continues from there.
        try data.prefix(9 << 20).write(to: URL(fileURLWithPath: partial))
        var first: Int64 = -1
        let ref = try store.put(source: src, key: "s.tif") { d, _ in if first < 0 { first = d } }
        XCTAssertEqual(first, 9 << 20, "resumed after the matching prefix")
        XCTAssertEqual(ref.sha256, Digest.sha256(data))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.path("s.tif"))), data)
        // A partial that does not match the source is discarded and the copy starts over.
        var wrong = data.prefix(5 << 20); wrong[100] ^= 0xFF
        try wrong.write(to: URL(fileURLWithPath: store.base + "/.t.tif.partial"))
        let r2 = try store.put(source: src, key: "t.tif")
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
