import Foundation
import EpipeCore
import EpipeStore
import EpipeImage
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// What a stage gets while it runs one job.
public final class StageContext: @unchecked Sendable {
    public let job: Job
    public let stage: String
    public let params: [String: JSONValue]
    public let inputs: [FileRef]
    public let log: StageLog
    let progressSink: @Sendable (ProgressRef) -> Void
    let quiet: Bool
    /// The folder inside the stage's where this run writes ("parts/3" for part 3), nil = the stage's own.
    public let subdir: String?

    init(job: Job, stage: String, params: [String: JSONValue], inputs: [FileRef], log: StageLog, quiet: Bool, subdir: String? = nil, progressSink: @escaping @Sendable (ProgressRef) -> Void) {
        self.job = job; self.stage = stage; self.params = params; self.inputs = inputs; self.log = log; self.quiet = quiet; self.subdir = subdir; self.progressSink = progressSink
    }

    public var dir: String { job.stageDir(stage) + (subdir.map { "/" + $0 } ?? "") }
    /// Absolute path of an output inside this stage's folder (or the part's: `subdir`; job-relative name returned by `rel`).
    public func output(_ name: String) throws -> String {
        let p = try job.path(stage + "/" + (subdir.map { $0 + "/" } ?? "") + name)
        // a job folder removed while the stage ran is not made again piece by piece
        guard job.stillThere else { throw StageRunner.jobRemoved(job, stage: stage) }
        try Files.mkdir((p as NSString).deletingLastPathComponent)
        try job.root.checkInside(p)
        try job.checkInside(p)
        return p
    }
    public func qc(_ name: String) throws -> String { try output("qc/" + name) }
    public func rel(_ abs: String) -> String { abs.hasPrefix(job.dir + "/") ? String(abs.dropFirst(job.dir.count + 1)) : abs }
    public func progress(_ label: String, total: Int, unit: String) -> ProgressReporter {
        ProgressReporter(label: "\(job.spec.name) \(label)", total: total, unit: unit, quiet: quiet, onUpdate: progressSink)
    }
}

public struct StageResult: Sendable {
    public var outputs: [String]            // absolute or job-relative paths inside the stage folder
    public var metrics: [String: JSONValue]
    public init(outputs: [String], metrics: [String: JSONValue]) { self.outputs = outputs; self.metrics = metrics }
}

/// A stage: how to get its params and inputs for a job, and how to run it.
public protocol StageTool {
    var stage: String { get }
    /// Effective params: defaults, overlaid by job.json params[stage], overlaid by flags given.
    func params(for job: Job) throws -> [String: JSONValue]
    /// The files this stage reads, with their recorded digests (no re-hashing of big inputs).
    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef]
    func run(_ ctx: StageContext) throws -> StageResult
    /// Checked after the up-to-date check, before the stage's running manifest is written: a refusal
    /// here (e.g. `--merge` with parts missing) leaves the stage as it was. Default: nothing.
    func precheck(_ job: Job, params: [String: JSONValue], inputs: [FileRef]) throws
}

extension StageTool {
    public var toolName: String { "epipe-" + stage }
    public func precheck(_ job: Job, params: [String: JSONValue], inputs: [FileRef]) throws {}

    /// The outputs of an upstream stage, from its complete manifest.
    public func upstream(_ job: Job, _ stage: String, _ files: [String]) throws -> [FileRef] {
        guard Files.exists(job.manifestPath(stage)) else {
            throw EpipeError.failed("\(job.manifestPath(stage)): missing; run epipe-\(stage) on this job first")
        }
        let m = try StageManifest.load(job.manifestPath(stage))
        try m.checkOutputPaths(job.manifestPath(stage))
        guard m.status == .complete else {
            throw EpipeError.failed("\(job.manifestPath(stage)): status is \(m.status.rawValue); run epipe-\(stage) on this job first")
        }
        return try files.map { f in
            guard let r = m.outputs.first(where: { $0.path == f }) else {
                throw EpipeError.failed("\(job.manifestPath(stage)): lists no output \(f); rerun epipe-\(stage) --force")
            }
            _ = try job.path(r.path)   // not through a link leading out of the job
            return r
        }
    }

