import Foundation
import ArgumentParser
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// One slide across many workers (issue 14): `--tiles N --tile I` runs part I of N of a stage on
/// each job given, `--merge` assembles the parts into the stage's normal outputs and manifest.
///
/// On disk, beside the stage's own files:
/// ```
/// <stage>/parts/<I>/manifest.json   the part's manifest (epipe.stage/1: status, run, params, inputs,
///                                   outputs with sha256, metrics with "part" = I, "parts" = N and
///                                   what the merge needs), written like a stage's, under <I>/.lock
/// <stage>/parts/<I>/...             the part's outputs
/// <stage>/parts/shared.json         whole-slide facts every part needs (a stage that has some)
/// <stage>/manifest.json             while parts run: status running (failed when a part failed),
///                                   progress {"done": k, "total": N, "unit": "parts"}; the merge
///                                   replaces it with the stage's normal complete manifest
/// ```
/// Parts of one job never wait for each other: each holds the flock of its own folder; the stage
/// manifest is rewritten atomically from the part manifests under a short flock
/// (<stage>/.manifest.lock).
public struct PartOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .long, help: "Split each slide into N horizontal parts (whole bands / tile rows) for N workers; with --tile I, run part I only.")
    public var tiles: Int?

    @Option(name: .long, help: "With --tiles N: the part to run, 0..<N (e.g. $SLURM_ARRAY_TASK_ID).")
    public var tile: Int?

    @Flag(name: .long, help: "Assemble the parts run with --tiles N --tile I into the stage's outputs and manifest (refused until every part is complete). The parts' folder is removed once the merged outputs and manifest are written, unless --keep-parts.")
    public var merge = false

    @Flag(name: .long, help: "With --merge: keep <stage>/parts/ (the parts' strips, as large as the stage's outputs) after the merge.")
    public var keepParts = false

    public enum Mode: Equatable, Sendable { case whole, part(index: Int, count: Int), merge }

    /// The mode asked for; a bad combination is refused with one line (exit 2).
    public func mode(tool: String, common: StageOptions) throws -> Mode {
        if merge {
            if tiles != nil || tile != nil { throw EpipeError.badInput("--merge takes no --tiles/--tile: it assembles the parts already run (\(tool) --merge JOB)") }
            if common.drain || common.watch { throw EpipeError.badInput("--merge runs on the jobs given, not with --drain/--watch") }
            return .merge
        }
        if keepParts { throw EpipeError.badInput("--keep-parts goes with --merge (it keeps the parts' files after the merge): \(tool) --merge --keep-parts JOB") }
        switch (tiles, tile) {
        case (nil, nil): return .whole
        case (nil, .some): throw EpipeError.badInput("--tile needs --tiles N (the number of parts): \(tool) --tiles N --tile I JOB")
        case (.some(let n), nil): throw EpipeError.badInput("--tiles \(n) needs --tile I (0..<\(n)), the part this worker runs; or --merge to assemble them")
        case (.some(let n), .some(let i)):
            guard n >= 1 else { throw EpipeError.badInput("--tiles \(n): give at least 1 part") }
            guard i >= 0 && i < n else { throw EpipeError.badInput("--tile \(i): out of range for --tiles \(n); use 0..<\(n)") }
            if common.drain || common.watch { throw EpipeError.badInput("--tiles/--tile run one part of the jobs given, not with --drain/--watch") }
            return .part(index: i, count: n)
        }
    }
}

/// A stage that can run in parts and merge them.
public protocol PartedStageTool: StageTool {
    /// Runs part `index` of `count`: its outputs go into `ctx.dir` (the part's folder, through
    /// `ctx.output`); its metrics hold what the merge needs. Throws `badInput` when the slide cannot
    /// be split so (more parts than units).
    func runPart(_ ctx: StageContext, index: Int, count: Int) throws -> StageResult
    /// Merge mode (`--merge`): `run` assembles the parts instead of processing the slide.
    var merging: Bool { get }
    /// `--keep-parts`: leave `<stage>/parts/` after a merge (by default it is removed once the merged
    /// stage manifest is written).
    var keepParts: Bool { get }
}

extension PartedStageTool {
    /// A merge is refused, before anything is written, until every part is complete.
    public func precheck(_ job: Job, params: [String: JSONValue], inputs: [FileRef]) throws {
        if merging { _ = try PartSet.forMerge(job: job, stage: stage, params: params, inputs: inputs) }
    }
}

/// The parts of one stage of one job.
public struct PartSet: Sendable {
    public let job: Job
    public let stage: String
    public let count: Int

    public init(job: Job, stage: String, count: Int) { self.job = job; self.stage = stage; self.count = count }

