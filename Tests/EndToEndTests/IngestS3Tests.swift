import XCTest
import Foundation
import EpipeCore
import EpipeStore
import EpipeTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// epipe-ingest --to s3:// against a real S3 server (SeaweedFS, started once for the class on
/// 127.0.0.1; skipped where `make pydeps` could not install it): round trip, rerun, change, bad
/// credentials, a missing bucket, kill -9 in a multipart upload then a rerun, the server gone
/// mid-run, and a stage downstream reading a raw image that is only in the bucket.
final class IngestS3Tests: E2ECase {
    nonisolated(unsafe) static var server: SeaweedFS?
    var weed: SeaweedFS { Self.server! }

    override class func tearDown() { server?.stop(); server = nil; super.tearDown() }

    override func setUpWithError() throws {
        try super.setUpWithError()
        if Self.server == nil { Self.server = try SeaweedFS.start() }
        setenv("AWS_ACCESS_KEY_ID", weed.accessKey, 1); setenv("AWS_SECRET_ACCESS_KEY", weed.secretKey, 1)
        let client = try S3Client(config: S3Config(credentials: S3Credentials(accessKeyId: weed.accessKey, secretAccessKey: weed.secretKey),
                                               endpoint: weed.endpoint, retries: 2, backoffBase: 0.05))
        try? client.createBucket("scans")
    }

