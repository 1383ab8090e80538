import XCTest
import Foundation
import EpipeCore

/// Every flag of epipe-cluster and epipe-stats (and the flags all stages share) changes what
/// the stage writes, its manifest, or which jobs it runs. Inputs are small generated MCQuant
/// tables standing in for a segment run, so these tests take a second or two.
final class ClusterStatsFlagTests: E2ECase {
    /// A job under ROOT whose segment stage is stood in for by a generated per-cell table:
    /// DAPI plus three lineage markers, three populations (or uniform noise with `uniform`).
    @discardableResult
    func tableJob(root rootPath: String? = nil, name: String = "t", cells n: Int = 240, uniform: Bool = false,
                  params: [String: [String: JSONValue]] = [:]) throws -> String {
        let root = try Root(rootPath ?? tmp + "/root")
        var state: UInt64 = uniform ? 99 : 12345
        func unit() -> Double { state = state &* 6364136223846793005 &+ 1442695040888963407; return Double(state >> 11) * 0x1p-53 }
        var t = CSVTable(header: ["CellID", "DAPI", "CD3", "CD20", "CD68", "X_centroid", "Y_centroid", "Area", "DAPI_nucleus"])
        for i in 0..<n {
            let pop = i % 3
            let m = (0..<3).map { j in uniform ? 1000 * unit() : (j == pop ? 400 + 200 * unit() : 30 * unit()) }
            let dapi = 300 + 100 * unit()
            t.rows.append([String(i + 1), CSVTable.num(dapi)] + m.map { CSVTable.num($0) }
                          + [CSVTable.num(500 * unit()), CSVTable.num(400 * unit()), String(60 + i % 40), CSVTable.num(dapi * 1.2)])
        }
        let raw = tmp + "/\(name)-raw.tif"
        try "not read by cluster or stats".write(toFile: raw, atomically: true, encoding: .utf8)
        let spec = JobSpec(id: "job-" + name, name: name, raw: RawRef(uri: "file://" + raw, sha256: try Digest.sha256(file: raw).hex, bytes: Files.size(raw)!),
                           stages: ["segment", "cluster", "stats"], params: params)
        let job = try Job.create(root: root, spec: spec)
        try Files.mkdir(job.stageDir("segment"))
        try t.write(job.dir + "/segment/cells.csv")
        var m = StageManifest(stage: "segment", status: .complete, run: "import", tool: ToolRef(name: "epipe-segment", version: Version.string),
                              params: [:], inputs: [], started: Time.iso(Date()))
        let (h, b) = try Digest.sha256(file: job.dir + "/segment/cells.csv")
        m.outputs = [FileRef(path: "segment/cells.csv", sha256: h, bytes: b)]
        try AtomicFile.write(JSON.encode(m), to: job.manifestPath("segment"))
        return job.dir
    }

    func sha(_ path: String) throws -> String { try Digest.sha256(file: path).hex }
    func cluster(_ args: [String], _ job: String) throws -> RunResult { try exec("epipe-cluster", ["-q", "--force"] + args + [job]) }

    // MARK: epipe-cluster

