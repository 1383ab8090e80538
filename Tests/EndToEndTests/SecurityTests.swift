import XCTest
import Foundation
import EpipeCore
import EpipeStore
import EpipeTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// Secrets and trust (issue 15): S3 credentials never written or printed anywhere; no shell ever
/// spawned, whatever the file names; paths read from job.json and manifests never leave the root.
final class SecurityTests: E2ECase {
    /// Every file under `dir` (symbolic links not followed) that holds one of `needles`.
    func filesHolding(_ needles: [String], under dir: String, except: (String) -> Bool = { _ in false }) throws -> (hits: [String], files: Int, bytes: Int) {
        var hits: [String] = [], files = 0, bytes = 0
        let e = FileManager.default.enumerator(atPath: dir)
        while let rel = e?.nextObject() as? String {
            let p = dir + "/" + rel
            if Files.isSymlink(p) || Files.isDirectory(p) || except(rel) { continue }
            guard let d = FileManager.default.contents(atPath: p) else { continue }
            files += 1; bytes += d.count
            for n in needles where d.range(of: Data(n.utf8)) != nil { hits.append("\(rel) holds \(n)") }
        }
        return (hits, files, bytes)
    }

    /// ingest to an s3:// store (a real SeaweedFS) with a recognisable secret key, by the environment
    /// and by a --profile, and failing runs (a wrong secret with a session token, an endpoint that does
    /// not answer, a stage fetching with the wrong secret); then every file under the root, every file
    /// of the server's data, every stdout and stderr, and every view of epipe-status (text, --json,
    /// --verify, a job's detail, --report pages, --prometheus) are searched for the secrets.
    func testCredentialsAppearNowhere() throws {
        let weed = try SeaweedFS.start()
        defer { weed.stop() }
        let secret = weed.secretKey, wrong = "epipe-WRONG-secret-Qx7Lk2", token = "epipe-session-token-Tk3Vq9"
        let client = try S3Client(config: S3Config(credentials: S3Credentials(accessKeyId: weed.accessKey, secretAccessKey: secret),
                                                   endpoint: weed.endpoint, retries: 2, backoffBase: 0.05))
        try client.createBucket("leak")
        let scans = tmp + "/scans", root = tmp + "/root"
        let made = try synth(scans, count: 3, size: 96, channels: 2)
        let good = ["AWS_ACCESS_KEY_ID": weed.accessKey, "AWS_SECRET_ACCESS_KEY": secret, "HOME": tmp]
        var said: [String] = []
        func run(_ exe: String, _ args: [String], env: [String: String] = good) throws -> RunResult {
            let r = try exec(exe, args, env: env)
            said += [r.out, r.err]
            return r
        }
        let s3 = ["--root", root, "--settle", "0", "--endpoint", weed.endpoint, "--to", "s3://leak/raw"]
        let ok = try run("epipe-ingest", s3 + [made[0]])
        XCTAssertEqual(ok.code, 0, ok.err)
        let job = try XCTUnwrap(ok.lines.first)
        XCTAssertEqual(try run("epipe-denoise", ["-q", job]).code, 0, "the stage fetched the raw scan from the bucket")
        let bad = try run("epipe-ingest", s3 + [made[1]], env: good.merging(["AWS_SECRET_ACCESS_KEY": wrong, "AWS_SESSION_TOKEN": token]) { $1 })
        XCTAssertEqual(bad.code, 2, bad.err)
        let gone = try run("epipe-ingest", ["--root", root, "--settle", "0", "--endpoint", "http://127.0.0.1:1", "--to", "s3://leak/raw", "--retries", "1", made[1]])
        XCTAssertNotEqual(gone.code, 0, gone.err)
        let fetch = try run("epipe-denoise", ["-q", "--force", job], env: good.merging(["AWS_SECRET_ACCESS_KEY": wrong, "AWS_SESSION_TOKEN": token]) { $1 })
        XCTAssertNotEqual(fetch.code, 0, fetch.err)
        XCTAssertEqual(try run("epipe-denoise", ["-q", job]).code, 0)
        try Files.mkdir(tmp + "/.aws")
        try "[lab]\naws_access_key_id = \(weed.accessKey)\naws_secret_access_key = \(secret)\n".write(toFile: tmp + "/.aws/credentials", atomically: true, encoding: .utf8)
        let prof = try run("epipe-ingest", s3 + ["--profile", "lab", made[2]], env: ["HOME": tmp, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        XCTAssertEqual(prof.code, 0, prof.err)
        let badProf = try run("epipe-ingest", s3 + ["--profile", "nobody", made[1]], env: ["HOME": tmp, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""])
        XCTAssertEqual(badProf.code, 2, badProf.err)
        XCTAssertEqual(try run("epipe-segment", ["-q", job]).code, 0)
        for args in [[], ["--json"], ["--verify"], ["--json", "--verify"], [job], ["--json", job], ["--report"], ["--prometheus", root + "/metrics.prom"]] {
            let r = try run("epipe-status", ["--root", root] + args)
            XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
        }
        XCTAssertTrue(Files.exists(root + "/report.html") && Files.exists(job + "/report.html") && Files.exists(root + "/metrics.prom"))

        let needles = [secret, wrong, token]
        let inRoot = try filesHolding(needles, under: root)
        XCTAssertEqual(inRoot.hits, [], "no secret in any file under the root")
        // the server's own files, but for the identities file the test gave it
        let inStore = try filesHolding(needles, under: weed.dir) { $0 == "identities.json" }
        XCTAssertEqual(inStore.hits, [], "no secret in the store's files")
        let printed = said.joined(separator: "\n")
        for n in needles { XCTAssertFalse(printed.contains(n), "\(n) printed: \(printed)") }
        XCTAssertGreaterThan(inRoot.files, 20); XCTAssertGreaterThan(inStore.files, 0)
        print("SecurityTests: 3 secrets searched in \(inRoot.files) files (\(inRoot.bytes) bytes) under the root, \(inStore.files) files (\(inStore.bytes) bytes) of the store, \(said.count) stdout/stderr texts of \(said.count / 2) runs (7 ingest and denoise/segment runs, 4 failing; 8 status views): 0 found")
    }

    /// No program starts a process (no shell, nothing): the sources hold no spawning call. And scans
    /// whose names are shell code go through ingest, every stage, a drain and every status view
    /// without any of that code running.
    func testNoShellIsSpawnedAndShellCodeInNamesStaysInert() throws {
        let sources = Bin.packageRoot + "/Sources"
        let spawn = try NSRegularExpression(pattern: #"\bProcess\s*\(|\bNSTask\b|posix_spawn|\bsystem\s*\(|\bpopen\s*\(|\bexec[lv]p?e?\s*\(|\bfork\s*\(|/bin/(ba)?sh\b"#)
        var audited = 0, found: [String] = []
        let e = FileManager.default.enumerator(atPath: sources)
        while let rel = e?.nextObject() as? String {
            guard [".swift", ".c", ".h"].contains(where: { rel.hasSuffix($0) }), let text = try? String(contentsOfFile: sources + "/" + rel, encoding: .utf8) else { continue }
            audited += 1
            for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let s = String(l)
                if spawn.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil { found.append("\(rel):\(i + 1): \(s)") }
            }
        }
        XCTAssertGreaterThan(audited, 100)
        XCTAssertEqual(found, [], "no process is spawned by epipe")

        let scans = tmp + "/scans", root = tmp + "/root", work = tmp + "/cwd"
        try Files.mkdir(work)
        let made = try synth(tmp + "/plain", count: 4, size: 128, channels: 3)
        let names = ["$(touch PWNED-1).ome.tif", "a;touch PWNED-2;b.ome.tif", "`touch PWNED-3`.ome.tif", "x' \"; touch PWNED-4 #|touch PWNED-5.ome.tif"]
        try Files.mkdir(scans)
        for (m, n) in zip(made, names) { try FileManager.default.moveItem(atPath: m, toPath: scans + "/" + n) }
        let ing = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans], cwd: work)
        XCTAssertEqual(ing.code, 0, ing.err)
        XCTAssertEqual(ing.lines.count, 4)
        for j in ing.lines {
            let spec = try Job(dir: j).spec
            XCTAssertNoThrow(try Names.validateID(spec.id)); XCTAssertNoThrow(try Names.validateName(spec.name))
        }
        for s in ["denoise", "segment"] { XCTAssertEqual(try exec("epipe-" + s, ["-q"] + ing.lines, cwd: work).code, 0) }
        for s in ["cluster", "stats"] { XCTAssertEqual(try exec("epipe-" + s, ["-q", "--root", root, "--drain"], cwd: work).code, 0) }
        for j in ing.lines { try assertComplete(j) }
        for args in [["--verify"], ["--report"], [ing.lines[0]]] { XCTAssertEqual(try exec("epipe-status", ["--root", root] + args, cwd: work).code, 0) }
        var pwned: [String] = []
        for dir in [tmp, NSTemporaryDirectory(), FileManager.default.currentDirectoryPath, Bin.packageRoot] {
            let w = FileManager.default.enumerator(atPath: dir)
            if dir != tmp { w?.skipDescendants() }
            while let rel = w?.nextObject() as? String {
                if (rel as NSString).lastPathComponent.hasPrefix("PWNED") { pwned.append(dir + "/" + rel) }
                if dir != tmp { w?.skipDescendants() }
            }
        }
        XCTAssertEqual(pwned, [], "no name was run as shell code")
        print("SecurityTests: \(audited) source files audited, 0 process spawns; 4 scans named with shell code through every stage and status view: no command ran")
    }