    /// The server's credentials in the environment, HOME elsewhere (no ~/.aws of the machine).
    var env: [String: String] { ["AWS_ACCESS_KEY_ID": weed.accessKey, "AWS_SECRET_ACCESS_KEY": weed.secretKey, "HOME": tmp] }
    func ingest(_ args: [String], env extra: [String: String] = [:]) throws -> RunResult {
        try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--endpoint", weed.endpoint] + args, env: env.merging(extra) { $1 })
    }
    func lastReport() throws -> [String: Any] {
        let dir = tmp + "/root/ingest/runs"
        let f = try XCTUnwrap(Files.list(dir).filter { $0.hasSuffix(".json") }.sorted().last)
        return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))) as! [String: Any]
    }
    /// epipe-ingest of `dir` to s3://scans/raw in 5 MiB parts, one at a time, at 8 MB/s, started in
    /// the background (to be killed, or to lose its server, mid-upload).
    func slowUpload(_ dir: String, _ extra: [String] = [], stderr: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path("epipe-ingest"))
        p.arguments = ["--root", tmp + "/root", "--settle", "0", "-q", "--endpoint", weed.endpoint, "--to", "s3://scans/raw",
                       "--part-size", "5", "--parallel", "1", "--bwlimit", "8"] + extra + [dir]
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardOutput = FileHandle.nullDevice
        if let stderr { p.standardError = stderr } else { p.standardError = FileHandle.nullDevice }
        try p.run()
        return p
    }
    func randomFile(_ path: String, mib: Int, seed: UInt64) throws -> Data {
        var data = Data(count: mib << 20)
        data.withUnsafeMutableBytes { p in var s = seed; for i in 0..<p.count { s = s &* 6364136223846793005 &+ 1442695040888963407; p[i] = UInt8(truncatingIfNeeded: s >> 33) } }
        try data.write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: path)
        return data
    }

    func testRoundTripRerunChangeAndStageReadsFromTheBucket() throws {
        let d = tmp + "/scanner"
        _ = try synth(d, count: 1, size: 320, channels: 4)
        try "scanner log\n".write(toFile: d + "/run.log", atomically: true, encoding: .utf8)
        let r = try ingest(["--to", "s3://scans/raw", d])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.lines.count, 1)
        let job = r.lines[0]
        let spec = try Job(dir: job).spec
        XCTAssertTrue(spec.raw.uri.hasPrefix("s3://scans/raw/s-") && spec.raw.uri.hasSuffix(".ome.tif"), spec.raw.uri)
        XCTAssertEqual(spec.raw.endpoint, weed.endpoint)
        XCTAssertEqual(Files.list(tmp + "/root/store"), [], "nothing in the local store")
        let rep = try lastReport()
        XCTAssertEqual(rep["transferred"] as? Int, 2); XCTAssertEqual(rep["destination"] as? String, "s3://scans/raw")
        XCTAssertFalse(r.err.contains(weed.secretKey))
        // a rerun sends nothing; a changed file is sent again
        let again = try ingest(["--to", "s3://scans/raw", d])
        XCTAssertEqual(again.code, 0, again.err); XCTAssertEqual(again.out, "")
        XCTAssertEqual(try lastReport()["bytes_sent"] as? Int, 0)
        try "scanner log 2\n".write(toFile: d + "/run.log", atomically: true, encoding: .utf8)
        XCTAssertTrue(try ingest(["--to", "s3://scans/raw", d]).err.contains("1 transferred"))
        // --checksum re-hashes and re-checks every stored object by HEAD: nothing to send
        let ck = try ingest(["--to", "s3://scans/raw", "--checksum", d])
        XCTAssertTrue(ck.err.contains("2 unchanged"), ck.err)
        // a stage downstream reads the raw image from the bucket, and leaves no cache behind
        let dn = try exec("epipe-denoise", ["-q", job], env: env)
        XCTAssertEqual(dn.code, 0, dn.err)
        XCTAssertEqual(try manifest(job, "denoise").status, .complete)
        XCTAssertFalse(Files.exists(job + "/.cache"), "the fetched scan is removed after the stage")
        // without credentials the stage says so in one line
        let nocred = try exec("epipe-denoise", ["-q", "--force", job], env: ["HOME": tmp, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        XCTAssertEqual(nocred.code, 2, nocred.err)
    }

    func testWrongCredentialsAndMissingBucket() throws {
        let d = tmp + "/s"
        _ = try synth(d, size: 96, channels: 2)
        let bad = try ingest(["--to", "s3://scans/raw", d], env: ["AWS_SECRET_ACCESS_KEY": "not-the-secret-XYZ"])
        XCTAssertEqual(bad.code, 2, bad.err)
        XCTAssertEqual(bad.errLines.count, 1, bad.err)
        XCTAssertFalse(bad.err.contains("not-the-secret-XYZ"), "no secret in the message")
        XCTAssertTrue(bad.err.lowercased().contains("credentials"), bad.err)
        let missing = try ingest(["--to", "s3://no-such-bucket/raw", d])
        XCTAssertEqual(missing.code, 2, missing.err)
        XCTAssertEqual(missing.errLines.count, 1, missing.err)
        XCTAssertTrue(missing.err.contains("no-such-bucket"), missing.err)
        XCTAssertTrue(try Root(tmp + "/root").allJobIDs().isEmpty)
    }

    /// kill -9 during a multipart upload (5 MiB parts, slowed by --bwlimit), then a rerun: the
    /// parts the server has (ListParts) are not sent again, and the object's sha256 is the source's.
    func testKilledMultipartUploadResumes() throws {
        let d = tmp + "/big"
        try Files.mkdir(d)
        let data = try randomFile(d + "/archive.bin", mib: 40, seed: 3)
        let p = try slowUpload(d)
        // kill once the server holds at least two parts of the upload (ListParts), whatever the
        // server's own start-up delays
        let client = try S3Client(config: S3Config(credentials: S3Credentials(accessKeyId: weed.accessKey, secretAccessKey: weed.secretKey),
                                                   endpoint: weed.endpoint, retries: 2, backoffBase: 0.05))
        let deadline = Date().addingTimeInterval(30)
        var onServer = 0
        while onServer < 2 && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            if let u = try? client.listMultipartUploads(bucket: "scans", prefix: "raw/files/big/").first,
               let parts = try? client.listParts(bucket: "scans", key: u.key, uploadId: u.uploadId) { onServer = parts.parts.count }
        }
        kill(p.processIdentifier, SIGKILL); p.waitUntilExit()
        XCTAssertGreaterThanOrEqual(onServer, 2, "parts on the server when the upload was killed")
        let r = try ingest(["--to", "s3://scans/raw", "--part-size", "5", d])
        XCTAssertEqual(r.code, 0, r.err)
        let sent = try XCTUnwrap(try lastReport()["bytes_sent"] as? Int)
        print("S3 multipart resume after kill -9: \(sent) of \(data.count) bytes sent again")
        XCTAssertLessThanOrEqual(sent, data.count - (10 << 20), "at least two 5 MiB parts were on the server and were not sent again")
        let store = try StoreAccess.open(uri: "s3://scans/raw", s3: .init(endpoint: weed.endpoint), stateDir: tmp + "/state")
        try store.fetch(key: "files/big/archive.bin", to: tmp + "/back.bin", sha256: Digest.sha256(data), progress: nil)
        XCTAssertTrue(try store.verify(key: "files/big/archive.bin", sha256: Digest.sha256(data), bytes: Int64(data.count)))
    }

    /// The server killed mid-run: retries, then a clear failure; nothing is recorded as verified;
    /// with the server back, a rerun completes.
    func testServerGoneMidRun() throws {
        let d = tmp + "/gone"
        try Files.mkdir(d)
        let data = try randomFile(d + "/a.bin", mib: 30, seed: 5)
        let errPipe = Pipe()
        let p = try slowUpload(d, ["--retries", "2"], stderr: errPipe)
        Thread.sleep(forTimeInterval: 1.5)
        weed.kill()
        let err = String(decoding: errPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, err)
        XCTAssertTrue(err.contains("a.bin") && err.lowercased().contains("tr"), err)
        let ledger = try Ledger(dir: tmp + "/root/ledger")
        XCTAssertNil(try ledger.entry(for: Files.canonical(d + "/a.bin")), "nothing recorded for a file that did not arrive")
        try weed.launch()
        let r = try ingest(["--to", "s3://scans/raw", "--part-size", "5", d])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertNotNil(try ledger.entry(for: Files.canonical(d + "/a.bin"))?.verified)
        let store = try StoreAccess.open(uri: "s3://scans/raw", s3: .init(endpoint: weed.endpoint), stateDir: tmp + "/state")
        XCTAssertTrue(try store.verify(key: "files/gone/a.bin", sha256: Digest.sha256(data), bytes: Int64(data.count)))
    }

    /// Credentials from the shared credentials file by --profile; the region given is what job.json
    /// records; the store and endpoint may come from epipe.json instead of flags.
    func testProfileRegionAndEpipeJSON() throws {
        let d = tmp + "/p"
        _ = try synth(d, size: 96, channels: 2)
        try Files.mkdir(tmp + "/.aws")
        try "[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n[lab]\naws_access_key_id = \(weed.accessKey)\naws_secret_access_key = \(weed.secretKey)\n"
            .write(toFile: tmp + "/.aws/credentials", atomically: true, encoding: .utf8)
        let noKeys = ["HOME": tmp, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""]
        let wrong = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--endpoint", weed.endpoint, "--to", "s3://scans/prof", d], env: noKeys)
        XCTAssertEqual(wrong.code, 2, "the default profile's keys are refused: \(wrong.err)")
        let r = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--endpoint", weed.endpoint, "--to", "s3://scans/prof",
                                          "--profile", "lab", "--region", "eu-west-3", d], env: noKeys)
        XCTAssertEqual(r.code, 0, r.err)
        let spec = try Job(dir: r.lines[0]).spec
        XCTAssertEqual(spec.raw.region, "eu-west-3"); XCTAssertTrue(spec.raw.uri.hasPrefix("s3://scans/prof/"))
        XCTAssertFalse(try String(contentsOfFile: r.lines[0] + "/job.json", encoding: .utf8).contains(weed.secretKey))
        // epipe.json: store and endpoint there, no flags
        let root2 = tmp + "/root2"
        _ = try Root(root2)
        var cfg = try Root(root2).config()
        cfg.store = "s3://scans/fromcfg"; cfg.s3 = .init(endpoint: weed.endpoint)
        try AtomicFile.write(JSON.encode(cfg), to: root2 + "/epipe.json")
        let c = try exec("epipe-ingest", ["--root", root2, "--settle", "0", d], env: env)
        XCTAssertEqual(c.code, 0, c.err)
        XCTAssertTrue(try Job(dir: c.lines[0]).spec.raw.uri.hasPrefix("s3://scans/fromcfg/"))
    }
}