    func testClusterK() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "2"], job).code, 0)
        XCTAssertEqual(try CSVTable.read(job + "/cluster/markers.csv").rows.count, 2)
        XCTAssertEqual(try manifest(job, "cluster").params["k"]?.intValue, 2)
        XCTAssertEqual(try manifest(job, "cluster").metrics["k"]?.intValue, 2)
        let two = try sha(job + "/cluster/cells.csv")
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "5"], job).code, 0)
        XCTAssertEqual(try CSVTable.read(job + "/cluster/markers.csv").rows.count, 5)
        XCTAssertEqual(try manifest(job, "cluster").metrics["cluster_sizes"]?.arrayValue?.count, 5)
        XCTAssertNotEqual(try sha(job + "/cluster/cells.csv"), two)
        // job.json params.cluster.k is the default a flag overrides.
        let j2 = try tableJob(name: "t2", params: ["cluster": ["k": 4, "method": "kmeans"]])
        XCTAssertEqual(try cluster([], j2).code, 0)
        XCTAssertEqual(try CSVTable.read(j2 + "/cluster/markers.csv").rows.count, 4)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3"], j2).code, 0)
        XCTAssertEqual(try CSVTable.read(j2 + "/cluster/markers.csv").rows.count, 3)
        assertRefused(try cluster(["--method", "kmeans", "--k", "0"], job), "k")
    }

    func testClusterCofactor() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--cofactor", "1"], job).code, 0)
        let one = try CSVTable.read(job + "/cluster/markers.csv")
        XCTAssertEqual(try manifest(job, "cluster").params["cofactor"]?.doubleValue, 1)
        XCTAssertEqual(try cluster(["--cofactor", "150"], job).code, 0)
        let big = try CSVTable.read(job + "/cluster/markers.csv")
        XCTAssertEqual(try manifest(job, "cluster").params["cofactor"]?.doubleValue, 150)
        // The cofactor moves the scale the z-scores are taken on: asinh(x / 150) is nearly linear
        // below 150, so the CD3-high cluster stands further out (in z) than with asinh(x / 1).
        let a = one.doubles("CD3_z")!.max()!, b = big.doubles("CD3_z")!.max()!
        XCTAssertGreaterThan(b, a + 0.05, "cofactor 1: \(a), cofactor 150: \(b)")
        assertRefused(try cluster(["--cofactor", "0"], job), "cofactor")
    }

    func testClusterMarkers() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster([], job).code, 0)
        func used() throws -> [String] { try manifest(job, "cluster").metrics["markers"]!.arrayValue!.compactMap { $0.stringValue } }
        XCTAssertEqual(try used(), ["CD3", "CD20", "CD68"], "the nuclear stain is left out by default")
        XCTAssertEqual(try cluster(["--markers", "CD3, CD20"], job).code, 0)
        XCTAssertEqual(try used(), ["CD3", "CD20"])
        XCTAssertEqual(try CSVTable.read(job + "/cluster/markers.csv").header, ["cluster", "phenotype", "cells", "top_markers", "CD3_mean", "CD20_mean", "CD3_z", "CD20_z"])
        XCTAssertEqual(try cluster(["--markers", "DAPI,CD68"], job).code, 0)
        XCTAssertEqual(try used(), ["DAPI", "CD68"], "named markers are used as given, the nuclear stain too")
        assertRefused(try cluster(["--markers", "CD3,NoSuch"], job), "NoSuch")
        // An empty list is refused, not clustered on no markers at all.
        assertRefused(try cluster(["--markers", ""], job), "markers")
        // job.json may name the markers as a list.
        let j2 = try tableJob(name: "t2", params: ["cluster": ["markers": ["CD20", "CD68"]]])
        XCTAssertEqual(try cluster([], j2).code, 0)
        XCTAssertEqual(try manifest(j2, "cluster").metrics["markers"]?.arrayValue?.compactMap { $0.stringValue }, ["CD20", "CD68"])
        XCTAssertEqual(try manifest(j2, "cluster").params["markers"], .string("CD20,CD68"))
    }

    /// job.json params.cluster are checked like flags: one line naming the key, exit 2, nothing written.
    func testClusterParamsFromJobJSONAreChecked() throws {
        for (params, word) in [(["k": JSONValue.number(2.5)], "k: "), (["seed": .number(1e30)], "seed: "), (["kk": .number(3)], "kk: unknown"),
                               (["cofactor": .string("five")], "cofactor: ")] {
            let job = try tableJob(name: "bad-" + params.keys.first!, params: ["cluster": params])
            let r = try cluster([], job)
            assertRefused(r, "cluster param " + word)
            XCTAssertFalse(Files.exists(job + "/cluster/cells.csv"))
        }
        // The manifest records the one merged struct: defaults, job.json, flags.
        let job = try tableJob(name: "ok", params: ["cluster": ["k": .string("4"), "seed": 3]])
        XCTAssertEqual(try cluster(["--cofactor", "2"], job).code, 0)
        XCTAssertEqual(try manifest(job, "cluster").params, ["method": "leiden", "k": 4, "transform": "arcsinh", "cofactor": 2, "clip": 99.9, "markers": "auto",
                                                             "seed": 3, "neighbors": 15, "resolution": 1, "knn": "auto", "weights": "jaccard", "som": "10x10",
                                                             "gates": "", "workflow": "", "names": ""])
    }

    func testClusterSeed() throws {
        // Uniform noise: k-means has many local optima, so the seed decides which one is found.
        let job = try tableJob(cells: 300, uniform: true)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "8", "--seed", "1"], job).code, 0)
        let s1 = try sha(job + "/cluster/cells.csv")
        XCTAssertEqual(try manifest(job, "cluster").params["seed"]?.intValue, 1)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "8", "--seed", "2"], job).code, 0)
        XCTAssertNotEqual(try sha(job + "/cluster/cells.csv"), s1)
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "8", "--seed", "1"], job).code, 0)
        XCTAssertEqual(try sha(job + "/cluster/cells.csv"), s1, "same seed, same assignment")
        assertRefused(try cluster(["--seed=-1"], job), "seed")
    }

    // MARK: epipe-stats

    func testStatsLabel() throws {
        let job = try tableJob()
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3"], job).code, 0)
        XCTAssertEqual(try exec("epipe-stats", ["-q", job]).code, 0)
        let byPhenotype = try CSVTable.read(job + "/stats/frequencies.csv")
        XCTAssertEqual(byPhenotype.header, ["phenotype", "count", "proportion"])
        XCTAssertTrue(byPhenotype.rows.allSatisfy { $0[0].hasPrefix("c") }, "\(byPhenotype.rows)")
        XCTAssertEqual(try exec("epipe-stats", ["-q", "--label", "cluster", job]).code, 0)
        let byCluster = try CSVTable.read(job + "/stats/frequencies.csv")
        XCTAssertEqual(byCluster.header, ["cluster", "count", "proportion"])
        XCTAssertEqual(Set(byCluster.rows.map { $0[0] }), ["0", "1", "2"])
        XCTAssertEqual(try manifest(job, "stats").params["label"]?.stringValue, "cluster")
        XCTAssertEqual(byCluster.doubles("count")!.reduce(0, +), 240)
        assertRefused(try exec("epipe-stats", ["-q", "--label", "NoSuch", job]), "NoSuch")
    }

    /// job.json params.stats are checked like flags (StatsParams): one line naming the key, exit 2,
    /// nothing written; a flag overrides job.json; the manifest records the one merged struct.
    func testStatsParamsFromJobJSONAreCheckedAndFlagsWin() throws {
        for (params, word) in [(["lable": JSONValue.string("cluster")], "stats param lable: unknown parameter; known: label"),
                               (["label": .number(3)], "stats param label: "), (["label": .string("")], "stats param label: ")] {
            let job = try tableJob(name: "bad-" + params.keys.first!, params: ["stats": params])
            XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3"], job).code, 0)
            let r = try exec("epipe-stats", ["-q", job])
            assertRefused(r, word)
            XCTAssertFalse(Files.exists(job + "/stats/frequencies.csv"))
        }
        let job = try tableJob(name: "ok", params: ["stats": ["label": "cluster"]])
        XCTAssertEqual(try cluster(["--method", "kmeans", "--k", "3"], job).code, 0)
        XCTAssertEqual(try exec("epipe-stats", ["-q", job]).code, 0)
        XCTAssertEqual(try CSVTable.read(job + "/stats/frequencies.csv").header, ["cluster", "count", "proportion"], "job.json's label")
        XCTAssertEqual(try manifest(job, "stats").params["label"], "cluster")
        XCTAssertEqual(try exec("epipe-stats", ["-q", "--force", "--label", "phenotype", job]).code, 0)
        XCTAssertEqual(try CSVTable.read(job + "/stats/frequencies.csv").header, ["phenotype", "count", "proportion"], "the flag wins")
        XCTAssertEqual(try manifest(job, "stats").params["label"], "phenotype")
    }

    // MARK: flags every stage shares (StageOptions), through epipe-cluster and epipe-stats

    func testJobsFromArgumentsOrStdin() throws {
        let a = try tableJob(name: "a"), b = try tableJob(name: "b")
        let r = try exec("epipe-cluster", ["-q", a])
        XCTAssertEqual(r.lines, [a])
        XCTAssertNil(try Job(dir: b).manifest("cluster"), "only the job given runs")
        let s = try exec("epipe-cluster", ["-q"], stdin: a + "\n" + b + "\n")
        XCTAssertEqual(s.code, 0, s.err)
        XCTAssertEqual(s.lines, [a, b])
        XCTAssertEqual(try manifest(b, "cluster").status, .complete)
    }

    func testForceJsonQuiet() throws {
        let job = try tableJob()
        let first = try exec("epipe-cluster", [job])
        XCTAssertEqual(first.code, 0, first.err)
        XCTAssertTrue(first.err.contains("complete"), "without -q the stage says what it did: \(first.err)")
        let run = try manifest(job, "cluster").run
        // Without --force an up-to-date stage does nothing; with --force it reruns.
        let again = try exec("epipe-cluster", [job])
        XCTAssertTrue(again.err.contains("up to date"), again.err)
        XCTAssertEqual(try manifest(job, "cluster").run, run)
        let forced = try exec("epipe-cluster", ["--force", job])
        XCTAssertFalse(forced.err.contains("up to date"), forced.err)
        XCTAssertNotEqual(try manifest(job, "cluster").run, run)
        // --quiet: nothing on stderr.
        let quiet = try exec("epipe-cluster", ["--quiet", "--force", job])
        XCTAssertEqual(quiet.code, 0)
        XCTAssertEqual(quiet.err, "")
        XCTAssertEqual(quiet.lines, [job])
        // --json: one event object instead of the directory.
        let js = try exec("epipe-stats", ["-q", "--json", job])
        XCTAssertEqual(js.code, 0, js.err)
        XCTAssertEqual(js.lines.count, 1)
        let ev = try JSONSerialization.jsonObject(with: Data(js.lines[0].utf8)) as! [String: Any]
        XCTAssertEqual(ev["stage"] as? String, "stats")
        XCTAssertEqual(ev["status"] as? String, "complete")
        XCTAssertEqual(ev["job"] as? String, job)
        XCTAssertEqual(ev["outputs"] as? [String], try manifest(job, "stats").outputs.map { $0.path })
    }

    func testRootDrainAndStaleAfter() throws {
        let rootPath = tmp + "/root"
        let job = try tableJob(root: rootPath)
        let root = try Root(rootPath)
        try Queue(root: root, stage: "cluster").enqueue(id: "job-t", jobDir: job)
        // --drain without --root reads ./epipe-data (here an empty root in the working folder).
        let elsewhere = try exec("epipe-cluster", ["-q", "--drain"], env: ["EPIPE_ROOT": ""], cwd: tmp)
        XCTAssertEqual(elsewhere.code, 0, elsewhere.err)
        XCTAssertEqual(elsewhere.out, "")
        XCTAssertEqual(Queue(root: root, stage: "cluster").counts().new, 1)
        // With --root it claims the job, runs it and hands it to the next stage's queue.
        let d = try exec("epipe-cluster", ["-q", "--root", rootPath, "--drain"])
        XCTAssertEqual(d.code, 0, d.err)
        XCTAssertEqual(d.lines, [job])
        XCTAssertEqual(Queue(root: root, stage: "cluster").counts().done, 1)
        XCTAssertEqual(Queue(root: root, stage: "stats").counts().new, 1)
        // A claim whose worker stopped beating 120 s ago: kept with --stale-after 3600,
        // given back and run with --stale-after 60.
        let q = Queue(root: root, stage: "stats")
        let claimPath = q.sub("cur") + "/job-t@gone-host.1"
        XCTAssertEqual(rename(q.sub("new") + "/job-t", claimPath), 0)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-120)], ofItemAtPath: claimPath)
        let kept = try exec("epipe-stats", ["-q", "--root", rootPath, "--drain", "--stale-after", "3600"])
        XCTAssertEqual(kept.out, "")
        XCTAssertTrue(Files.exists(claimPath))
        XCTAssertNil(try Job(dir: job).manifest("stats"))
        let reaped = try exec("epipe-stats", ["--root", rootPath, "--drain", "--stale-after", "60"])
        XCTAssertEqual(reaped.code, 0, reaped.err)
        XCTAssertTrue(reaped.err.contains("returned stale claim job-t"), reaped.err)
        XCTAssertEqual(reaped.lines, [job])
        XCTAssertEqual(try manifest(job, "stats").status, .complete)
    }

    func testWatchPollInterval() throws {
        let rootPath = tmp + "/root"
        let job = try tableJob(root: rootPath)
        XCTAssertEqual(try cluster([], job).code, 0)
        _ = try Root(rootPath)
        // A worker that polls every 0.2 s picks up a job queued after it started; one that polls
        // every 30 s has not looked again 3 s later.
        func watch(_ interval: String) throws -> String {
            let newDir = rootPath + "/queue/stats/new"
            try? FileManager.default.removeItem(atPath: job + "/stats")
            try? FileManager.default.removeItem(atPath: newDir + "/job-t")   // cluster queued it for stats
            let script = """
            epipe-stats -q --root \(rootPath) --watch --poll-interval \(interval) > \(tmp)/watch.out 2>\(tmp)/watch.err & pid=$!
            sleep 1; printf '%s\\n' \(job) > \(newDir)/.job-t.tmp && mv \(newDir)/.job-t.tmp \(newDir)/job-t
            sleep 3; kill $pid; wait $pid 2>/dev/null; rm -f \(newDir)/job-t; true
            """
            XCTAssertEqual(try sh(script).code, 0)
            return try String(contentsOfFile: tmp + "/watch.out", encoding: .utf8)
        }
        XCTAssertEqual(try watch("0.2"), job + "\n")
        XCTAssertEqual(try watch("30"), "")
    }
}
