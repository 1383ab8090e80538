import XCTest
import Foundation
import EpipeCore

/// The pipeline on the workflow engines of examples/, with the release binaries:
/// - examples/slurm/submit.sh on a one-node Slurm cluster that the test starts on localhost
///   (SlurmCluster) and stops again;
/// - examples/Snakefile with the Snakemake of the project's venv (EPIPE_PYTHON's folder, else
///   .venv), from the scans through the checkpointed ingest, then a second run that does nothing
///   and a third that takes only a new scan.
/// Skipped, saying so, only where `make engines` could not install Slurm/MUNGE or Snakemake.
final class EnginesTests: E2ECase {
    /// Four slides every stage has something to do with (256 x 256 x 4: each has cells of two or
    /// more types, which epipe-stats needs).
    func fourSamples(_ dir: String) throws {
        let made = try synth(dir, count: 4, size: 256, channels: 4, seed: 7)
        XCTAssertEqual(made.count, 4, "epipe-synth made \(made)")
    }

    func stampRuns(_ root: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for j in try Root(root).allJobIDs() {
            for s in Names.defaultStages { out[j + "/" + s] = try manifest(root + "/jobs/" + j, s).run }
        }
        return out
    }

    func statusSummary(_ root: String) throws -> [String: Int] {
        let r = try exec("epipe-status", ["--root", root, "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        let doc = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any]
        return (doc?["summary"] as? [String: Int]) ?? [:]
    }

    // MARK: Slurm

    func testSlurmSubmitScriptRunsEveryStageOnAOneNodeCluster() throws {
        let started = Date()
        let cluster = try SlurmCluster.start()
        // The daemons' logs go into every failure message; the folder goes with the cluster.
        addTeardownBlock { cluster.stop() }
        let scans = tmp + "/scans", root = tmp + "/root"
        try fourSamples(scans)
        let ing = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", scans])
        XCTAssertEqual(ing.code, 0, ing.err)
        XCTAssertEqual(ing.lines.count, 4, ing.out)

        // Two workers per stage; the requests shrink only where this node is smaller than them.
        var args = [Bin.packageRoot + "/examples/slurm/submit.sh", "--bin", Bin.dir]
        if cluster.cpus < 2 { args += ["--cpus", "all=1"] }
        if cluster.memoryMB < 4200 { args += ["--mem", "all=\(cluster.memoryMB / 2)M"] }
        args += [root, "2"]
        let sub = try exec("/bin/bash", args, env: cluster.env)
        XCTAssertEqual(sub.code, 0, "submit.sh: \(sub.err)\n\(cluster.logs())")
        let ids = Dictionary(sub.lines.compactMap { l -> (String, String)? in
            let f = l.split(separator: " ").map(String.init)
            return f.count == 2 ? (f[0], f[1]) : nil
        }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(ids.keys), ["denoise", "segment", "cluster", "stats", "report"], sub.out)
        let all = ["denoise", "segment", "cluster", "stats", "report"].compactMap { ids[$0] }
        guard all.count == 5 else { return }

        // Every array task and the report end (up to 150 s; the stages take ~1 s a job here, the
        // rest is Slurm's scheduling).
        let deadline = Date().addingTimeInterval(150)
        var left = ""
        repeat {
            let q = try cluster.slurm("squeue", ["-h", "-j", all.joined(separator: ","), "-o", "%i %j %T %r"])
            left = q.code == 0 ? q.out : "squeue failed: \(q.err)"
            if q.code == 0 && q.out.isEmpty { break }
            Thread.sleep(forTimeInterval: 1)
        } while Date() < deadline
        let workerLogs = (try? Files.list(root + "/slurm"))?.sorted().map { f in
            "--- \(f)\n" + ((try? String(contentsOfFile: root + "/slurm/" + f, encoding: .utf8)) ?? "")
        }.joined(separator: "\n") ?? "(no worker logs in \(root)/slurm)"
        guard left.isEmpty else {
            XCTFail("Slurm jobs still not finished after 150 s:\n\(left)\n\(workerLogs)\n\(cluster.logs())")
            return
        }
        let states = try cluster.states(all)
        XCTAssertEqual(states.count, 2 * 4 + 1, "two tasks per stage and the report: \(states)")
        for s in states where s.state != "COMPLETED" || s.exit != "0:0" {
            XCTFail("Slurm job \(s.id) ended \(s.state) (exit \(s.exit))\n\(workerLogs)\n\(cluster.logs())")
        }

        let jobs = try Root(root).allJobIDs()
        XCTAssertEqual(jobs.count, 4)
        for j in jobs { try assertComplete(root + "/jobs/" + j) }
        for stage in Names.defaultStages {
            let q = Queue(root: try Root(root), stage: stage).counts()
            XCTAssertEqual([q.new, q.cur, q.done, q.failed], [0, 0, 4, 0], "\(stage) queue: every job once, none left")
        }
        XCTAssertEqual(try statusSummary(root)["complete"], 4, "epipe-status --json: 4 complete")
        XCTAssertTrue(workerLogs.contains("epipe-report"), "the report job's log is in ROOT/slurm: \(workerLogs.prefix(500))")
        print("EnginesTests: Slurm pipeline over 4 jobs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s, cluster set-up included")

        // One slide split across the array: denoise and segment as 3 parts each, then their merges,
        // then cluster and stats (bands and tiles of 256 px from job.json, so 3 of each).
        let big = tmp + "/big"
        _ = try synth(big, count: 1, size: 768, channels: 4, seed: 9, name: "big")
        let bj = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", "--param", "denoise.band=256", "--param", "segment.tile=256", big])
        XCTAssertEqual(bj.code, 0, bj.err)
        let job = try XCTUnwrap(bj.lines.first)
        var sargs = [Bin.packageRoot + "/examples/slurm/submit.sh", "--bin", Bin.dir, "--split", job]
        if cluster.cpus < 2 { sargs += ["--cpus", "all=1"] }
        if cluster.memoryMB < 4200 { sargs += ["--mem", "all=\(cluster.memoryMB / 2)M"] }
        sargs += [root, "3"]
        let ssub = try exec("/bin/bash", sargs, env: cluster.env)
        XCTAssertEqual(ssub.code, 0, "submit.sh --split: \(ssub.err)\n\(cluster.logs())")
        let sids = ssub.lines.compactMap { l -> String? in let f = l.split(separator: " "); return f.count == 2 ? String(f[1]) : nil }
        XCTAssertEqual(ssub.lines.map { String($0.split(separator: " ")[0]) },
                       ["denoise-parts", "denoise-merge", "segment-parts", "segment-merge", "cluster", "stats", "report"], ssub.out)
        let sdeadline = Date().addingTimeInterval(150)
        repeat {
            let q = try cluster.slurm("squeue", ["-h", "-j", sids.joined(separator: ","), "-o", "%i %j %T %r"])
            left = q.code == 0 ? q.out : "squeue failed: \(q.err)"
            if q.code == 0 && q.out.isEmpty { break }
            Thread.sleep(forTimeInterval: 1)
        } while Date() < sdeadline
        guard left.isEmpty else { XCTFail("split jobs still not finished after 150 s:\n\(left)\n\(cluster.logs())"); return }
        let sstates = try cluster.states(sids)
        XCTAssertEqual(sstates.count, 3 + 1 + 3 + 1 + 1 + 1 + 1, "3 parts and a merge per split stage, cluster, stats, report: \(sstates)")
        for s in sstates where s.state != "COMPLETED" || s.exit != "0:0" { XCTFail("Slurm job \(s.id) ended \(s.state) (exit \(s.exit))\n\(cluster.logs())") }
        try assertComplete(job)
        for stage in ["denoise", "segment"] {
            XCTAssertEqual(try manifest(job, stage).status, .complete, stage)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(job)/\(stage)/parts"), "the merge removed \(stage)/parts")
        }
        XCTAssertEqual(try statusSummary(root)["complete"], 5, "epipe-status --json: 5 complete")
    }

    // MARK: Snakemake

    /// snakemake of the project's venv: EPIPE_PYTHON's folder (make test sets it to .venv/bin/python),
    /// else <package>/.venv/bin.
    func snakemake() throws -> String {
        var dirs: [String] = []
        if let py = ProcessInfo.processInfo.environment["EPIPE_PYTHON"], !py.isEmpty { dirs.append((py as NSString).deletingLastPathComponent) }
        dirs.append(Bin.packageRoot + "/.venv/bin")
        guard let s = dirs.map({ $0 + "/snakemake" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("snakemake not in \(dirs.joined(separator: " or ")) (`make engines` installs it into the venv; PyPI unreachable?)")
        }
        return s
    }

    func testSnakefileRunsEveryJobThenNothingThenOnlyANewScan() throws {
        let snake = try snakemake()
        let scans = tmp + "/scans", root = tmp + "/root"
        try fourSamples(scans)
        // HOME in tmp: Snakemake's caches and profiles of this machine stay out of it.
        let cmd = [snake, "-s", Bin.packageRoot + "/examples/Snakefile", "--config", "scans=\(scans)", "root=\(root)", "-j2"]
        let env = ["HOME": tmp, "XDG_CACHE_HOME": tmp + "/.cache"]

        var t = Date()
        let r1 = try exec(cmd[0], Array(cmd.dropFirst()), env: env, cwd: tmp)
        XCTAssertEqual(r1.code, 0, r1.out + r1.err)
        print("EnginesTests: snakemake over 4 scans in \(String(format: "%.1f", Date().timeIntervalSince(t))) s")
        let jobs = try Root(root).allJobIDs()
        XCTAssertEqual(jobs.count, 4)
        for j in jobs { try assertComplete(root + "/jobs/" + j) }
        XCTAssertEqual(try statusSummary(root)["complete"], 4, "epipe-status --json: 4 complete")
        let stamp = try stampRuns(root)
        XCTAssertEqual(stamp.count, 16)

        // A second run does nothing.
        t = Date()
        let r2 = try exec(cmd[0], Array(cmd.dropFirst()), env: env, cwd: tmp)
        XCTAssertEqual(r2.code, 0, r2.out + r2.err)
        XCTAssertTrue((r2.out + r2.err).contains("Nothing to be done"), "second run: \(r2.out + r2.err)")
        XCTAssertFalse((r2.out + r2.err).contains("rule denoise"), "second run runs no stage: \(r2.out + r2.err)")
        XCTAssertEqual(try stampRuns(root), stamp, "no manifest's run changed")
        print("EnginesTests: second snakemake run in \(String(format: "%.1f", Date().timeIntervalSince(t))) s")

        // A new scan: the checkpoint ingests it and only its job runs.
        let more = try exec("epipe-synth", ["--out", scans, "--truth", tmp + "/truth5", "--width", "256", "--height", "256",
                                            "--channels", "4", "--count", "1", "--seed", "8", "--name", "late", "--quiet"])
        XCTAssertEqual(more.code, 0, more.err)
        let r3 = try exec(cmd[0], Array(cmd.dropFirst()), env: env, cwd: tmp)
        XCTAssertEqual(r3.code, 0, r3.out + r3.err)
        let after = try Root(root).allJobIDs()
        XCTAssertEqual(after.count, 5)
        for j in after { try assertComplete(root + "/jobs/" + j) }
        let stamp3 = try stampRuns(root)
        XCTAssertEqual(stamp3.filter { stamp[$0.key] != nil }, stamp, "the four earlier jobs did not run again")
        XCTAssertEqual(stamp3.count, 20)
    }

    /// `--config tiles=3`: a slide's denoise and segment as 3 part jobs each and a merge, the outputs
    /// byte for byte one worker's; a second run does nothing.
    func testSnakefileSplitsASlideIntoParts() throws {
        let snake = try snakemake()
        let big = tmp + "/big"
        _ = try synth(big, count: 1, size: 768, channels: 4, seed: 9, name: "big")
        var jobs: [String: String] = [:]
        for r in ["one", "split"] {
            let ing = try exec("epipe-ingest", ["--root", tmp + "/" + r, "--settle", "0", "--quiet", "--param", "denoise.band=256", "--param", "segment.tile=256", big])
            XCTAssertEqual(ing.code, 0, ing.err); jobs[r] = ing.lines.first
        }
        let one = try XCTUnwrap(jobs["one"]), split = try XCTUnwrap(jobs["split"])
        let whole = try sh("epipe-denoise -q \(one) | epipe-segment -q | epipe-cluster -q | epipe-stats -q")
        XCTAssertEqual(whole.code, 0, whole.err)
        let cmd = [snake, "-s", Bin.packageRoot + "/examples/Snakefile", "--config", "root=\(tmp)/split", "tiles=3", "-j2"]
        let env = ["HOME": tmp, "XDG_CACHE_HOME": tmp + "/.cache"]
        let r1 = try exec(cmd[0], Array(cmd.dropFirst()), env: env, cwd: tmp)
        XCTAssertEqual(r1.code, 0, r1.out + r1.err)
        try assertComplete(split)
        for stage in ["denoise", "segment"] {
            XCTAssertEqual(try manifest(split, stage).status, .complete, stage)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(split)/\(stage)/parts"), "the merge removed \(stage)/parts")
        }
        for f in ["denoise/image.ome.tif", "segment/cells.tif", "segment/cells.csv"] {
            XCTAssertEqual(try Digest.sha256(file: split + "/" + f).hex, try Digest.sha256(file: one + "/" + f).hex, "\(f): the split run's equals one worker's")
        }
        let r2 = try exec(cmd[0], Array(cmd.dropFirst()), env: env, cwd: tmp)
        XCTAssertEqual(r2.code, 0, r2.out + r2.err)
        XCTAssertTrue((r2.out + r2.err).contains("Nothing to be done"), "second run: \(r2.out + r2.err)")
    }
}
