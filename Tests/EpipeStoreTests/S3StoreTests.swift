import XCTest
import Foundation
import EpipeCore
import EpipeTestSupport
@testable import EpipeStore

/// S3Store against a real SeaweedFS (one server for the class; the crash test starts its own).
final class S3StoreTests: XCTestCase {
    nonisolated(unsafe) static var server: SeaweedFS?
    nonisolated(unsafe) static var startError: Error?
    static let bucket = "epipe-test"
    static let mib = 1 << 20

    override class func setUp() {
        super.setUp()
        do {
            let s = try SeaweedFS.start()
            server = s
            try S3Client(config: S3Config(credentials: S3Credentials(accessKeyId: s.accessKey, secretAccessKey: s.secretKey),
                                          endpoint: s.endpoint, backoffBase: 0.1)).createBucket(bucket)
        } catch { startError = error }
    }

    override class func tearDown() {
        server?.stop(); server = nil
        super.tearDown()
    }

    var tmp = ""
    var server: SeaweedFS { Self.server! }

    override func setUpWithError() throws {
        if let e = Self.startError { throw e }
        tmp = NSTemporaryDirectory() + "epipe-s3-" + UUID().uuidString
        try Files.mkdir(tmp)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: tmp) }

    func config(_ s: SeaweedFS? = nil, partSize: Int = 5 << 20, parallel: Int = 4, retries: Int = 4, secret: String? = nil, accessKey: String? = nil) -> S3Config {
        let s = s ?? server
        return S3Config(credentials: S3Credentials(accessKeyId: accessKey ?? s.accessKey, secretAccessKey: secret ?? s.secretKey, source: "test"),
                        endpoint: s.endpoint, partSize: partSize, parallel: parallel, retries: retries, backoffBase: 0.02, backoffCap: 0.2)
    }

    func store(_ c: S3Config, uri: String = "s3://\(S3StoreTests.bucket)/raw") throws -> S3Store {
        try S3Store(uri: uri, config: c, stateDir: tmp + "/state")
    }

    func randomFile(_ name: String, bytes: Int, seed: UInt64) throws -> (String, Data) {
        var s = seed &* 0x9E3779B97F4A7C15 | 1
        var d = Data(count: bytes)
        d.withUnsafeMutableBytes { (p: UnsafeMutableRawBufferPointer) in
            for i in 0..<bytes { s = s &* 6364136223846793005 &+ 1442695040888963407; p[i] = UInt8(truncatingIfNeeded: s >> 33) }
        }
        let path = tmp + "/" + name
        try d.write(to: URL(fileURLWithPath: path))
        return (path, d)
    }

    static func contentKey(_ sha: String) -> String { "scans/\(sha.prefix(2))/\(sha).bin" }

    func assertOneLine(_ e: Error, _ kind: EpipeError.Kind, contains: [String], file: StaticString = #filePath, line: UInt = #line) {
        guard let ee = e as? EpipeError else { return XCTFail("not an EpipeError: \(e)", file: file, line: line) }
        XCTAssertEqual(ee.kind, kind, ee.message, file: file, line: line)
        XCTAssertFalse(ee.message.contains("\n"), ee.message, file: file, line: line)
        for c in contains where !c.isEmpty { XCTAssertTrue(ee.message.contains(c), "\(ee.message) lacks \(c)", file: file, line: line) }
        XCTAssertFalse(ee.message.contains(server.secretKey), "secret in message", file: file, line: line)
        XCTAssertFalse(ee.message.contains("Signature="), "signature in message", file: file, line: line)
    }

    // MARK: round trips

    func testSmallFileRoundTripDedupeAndChange() throws {
        let (src, data) = try randomFile("small.tif", bytes: 3 * Self.mib + 12345, seed: 1)
        let st = try store(config())
        try st.check()
        var calls = 0
        let r = try st.put(source: src, key: Self.contentKey) { _, _ in calls += 1 }
        XCTAssertEqual(r.raw.sha256, Digest.sha256(data))
        XCTAssertEqual(r.raw.bytes, Int64(data.count))
        XCTAssertEqual(r.key, Self.contentKey(r.raw.sha256))
        XCTAssertEqual(r.raw.uri, "s3://\(Self.bucket)/raw/" + r.key)
        XCTAssertEqual(r.sent, Int64(data.count))
        XCTAssertGreaterThan(calls, 1)
        XCTAssertTrue(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: r.raw.bytes))
        XCTAssertFalse(try st.verify(key: r.key, sha256: String(repeating: "0", count: 64), bytes: r.raw.bytes))
        XCTAssertFalse(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: r.raw.bytes + 1))
        let info = try st.client.headObject(bucket: Self.bucket, key: st.objectKey(r.key))
        XCTAssertEqual(info?.metadata["sha256"], r.raw.sha256)
        XCTAssertEqual(info?.metadata["source-bytes"], String(data.count))

        let out = tmp + "/back/small.tif"
        try st.fetch(key: r.key, to: out, sha256: r.raw.sha256, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), data)
        XCTAssertFalse(Files.exists(out + ".partial"))

        // The same content again: nothing sent.
        let again = try st.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(again.sent, 0)
        XCTAssertEqual(again, PutResult(raw: r.raw, key: r.key, sent: 0))

        // A changed file: a new key, sent in full; the old object stays.
        var changed = data; changed[777] ^= 1
        try changed.write(to: URL(fileURLWithPath: src))
        let r2 = try st.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertNotEqual(r2.key, r.key)
        XCTAssertEqual(r2.sent, Int64(changed.count))
        XCTAssertTrue(try st.verify(key: r2.key, sha256: Digest.sha256(changed), bytes: Int64(changed.count)))
        XCTAssertTrue(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: r.raw.bytes))

        try st.delete(key: r2.key)
        XCTAssertFalse(try st.verify(key: r2.key, sha256: r2.raw.sha256, bytes: r2.raw.bytes))
        try st.delete(key: r2.key)   // not there: no error
    }

    func testKeysWithSpacesUnicodeAndSymbols() throws {
        let (src, data) = try randomFile("odd.tif", bytes: 4096, seed: 2)
        let st = try store(config(), uri: "s3://\(Self.bucket)/raw data/µ")
        let r = try st.put(source: src, key: { "run 1+2=3 µm (a)/scan,v2 \($0.prefix(8)).tif" }, progress: nil)
        XCTAssertEqual(r.raw.uri, "s3://\(Self.bucket)/raw data/µ/run 1+2=3 µm (a)/scan,v2 \(r.raw.sha256.prefix(8)).tif")
        XCTAssertTrue(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: Int64(data.count)))
        try st.fetch(key: r.key, to: tmp + "/odd-back", sha256: r.raw.sha256, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp + "/odd-back")), data)
        XCTAssertThrowsError(try st.put(source: src, key: { _ in "../escape" }, progress: nil)) { self.assertOneLine($0, .badInput, contains: ["store key"]) }
    }

    func testEmptyFile() throws {
        let (src, _) = try randomFile("empty", bytes: 0, seed: 3)
        let st = try store(config())
        let r = try st.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(r.raw.sha256, Digest.sha256(Data()))
        XCTAssertTrue(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: 0))
        try st.fetch(key: r.key, to: tmp + "/empty-back", sha256: r.raw.sha256, progress: nil)
        XCTAssertEqual(Files.size(tmp + "/empty-back"), 0)
    }

    func testMultipartRoundTripAndRangedFetch() throws {
        let size = 23 * Self.mib
        let (src, data) = try randomFile("big.tif", bytes: size, seed: 4)
        let st = try store(config())
        var seen: [(Int64, Int64)] = []
        let t0 = Date()
        let r = try st.put(source: src, key: Self.contentKey) { seen.append(($0, $1)) }
        let secs = Date().timeIntervalSince(t0)
        XCTAssertEqual(r.raw.sha256, Digest.sha256(data))
        XCTAssertEqual(r.sent, Int64(size))
        XCTAssertEqual(st.client.requestCount("UploadPart"), 5)
        XCTAssertEqual(st.client.requestCount("CreateMultipartUpload"), 1)
        XCTAssertEqual(st.client.requestCount("CompleteMultipartUpload"), 1)
        XCTAssertEqual(st.client.requestCount("PutObject"), 0)
        XCTAssertEqual(seen.last.map { [$0.0, $0.1] }, [Int64(size), Int64(size)])
        XCTAssertEqual(seen.map { $0.0 }, seen.map { $0.0 }.sorted(), "progress only grows")
        XCTAssertTrue(try st.verify(key: r.key, sha256: r.raw.sha256, bytes: Int64(size)))
        XCTAssertEqual(Files.list(tmp + "/state").filter { $0.hasSuffix(".json") }, [], "resume record removed")
        let etag = try st.client.headObject(bucket: Self.bucket, key: st.objectKey(r.key))!.etag
        print("S3StoreTests: 23 MiB multipart put in \(String(format: "%.2f", secs)) s; ETag \(etag)")

        // Ranged GETs of partSize, in parallel, then hashed.
        let out = tmp + "/big-back.tif"
        var fetched: Int64 = 0
        try st.fetch(key: r.key, to: out, sha256: r.raw.sha256) { d, _ in fetched = d }
        XCTAssertEqual(st.client.requestCount("GetObject"), 5)
        XCTAssertEqual(fetched, Int64(size))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), data)

        // A wrong expected sha256: refused, nothing left behind.
        let bad = tmp + "/big-bad.tif"
        XCTAssertThrowsError(try st.fetch(key: r.key, to: bad, sha256: String(repeating: "a", count: 64), progress: nil)) {
            self.assertOneLine($0, .failed, contains: ["differs from the expected"])
        }
        XCTAssertFalse(Files.exists(bad)); XCTAssertFalse(Files.exists(bad + ".partial"))
        XCTAssertThrowsError(try st.fetch(key: "scans/none.bin", to: bad, sha256: nil, progress: nil)) { self.assertOneLine($0, .badInput, contains: ["no such object"]) }

        // Again: deduplicated by HEAD, no part sent.
        let st2 = try store(config())
        let again = try st2.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(again.sent, 0)
        XCTAssertEqual(st2.client.requestCount("UploadPart"), 0)
        XCTAssertEqual(st2.client.requestCount("CreateMultipartUpload"), 0)
    }

    // MARK: resume

    struct Stop: Error {}

    /// Puts with parts >= `from` refused by the hook; returns the resume record's upload id.
    func interruptedPut(_ src: String, from: Int, parallel: Int = 4) throws -> String {
        var c = config(parallel: parallel)
        c.hooks.beforePart = { n in if n >= from { throw Stop() } }
        let st = try store(c)
        XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { XCTAssertTrue($0 is Stop, "\($0)") }
        XCTAssertEqual(st.client.requestCount("UploadPart"), from - 1)
        XCTAssertEqual(st.client.requestCount("CompleteMultipartUpload"), 0)
        let records = Files.list(tmp + "/state").filter { $0.hasSuffix(".json") }
        XCTAssertEqual(records.count, 1)
        let rec = try JSONSerialization.jsonObject(with: Files.read(tmp + "/state/" + records[0])) as! [String: Any]
        XCTAssertEqual(rec["partSize"] as? Int, 5 << 20)
        return rec["uploadId"] as! String
    }

    func testInterruptedPutResumesSendingOnlyMissingParts() throws {
        let size = 23 * Self.mib, part = 5 * Self.mib
        let (src, data) = try randomFile("resume.tif", bytes: size, seed: 5)
        let sha = Digest.sha256(data)
        _ = try interruptedPut(src, from: 3)
        var c = config()
        c.hooks.listPageSize = 1   // ListParts one part per page: paging followed
        let st = try store(c)
        XCTAssertFalse(try st.verify(key: Self.contentKey(sha), sha256: sha, bytes: Int64(size)), "no object after the interruption")
        let r = try st.put(source: src, key: Self.contentKey, progress: nil)
        print("S3StoreTests: resume sent \(r.sent) of \(size) bytes (2 of 5 parts were on the server); ListParts pages: \(st.client.requestCount("ListParts"))")
        XCTAssertEqual(r.sent, Int64(size - 2 * part))
        XCTAssertEqual(st.client.requestCount("UploadPart"), 3)
        XCTAssertGreaterThanOrEqual(st.client.requestCount("ListParts"), 2)
        XCTAssertEqual(st.client.requestCount("CreateMultipartUpload"), 0)
        XCTAssertEqual(r.raw.sha256, sha)
        XCTAssertTrue(try st.verify(key: r.key, sha256: sha, bytes: Int64(size)))
        XCTAssertEqual(Files.list(tmp + "/state").filter { $0.hasSuffix(".json") }, [])
        try st.fetch(key: r.key, to: tmp + "/resume-back", sha256: sha, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp + "/resume-back")), data)
    }

    func testResumeResendsAPartWhoseETagDiffers() throws {
        let size = 23 * Self.mib, part = 5 * Self.mib
        let (src, data) = try randomFile("mismatch.tif", bytes: size, seed: 6)
        let sha = Digest.sha256(data)
        let uploadId = try interruptedPut(src, from: 3)
        // Part 2 on the server now holds other bytes of the same size.
        let st = try store(config())
        let junk = Data(repeating: 0xAB, count: part)
        _ = try st.client.uploadPart(bucket: Self.bucket, key: st.objectKey(Self.contentKey(sha)), uploadId: uploadId, number: 2, body: junk, checksum: false)
        let st2 = try store(config())
        let r = try st2.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(r.sent, Int64(size - part), "only part 1 was kept")
        XCTAssertEqual(st2.client.requestCount("UploadPart"), 4)
        try st2.fetch(key: r.key, to: tmp + "/mismatch-back", sha256: sha, progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp + "/mismatch-back")), data)
    }

    func testVanishedUploadStartsOver() throws {
        let size = 12 * Self.mib
        let (src, data) = try randomFile("gone.tif", bytes: size, seed: 7)
        let uploadId = try interruptedPut(src, from: 2)
        let st = try store(config())
        try st.client.abortMultipartUpload(bucket: Self.bucket, key: st.objectKey(Self.contentKey(Digest.sha256(data))), uploadId: uploadId)
        let r = try st.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(r.sent, Int64(size))
        XCTAssertEqual(st.client.requestCount("CreateMultipartUpload"), 1)
        XCTAssertTrue(try st.verify(key: r.key, sha256: Digest.sha256(data), bytes: Int64(size)))
    }

    func testLostRecordAdoptsTheUploadOnTheServer() throws {
        let size = 17 * Self.mib, part = 5 * Self.mib
        let (src, data) = try randomFile("adopt.tif", bytes: size, seed: 8)
        _ = try interruptedPut(src, from: 3)
        try FileManager.default.removeItem(atPath: tmp + "/state")
        let st = try store(config())
        let r = try st.put(source: src, key: Self.contentKey, progress: nil)
        XCTAssertEqual(st.client.requestCount("ListMultipartUploads"), 1)
        XCTAssertEqual(st.client.requestCount("CreateMultipartUpload"), 0)
        XCTAssertEqual(r.sent, Int64(size - 2 * part))
        XCTAssertTrue(try st.verify(key: r.key, sha256: Digest.sha256(data), bytes: Int64(size)))
    }

    // MARK: failures

    func testWrongCredentialsAreOneLineWithoutTheSecret() throws {
        let (src, _) = try randomFile("creds.tif", bytes: 1000, seed: 9)
        let wrongSecret = "WRONG-secret-Kq7Zx0", token = "SESSION-token-Vb3Nq1"
        var withToken = config(secret: wrongSecret)
        withToken.credentials = S3Credentials(accessKeyId: server.accessKey, secretAccessKey: wrongSecret, sessionToken: token, source: "test")
        for (c, code) in [(config(secret: wrongSecret), "SignatureDoesNotMatch"), (config(secret: wrongSecret, accessKey: "NOSUCHKEYID"), "InvalidAccessKeyId"),
                          (withToken, "")] {
            let st = try store(c)
            XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { e in
                self.assertOneLine(e, .badInput, contains: ["s3://\(Self.bucket)", "refused", "AWS_ACCESS_KEY_ID", code])
                XCTAssertFalse("\(e)".contains(wrongSecret))
                XCTAssertFalse("\(e)".contains(token))
                print("S3StoreTests: wrong credentials -> \(e)")
            }
            XCTAssertEqual(st.client.requestCount("HeadBucket"), 1, "refusals are not retried")
            XCTAssertEqual(st.client.requestCount("PutObject"), 0)
            XCTAssertThrowsError(try st.check()) { self.assertOneLine($0, .badInput, contains: ["refused"]) }
        }
    }

    func testMissingBucketNamesIt() throws {
        let (src, _) = try randomFile("nobucket.tif", bytes: 1000, seed: 10)
        let st = try store(config(), uri: "s3://no-such-bucket-epipe/raw")
        XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { e in
            self.assertOneLine(e, .badInput, contains: ["s3://no-such-bucket-epipe", "create it or fix --to"])
            print("S3StoreTests: missing bucket -> \(e)")
        }
        XCTAssertThrowsError(try st.check()) { self.assertOneLine($0, .badInput, contains: ["no-such-bucket-epipe"]) }
    }

    func testCorruptionInFlightIsCaught() throws {
        // Every attempt of a PutObject corrupted: the server refuses each, the put fails.
        let (src, data) = try randomFile("corrupt.tif", bytes: 2 * Self.mib, seed: 11)
        var c = config(retries: 3)
        c.hooks.corruptBody = { op, _, _ in op == "PutObject" }
        let st = try store(c)
        XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { e in
            self.assertOneLine(e, .failed, contains: ["PutObject", "3 tries"])
            print("S3StoreTests: corrupted in flight -> \(e)")
        }
        XCTAssertFalse(try st.verify(key: Self.contentKey(Digest.sha256(data)), sha256: Digest.sha256(data), bytes: Int64(data.count)))
        XCTAssertNil(try st.client.headObject(bucket: Self.bucket, key: st.objectKey(Self.contentKey(Digest.sha256(data)))))

        // One corrupted attempt of part 2 of a multipart put: refused, sent again, stored right.
        let (big, bigData) = try randomFile("corrupt-big.tif", bytes: 11 * Self.mib, seed: 12)
        var c2 = config()
        c2.hooks.corruptBody = { op, part, attempt in op == "UploadPart" && part == 2 && attempt == 1 }
        let st2 = try store(c2)
        let r = try st2.put(source: big, key: Self.contentKey, progress: nil)
        XCTAssertEqual(st2.client.requestCount("UploadPart"), 4)
        XCTAssertEqual(r.sent, Int64(bigData.count + 5 * Self.mib), "the refused attempt counts as sent")
        try st2.fetch(key: r.key, to: tmp + "/corrupt-back", sha256: Digest.sha256(bigData), progress: nil)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: tmp + "/corrupt-back")), bigData)
    }

    func testSourceChangedBetweenPassesIsRefused() throws {
        let (src, data) = try randomFile("moving.tif", bytes: 11 * Self.mib, seed: 13)
        var c = config(parallel: 1)
        c.hooks.beforePart = { n in
            if n == 2 {   // after pass 1 hashed it: change a byte of part 3
                let h = FileHandle(forUpdatingAtPath: src)!
                h.seek(toFileOffset: UInt64(10 * (1 << 20) + 5)); h.write(Data([0xFF])); h.closeFile()
            }
        }
        let st = try store(c)
        XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { self.assertOneLine($0, .failed, contains: ["changed while"]) }
        XCTAssertFalse(try st.verify(key: Self.contentKey(Digest.sha256(data)), sha256: Digest.sha256(data), bytes: Int64(data.count)))
    }

    func testServerKilledMidPutRetriesThenFails() throws {
        let own = try SeaweedFS.start()
        defer { own.stop() }
        try S3Client(config: config(own)).createBucket(Self.bucket)
        let size = 23 * Self.mib
        let (src, data) = try randomFile("crash.tif", bytes: size, seed: 14)
        let sha = Digest.sha256(data)
        var c = config(own, parallel: 2, retries: 3)
        c.hooks.beforePart = { n in if n == 3 { own.kill() } }
        let st = try store(c)
        let t0 = Date()
        XCTAssertThrowsError(try st.put(source: src, key: Self.contentKey, progress: nil)) { e in
            self.assertOneLine(e, .failed, contains: ["UploadPart", "after 3 tries", "rerun"])
            print("S3StoreTests: server killed -> \(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 15)
        print("S3StoreTests: failed after \(String(format: "%.2f", Date().timeIntervalSince(t0))) s")
        // Back up on the same data: no object under the key; a new put resumes and completes.
        let t1 = Date()
        try own.launch()
        print("S3StoreTests: relaunched in \(String(format: "%.2f", Date().timeIntervalSince(t1))) s")
        let st2 = try store(config(own))
        XCTAssertFalse(try st2.verify(key: Self.contentKey(sha), sha256: sha, bytes: Int64(size)))
        let r = try st2.put(source: src, key: Self.contentKey, progress: nil)
        print("S3StoreTests: after the crash, the resumed put sent \(r.sent) of \(size) bytes; \(String(format: "%.2f", Date().timeIntervalSince(t1))) s after relaunch")
        XCTAssertLessThanOrEqual(r.sent, Int64(size))
        XCTAssertTrue(try st2.verify(key: r.key, sha256: sha, bytes: Int64(size)))
    }

    /// Throughput of a 200 MiB multipart put and fetch (64 MiB parts, 4 in flight); runs only
    /// with EPIPE_S3_BENCH=1.
    func testThroughput200MiB() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_S3_BENCH"] == "1" else { throw XCTSkip("set EPIPE_S3_BENCH=1 to measure") }
        let size = 200 * Self.mib
        let (src, data) = try randomFile("bench.bin", bytes: size, seed: 99)
        let st = try store(config(partSize: 64 << 20, parallel: 4))
        let (warm, _) = try randomFile("warm.bin", bytes: 1000, seed: 98)
        _ = try st.put(source: warm, key: Self.contentKey, progress: nil)   // the server's first write to a bucket grows its volumes
        let th = Date()
        _ = try Digest.sha256(file: src)
        let hash = Date().timeIntervalSince(th)
        let t0 = Date()
        let r = try st.put(source: src, key: Self.contentKey, progress: nil)
        let put = Date().timeIntervalSince(t0)
        let t1 = Date()
        try st.fetch(key: r.key, to: tmp + "/bench-back", sha256: r.raw.sha256, progress: nil)
        let get = Date().timeIntervalSince(t1)
        XCTAssertEqual(r.sent, Int64(size))
        XCTAssertEqual(Files.size(tmp + "/bench-back"), Int64(data.count))
        print(String(format: "S3StoreTests: 200 MiB put %.2f s (%.0f MiB/s, hash pass included; the hash pass alone %.2f s), fetch %.2f s (%.0f MiB/s, hash included)",
                     put, 200 / put, hash, get, 200 / get))
        try st.delete(key: r.key)
    }

    func testBandwidthLimit() throws {
        let (src, _) = try randomFile("slow.tif", bytes: 3 * Self.mib, seed: 15)
        var c = config()
        c.bytesPerSecond = Double(2 * Self.mib)
        let st = try store(c)
        let t0 = Date()
        _ = try st.put(source: src, key: Self.contentKey, progress: nil)
        // 3 MiB at 2 MiB/s with a one-second burst: at least ~0.5 s.
        XCTAssertGreaterThan(Date().timeIntervalSince(t0), 0.4)
    }
}
