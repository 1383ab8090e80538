import XCTest
import Foundation
import EpipeCore
import EpipeStore
#if canImport(Glibc)
import Glibc
#endif

/// The machine misbehaving under epipe (issue 15): a nearly full file system, a read-only root, a
/// root whose path has spaces and non-ASCII letters, a job folder removed under a worker, and
/// hosts whose clocks disagree by a minute.
final class EnvironmentTests: E2ECase {
    /// Fills the file system of `dir` until `leave` bytes are free (a file `dir`/filler).
    func fill(_ dir: String, leave: Int) throws {
        let path = dir + "/filler"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        for chunk in [1 << 20, 4096] {
            let buf = [UInt8](repeating: 0, count: chunk)
            while buf.withUnsafeBytes({ write(fd, $0.baseAddress, chunk) }) == chunk {}
        }
        let size = lseek(fd, 0, SEEK_END)
        XCTAssertEqual(ftruncate(fd, max(0, size - off_t(leave))), 0)
        fsync(fd)
    }

    func errorLines(_ err: String) -> [String] { err.split(separator: "\n").map(String.init).filter { $0.contains("error") } }

    /// A root on an 8 MiB tmpfs filled to 64 KiB free (or, where no tmpfs can be mounted, writes made to
    /// fail with ENOSPC after 64 KiB by the test hook EPIPE_FAULT_ENOSPC_AFTER): denoise fails that job
    /// with one clear line and exit 1, records nothing as complete and leaves no temporary file; an
    /// ingest fails that scan the same way and registers nothing. With the space back, the next runs
    /// complete, and the denoised image equals that of a run that never lacked space (sha256).
    func testNearlyFullFileSystemFailsTheJobCleanlyAndTheNextRunCompletes() throws {
        let scans = tmp + "/scans"
        let made = try synth(scans, count: 2, size: 256, channels: 4)
        XCTAssertEqual(made.count, 2)
        let small = tmp + "/small"
        let mounted = try mountTmpfs(small, size: "8m")
        defer { if mounted { unmount(small) } }
        let root = small + "/root"
        let fault = mounted ? [:] : ["EPIPE_FAULT_ENOSPC_AFTER": "65536"]
        print("EnvironmentTests: full disk by \(mounted ? "an 8 MiB tmpfs filled to 64 KiB free" : "the ENOSPC hook after 64 KiB (no tmpfs here)")")

        let first = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", made[0]])
        XCTAssertEqual(first.code, 0, first.err)
        let job = try XCTUnwrap(first.lines.first), id = (job as NSString).lastPathComponent
        // the same scan denoised where space never ran out
        let ref = tmp + "/reference"
        let refJob = try XCTUnwrap(try exec("epipe-ingest", ["-q", "--root", ref, "--settle", "0", made[0]]).lines.first)
        XCTAssertEqual(try exec("epipe-denoise", ["-q", refJob]).code, 0)

        if mounted { try fill(small, leave: 64 << 10) }
        let dn = try exec("epipe-denoise", ["-q", "--root", root, "--drain"], env: fault)
        XCTAssertEqual(dn.code, 1, dn.err)
        let errs = errorLines(dn.err)
        XCTAssertEqual(errs.count, 1, dn.err)
        XCTAssertTrue(errs[0].contains("No space left on device") && errs[0].contains("free"), errs[0])
        let failed = try manifest(job, "denoise")
        XCTAssertEqual(failed.status, .failed, "said failed, never complete")
        XCTAssertTrue(failed.error?.contains("No space left on device") == true, failed.error ?? "")
        XCTAssertEqual(try fileDigests(root + "/jobs").keys.filter { $0.contains(".tmp-") }, [], "no half-written file left")
        XCTAssertEqual(queue(root, "denoise", "failed"), [id])

        let second = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", made[1]], env: fault)
        XCTAssertEqual(second.code, 1, second.err)
        XCTAssertTrue(errorLines(second.err).first?.contains(made[1]) == true && second.err.contains("No space left on device"), second.err)
        XCTAssertEqual(Files.list(root + "/jobs"), [id], "no job registered for the scan that did not fit")
        XCTAssertNil(try Ledger(dir: root + "/ledger").entry(for: Files.canonical(made[1])), "nothing in the ledger for it")
        XCTAssertEqual(Files.list(root + "/store").filter { !$0.hasPrefix(".") }.count, 1, "only the first scan is stored (a partial copy stays hidden, to resume)")

        if mounted { XCTAssertEqual(unlink(small + "/filler"), 0) }
        let again = try exec("epipe-denoise", ["-q", job])
        XCTAssertEqual(again.code, 0, again.err)
        XCTAssertEqual(try manifest(job, "denoise").status, .complete)
        XCTAssertEqual(try manifest(job, "denoise").outputs.map { [$0.path, $0.sha256] }, try manifest(refJob, "denoise").outputs.map { [$0.path, $0.sha256] },
                       "the run after the space came back writes what a run that never lacked it wrote")
        XCTAssertEqual(queue(root, "denoise", "failed"), [], "a job that completed is no longer among the failures")
        XCTAssertEqual(queue(root, "denoise", "done"), [id])
        let more = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", made[1]])
        XCTAssertEqual(more.code, 0, more.err)
        XCTAssertEqual(more.lines.count, 1)
        XCTAssertEqual(Files.list(root + "/store").count, 2, "the partial copy became the stored scan")
        let st = try statusJSON(root, ["--verify"])
        XCTAssertEqual((st["summary"] as? [String: Any])?["mismatches"] as? Int, 0)
        XCTAssertEqual(jobRow(st, id)["verdict"] as? String, "ok", "\(jobRow(st, id))")
    }