    /// The raw image of the job as a local path (file:// store). A cell-table job has no image.
    public func rawPath(_ job: Job) throws -> String {
        let uri = job.spec.raw.uri
        if job.spec.isCellTable {
            throw EpipeError.badInput("\(job.dir)/job.json: raw is a per-cell table (kind cells, from epipe-ingest --cells), not an image; epipe-\(stage) has nothing to run on")
        }
        guard uri.hasPrefix("file://") || uri.hasPrefix("s3://") else {
            throw EpipeError.badInput("\(job.dir)/job.json: raw.uri \(uri) is neither file:// nor s3://")
        }
        let r = job.spec.raw
        // the markers.csv that travels with the scan is held to the same place as the scan
        if let m = job.spec.markers, m.hasPrefix("file://") { try RawCache.checkLocal(job, path: String(m.dropFirst(7)), uri: m) }
        return try RawCache.local(job, uri: uri, sha256: r.sha256, bytes: r.bytes, endpoint: r.endpoint, region: r.region,
                                  name: "raw" + Scans.ext(uri))
    }

    /// The markers.csv that travelled with the scan, as a local path (fetched into the job's cache
    /// from an s3:// store), if any.
    public func markersPath(_ job: Job) -> String? {
        guard let m = job.spec.markers else { return nil }
        return try? RawCache.local(job, uri: m, sha256: nil, bytes: nil, endpoint: job.spec.raw.endpoint, region: job.spec.raw.region, name: "markers.csv", quiet: true)
    }

    /// Merges job.json params[stage] and flags over defaults.
    public func mergeParams(_ job: Job, defaults: [String: JSONValue], flags: [String: JSONValue?]) -> [String: JSONValue] {
        var p = defaults
        for (k, v) in job.spec.params[stage] ?? [:] { p[k] = v }
        for (k, v) in flags { if let v { p[k] = v } }
        return p
    }
}

/// Runs a stage over jobs given as arguments, on stdin, or from its queue.
public final class StageRunner {
    let tool: any StageTool
    let opts: StageOptions
    /// `--tiles N --tile I`: run that part of each job instead of the whole stage.
    let part: (index: Int, count: Int)?
    var worst: Int32 = 0

    public init(tool: any StageTool, options: StageOptions, part: (index: Int, count: Int)? = nil) { self.tool = tool; self.opts = options; self.part = part }

    /// One job: the part asked for, else the whole stage.
    func runJob(_ jobDir: String) -> Bool {
        if let p = part { return runPart(jobDir: jobDir, index: p.index, count: p.count) }
        return runOne(jobDir: jobDir, claim: nil)
    }

    var stage: String { tool.stage }
    var toolName: String { "epipe-" + tool.stage }

