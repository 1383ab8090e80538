import XCTest
import Foundation
import EpipeCore
import EpipeStore
#if canImport(Glibc)
import Glibc
#endif

/// Several processes on one root at once (issue 15, "nothing lost, nothing corrupted"): drain
/// workers side by side on every stage, one of them killed mid-job, two ingests at once and
/// ingests racing drain workers, a stage run by hand on a job a worker holds.
final class ConcurrencyTests: E2ECase {
    let stages = Names.defaultStages

    /// `n` drain workers of `stage` on `root` started together (--json), each waited for (exit 0).
    func drainTogether(_ root: String, _ stage: String, workers n: Int, tag: String) throws -> [Worker] {
        let ws = try (0..<n).map { i in try background("epipe-" + stage, ["--root", root, "--drain", "--json", "-q"], tag: "\(tag)-\(stage)-\(i)") }
        for w in ws { XCTAssertEqual(w.wait(), 0, "\(stage) worker \(w.pid): \(w.stderr)") }
        return ws
    }

    /// The events the workers printed (one JSON object a finished job).
    func events(_ ws: [Worker]) -> [[String: Any]] {
        ws.flatMap { $0.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } }
    }

    /// Every job of `ids` ran `stage` exactly once: its manifest complete, one "started run" line in its
    /// log naming the manifest's run and one "complete" line (the job `except` is checked by the
    /// caller). Returns the manifests by job id.
    @discardableResult
    func ranOnce(_ root: String, _ stage: String, _ ids: [String], except: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> [String: StageManifest] {
        var ms: [String: StageManifest] = [:]
        for id in ids {
            let m = try manifest(root + "/jobs/" + id, stage)
            ms[id] = m
            XCTAssertEqual(m.status, .complete, "\(id) \(stage)", file: file, line: line)
            if id == except { continue }
            XCTAssertEqual(startedRuns(root, id, stage), [m.run], "\(id) \(stage): one run started, the manifest's", file: file, line: line)
            XCTAssertEqual(completeLines(root, id, stage), 1, "\(id) \(stage): one run complete", file: file, line: line)
        }
        XCTAssertEqual(Set(ms.values.map(\.run)).count, ids.count, "\(stage): a distinct run id per job", file: file, line: line)
        return ms
    }

    func assertQueue(_ root: String, _ stage: String, done: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(["new", "cur", "done", "failed"].map { queue(root, stage, $0).count }, [0, 0, done, 0],
                       "queue/\(stage) new, cur, done, failed", file: file, line: line)
    }

    /// Outputs (path -> sha256) of every stage of every job.
    func outputs(_ root: String, _ ids: [String]) throws -> [String: [String: String]] {
        var o: [String: [String: String]] = [:]
        for id in ids { for s in stages { o[id + " " + s] = Dictionary(uniqueKeysWithValues: try manifest(root + "/jobs/" + id, s).outputs.map { ($0.path, $0.sha256) }) } }
        return o
    }

    /// 40 jobs, 4 drain workers per stage: each job runs each stage once and none is lost or left
    /// claimed. Then the same on a second root with the first denoise worker killed (kill -9) in the
    /// middle of a job: its claim is stale at once (its process is gone), another worker returns it
    /// and runs the job, and every output of every job equals the undisturbed root's (sha256).
    func testFourDrainWorkersPerStageRunEachJobOnceAndAKilledWorkersJobIsRedone() throws {
        let scans = tmp + "/scans"
        XCTAssertEqual(try synth(scans, count: 40, size: 128, channels: 3).count, 40)
        func ingest(_ root: String) throws -> [String] {
            let r = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans])
            XCTAssertEqual(r.code, 0, r.err)
            return ids(r.lines).sorted()
        }
        let a = tmp + "/undisturbed", b = tmp + "/killed"
        let jobIDs = try ingest(a)
        XCTAssertEqual(jobIDs.count, 40)
        for s in stages {
            let ws = try drainTogether(a, s, workers: 4, tag: "a")
            let ev = events(ws)
            XCTAssertEqual(ev.count, 40, "\(s): one event per job")
            XCTAssertEqual(Set(ev.compactMap { $0["id"] as? String }), Set(jobIDs), "\(s): every job, once")
            XCTAssertEqual(ev.filter { $0["status"] as? String == "complete" }.count, 40)
            assertQueue(a, s, done: 40)
            let ms = try ranOnce(a, s, jobIDs)
            let perWorker = ws.map { w in ms.values.filter { $0.pid == w.pid }.count }
            XCTAssertEqual(perWorker.reduce(0, +), 40, "every manifest written by one of the four workers")
            print("ConcurrencyTests: \(s): 40 jobs, 4 workers, \(Set(ms.values.map(\.run)).count) distinct run ids, 40 started and 40 complete log lines, jobs per worker \(perWorker)")
        }

        // the same jobs on a second root; the first denoise worker killed in the middle of a job
        XCTAssertEqual(try ingest(b), jobIDs)
        let first = try background("epipe-denoise", ["--root", b, "--drain", "--json", "-q"], tag: "b-denoise-0")
        let victim = try stopMidJob(first, root: b, stage: "denoise")
        let partial = try XCTUnwrap(runningManifest(b, victim, "denoise"))
        kill(first.pid, SIGKILL)
        XCTAssertEqual(first.wait(), 128 + SIGKILL)
        XCTAssertEqual(heldBy(first.pid, root: b, stage: "denoise"), victim, "the killed worker's claim is left in cur/")
        let st = try statusJSON(b)
        XCTAssertEqual(queueRow(st, "denoise")["stale"] as? Int, 1, "a claim whose process is gone is stale at once")
        XCTAssertEqual(jobRow(st, victim)["state"] as? String, "stale")
        XCTAssertEqual(try manifest(b + "/jobs/" + victim, "denoise").status, .running, "nothing of the killed run says complete")

        let rest = try (1..<4).map { i in try background("epipe-denoise", ["--root", b, "--drain", "--json", "-q"], tag: "b-denoise-\(i)") }
        for w in rest { XCTAssertEqual(w.wait(), 0, w.stderr) }
        let returned = rest.flatMap(\.errLines).filter { $0.contains("returned stale claim \(victim)") && $0.contains("is gone") }
        XCTAssertEqual(returned.count, 1, rest.map(\.stderr).joined())
        let ev = events([first] + rest)
        XCTAssertEqual(ev.count, 40, "the killed worker's finished jobs and the others': one event per job")
        XCTAssertEqual(Set(ev.compactMap { $0["id"] as? String }).count, 40)
        assertQueue(b, "denoise", done: 40)
        let ms = try ranOnce(b, "denoise", jobIDs, except: victim)
        let redone = try XCTUnwrap(ms[victim])
        XCTAssertTrue(rest.map(\.pid).contains(redone.pid), "another worker finished the killed worker's job")
        XCTAssertEqual(startedRuns(b, victim, "denoise"), [partial.run, redone.run], "two runs started: the killed one, then the one that finished")
        XCTAssertEqual(completeLines(b, victim, "denoise"), 1)
        let leftovers = Files.list(b + "/jobs/" + victim + "/denoise").filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "the killed run's temporary files are swept by the next run")
        print("ConcurrencyTests: denoise worker \(first.pid) killed in job \(victim) (run \(partial.run)); worker \(redone.pid) returned the claim and ran it (run \(redone.run)); 40 jobs done, 0 claimed, 0 failed; \(ev.count) events")
        for s in stages.dropFirst() {
            let ws = try drainTogether(b, s, workers: 4, tag: "b")
            XCTAssertEqual(events(ws).count, 40)
            assertQueue(b, s, done: 40)
            try ranOnce(b, s, jobIDs)
        }
        let (oa, ob) = (try outputs(a, jobIDs), try outputs(b, jobIDs))
        XCTAssertEqual(oa.count, 160)
        for (k, v) in oa { XCTAssertEqual(ob[k], v, "\(k): the outputs of the disturbed root equal the undisturbed one's") }
        print("ConcurrencyTests: \(oa.values.map(\.count).reduce(0, +)) outputs of 40 jobs x 4 stages equal (sha256) between the undisturbed root and the one with a killed worker")
    }

    /// What a ledger must be after any number of concurrent ingests: one entry per source, each
    /// decodable, its stored copy there with its sha256; each stored file once; each job registered
    /// once (one "-> job" line in ingest.log, one queue entry in all of its first stage's folders).
    func assertLedger(_ root: String, sources: Int, jobs: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let ledgerFiles = Files.list(root + "/ledger").filter { $0.hasSuffix(".json") }
        let entries = try ledgerFiles.map { try Schema.decode(LedgerEntry.self, expected: Schema.ledger, from: Files.read(root + "/ledger/" + $0), path: $0) }
        XCTAssertEqual(entries.count, sources, "ledger entries", file: file, line: line)
        XCTAssertEqual(Set(entries.map(\.source)).count, sources, "one entry per source", file: file, line: line)
        for e in entries {
            XCTAssertTrue(e.dest.hasPrefix("file://"), e.dest, file: file, line: line)
            let (h, n) = try Digest.sha256(file: String(e.dest.dropFirst(7)))
            XCTAssertEqual(h, e.sha256, e.dest, file: file, line: line); XCTAssertEqual(n, e.bytes, file: file, line: line)
            XCTAssertNotNil(e.verified, file: file, line: line)
        }
        let stored = try fileDigests(root + "/store")
        XCTAssertEqual(stored.keys.filter { ($0 as NSString).lastPathComponent.hasPrefix(".") }, [], "no temporary or partial file left in the store", file: file, line: line)
        XCTAssertEqual(stored.count, sources, "each file stored once", file: file, line: line)
        XCTAssertEqual(Set(stored.values).count, stored.count, "no content stored twice", file: file, line: line)
        let jobIDs = Files.list(root + "/jobs")
        XCTAssertEqual(jobIDs.count, jobs, file: file, line: line)
        XCTAssertEqual(Set(entries.compactMap(\.job)), Set(jobIDs), "the ledger's jobs are the jobs", file: file, line: line)
        let log = try String(contentsOfFile: root + "/ledger/ingest.log", encoding: .utf8)
        for id in jobIDs {
            XCTAssertEqual(log.components(separatedBy: "-> job \(id)").count - 1, 1, "\(id) registered once", file: file, line: line)
            let spec = try Job(dir: root + "/jobs/" + id).spec
            let first = spec.isCellTable ? spec.stages[1] : spec.stages[0]
            let entries = ["new", "cur", "done", "failed"].flatMap { sub in queue(root, first, sub).filter { $0 == id || $0.hasPrefix(id + "@") } }
            XCTAssertEqual(entries.count, 1, "\(id): one entry in queue/\(first)", file: file, line: line)
        }
    }

    /// Two ingests of one folder at once take turns (an flock): each scan becomes one job, each file
    /// is stored once, the ledger is whole. Then two more ingests of a new folder while two denoise
    /// workers (--watch) drain what they register: every job is denoised once, nothing registered
    /// twice. Then two `--cells` ingests of one table at once: one job.
    func testConcurrentIngestsAndIngestsRacingDrainWorkers() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        XCTAssertEqual(try synth(scans, count: 12, size: 128, channels: 3, seed: 5).count, 12)
        try "scanner log\n".write(toFile: scans + "/run.log", atomically: true, encoding: .utf8)
        try Files.mkdir(scans + "/meta")
        try "{\"slide\": 1}\n".write(toFile: scans + "/meta/slide.json", atomically: true, encoding: .utf8)
        let two = try (0..<2).map { i in try background("epipe-ingest", ["--root", root, "--settle", "0", scans], tag: "ingest-\(i)") }
        for w in two { XCTAssertEqual(w.wait(), 0, w.stderr) }
        let printed = two.flatMap(\.lines)
        XCTAssertEqual(printed.count, 12, "each new job printed once, by one of the two runs")
        XCTAssertEqual(Set(printed).count, 12)
        try assertLedger(root, sources: 14, jobs: 12)
        let waited = two.filter { $0.stderr.contains("waiting for it to finish") }.count
        print("ConcurrencyTests: two ingests of 12 scans + 2 files at once: 12 jobs printed, 14 ledger entries, 14 stored files; \(waited) run waited for the other's lock")

        let scans2 = tmp + "/scans2"
        XCTAssertEqual(try synth(scans2, count: 12, size: 128, channels: 3, seed: 6, name: "r").count, 12)
        let watchers = try (0..<2).map { i in try background("epipe-denoise", ["--root", root, "--watch", "--poll-interval", "0.05", "--json", "-q"], tag: "watch-\(i)") }
        let racing = try (0..<2).map { i in try background("epipe-ingest", ["--root", root, "--settle", "0", scans2], tag: "ingest2-\(i)") }
        for w in racing { XCTAssertEqual(w.wait(), 0, w.stderr) }
        XCTAssertEqual(racing.flatMap(\.lines).count, 12)
        try poll("the denoise queue drained") {
            queue(root, "denoise", "new").isEmpty && queue(root, "denoise", "cur").isEmpty && queue(root, "denoise", "done").count + queue(root, "denoise", "failed").count == 24
        }
        for w in watchers { kill(w.pid, SIGTERM); w.wait() }
        let all = Files.list(root + "/jobs")
        XCTAssertEqual(all.count, 24)
        assertQueue(root, "denoise", done: 24)
        try ranOnce(root, "denoise", all)
        let ev = events(watchers)
        XCTAssertEqual(ev.count, 24, "one denoise event per job"); XCTAssertEqual(Set(ev.compactMap { $0["id"] as? String }).count, 24)
        XCTAssertEqual(queue(root, "segment", "new").count, 24, "each forwarded once")
        try assertLedger(root, sources: 26, jobs: 24)
        print("ConcurrencyTests: two ingests of 12 more scans racing two denoise workers: 24 jobs, 24 denoise runs (one each), 24 events, 26 ledger entries, 26 stored files")

        // two --cells runs of one table while this test holds the ingest lock: both wait, saying so,
        // and register nothing; let go, they take turns and make one job
        let table = tmp + "/tables/cells.csv"
        try cellTable(table)
        let fd = open(root + "/ingest/.lock", O_RDWR | O_CREAT, 0o644)
        XCTAssertEqual(flock(fd, LOCK_EX), 0)
        let cells = try (0..<2).map { i in try background("epipe-ingest", ["--root", root, "--cells", table], tag: "cells-\(i)") }
        try poll("both --cells runs to wait for the lock") { cells.allSatisfy { $0.stderr.contains("waiting for it to finish") } }
        XCTAssertEqual(Files.list(root + "/jobs").count, 24, "nothing registered while they wait")
        XCTAssertTrue(cells.allSatisfy { $0.process.isRunning })
        flock(fd, LOCK_UN); close(fd)
        for w in cells { XCTAssertEqual(w.wait(), 0, w.stderr) }
        XCTAssertEqual(cells.flatMap(\.lines).count, 1, "one job for one table: \(cells.map(\.stderr))")
        XCTAssertEqual(cells.filter { $0.stderr.contains("unchanged since it was taken") }.count, 1, "the second found the table taken")
        try assertLedger(root, sources: 27, jobs: 25)
        XCTAssertEqual(queue(root, "cluster", "new").count, 1)
    }

    /// Stops `w` (SIGSTOP) once job `id`'s manifest for `stage` says running under its pid.
    func stopWhenRunning(_ w: Worker, root: String, id: String, stage: String) throws {
        try poll("\(stage) of \(id) running under \(w.pid)") {
            guard w.process.isRunning else { XCTFail("ended before it ran: \(w.stderr)"); throw XCTSkip("gone") }
            guard runningManifest(root, id, stage)?.pid == w.pid else { return false }
            kill(w.pid, SIGSTOP)
            if runningManifest(root, id, stage)?.pid == w.pid { return true }
            kill(w.pid, SIGCONT); return false
        }
    }

    /// A stage run by hand on a job that a drain worker holds waits, saying so in one line, and writes
    /// nothing until the worker is done; then it finds the stage up to date. The other way round, a
    /// drain worker waits for a hand run the same way.
    func testHandRunWaitsForTheWorkerHoldingTheJobAndTheOtherWayRound() throws {
        let scans = tmp + "/scans", root = tmp + "/root"
        _ = try synth(scans, count: 2, size: 128, channels: 3)
        let jobIDs = ids(try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines)
        XCTAssertEqual(jobIDs.count, 2)

        let w = try background("epipe-denoise", ["--root", root, "--drain", "-q"], tag: "drain")
        let id = try stopMidJob(w, root: root, stage: "denoise")
        defer { kill(w.pid, SIGCONT) }
        let held = try XCTUnwrap(runningManifest(root, id, "denoise"))
        let hand = try background("epipe-denoise", [root + "/jobs/" + id], tag: "hand")
        try poll("the hand run to say it waits") { hand.stderr.contains("waiting for it to finish") }
        let said = hand.errLines.filter { $0.contains("waiting for it to finish") }
        XCTAssertEqual(said.count, 1, hand.stderr)
        XCTAssertTrue(said[0].contains("is being run by another process") && said[0].contains("run \(held.run)") && said[0].contains("pid \(w.pid)"), said[0])
        XCTAssertTrue(hand.process.isRunning, "it waits")
        XCTAssertEqual(runningManifest(root, id, "denoise")?.run, held.run, "the waiting run wrote no manifest")
        XCTAssertEqual(startedRuns(root, id, "denoise"), [held.run])
        kill(w.pid, SIGCONT)
        XCTAssertEqual(w.wait(), 0, w.stderr)
        XCTAssertEqual(hand.wait(), 0, hand.stderr)
        let m = try manifest(root + "/jobs/" + id, "denoise")
        XCTAssertEqual([m.run, String(m.pid)], [held.run, String(w.pid)], "the worker's run is the one recorded")
        XCTAssertEqual(m.status, .complete)
        XCTAssertEqual(startedRuns(root, id, "denoise"), [held.run], "one run only")
        XCTAssertTrue(hand.stderr.contains("up to date"), hand.stderr)
        assertQueue(root, "denoise", done: 2)
        XCTAssertEqual(queue(root, "segment", "new").sorted(), jobIDs.sorted(), "each forwarded once")

        // the other way round: the hand run holds segment, a drain worker waits for it
        let hand2 = try background("epipe-segment", [root + "/jobs/" + id], tag: "hand2")
        try stopWhenRunning(hand2, root: root, id: id, stage: "segment")
        defer { kill(hand2.pid, SIGCONT) }
        let held2 = try XCTUnwrap(runningManifest(root, id, "segment"))
        let w2 = try background("epipe-segment", ["--root", root, "--drain"], tag: "drain2")
        try poll("the drain worker to say it waits") { w2.stderr.contains("waiting for it to finish") }
        XCTAssertEqual(w2.errLines.filter { $0.contains("is being run by another process") && $0.contains("pid \(hand2.pid)") }.count, 1, w2.stderr)
        XCTAssertEqual(runningManifest(root, id, "segment")?.run, held2.run, "the waiting worker wrote nothing")
        kill(hand2.pid, SIGCONT)
        XCTAssertEqual(hand2.wait(), 0, hand2.stderr)
        XCTAssertEqual(w2.wait(), 0, w2.stderr)
        XCTAssertEqual(try manifest(root + "/jobs/" + id, "segment").run, held2.run)
        XCTAssertEqual(startedRuns(root, id, "segment"), [held2.run])
        XCTAssertTrue(w2.errLines.contains { $0.contains("up to date") }, w2.stderr)
        assertQueue(root, "segment", done: 2)
        XCTAssertEqual(queue(root, "cluster", "new").sorted(), jobIDs.sorted())
        print("ConcurrencyTests: hand run beside a drain worker: it waited (\(said[0])); one run of denoise and one of segment recorded per job")
    }
}