    public static func dir(_ job: Job, _ stage: String) -> String { job.stageDir(stage) + "/parts" }
    public func dir(_ i: Int) -> String { Self.dir(job, stage) + "/\(i)" }
    public func manifestPath(_ i: Int) -> String { dir(i) + "/manifest.json" }
    public func manifest(_ i: Int) -> StageManifest? { try? StageManifest.load(manifestPath(i)) }
    /// The job-relative folder of part i ("denoise/parts/3").
    public func rel(_ i: Int) -> String { stage + "/parts/\(i)" }

    /// Whether part i's manifest is complete for this split, these params and inputs, and its outputs are there.
    public func isComplete(_ m: StageManifest?, params: [String: JSONValue], inputs: [FileRef]) -> Bool {
        guard let m, m.status == .complete, Self.belongs(m, count: count, params: params, inputs: inputs) else { return false }
        for o in m.outputs {
            guard let p = try? job.path(o.path), let n = Files.size(p), o.bytes == nil || o.bytes == n else { return false }
        }
        return true
    }

    static func belongs(_ m: StageManifest, count: Int, params: [String: JSONValue], inputs: [FileRef]) -> Bool {
        m.tool.version == Version.string && m.params == params && m.metrics["parts"]?.doubleValue == Double(count)
            && m.inputs.map({ [$0.path, $0.sha256] }) == inputs.map({ [$0.path, $0.sha256] })
    }

    /// The number of parts the job's stage was split into: the stage manifest's progress while parts
    /// run, else the parts' own manifests (when they agree).
    public static func count(_ job: Job, _ stage: String) -> Int? {
        if let m = job.manifest(stage), let p = m.progress, p.unit == "parts", p.total > 0 { return p.total }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir(job, stage))) ?? []
        let counts = Set(names.compactMap { n -> Int? in
            guard Int(n) != nil, let m = try? StageManifest.load(dir(job, stage) + "/\(n)/manifest.json") else { return nil }
            return m.metrics["parts"]?.intValue
        })
        return counts.count == 1 ? counts.first : nil
    }

    /// For `--merge`: every part complete for these params and inputs, else `badInput` with one line
    /// naming the parts missing or failed and the command that runs them.
    public static func forMerge(job: Job, stage: String, params: [String: JSONValue], inputs: [FileRef]) throws -> PartSet {
        let tool = "epipe-" + stage
        guard let n = count(job, stage) else {
            throw EpipeError.badInput("\(job.dir)/\(stage)/parts: no parts to merge; run \(tool) --tiles N --tile I \(job.dir) for every I in 0..<N first")
        }
        let set = PartSet(job: job, stage: stage, count: n)
        var missing: [Int] = [], failed: [Int] = [], firstError: String? = nil
        for i in 0..<n {
            let m = set.manifest(i)
            if set.isComplete(m, params: params, inputs: inputs) { continue }
            if let m, m.status == .failed, belongs(m, count: n, params: params, inputs: inputs) {
                failed.append(i); if firstError == nil { firstError = m.error }
            } else { missing.append(i) }
        }
        let bad = (missing + failed).sorted()
        guard bad.isEmpty else {
            var what: [String] = []
            if !missing.isEmpty { what.append("\(plural(missing.count, "part")) \(list(missing)) of \(n) missing or not complete for these params") }
            if !failed.isEmpty { what.append("\(plural(failed.count, "part")) \(list(failed)) failed" + (firstError.map { " (\($0))" } ?? "")) }
            let cmd = bad.count == 1 ? "\(tool) --tiles \(n) --tile \(bad[0]) \(job.dir)"
                : "for i in \(bad.map(String.init).joined(separator: " ")); do \(tool) --tiles \(n) --tile $i \(job.dir); done"
            throw EpipeError.badInput("\(job.dir)/\(stage): cannot merge: \(what.joined(separator: "; ")); run: \(cmd)")
        }
        return set
    }

    /// After a merge: removes `<stage>/parts/` (the parts' strips and manifests). It is first renamed
    /// to a temporary name (`.parts.old-PID-RANDOM`, which the stage's next run sweeps), so a crash
    /// while it is deleted leaves no half folder of parts; the merged manifest is already complete, and
    /// a merge rerun that finds it up to date removes a `parts/` still there. Returns the bytes freed.
    @discardableResult
    public static func remove(job: Job, stage: String) -> UInt64 {
        let d = dir(job, stage)
        guard FileManager.default.fileExists(atPath: d) else { return 0 }
        let gone = TempFiles.name(for: d).replacingOccurrences(of: ".tmp-", with: ".old-")
        guard rename(d, gone) == 0 else { return 0 }
        TempFiles.created(gone)
        defer { TempFiles.finished(gone) }
        AtomicFile.syncDirectory(of: d)
        Fault.point("parts-moved")
        var bytes: UInt64 = 0
        if let e = FileManager.default.enumerator(atPath: gone) {
            while let f = e.nextObject() as? String { bytes += Files.size(gone + "/" + f).map(UInt64.init) ?? 0 }
        }
        try? FileManager.default.removeItem(atPath: gone)
        return bytes
    }

    static func plural(_ n: Int, _ w: String) -> String { n == 1 ? w : w + "s" }
    static func list(_ xs: [Int]) -> String { xs.map(String.init).joined(separator: ",") }

    /// Whole-slide facts every part needs (e.g. segment's threshold and nucleus diameter): read from
    /// `<stage>/parts/shared.json` when it was made for these params and inputs, else computed by
    /// `compute` and written there. The first part to get there computes them under the file's flock
    /// (the others wait for it: they need the same values, so they would only compute them again);
    /// deterministic, so a part that finds the file gets what it would have computed.
    public static func shared<T: Codable>(job: Job, stage: String, params: [String: JSONValue], inputs: [FileRef],
                                          _ type: T.Type, compute: () throws -> T) throws -> T {
        let d = dir(job, stage)
        try Files.mkdir(d)
        let path = d + "/shared.json"
        guard let lock = FileLock(path: d + "/.shared.lock") else { throw EpipeError.failed("\(d): cannot lock") }
        defer { _ = lock }
        // the temporary shared.json of a part killed while it wrote it (only written under this lock)
        AtomicFile.sweep(directory: d, olderThan: 0) { $0.hasPrefix(".shared.json.tmp-") }
        if let data = try? Files.read(path), let r = try? JSONDecoder().decode(SharedRecord<T>.self, from: data),
           r.version == Version.string, r.params == params, r.inputs.map({ [$0.path, $0.sha256] }) == inputs.map({ [$0.path, $0.sha256] }) {
            return r.value
        }
        let v = try compute()
        try AtomicFile.write(JSON.encode(SharedRecord(version: Version.string, params: params, inputs: inputs, value: v)), to: path)
        return v
    }
}

