import XCTest
import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// epipe-ingest as a transfer tool (the file:// store; the s3:// one is IngestS3Tests): what moves
/// (globs, stdin, files that only travel), what does not (the ledger, --dry-run), --checksum,
/// --delete-source-after-verify, --bwlimit, the run report, a kill -9 then a rerun, two runs at once.
final class IngestTransferTests: E2ECase {
    func ingest(_ args: [String], stdin: String? = nil) throws -> RunResult {
        try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0"] + args, stdin: stdin)
    }
    /// A scanner folder: two slides and metadata that only travels.
    func scannerFolder() throws -> String {
        let d = tmp + "/scanner"
        _ = try synth(d, count: 2, size: 96, channels: 2)
        try Files.mkdir(d + "/meta")
        try "scanner log\n".write(toFile: d + "/meta/run.log", atomically: true, encoding: .utf8)
        try "<xml/>\n".write(toFile: d + "/s-01.xml", atomically: true, encoding: .utf8)
        return d
    }
    func lastReport() throws -> [String: Any] {
        let dir = tmp + "/root/ingest/runs"
        let f = try XCTUnwrap(Files.list(dir).filter { $0.hasSuffix(".json") }.sorted().last)
        return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))) as! [String: Any]
    }
    func storeFiles() -> [String] {
        let base = Files.canonical(tmp + "/root/store")
        guard let e = FileManager.default.enumerator(atPath: base) else { return [] }
        var out: [String] = []
        while let r = e.nextObject() as? String { if !Files.isDirectory(base + "/" + r) { out.append(r) } }
        return out.sorted()
    }

    func testEveryFileTravelsScansBecomeJobsAndTheReport() throws {
        let d = try scannerFolder()
        let r = try ingest([d])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.lines.count, 2, "two scans, two jobs")
        let files = storeFiles()
        XCTAssertTrue(files.contains("files/scanner/meta/run.log") && files.contains("files/scanner/s-01.xml"), "\(files)")
        XCTAssertEqual(files.filter { $0.hasSuffix(".ome.tif") }.count, 2)
        XCTAssertEqual(try String(contentsOfFile: tmp + "/root/store/files/scanner/meta/run.log", encoding: .utf8), "scanner log\n")
        let rep = try lastReport()
        XCTAssertEqual(rep["schema"] as? String, "epipe.ingest-run/1")
        XCTAssertEqual(rep["seen"] as? Int, 4); XCTAssertEqual(rep["transferred"] as? Int, 4); XCTAssertEqual(rep["new_jobs"] as? Int, 2)
        let items = rep["items"] as! [[String: Any]]
        XCTAssertEqual(Set(items.map { $0["kind"] as! String }), ["scan", "file"])
        XCTAssertTrue(items.allSatisfy { ($0["sha256"] as? String)?.count == 64 })
        XCTAssertEqual(rep["bytes_sent"] as? Int, rep["bytes_transferred"] as? Int)
        XCTAssertTrue(r.err.contains("4 file(s) seen") && r.err.contains("4 transferred"), r.err)
        let st = try exec("epipe-status", ["--root", tmp + "/root"])
        XCTAssertTrue(st.out.contains("last ingest") && st.out.contains("4 transferred"), st.out)
        let sj = try JSONSerialization.jsonObject(with: Data(try exec("epipe-status", ["--root", tmp + "/root", "--json"]).out.utf8)) as! [String: Any]
        XCTAssertEqual((sj["last_ingest"] as? [String: Any])?["new_jobs"] as? Int, 2)
        // a rerun moves nothing
        let again = try ingest([d])
        XCTAssertEqual(again.out, ""); XCTAssertTrue(again.err.contains("4 unchanged"), again.err)
        XCTAssertEqual(try lastReport()["bytes_sent"] as? Int, 0)
        // a changed file is re-sent
        try "scanner log, more\n".write(toFile: d + "/meta/run.log", atomically: true, encoding: .utf8)
        let changed = try ingest([d])
        XCTAssertTrue(changed.err.contains("1 transferred"), changed.err)
        XCTAssertEqual(try String(contentsOfFile: tmp + "/root/store/files/scanner/meta/run.log", encoding: .utf8), "scanner log, more\n")
    }

    func testIncludeExcludeAndStdin() throws {
        let d = try scannerFolder()
        let onlyScans = try ingest(["--include", "*.tif", d])
        XCTAssertEqual(onlyScans.lines.count, 2)
        XCTAssertTrue(storeFiles().allSatisfy { !$0.hasPrefix("files/") }, "\(storeFiles())")
        XCTAssertEqual(try lastReport()["excluded"] as? Int, 2)
        let noLogs = try ingest(["--exclude", "meta/*", d])
        XCTAssertTrue(storeFiles().contains("files/scanner/s-01.xml")); XCTAssertFalse(storeFiles().contains("files/scanner/meta/run.log"))
        XCTAssertTrue(noLogs.err.contains("1 excluded"), noLogs.err)
        // paths on stdin with -
        let other = tmp + "/other"
        _ = try synth(other, size: 96, channels: 2, seed: 9, name: "o")
        let viaStdin = try ingest(["-"], stdin: (try Files.list(other).map { other + "/" + $0 }).joined(separator: "\n") + "\n")
        XCTAssertEqual(viaStdin.code, 0, viaStdin.err); XCTAssertEqual(viaStdin.lines.count, 1)
    }

    func testDryRunMovesNothing() throws {
        let d = try scannerFolder()
        let r = try ingest(["--dry-run", d])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.lines.count, 4, r.out)
        XCTAssertTrue(r.lines.allSatisfy { $0.hasPrefix("scan ") || $0.hasPrefix("file ") })
        XCTAssertTrue(r.err.contains("would move") && r.err.contains("MB/s"), r.err)
        XCTAssertEqual(storeFiles(), []); XCTAssertTrue(try Root(tmp + "/root").allJobIDs().isEmpty)
        XCTAssertTrue(Files.list(tmp + "/root/ledger").filter { $0.hasSuffix(".json") }.isEmpty)
        XCTAssertEqual(try lastReport()["dry_run"] as? Bool, true)
    }

    /// --checksum finds a file whose content changed under the same size and mtime (which the
    /// ledger alone would skip) and a stored copy that was damaged.
    func testChecksumRehashes() throws {
        let d = try scannerFolder()
        XCTAssertEqual(try ingest([d]).code, 0)
        let log = d + "/meta/run.log"
        let mtime = Files.mtime(log)!
        try "scanner LOG\n".write(toFile: log, atomically: true, encoding: .utf8)   // same size
        var times = [timespec(tv_sec: Int(mtime.timeIntervalSince1970), tv_nsec: Int((mtime.timeIntervalSince1970.truncatingRemainder(dividingBy: 1)) * 1e9)),
                     timespec(tv_sec: Int(mtime.timeIntervalSince1970), tv_nsec: Int((mtime.timeIntervalSince1970.truncatingRemainder(dividingBy: 1)) * 1e9))]
        XCTAssertEqual(utimensat(AT_FDCWD, log, &times, 0), 0)
        XCTAssertTrue(try ingest([d]).err.contains("4 unchanged"), "size and mtime match: skipped without reading")
        let r = try ingest(["--checksum", d])
        XCTAssertTrue(r.err.contains("1 transferred"), r.err)
        XCTAssertEqual(try String(contentsOfFile: tmp + "/root/store/files/scanner/meta/run.log", encoding: .utf8), "scanner LOG\n")
        // a damaged stored copy is re-sent by --checksum
        try "scanner lOG\n".write(toFile: tmp + "/root/store/files/scanner/meta/run.log", atomically: true, encoding: .utf8)
        XCTAssertTrue(try ingest(["--checksum", d]).err.contains("1 transferred"))
        XCTAssertEqual(try String(contentsOfFile: tmp + "/root/store/files/scanner/meta/run.log", encoding: .utf8), "scanner LOG\n")
    }

    func testDeleteSourceAfterVerify() throws {
        let d = try scannerFolder()
        let r = try ingest(["--delete-source-after-verify", d])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertFalse(Files.exists(d + "/meta/run.log")); XCTAssertFalse(Files.exists(d + "/s-01.xml"))
        XCTAssertTrue(Files.list(d).filter { $0.hasSuffix(".tif") }.isEmpty)
        XCTAssertEqual(storeFiles().count, 4)
        // without the flag the sources stay
        let e = try scannerFolder()
        XCTAssertEqual(try ingest([e]).code, 0)
        XCTAssertTrue(Files.exists(e + "/meta/run.log"))
    }

    /// A copy killed with SIGKILL half way (slowed by --bwlimit) resumes: the rerun writes only the
    /// rest, and the stored file's sha256 is the source's.
    func testKilledCopyResumes() throws {
        let d = tmp + "/big"
        try Files.mkdir(d)
        var data = Data(count: 24 << 20)
        data.withUnsafeMutableBytes { p in var s: UInt64 = 7; for i in 0..<p.count { s = s &* 6364136223846793005 &+ 1; p[i] = UInt8(truncatingIfNeeded: s >> 33) } }
        try data.write(to: URL(fileURLWithPath: d + "/archive.bin"))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: d + "/archive.bin")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path("epipe-ingest"))
        p.arguments = ["--root", tmp + "/root", "--settle", "0", "-q", "--bwlimit", "8", d]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        Thread.sleep(forTimeInterval: 1.5)
        kill(p.processIdentifier, SIGKILL); p.waitUntilExit()
        XCTAssertFalse(Files.exists(tmp + "/root/store/files/big/archive.bin"), "nothing stored under its name by a killed run")
        let r = try ingest([d])
        XCTAssertEqual(r.code, 0, r.err)
        let sent = try XCTUnwrap(try lastReport()["bytes_sent"] as? Int)
        print("ingest resume after kill -9: \(sent) of \(data.count) bytes written again")
        XCTAssertLessThan(sent, data.count * 3 / 4, "the part copied before the kill is not copied again")
        XCTAssertGreaterThan(sent, 0)
        XCTAssertEqual(try Digest.sha256(file: tmp + "/root/store/files/big/archive.bin").hex, Digest.sha256(data))
    }

    /// Two runs at once on one source: they take turns (ROOT/ingest/.lock), each file is stored and
    /// registered once, the ledger is whole.
    func testTwoRunsAtOnce() throws {
        let d = try scannerFolder()
        let a = Process(), b = Process()
        for p in [a, b] {
            p.executableURL = URL(fileURLWithPath: Bin.path("epipe-ingest"))
            p.arguments = ["--root", tmp + "/root", "--settle", "0", "-q", d]
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
            try p.run()
        }
        a.waitUntilExit(); b.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0); XCTAssertEqual(b.terminationStatus, 0)
        XCTAssertEqual(try Root(tmp + "/root").allJobIDs().count, 2)
        XCTAssertEqual(storeFiles().count, 4, "\(storeFiles())")
        let ledger = Files.list(tmp + "/root/ledger").filter { $0.hasSuffix(".json") }
        XCTAssertEqual(ledger.count, 4)
        for f in ledger { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp + "/root/ledger/" + f)))) }
        let reports = Files.list(tmp + "/root/ingest/runs")
        XCTAssertEqual(reports.count, 2)
    }

    /// examples/nightly.sh: ingest then drain every queue under an flock; a second run while the
    /// first holds the lock waits, then gives up with a line in the log (exit 75).
    func testNightlyScriptUnderFlock() throws {
        let scans = tmp + "/night"
        _ = try synth(scans, size: 320, channels: 4)
        let root = tmp + "/nroot"
        try Files.mkdir(root)
        let script = Bin.packageRoot + "/examples/nightly.sh"
        let env = ["EPIPE_ROOT": root, "SCANNER": scans, "SETTLE": "0", "WAIT": "1", "EPIPE_BIN": Bin.dir]
        do {
            let held = try XCTUnwrap(FileLock(path: root + "/.nightly.lock"))
            let r = try exec("/bin/bash", [script], env: env)
            XCTAssertEqual(r.code, 75)
            XCTAssertTrue(try String(contentsOfFile: root + "/nightly.log", encoding: .utf8).contains("still holds"))
            XCTAssertTrue(try Root(root).allJobIDs().isEmpty, "nothing ran")
            withExtendedLifetime(held) {}
        }
        let r = try exec("/bin/bash", [script], env: env)
        let logText = (try? String(contentsOfFile: root + "/nightly.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(r.code, 0, logText)
        let jobs = try Root(root).allJobIDs()
        XCTAssertEqual(jobs.count, 1)
        try assertComplete(root + "/jobs/" + jobs[0])
    }
}