    /// A root on a read-only mount: every program that would write says so in one line (exit 1) and
    /// writes nothing; epipe-status still reads it. Remounted read-write, every file is as it was and
    /// the queued work runs.
    func testReadOnlyRootIsRefusedInOneLineAndLeftAsItWas() throws {
        let ro = tmp + "/ro"
        guard try mountTmpfs(ro, size: "32m") else {
            throw XCTSkip("cannot mount a tmpfs here (not root); a read-only root needs a read-only mount, as root ignores permission bits")
        }
        defer { unmount(ro) }
        let root = ro + "/root", scans = tmp + "/scans"
        _ = try synth(scans, count: 3, size: 128, channels: 3)
        let made = Files.list(scans).map { scans + "/" + $0 }.sorted()
        let jobs = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", made[0], made[1]]).lines
        XCTAssertEqual(jobs.count, 2)
        XCTAssertEqual(try exec("epipe-denoise", ["-q", jobs[0]]).code, 0)
        let before = try fileDigests(root)
        XCTAssertEqual(try exec("/usr/bin/mount", ["-o", "remount,ro", ro]).code, 0)

        let writers: [(String, [String])] = [
            ("epipe-denoise", [jobs[0]]), ("epipe-segment", [jobs[0]]), ("epipe-denoise", ["--root", root, "--drain"]),
            ("epipe-segment", ["--root", root, "--watch"]), ("epipe-ingest", ["--root", root, "--settle", "0", made[2]]),
            ("epipe-status", ["--root", root, "--report"]), ("epipe-status", ["--root", root, "--requeue-stale"]),
        ]
        for (exe, args) in writers {
            let r = try exec(exe, args)
            XCTAssertEqual(r.code, 1, "\(exe) \(args): \(r.err)")
            XCTAssertEqual(r.errLines.count, 1, "\(exe) \(args): one line: \(r.err)")
            XCTAssertTrue(r.err.contains("Read-only file system") && r.err.contains("remount"), "\(exe) \(args): \(r.err)")
            print("EnvironmentTests: read-only root: \(exe) \(args.first == root ? args.dropFirst().joined(separator: " ") : "...") -> exit \(r.code): \(r.err.trimmingCharacters(in: .newlines))")
        }
        let st = try exec("epipe-status", ["--root", root, "--verify"])
        XCTAssertEqual(st.code, 0, st.err)
        XCTAssertTrue(st.out.contains("2 jobs"), st.out)
        XCTAssertEqual(try exec("/usr/bin/mount", ["-o", "remount,rw", ro]).code, 0)
        XCTAssertEqual(try fileDigests(root), before, "not a file of the root changed")
        XCTAssertEqual(try exec("epipe-denoise", ["-q", "--root", root, "--drain"]).code, 0)
        XCTAssertEqual(try manifest(jobs[1], "denoise").status, .complete)
        XCTAssertEqual(try exec("epipe-segment", ["-q", jobs[0]]).code, 0)
    }