/// parts/shared.json: whole-slide facts for the parts, with what they were computed from.
struct SharedRecord<V: Codable>: Codable {
    var schema = "epipe.parts-shared/1"
    var version: String
    var params: [String: JSONValue]
    var inputs: [FileRef]
    var value: V
}

extension StageRunner {
    /// Runs part `index` of `count` of the stage on one job; true when it is complete (run or up to date).
    /// SIGTERM/SIGINT stop it at a safe point: the part's manifest says interrupted (`JobStop`).
    func runPart(jobDir: String, index: Int, count: Int) -> Bool {
        let stop = JobStop(stage: stage, tool: toolName, claim: nil)
        return Interrupt.during(stop.stop) { runPart(jobDir: jobDir, index: index, count: count, stop: stop) }
    }

    func runPart(jobDir: String, index: Int, count: Int, stop: JobStop) -> Bool {
        guard let tool = tool as? any PartedStageTool else {
            fail(EpipeError.badInput("\(toolName) cannot run in parts"), job: nil); return false
        }
        let job: Job
        do {
            job = try Job(dir: jobDir)
            for p in [job.stageDir(stage) + "/parts/\(index)/manifest.json", job.logPath(stage)] { try job.checkInside(p) }
        } catch { fail(error, job: jobDir); return false }
        let tag = "part \(index)/\(count)"
        let log = StageLog(tool: toolName, file: job.logPath(stage), quiet: opts.quiet)
        stop.started(job: job, log: log, tag: tag)
        let started = Date()
        defer { RawCache.clean(job) }
        let set = PartSet(job: job, stage: stage, count: count)
        let pdir = set.dir(index), mpath = set.manifestPath(index)
        var manifest: StageManifest? = nil
        var params: [String: JSONValue] = [:], inputs: [FileRef] = []
        do {
            if job.spec.isCellTable { throw EpipeError.badInput("\(job.dir): a cell-table job (epipe-ingest --cells) has no image for \(toolName)") }
            try Files.mkdir(pdir)
            guard let lock = FileLock(path: pdir + "/.lock") else { throw EpipeError.failed("\(pdir): cannot lock") }
            _ = lock
            params = try tool.params(for: job)
            inputs = try tool.inputs(for: job, params: params)
            if !opts.force, let old = job.manifest(stage), old.progress?.unit != "parts", upToDate(old, job: job, params: params, inputs: inputs) {
                log.info("\(job.spec.name): \(tag) up to date: the stage is complete (\(job.dir)/\(stage)); --force reruns this part")
                emit(job: job, status: "up-to-date", seconds: 0, error: nil, outputs: nil)
                return true
            }
            if !opts.force, set.isComplete(set.manifest(index), params: params, inputs: inputs) {
                log.info("\(job.spec.name): \(tag) up to date (\(pdir)); --force reruns it")
                updateStageManifest(job, set: set, params: params, inputs: inputs)
                emit(job: job, status: "up-to-date", seconds: 0, error: nil, outputs: nil)
                return true
            }
            AtomicFile.sweep(directory: pdir, olderThan: 0, recursive: true)
            Interrupt.checkpoint()
            var m = StageManifest(stage: stage, status: .running, run: Files.random(hex: 6), tool: ToolRef(name: toolName, version: Version.string),
                                  params: params, inputs: inputs, metrics: ["part": .number(Double(index)), "parts": .number(Double(count))],
                                  started: Time.iso(started))
            manifest = m
            try AtomicFile.write(JSON.encode(m), to: mpath)
            updateStageManifest(job, set: set, params: params, inputs: inputs)
            Fault.point("manifest-running")
            log.info("\(job.spec.name): \(tag) started (\(job.dir))")
            let box = ManifestBox(m)
            let (p0, i0) = (params, inputs)
            stop.running(box, path: mpath, started: started) { self.updateStageManifest(job, set: set, params: p0, inputs: i0) }
            let ctx = StageContext(job: job, stage: stage, params: params, inputs: inputs, log: log, quiet: opts.quiet, subdir: "parts/\(index)") { p in
                box.update(p, path: mpath)
            }
            let result = try tool.runPart(ctx, index: index, count: count)
            let outs = try Self.outputRefs(result, ctx: ctx)
            Fault.point("outputs-hashed")
            m = box.current()
            try Self.complete(&m, outputs: outs, metrics: result.metrics.merging(["part": .number(Double(index)), "parts": .number(Double(count))]) { _, b in b },
                              started: started, box: box, path: mpath)
            Fault.point("manifest-complete")
            updateStageManifest(job, set: set, params: params, inputs: inputs)
            log.info("\(job.spec.name): \(tag) complete in \(String(format: "%.2f", m.seconds ?? 0)) s, peak RSS \(Memory.peakRSS() >> 20) MiB")
            emit(job: job, status: "complete", seconds: m.seconds, error: nil, outputs: outs.map { $0.path })
            return true
        } catch {
            let code = exitCode(of: error)
            worst = max(worst, code)
            let msg = describe(error)
            log.error("\(job.spec.name): \(tag): \(msg)")
            if var m = manifest {
                Self.fail(&m, error: msg, started: started, path: mpath)
                updateStageManifest(job, set: set, params: params, inputs: inputs)
            }
            if opts.json { emit(job: job, status: "failed", seconds: nil, error: msg, outputs: nil) }
            return false
        }
    }

