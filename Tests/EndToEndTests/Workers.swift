import XCTest
import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// A binary started in the background (a drain worker, an ingest, a hand run), its stdout and
/// stderr in files, for the concurrency, environment and security tests.
struct Worker {
    let process: Process
    let out: String, err: String
    var pid: Int32 { process.processIdentifier }
    var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }
    var lines: [String] { stdout.split(separator: "\n").map(String.init) }
    var errLines: [String] { stderr.split(separator: "\n").map(String.init) }
    /// Waits for the end (at most `timeout` seconds: then it is killed and the test fails) and returns the exit status.
    @discardableResult
    func wait(timeout: Double = 300, file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        let t0 = Date()
        while process.isRunning && Date().timeIntervalSince(t0) < timeout { usleep(10_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            XCTFail("\(process.executableURL?.lastPathComponent ?? "?") still running after \(Int(timeout)) s", file: file, line: line)
        }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

extension E2ECase {
    /// Starts `exe` (an epipe binary) with `args`, stdout and stderr to files named after `tag` in tmp.
    func background(_ exe: String, _ args: [String], tag: String, env: [String: String] = [:]) throws -> Worker {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Bin.path(exe))
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = tmp + "/" + tag + ".out", err = tmp + "/" + tag + ".err"
        FileManager.default.createFile(atPath: out, contents: nil); FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out); p.standardError = FileHandle(forWritingAtPath: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return Worker(process: p, out: out, err: err)
    }

    /// Polls `cond` every 2 ms until it holds; fails the test (and stops it) past `timeout` seconds.
    func poll(_ what: String, timeout: Double = 120, file: StaticString = #filePath, line: UInt = #line, _ cond: () throws -> Bool) throws {
        let t0 = Date()
        while try !cond() {
            if Date().timeIntervalSince(t0) > timeout {
                XCTFail("timed out after \(Int(timeout)) s waiting for \(what)", file: file, line: line)
                throw XCTSkip("gave up waiting for \(what)")
            }
            usleep(2_000)
        }
    }

    /// Names in queue/<stage>/<sub> (hidden files aside).
    func queue(_ root: String, _ stage: String, _ sub: String) -> [String] {
        Files.list(root + "/queue/" + stage + "/" + sub).filter { !$0.hasPrefix(".") }
    }

    /// Stops `w` (SIGSTOP) while it holds a claim in queue/<stage>/cur and the claimed job's manifest
    /// for that stage says running under its pid: in the middle of a job, whatever the job's length.
    /// Returns the job id. A worker caught between two jobs is let go on (SIGCONT) and caught again.
    func stopMidJob(_ w: Worker, root: String, stage: String, timeout: Double = 120) throws -> String {
        var held: String? = nil
        try poll("\(stage) worker \(w.pid) in the middle of a job", timeout: timeout) {
            guard w.process.isRunning else { XCTFail("the worker ended before it could be stopped mid-job: \(w.stderr)"); throw XCTSkip("worker gone") }
            guard let id = self.heldBy(w.pid, root: root, stage: stage), self.runningManifest(root, id, stage)?.pid == w.pid else { return false }
            kill(w.pid, SIGSTOP)
            // stopped now: check again, as it may have moved on between the look and the stop
            if let again = self.heldBy(w.pid, root: root, stage: stage), again == id, self.runningManifest(root, id, stage)?.pid == w.pid {
                held = id; return true
            }
            kill(w.pid, SIGCONT)
            return false
        }
        return held!
    }

    /// The job whose claim in queue/<stage>/cur belongs to process `pid` of this host.
    func heldBy(_ pid: Int32, root: String, stage: String) -> String? {
        queue(root, stage, "cur").first { $0.hasSuffix("@\(Host.name).\(pid)") }.map { String($0.split(separator: "@")[0]) }
    }

    func runningManifest(_ root: String, _ id: String, _ stage: String) -> StageManifest? {
        guard let m = try? StageManifest.load(root + "/jobs/" + id + "/" + stage + "/manifest.json"), m.status == .running else { return nil }
        return m
    }

    /// The run ids of the "started run <id>" lines of a job's stage log, in order.
    func startedRuns(_ root: String, _ id: String, _ stage: String) -> [String] {
        let log = (try? String(contentsOfFile: root + "/jobs/" + id + "/logs/" + stage + ".log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").compactMap { l in
            guard let r = l.range(of: ": started run ") else { return nil }
            return String(l[r.upperBound...].prefix { $0 != " " })
        }
    }

    /// Lines of a job's stage log that say the stage completed.
    func completeLines(_ root: String, _ id: String, _ stage: String) -> Int {
        let log = (try? String(contentsOfFile: root + "/jobs/" + id + "/logs/" + stage + ".log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains(": complete in ") }.count
    }

    /// Every regular file under `dir` (relative path -> sha256), symbolic links not followed.
    func fileDigests(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
        while let rel = e.nextObject() as? String {
            let p = dir + "/" + rel
            if Files.isSymlink(p) { out[rel] = "link -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: p)) ?? "?"); continue }
            if Files.isDirectory(p) { continue }
            out[rel] = try Digest.sha256(file: p).hex
        }
        return out
    }

    /// Mounts a tmpfs of `size` at `dir` (as root); false where that is not allowed.
    func mountTmpfs(_ dir: String, size: String) throws -> Bool {
        try Files.mkdir(dir)
        guard getuid() == 0 else { return false }
        return try exec("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=" + size, "tmpfs", dir]).code == 0
    }

    func unmount(_ dir: String) { _ = try? exec("/usr/bin/umount", ["-l", dir]) }
}

extension E2ECase {
    /// A small per-cell table (MCQuant columns: three populations of `cells` cells) at `path`, as
    /// another tool's segmentation, for `epipe-ingest --cells`.
    func cellTable(_ path: String, cells n: Int = 240, seed: UInt64 = 12345) throws {
        var state = seed
        func unit() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 11) * 0x1p-53 }
        var s = "CellID,DAPI,CD3,CD20,CD68,X_centroid,Y_centroid,Area\n"
        for i in 0..<n {
            let m = (0..<3).map { j in j == i % 3 ? 400 + 200 * unit() : 30 * unit() }
            s += "\(i + 1),\(300 + 100 * unit())," + m.map { String($0) }.joined(separator: ",") + ",\(500 * unit()),\(400 * unit()),\(60 + i % 40)\n"
        }
        try Files.mkdir((path as NSString).deletingLastPathComponent)
        try s.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The job ids epipe-ingest printed (job directories, one a line).
    func ids(_ lines: [String]) -> [String] { lines.map { ($0 as NSString).lastPathComponent } }

    func statusJSON(_ root: String, _ args: [String] = []) throws -> [String: Any] {
        let r = try exec("epipe-status", ["--root", root, "--json"] + args)
        XCTAssertTrue(r.code == 0 || r.code == 1, r.err)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
    }
    func queueRow(_ status: [String: Any], _ stage: String) -> [String: Any] {
        ((status["queues"] as? [[String: Any]]) ?? []).first { $0["stage"] as? String == stage } ?? [:]
    }
    func jobRow(_ status: [String: Any], _ id: String) -> [String: Any] {
        ((status["jobs"] as? [[String: Any]]) ?? []).first { $0["id"] as? String == id } ?? [:]
    }
}