    public func main() -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        Interrupt.install()   // SIGTERM/SIGINT: stop at the next safe point (JobStop), exit 143/130
        if opts.drain || opts.watch {
            let rootPath = Root.resolve(opts.root)
            let root: Root
            do { root = try Root(rootPath, create: true) } catch { fail(error, job: nil); return worst }
            if let why = Files.unwritable(root.path + "/queue/" + stage) {
                fail(EpipeError.failed("\(root.path): cannot write the queue (\(why)); \(toolName) --drain claims, heartbeats and finishes jobs there: remount the root read-write or run as a user who can write it"), job: nil)
                return worst
            }
            let q = Queue(root: root, stage: stage)
            func reap() -> Int {
                let back = q.reapStale(staleAfter: opts.staleAfter)
                for c in back {
                    Term.stderr("\(toolName): returned stale claim \(c.id) to queue/\(stage)/new (\(c.ownerGone ? "its worker \(c.owner) is gone" : "no heartbeat for \(ProgressReporter.clock(c.age))"))")
                }
                return back.count
            }
            repeat {
                _ = reap()
                repeat {
                    do {
                        while let c = try q.claim() {
                            let ok = runOne(jobDir: c.jobDir, claim: (q, c))
                            q.finish(c, ok: ok)
                        }
                    } catch { fail(error, job: nil); return worst }
                    // the queue is empty: a worker that died meanwhile (killed, its host gone) left
                    // its claim; give it back now and take it, rather than leave it to the next drain
                } while reap() > 0
                if opts.watch { Interrupt.idle { _ = usleep(useconds_t(max(0.05, opts.pollInterval) * 1_000_000)) } }
            } while opts.watch
        }
        var any = !opts.jobs.isEmpty
        for j in opts.jobs { _ = runJob(j) }
        if !opts.drain && !opts.watch && opts.jobs.isEmpty {
            if isatty(0) == 1 {
                Term.stderr("\(toolName): no job directories given; pass ROOT/jobs/<id> arguments, pipe them on stdin, or use --drain")
                return 2
            }
            while let line = Interrupt.idle({ readLine() }) {
                var s = line.trimmingCharacters(in: .whitespaces)
                if s.isEmpty { continue }
                if s.hasPrefix("{"), let d = s.data(using: .utf8), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any], let j = o["job"] as? String { s = j }
                any = true
                _ = runJob(s)
            }
        }
        _ = any
        Interrupt.checkpoint()   // a signal during the last job, which was finished: 143/130 all the same
        return worst
    }

    func fail(_ error: Error, job: String?) {
        let code = exitCode(of: error)
        worst = max(worst, code)
        Term.stderr("\(toolName): \(describe(error))")
    }

    /// Runs the stage on one job; true when it is complete (run or up to date). SIGTERM/SIGINT stop it
    /// at a safe point (`JobStop`).
    func runOne(jobDir: String, claim: (Queue, Queue.Claim)?) -> Bool {
        let stop = JobStop(stage: stage, tool: toolName, claim: claim)
        return Interrupt.during(stop.stop) {
            if claim != nil { Fault.point("claimed") }
            Interrupt.checkpoint()   // a drain worker signalled since its last job: the claim goes back
            return runWhole(jobDir: jobDir, claim: claim, stop: stop)
        }
    }

    func runWhole(jobDir: String, claim: (Queue, Queue.Claim)?, stop: JobStop) -> Bool {
        let job: Job
        do {
            job = try Job(dir: jobDir)
            // what this run writes (the stage's folder, its log) must not lead out of the job directory
            for p in [job.stageDir(stage) + "/manifest.json", job.logPath(stage)] { try job.checkInside(p) }
            if let why = Files.unwritable(job.dir) {
                throw EpipeError.failed("\(job.dir): cannot write the job directory (\(why)); \(toolName) writes its outputs, manifest and log there: remount the root read-write or run as a user who can write it")
            }
        } catch {
            fail(error, job: jobDir)
            if claim == nil, let j = try? Job(dir: jobDir) { Queue(root: j.root, stage: stage).retire(id: j.spec.id, ok: false) }
            return false
        }
        let log = StageLog(tool: toolName, file: job.logPath(stage), quiet: opts.quiet)
        stop.started(job: job, log: log)
        let started = Date()
        let run = Files.random(hex: 6)
        var heartbeat: DispatchSourceTimer? = nil
        if let (q, c) = claim {
            // A beat at least four times per --stale-after (at most every 10 s); a claim given back
            // meanwhile (epipe-status --requeue-stale) stops this worker before it writes anything more.
            let every = max(0.2, min(10, opts.staleAfter / 4))
            let t = DispatchSource.makeTimerSource(queue: .global())
            t.schedule(deadline: .now() + every, repeating: every)
            t.setEventHandler { if q.holds(c) { q.heartbeat(c) } else if Interrupt.pending == 0 { Self.claimLost(c, log: log) } }   // a stop gives it back itself
            t.resume(); heartbeat = t
        }
        defer { heartbeat?.cancel() }
        // a raw image fetched from an s3:// store lives for this stage only
        defer { RawCache.clean(job) }

        var manifest: StageManifest? = nil
        do {
            if job.spec.isCellTable && !job.spec.stages.contains(stage) {
                // No image to denoise, and a stage outside the list would not be read by the next one.
                throw EpipeError.badInput("\(job.dir): a cell-table job (epipe-ingest --cells) runs only its stages \(job.spec.stages.joined(separator: ",")); \(stage) is not one of them")
            }
            guard job.stillThere else { throw Self.jobRemoved(job, stage: stage) }
            try Files.mkdir(job.stageDir(stage))
            // One run of a stage on a job at a time: a second (a hand run beside a drain worker, two
            // pipes) says who holds it and waits, then finds the stage up to date or runs it.
            let lock = try FileLock.acquire(path: job.stageDir(stage) + "/.lock") {
                let holder = job.manifest(stage).map { m in
                    m.status == .running ? " (run \(m.run), \(m.tool.name) pid \(m.pid) on \(m.host), started \(m.started))" : "" } ?? ""
                log.warn("\(job.spec.name): \(stage) of \(job.dir) is being run by another process\(holder); waiting for it to finish")
            }
            defer { withExtendedLifetime(lock) {} }
            guard job.stillThere else { throw Self.jobRemoved(job, stage: stage) }
            if !job.spec.stages.contains(stage) {
                log.warn("\(job.dir): job.json does not list stage \(stage); running it because it was asked for")
            }
            // A stage epipe-ingest wrote (segment/ of a --cells job) is complete as it is: nothing to rerun.
            if let old = job.manifest(stage), old.status == .complete, old.tool.name == "epipe-ingest" {
                if opts.force {
                    throw EpipeError.badInput("\(job.manifestPath(stage)): imported by epipe-ingest --cells; \(toolName) --force has nothing to rerun (ingest the changed table instead)")
                }
                for o in old.outputs {
                    let n = Files.size(try job.path(o.path))
                    if n != nil && (o.bytes == nil || o.bytes == n) { continue }
                    throw EpipeError.failed("\(job.dir)/\(o.path): missing or changed since epipe-ingest --cells wrote it; ingest the table again into a new root or restore the file")
                }
                log.info("\(job.spec.name): up to date (\(stage)/ imported by epipe-ingest --cells)")
                emit(job: job, status: "up-to-date", seconds: 0, error: nil, outputs: old.outputs.map { $0.path })
                forward(job)
                return true
            }
            let params = try tool.params(for: job)
            try Self.checkFileParams(job, stage: stage, params: params)
            let inputs = try tool.inputs(for: job, params: params)
            try Self.checkRawInputs(job, inputs)
            if !opts.force, let old = job.manifest(stage), upToDate(old, job: job, params: params, inputs: inputs) {
                log.info("\(job.spec.name): up to date (\(job.dir)/\(stage)); --force reruns")
                sweep(job)   // what a run killed after its complete manifest left (a merge's parts being removed)
                if let t = tool as? any PartedStageTool, t.merging, !t.keepParts, PartSet.remove(job: job, stage: stage) > 0 {
                    log.info("\(job.spec.name): removed \(stage)/parts left by a merge that stopped before it could")
                }
                emit(job: job, status: "up-to-date", seconds: 0, error: nil, outputs: old.outputs.map { $0.path })
                forward(job)
                return true
            }
            try tool.precheck(job, params: params, inputs: inputs)
            sweep(job)
            Interrupt.checkpoint()
            var m = StageManifest(stage: stage, status: .running, run: run, tool: ToolRef(name: toolName, version: Version.string),
                                  params: params, inputs: inputs, started: Time.iso(started))
            manifest = m
            // said before the running manifest is written: a manifest that says running has its log line
            log.info("\(job.spec.name): started run \(run) (\(job.dir))")
            try AtomicFile.write(JSON.encode(m), to: job.manifestPath(stage), createDirectories: false)
            log.detail("params \(JSONValue.object(params))")
            let mpath = job.manifestPath(stage)
            Fault.point("manifest-running")
            let box = ManifestBox(m)
            stop.running(box, path: mpath, started: started)
            let ctx = StageContext(job: job, stage: stage, params: params, inputs: inputs, log: log, quiet: opts.quiet) { p in
                box.update(p, path: mpath)
            }
            let result = try tool.run(ctx)
            let outs = try Self.outputRefs(result, ctx: ctx)
            Fault.point("outputs-hashed")
            if let (q, c) = claim, !q.holds(c) { Self.claimLost(c, log: log) }
            guard job.stillThere else { throw Self.jobRemoved(job, stage: stage) }
            m = box.current()
            try Self.complete(&m, outputs: outs, metrics: result.metrics, started: started, box: box, path: job.manifestPath(stage))
            Fault.point("manifest-complete")
            log.info("\(job.spec.name): complete in \(String(format: "%.2f", m.seconds ?? 0)) s, peak RSS \(Memory.peakRSS() >> 20) MiB")
            if let t = tool as? any PartedStageTool, t.merging, !t.keepParts {
                let freed = PartSet.remove(job: job, stage: stage)
                if freed > 0 { log.info("\(job.spec.name): removed \(stage)/parts (\(freed >> 20) MiB); --merge --keep-parts keeps them") }
            }
            emit(job: job, status: "complete", seconds: m.seconds, error: nil, outputs: outs.map { $0.path })
            forward(job)
            return true
        } catch {
            let code = exitCode(of: error)
            worst = max(worst, code)
            // a write that failed because the job's folder went away says that, not the write's errno
            let msg = job.stillThere ? describe(error) : Self.jobRemoved(job, stage: stage).message
            log.error("\(job.spec.name): \(msg)")
            if var m = manifest { Self.fail(&m, error: msg, started: started, path: job.manifestPath(stage)) }
            if opts.json { emit(job: job, status: "failed", seconds: nil, error: msg, outputs: nil) }
            if claim == nil { Queue(root: job.root, stage: stage).retire(id: job.spec.id, ok: false) }
            return false
        }
    }

    /// The outputs a stage returned, as job-relative references with their sha256 (each checked to be
    /// inside the root).
    static func outputRefs(_ result: StageResult, ctx: StageContext) throws -> [FileRef] {
        try result.outputs.map { o in
            let abs = o.hasPrefix("/") ? o : ctx.job.dir + "/" + o
            try ctx.job.root.checkInside(abs)
            let (h, n) = try Digest.sha256(file: abs)
            return FileRef(path: ctx.rel(abs), sha256: h, bytes: n)
        }
    }

    /// Marks a running manifest complete (outputs, metrics, time, peak memory, progress at its end)
    /// and writes it: the last write of a run.
    static func complete(_ m: inout StageManifest, outputs: [FileRef], metrics: [String: JSONValue], started: Date, box: ManifestBox, path: String) throws {
        Interrupt.commitBegin(); defer { Interrupt.commitEnd() }   // a stop waits for it (JobStop: the box closed, nothing to undo)
        m.status = .complete
        m.outputs = outputs
        m.metrics = metrics
        m.finished = Time.iso(Date())
        m.seconds = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
        m.peak_rss_bytes = Memory.peakRSS()
        if var p = m.progress { p.done = p.total; m.progress = p }
        box.close()
        try AtomicFile.write(JSON.encode(m), to: path, createDirectories: false)
    }

    /// The params that name files, per stage (values other than these words are paths).
    static let fileParams: [String: [String]] = ["denoise": ["flatfield", "darkfield"], "segment": ["nuclei-mask", "cells-mask"],
                                                 "cluster": ["gates", "workflow", "names"]]
    static let notFiles: Set<String> = ["", "auto", "off", "none", "on", "false", "true", "0"]

    /// A file named by job.json's params (a flat-field, a mask, gates) is read only from inside the root:
    /// job.json travels with the job and must not point a stage at any file of the machine. A file
    /// elsewhere is given as the stage's flag instead (a flag wins over job.json, and is then what is read).
    static func checkFileParams(_ job: Job, stage: String, params: [String: JSONValue]) throws {
        guard let keys = fileParams[stage], let jp = job.spec.params[stage] else { return }
        var named: [(String, JSONValue, JSONValue?)] = keys.compactMap { k in jp[k].map { (k, $0, params[k]) } }
        for (ch, o) in jp["per-channel"]?.objectValue ?? [:] {
            for k in keys { if let v = o.objectValue?[k] { named.append(("per-channel.\(ch).\(k)", v, params["per-channel"]?.objectValue?[ch]?.objectValue?[k])) } }
        }
        for (k, v, used) in named {
            guard let f = v.stringValue, !notFiles.contains(f.lowercased()), used == nil || used == v else { continue }
            if !Files.within(f, job.root.path) || f.split(separator: "/").contains("..") {
                throw EpipeError.badInput("\(job.dir)/job.json: params.\(stage).\(k) \(f) is outside the root \(job.root.path); a file named in job.json must be inside the root (or give it to epipe-\(stage) as a flag)")
            }
        }
    }

    /// A stage that reads the job's raw scan (it is among its inputs) refuses, before it writes
    /// anything, a file:// scan or markers.csv outside the root's store (RawCache.checkLocal).
    static func checkRawInputs(_ job: Job, _ inputs: [FileRef]) throws {
        guard inputs.contains(where: { $0.path == job.spec.raw.uri }) else { return }
        for uri in [job.spec.raw.uri, job.spec.markers].compactMap({ $0 }) where uri.hasPrefix("file://") {
            try RawCache.checkLocal(job, path: String(uri.dropFirst(7)), uri: uri)
        }
    }

    /// The job's folder (or its job.json) went away while the stage ran: the stage stops and writes
    /// nothing more, rather than make the folder again around a partial stage.
    static func jobRemoved(_ job: Job, stage: String) -> EpipeError {
        EpipeError.failed("\(job.dir): the job directory was removed while epipe-\(stage) ran; nothing more written (ingest the scan again to make a new job)")
    }

    /// Marks a manifest failed with the error and writes it (best effort: the error is said anyway).
    static func fail(_ m: inout StageManifest, error: String, started: Date, path: String) {
        Interrupt.commitBegin(); defer { Interrupt.commitEnd() }
        m.status = .failed; m.error = error; m.finished = Time.iso(Date())
        m.seconds = Date().timeIntervalSince(started); m.peak_rss_bytes = Memory.peakRSS()
        try? AtomicFile.write(JSON.encode(m), to: path, createDirectories: false)
    }

    /// The worker's claim was given back to the queue while it ran (it was taken for stale): another
    /// worker owns the job now, so this one stops at once, exit 75, leaving the stage's manifest as
    /// it was (running: the next run overwrites it) and its temporary files to that run's sweep.
    static func claimLost(_ c: Queue.Claim, log: StageLog) -> Never {
        log.error("\(c.id): the claim \(c.path) was given back to the queue (taken for stale); stopping so that the worker now holding the job runs it alone")
        _exit(75)
    }

    func upToDate(_ old: StageManifest, job: Job, params: [String: JSONValue], inputs: [FileRef]) -> Bool {
        guard old.status == .complete, old.tool.version == Version.string, old.params == params else { return false }
        guard old.inputs.map({ [$0.path, $0.sha256] }) == inputs.map({ [$0.path, $0.sha256] }) else { return false }
        for o in old.outputs {
            guard let p = try? job.path(o.path), let n = Files.size(p), o.bytes == nil || o.bytes == n else { return false }
        }
        return true
    }

    func forward(_ job: Job) {
        Queue(root: job.root, stage: stage).retire(id: job.spec.id, ok: true)
        if let next = job.spec.next(after: stage), job.manifest(next)?.status != .complete || true {
            do { try Queue(root: job.root, stage: next).enqueue(id: job.spec.id, jobDir: job.dir) }
            catch { Term.stderr("\(toolName): \(job.spec.id): could not queue for \(next): \(describe(error))") }
        }
    }

    func emit(job: Job, status: String, seconds: Double?, error: String?, outputs: [String]?) {
        if opts.json {
            Term.stdout(JSON.line(StageEvent(stage: stage, job: job.dir, id: job.spec.id, name: job.spec.name, status: status,
                                             next: job.spec.next(after: stage), seconds: seconds, error: error, outputs: outputs)))
        } else if error == nil {
            Term.stdout(job.dir)
        }
    }
}