    /// Rewrites the stage manifest from the part manifests (under a short flock): running with
    /// progress "k/N parts", or failed naming the failed parts. A stage manifest of a whole run or
    /// a merge (running, or complete for these params and inputs) is left alone.
    func updateStageManifest(_ job: Job, set: PartSet, params: [String: JSONValue], inputs: [FileRef]) {
        guard let lock = FileLock(path: job.stageDir(stage) + "/.manifest.lock") else { return }
        defer { _ = lock }
        let cur = job.manifest(stage)
        let partsMode = cur?.progress?.unit == "parts"
        if let cur, !partsMode {
            if cur.status == .running && cur.host == Host.name && kill(cur.pid, 0) == 0 { return }   // a whole run or a merge is writing it
            if cur.status == .running && cur.host != Host.name { return }
            if cur.status == .complete && upToDate(cur, job: job, params: params, inputs: inputs) { return }
        }
        var done = 0, failed: [(Int, String)] = []
        for i in 0..<set.count {
            let m = set.manifest(i)
            if set.isComplete(m, params: params, inputs: inputs) { done += 1 }
            else if let m, m.status == .failed, PartSet.belongs(m, count: set.count, params: params, inputs: inputs) { failed.append((i, m.error ?? "failed")) }
        }
        let keep = partsMode && cur?.progress?.total == set.count && cur?.params == params
        var m = StageManifest(stage: stage, status: failed.isEmpty ? .running : .failed, run: keep ? cur!.run : Files.random(hex: 6),
                              tool: ToolRef(name: toolName, version: Version.string), params: params, inputs: inputs,
                              metrics: ["parts": .number(Double(set.count)), "parts_done": .number(Double(done))],
                              progress: ProgressRef(done: done, total: set.count, unit: "parts"),
                              started: keep ? cur!.started : Time.iso(Date()))
        if !failed.isEmpty {
            m.error = "\(PartSet.plural(failed.count, "part")) \(PartSet.list(failed.map { $0.0 })) of \(set.count) failed (\(failed[0].1)); rerun: \(toolName) --tiles \(set.count) --tile \(failed[0].0) \(job.dir)"
            m.finished = Time.iso(Date())
        }
        try? AtomicFile.write(JSON.encode(m), to: job.manifestPath(stage))
    }
}