    /// A root, scans and a cell table on paths with spaces and non-ASCII letters: the whole chain, the
    /// status views and the report work.
    func testRootOnAPathWithSpacesAndNonASCIINames() throws {
        let base = tmp + "/My Data/épipe Ø 根"
        let scans = base + "/scans dir", root = base + "/root ü"
        let made = try synth(tmp + "/plain", count: 2, size: 128, channels: 3)
        try Files.mkdir(scans)
        let names = ["scan é 1.ome.tif", "naïve slide 根.ome.tif"]
        for (m, n) in zip(made, names) { try FileManager.default.moveItem(atPath: m, toPath: scans + "/" + n) }
        let table = base + "/tables ä/cells ü.csv"
        try cellTable(table)
        let ing = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans])
        XCTAssertEqual(ing.code, 0, ing.err)
        XCTAssertEqual(ing.lines.count, 2)
        let cells = try exec("epipe-ingest", ["-q", "--root", root, "--cells", table])
        XCTAssertEqual(cells.code, 0, cells.err)
        for s in Names.defaultStages {
            let r = try exec("epipe-" + s, ["-q", "--root", root, "--drain"])
            XCTAssertEqual(r.code, 0, "\(s): \(r.err)")
        }
        for j in ing.lines { try assertComplete(j) }
        for s in ["cluster", "stats"] { XCTAssertEqual(try manifest(cells.lines[0], s).status, .complete) }
        let st = try statusJSON(root, ["--verify"])
        XCTAssertEqual(st["root"] as? String, Files.canonical(root))
        XCTAssertEqual(((st["jobs"] as? [[String: Any]]) ?? []).map { $0["verdict"] as? String }, [String?](repeating: "ok", count: 3))
        XCTAssertTrue(try exec("epipe-status", ["--root", root]).out.contains(Files.canonical(root)))
        let rep = try exec("epipe-status", ["--root", root, "--report"])
        XCTAssertEqual(rep.code, 0, rep.err)
        XCTAssertEqual(rep.lines, [Files.canonical(root) + "/report.html"])
        for j in ing.lines + cells.lines { XCTAssertTrue(Files.exists(j + "/report.html"), j) }
        let detail = try exec("epipe-status", ["--root", root, ing.lines[0]])
        XCTAssertEqual(detail.code, 0, detail.err)
        XCTAssertTrue(detail.out.contains("scan é 1.ome.tif") || detail.out.contains(ing.lines[0]), detail.out)
    }

    /// A job folder removed (rm -rf) while a drain worker is in the middle of it: the worker fails that
    /// job in one line (exit 1), makes no part of the folder again, and goes on with the others.
    func testJobFolderRemovedWhileAWorkerHoldsIt() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 3, size: 128, channels: 3)
        let jobIDs = ids(try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines)
        XCTAssertEqual(jobIDs.count, 3)
        let w = try background("epipe-denoise", ["--root", root, "--drain", "-q"], tag: "drain")
        let id = try stopMidJob(w, root: root, stage: "denoise")
        try FileManager.default.removeItem(atPath: root + "/jobs/" + id)
        kill(w.pid, SIGCONT)
        XCTAssertEqual(w.wait(), 1, w.stderr)
        XCTAssertFalse(Files.exists(root + "/jobs/" + id), "the removed job's folder is not made again")
        let errs = errorLines(w.stderr)
        XCTAssertEqual(errs.count, 1, w.stderr)
        XCTAssertTrue(errs[0].contains(id) && errs[0].contains("removed while"), errs[0])
        XCTAssertEqual(queue(root, "denoise", "failed"), [id])
        XCTAssertEqual(queue(root, "denoise", "done").sorted(), jobIDs.filter { $0 != id }.sorted(), "the others ran")
        XCTAssertEqual(queue(root, "denoise", "cur") + queue(root, "denoise", "new"), [])
        for j in jobIDs where j != id { XCTAssertEqual(try manifest(root + "/jobs/" + j, "denoise").status, .complete) }
        let named = try fileDigests(root).keys.filter { $0.contains(id) }.sorted()
        XCTAssertEqual(named, ["queue/denoise/failed/" + id], "nothing of the removed job but its failed queue entry")
        XCTAssertEqual((try statusJSON(root)["jobs"] as? [[String: Any]])?.count, 2)
        print("EnvironmentTests: job folder removed under a worker: \(errs[0])")
    }

    /// Heartbeats are file times set by the host that beats; a host whose clock is a minute ahead or
    /// behind must not have its live claims taken for stale, and a start time in the future must not
    /// give a negative ETA. A claim silent for longer than --stale-after plus the minute still is stale.
    func testClockSkewOfAMinuteBetweenHosts() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 1, size: 128, channels: 3)
        let id = ids(try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines)[0]
        let q = root + "/queue/denoise"
        let claim = q + "/cur/" + id + "@otherhost.4242"
        XCTAssertEqual(rename(q + "/new/" + id, claim), 0)
        func beat(_ offset: TimeInterval) throws {
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(offset)], ofItemAtPath: claim)
        }
        func stale(_ args: [String] = []) throws -> Int? { queueRow(try statusJSON(root, args), "denoise")["stale"] as? Int }
        func drain(_ args: [String] = []) throws -> RunResult {
            let r = try exec("epipe-denoise", ["-q", "--root", root, "--drain"] + args)
            XCTAssertEqual(r.code, 0, r.err)
            return r
        }
        // a minute ahead: the heartbeat is "in the future"; even with --stale-after 30 it is live
        try beat(60)
        XCTAssertEqual(try stale(["--stale-after", "30"]), 0)
        XCTAssertNotEqual(jobRow(try statusJSON(root, ["--stale-after", "30"]), id)["state"] as? String, "stale")
        XCTAssertFalse(try exec("epipe-status", ["--root", root, "--stale-after", "30", "--requeue-stale"]).err.contains("requeued"))
        XCTAssertFalse(try drain(["--stale-after", "30"]).err.contains("returned stale claim"))
        XCTAssertTrue(Files.exists(claim), "the other host's claim stays with it")
        // a minute behind, --stale-after 600 (the default): live
        try beat(-60)
        XCTAssertEqual(try stale(), 0)
        XCTAssertFalse(try exec("epipe-status", ["--root", root, "--requeue-stale"]).err.contains("requeued"))
        XCTAssertFalse(try drain().err.contains("returned stale claim"))
        XCTAssertTrue(Files.exists(claim))
        XCTAssertEqual(try stale(["--stale-after", "30"]), 1, "a minute without a beat is stale when 30 s is the limit")

        // a running stage on the fast host: started a minute from now, 3 of 10 tiles done
        var m = StageManifest(stage: "segment", status: .running, run: "skew01", tool: ToolRef(name: "epipe-segment", version: Version.string),
                              params: [:], inputs: [], progress: ProgressRef(done: 3, total: 10, unit: "tiles"),
                              started: Time.iso(Date().addingTimeInterval(60)), host: "otherhost", pid: 4242)
        m.metrics = [:]
        try AtomicFile.write(JSON.encode(m), to: root + "/jobs/" + id + "/segment/manifest.json")
        let segClaim = root + "/queue/segment/cur/" + id + "@otherhost.4242"
        try "".write(toFile: segClaim, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: segClaim)
        let detail = try statusJSON(root, [root + "/jobs/" + id])
        let seg = try XCTUnwrap(((jobRow(detail, id)["stages"] as? [[String: Any]]) ?? []).first { $0["stage"] as? String == "segment" })
        XCTAssertEqual(seg["status"] as? String, "running")
        XCTAssertEqual(seg["percent"] as? Double, 30)
        XCTAssertNil(seg["eta_seconds"], "no ETA from a start in the future, never a negative one: \(seg)")
        XCTAssertEqual(unlink(segClaim), 0); XCTAssertEqual(unlink(root + "/jobs/" + id + "/segment/manifest.json"), 0)

        // silent for --stale-after plus the minute: stale, given back and run
        try beat(-660)
        XCTAssertEqual(try stale(), 1)
        let r = try drain([])
        XCTAssertTrue(r.err.contains("returned stale claim \(id)") && r.err.contains("no heartbeat for"), r.err)
        XCTAssertEqual(try manifest(root + "/jobs/" + id, "denoise").status, .complete)
        XCTAssertEqual(queue(root, "denoise", "cur"), [])
    }
}