/// Holds the running manifest and rewrites it (atomically) with progress.
final class ManifestBox: @unchecked Sendable {
    private var m: StageManifest
    private let lock = NSLock()
    private var closed = false
    init(_ m: StageManifest) { self.m = m }
    func update(_ p: ProgressRef, path: String) {
        lock.lock(); defer { lock.unlock() }
        guard !closed else { return }
        m.progress = p
        try? AtomicFile.write(JSON.encode(m), to: path, createDirectories: false)
    }
    func current() -> StageManifest { lock.lock(); defer { lock.unlock() }; return m }
    func close() { lock.lock(); closed = true; lock.unlock() }

    /// For a stop: closes the box and returns the manifest, nil when it was closed already (the job
    /// completed: nothing to mark interrupted).
    func closeForStop() -> StageManifest? { lock.lock(); defer { lock.unlock() }; if closed { return nil }; closed = true; return m }
}

/// A stage's exit code for an error: 2 for bad input (a file that is not what it should be: an
/// `EpipeError.badInput`, or an `ImageError` of an image read, which names the image and what is
/// wrong with it), 1 for a job that failed (a write that failed included).
public func exitCode(of error: Error) -> Int32 {
    if let e = error as? EpipeError { return e.exitCode }
    return (error as? ImageError)?.isBadInput == true ? 2 : 1
}

public func describe(_ error: Error) -> String {
    if let e = error as? EpipeError { return e.message }
    return String(describing: error).replacingOccurrences(of: "\n", with: " ")
}