    /// The files outside the root (relative path -> sha256 and mtime), to prove nothing was touched.
    func outsideState(_ dir: String) throws -> [String: String] {
        var s = try fileDigests(dir)
        for k in Array(s.keys) { s[k]! += " " + String(Files.mtime(dir + "/" + k)?.timeIntervalSince1970 ?? 0) }
        return s
    }

    /// Paths read from job.json and manifests that leave the root (with "..", absolute, through a
    /// symbolic link; a job folder that is a link; a queue entry naming a job elsewhere; a job.json
    /// param naming a file outside) are refused with exit 2 and one line, and nothing outside is read,
    /// written or touched.
    func testPathsFromJobJSONAndManifestsStayInsideTheRoot() throws {
        let scans = tmp + "/scans", root = tmp + "/root", out = tmp + "/outside"
        _ = try synth(scans, count: 2, size: 128, channels: 3)
        let jobs = try exec("epipe-ingest", ["-q", "--root", root, "--settle", "0", scans]).lines.sorted()
        XCTAssertEqual(jobs.count, 2)
        let job = jobs[0], id = (job as NSString).lastPathComponent
        XCTAssertEqual(try sh("epipe-denoise -q '\(job)' | epipe-segment -q").code, 0)
        // outside the root: a valid scan, a text file, a folder, and a whole job
        try Files.mkdir(out + "/folder")
        let scan0 = String((try Job(dir: job).spec.raw.uri).dropFirst(7))
        try FileManager.default.copyItem(atPath: scan0, toPath: out + "/secret.ome.tif")
        try "not yours\n".write(toFile: out + "/victim.txt", atomically: true, encoding: .utf8)
        try Files.mkdir(out + "/jobs")
        let other = (jobs[1] as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: jobs[1], toPath: out + "/jobs/" + other)
        let before = try outsideState(out)

        let specPath = job + "/job.json"
        let original = try Files.read(specPath)
        func withSpec(_ edit: (inout [String: Any]) -> Void) throws {
            var o = try JSONSerialization.jsonObject(with: original) as! [String: Any]
            edit(&o)
            try JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: specPath))
        }
        func raw(_ uri: String) -> (inout [String: Any]) -> Void { { o in var r = o["raw"] as! [String: Any]; r["uri"] = uri; o["raw"] = r } }
        var refusals: [String] = []
        func refused(_ exe: String, _ args: [String], _ word: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try exec(exe, args)
            XCTAssertEqual(r.code, 2, "\(what): \(r.err)", file: file, line: line)
            // (a drain also runs the root's own job: its data-quality warnings are not about this)
            XCTAssertEqual(r.errLines.filter { !$0.contains(": warning: ") }.count, 1, "\(what): one line: \(r.err)", file: file, line: line)
            XCTAssertTrue(r.err.contains(word), "\(what): \(word): \(r.err)", file: file, line: line)
            refusals.append("\(what): \(r.err.trimmingCharacters(in: .newlines))")
        }
        let denoised = try manifest(job, "denoise")

        // raw.uri of job.json: another file, "..", a link in the store leading out
        try withSpec(raw("file://" + out + "/secret.ome.tif"))
        try refused("epipe-denoise", ["--force", job], "outside the root", "raw.uri outside")
        try withSpec(raw("file://" + root + "/store/../../outside/secret.ome.tif"))
        try refused("epipe-denoise", ["--force", job], "without \"..\"", "raw.uri with ..")
        XCTAssertEqual(symlink(out + "/secret.ome.tif", root + "/store/link.ome.tif"), 0)
        try withSpec(raw("file://" + root + "/store/link.ome.tif"))
        try refused("epipe-denoise", ["--force", job], "leads out of the root", "raw.uri through a link")
        XCTAssertEqual(unlink(root + "/store/link.ome.tif"), 0)
        try withSpec { o in o["markers"] = "file://" + out + "/victim.txt" }
        try refused("epipe-denoise", ["--force", job], "outside the root", "markers outside")
        try withSpec { o in o["params"] = ["segment": ["nuclei-mask": out + "/secret.ome.tif"]] }
        try refused("epipe-segment", ["--force", job], "params.segment.nuclei-mask", "a job.json param naming a file outside")
        try original.write(to: URL(fileURLWithPath: specPath))
        XCTAssertEqual(try manifest(job, "denoise"), denoised, "the refusals left the stage's manifest as it was")

        // outputs of the denoise manifest that segment reads: "..", absolute, a link leading out
        let mpath = job + "/denoise/manifest.json"
        let mdata = try Files.read(mpath)
        func withOutput(_ p: String) throws {
            var m = denoised
            m.outputs = m.outputs.map { o in var o = o; if o.path == "denoise/image.ome.tif" { o.path = p }; return o }
            try AtomicFile.write(JSON.encode(m), to: mpath)
        }
        try withOutput("../../../outside/secret.ome.tif")
        try refused("epipe-segment", ["--force", job], "leaves the job directory", "manifest output with ..")
        try withOutput(out + "/secret.ome.tif")
        try refused("epipe-segment", ["--force", job], "leaves the job directory", "manifest output absolute")
        let st = try exec("epipe-status", ["--root", root, "--verify", "--json"])
        XCTAssertTrue(st.out.contains("leaves the job directory"), "verify says so rather than read it: \(st.out.prefix(400))")
        try mdata.write(to: URL(fileURLWithPath: mpath))
        let image = job + "/denoise/image.ome.tif"
        try FileManager.default.moveItem(atPath: image, toPath: tmp + "/image.keep")
        XCTAssertEqual(symlink(out + "/secret.ome.tif", image), 0)
        try refused("epipe-segment", ["--force", job], "leads out of the job directory", "upstream output a link leading out")
        XCTAssertEqual(unlink(image), 0)
        try FileManager.default.moveItem(atPath: tmp + "/image.keep", toPath: image)

        // the stage's own folder, or the logs folder, a link leading out: nothing written there
        let seg = job + "/segment"
        try FileManager.default.moveItem(atPath: seg, toPath: tmp + "/segment.keep")
        XCTAssertEqual(symlink(out + "/folder", seg), 0)
        try refused("epipe-segment", ["--force", job], "leads out of the job directory", "stage folder a link leading out")
        XCTAssertEqual(unlink(seg), 0)
        try FileManager.default.moveItem(atPath: tmp + "/segment.keep", toPath: seg)
        let logs = job + "/logs"
        try FileManager.default.moveItem(atPath: logs, toPath: tmp + "/logs.keep")
        XCTAssertEqual(symlink(out + "/folder", logs), 0)
        try refused("epipe-segment", ["--force", job], "leads out of the job directory", "logs folder a link leading out")
        XCTAssertEqual(unlink(logs), 0)
        try FileManager.default.moveItem(atPath: tmp + "/logs.keep", toPath: logs)

        // a job folder that is a link to a job elsewhere; queue entries naming jobs outside
        XCTAssertEqual(symlink(out + "/jobs/" + other, root + "/jobs/evil"), 0)
        try refused("epipe-denoise", [root + "/jobs/evil"], "symbolic link", "job folder a link")
        try (out + "/jobs/" + other + "\n").write(toFile: root + "/queue/denoise/new/evil", atomically: true, encoding: .utf8)
        try (out + "/jobs/" + other + "\n").write(toFile: root + "/queue/denoise/new/" + other, atomically: true, encoding: .utf8)
        try refused("epipe-denoise", ["-q", "--root", root, "--drain"], "symbolic link", "queue entries naming jobs outside")
        XCTAssertEqual(try manifest(jobs[1], "denoise").status, .complete, "the entry's job is the root's own, whatever path it holds")
        XCTAssertEqual(queue(root, "denoise", "failed"), ["evil"])
        XCTAssertEqual(unlink(root + "/jobs/evil"), 0)

        XCTAssertEqual(try outsideState(out), before, "nothing outside the root was written or touched")
        XCTAssertEqual(Files.list(out + "/folder"), [])
        XCTAssertEqual(try exec("epipe-segment", ["-q", "--force", job]).code, 0, "the job itself is sound")
        print("SecurityTests: \(refusals.count) refusals, exit 2 and one line each; the outside folder's \(before.count) files unchanged:\n  " + refusals.joined(separator: "\n  "))
    }
}
