import Foundation
import EpipeCore
import EpipeImage
import EpipeStore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// What one epipe-ingest run is asked (its flags, as plain values).
public struct IngestOptions: Sendable {
    public var root: String? = nil
    public var settle: Double? = nil
    public var stages: String? = nil
    public var name: String? = nil
    public var param: [String] = []
    public var maxPixels: Int = IngestParams.defaultMaxPixels
    public var json = false
    public var quiet = false
    /// Destination: nil the root's epipe.json store; else file:///path or s3://bucket/prefix.
    public var to: String? = nil
    public var endpoint: String? = nil
    public var region: String? = nil
    public var profile: String? = nil
    public var include: [String] = []
    public var exclude: [String] = []
    public var checksum = false
    /// MiB per multipart part; parts in flight; attempts per request.
    public var partSize = 64
    public var parallel = 4
    public var retries = 6
    /// MB/s; nil unlimited.
    public var bwlimit: Double? = nil
    public var dryRun = false
    public var deleteSourceAfterVerify = false
    public init() {}
}

/// One run of epipe-ingest over folders and files: select, skip what the ledger has, move the rest
/// (scans become jobs, other files travel), report. Runs on one root are serialised by an flock on
/// ROOT/ingest/.lock, so two nightly runs never move one file twice.
public struct IngestRun {
    let flags: IngestOptions
    let sources: [String]
    public init(options: IngestOptions, sources: [String]) { flags = options; self.sources = sources }

    public func run() throws {
        Interrupt.install()   // SIGTERM/SIGINT: stop between blocks, parts or files (see `stop` below)
        let f = flags
        let p = try IngestParams(settle: f.settle ?? IngestParams.defaultSettle, stages: f.stages, name: f.name, param: f.param, maxPixels: f.maxPixels)
        let root = try Root(Root.resolve(f.root))
        let lock = try Self.lock(root, quiet: f.quiet)
        defer { withExtendedLifetime(lock) {} }
        let cfg = try root.config()
        let stageList = try p.stageList(config: cfg)
        let opener = StoreOpener(flags: f, root: root, config: cfg)
        let store = try opener.open()
        Self.sweep(root: root, store: store)
        var intake = Intake(root: root, store: store, ledger: try Ledger(dir: root.ledgerDir), stages: stageList, params: p.params)
        (intake.endpoint, intake.region) = opener.s3Location
        let log = StageLog(tool: "epipe-ingest", file: root.path + "/ledger/ingest.log", quiet: f.quiet)
        let started = Date()
        var report = IngestRunReport(started: started, destination: store.base, sources: sources.map(Files.canonical), dryRun: f.dryRun)

        let (files, excluded) = try Selection.collect(sources, include: f.include, exclude: f.exclude)
        try p.check(scans: files.filter(\.isScan).count)
        report.seen = files.count; report.excluded = excluded
        // 1. what has to move
        var todo: [SourceFile] = []
        let now = Date()
        for s in files {
            let kind = s.isScan ? "scan" : "file"
            if now.timeIntervalSince(s.mtime) < p.settle {
                report.settling += 1; report.items.append(.init(source: s.path, bytes: s.bytes, kind: kind, status: "settling"))
                log.detail("\(s.path): modified \(Int(now.timeIntervalSince(s.mtime))) s ago, waiting for --settle \(Int(p.settle)) s")
                continue
            }
            if try intake.alreadyTaken(s.path, bytes: s.bytes, mtime: s.mtime) && (!f.checksum || (try stillSame(s, intake))) {
                report.skipped += 1; report.items.append(.init(source: s.path, bytes: s.bytes, kind: kind, status: "unchanged")); continue
            }
            todo.append(s)
        }
        let total = todo.reduce(Int64(0)) { $0 + $1.bytes }
        if f.dryRun {
            let rate = Self.lastRate(root) ?? 100
            for s in todo {
                Term.stdout("\(s.isScan ? "scan" : "file") \(s.path) (\(s.bytes) bytes) -> \(s.isScan ? store.base + "/" + Scans.jobName(s.path) + "-<sha256>" + Scans.ext(s.path) : store.uri(s.carryKey))")
                report.items.append(.init(source: s.path, bytes: s.bytes, kind: s.isScan ? "scan" : "file", status: "would-transfer"))
            }
            report.transferred = todo.count; report.bytesTransferred = total
            log.info("dry run: \(todo.count) file(s), \(String(format: "%.1f", Double(total) / 1e6)) MB would move to \(store.base); about \(Self.duration(Double(total) / 1e6 / rate)) at \(String(format: "%.0f", rate)) MB/s (\(Self.lastRate(root) == nil ? "assumed" : "the last run's rate"))")
            try finish(&report, started: started, root: root, log: log, print: false)
            return
        }
        // 2. move it: one bar over all bytes
        let prog = ProgressReporter(label: "ingest", total: Int(max(1, total >> 20)), unit: "MiB", quiet: f.quiet || total < (64 << 20))
        var doneMiB = 0
        var base: Int64 = 0
        let tick: (Int64, Int64) -> Void = { d, _ in
            let mb = Int((base + d) >> 20); if mb > doneMiB { prog.advance(mb - doneMiB); doneMiB = mb }
        }
        var worst: Int32 = 0
        // SIGTERM/SIGINT stop the run at its next safe point (a block copied, a part sent, between
        // files): the report says interrupted with what was done; a partial copy or upload stays for
        // the next run to resume.
        let stop: (Int32) -> Void = { sig in
            var r = report
            r.interrupted = sig == SIGINT ? "SIGINT" : "SIGTERM"
            r.bytesSent = intake.sent
            try? self.finish(&r, started: started, root: root, log: log, print: true)
            log.warn("interrupted by \(r.interrupted!): \(r.transferred) of \(todo.count) file(s) to move moved; rerun to continue (a partial copy or upload resumes)")
        }
        Interrupt.begin(stop)
        for (i, s) in todo.enumerated() {
            Interrupt.checkpoint()
            if i + 1 < todo.count { store.prepare(source: todo[i + 1].path) }   // S3: hash the next while this one travels
            let sentBefore = intake.sent
            var item = IngestRunReport.Item(source: s.path, bytes: s.bytes, kind: s.isScan ? "scan" : "file", status: "failed")
            do {
                if s.isScan {
                    // Check the image before moving it: a bad scan never becomes a job.
                    // with the markers.csv that would travel with it (one line per channel)
                    let mcsv = ((s.path as NSString).deletingLastPathComponent) + "/markers.csv"
                    let info = try ImageReader(path: s.path, maxPixels: p.maxPixels).info
                    if Files.exists(mcsv) {
                        let m = try Markers.read(csvPath: mcsv)
                        guard m.count == info.channels else {
                            throw EpipeError.badInput("\(mcsv) lists \(m.count) markers but the image has \(info.channels) channels; make marker_name have one line per channel")
                        }
                    }
                    let jobName = p.name ?? Scans.jobName(s.path)
                    try Names.validateName(jobName, what: "job name", path: s.path)
                    let outcome = try intake.take(s.path, name: jobName, mtime: s.mtime, progress: tick)
                    switch outcome {
                    case .unchanged:
                        item.status = "unchanged"
                    case .registered(let id, let jobDir, let raw):
                        item.status = "transferred"; item.dest = raw.uri; item.sha256 = raw.sha256; item.job = id
                        log.info("\(jobName): \(info.width)x\(info.height)x\(info.channels) \(info.pixelType.rawValue), \(raw.bytes) bytes, sha256 \(raw.sha256.prefix(12)) -> job \(id)")
                        report.newJobs += 1
                        if f.json {
                            Term.stdout(JSON.line(StageEvent(stage: "ingest", job: Files.canonical(jobDir), id: id, name: jobName, status: "complete", next: stageList.first)))
                        } else { Term.stdout(Files.canonical(jobDir)) }
                    }
                } else {
                    let r = try intake.carry(s.path, key: s.carryKey, mtime: s.mtime, progress: tick)
                    item.status = "transferred"; item.dest = r.raw.uri; item.sha256 = r.raw.sha256
                    log.detail("\(s.path): \(r.raw.bytes) bytes -> \(r.raw.uri)")
                }
                if item.status == "transferred" && f.deleteSourceAfterVerify, let sha = item.sha256, let dest = item.dest {
                    let key = String(dest.dropFirst(store.base.count + 1))
                    if try store.verify(key: key, sha256: sha, bytes: s.bytes) {
                        if unlink(s.path) != 0 { log.warn("\(s.path): verified in the store but could not be deleted (\(String(cString: strerror(errno))))") }
                    } else {
                        throw EpipeError.failed("\(s.path): the stored copy \(dest) does not match on re-check; the source is kept")
                    }
                }
            } catch {
                worst = max(worst, (error as? EpipeError)?.exitCode ?? 2)
                let msg = describe(error)
                item.error = msg
                log.error(msg.hasPrefix(s.path) ? msg : "\(s.path): \(msg)")
            }
            item.sent = intake.sent - sentBefore
            base += s.bytes
            switch item.status {
            case "transferred": report.transferred += 1; report.bytesTransferred += s.bytes
            case "unchanged": report.skipped += 1
            default: report.failed += 1
            }
            report.items.append(item)
        }
        Interrupt.end()
        prog.finish()
        report.bytesSent = intake.sent
        try finish(&report, started: started, root: root, log: log, print: true)
        if worst != 0 { throw EpipeExit(worst) }
    }

    /// Runs on one root take turns (scans and --cells alike): an flock on ROOT/ingest/.lock; a run that
    /// finds it held says so and waits, then skips what the other run took (the ledger).
    public static func lock(_ root: Root, quiet: Bool) throws -> FileLock {
        try root.requireWritable("epipe-ingest", writes: "the store, the ledger, jobs and queue entries")
        try Files.mkdir(root.path + "/ingest")
        return try FileLock.acquire(path: root.path + "/ingest/.lock") {
            if !quiet { Term.stderr("epipe-ingest: another epipe-ingest run holds \(root.path)/ingest/.lock; waiting for it to finish") }
        }
    }

    /// --checksum: the source re-hashed still equals the ledger's sha256 and the stored copy verifies.
    func stillSame(_ s: SourceFile, _ intake: Intake) throws -> Bool {
        guard let e = try intake.ledger.entry(for: s.path), e.dest.hasPrefix(intake.store.base + "/") else { return false }
        guard try Digest.sha256(file: s.path).hex == e.sha256 else { return false }
        guard try intake.store.verify(key: String(e.dest.dropFirst(intake.store.base.count + 1)), sha256: e.sha256, bytes: e.bytes) else { return false }
        var v = e; v.verified = Time.iso(Date()); try intake.ledger.record(v)
        return true
    }

    func finish(_ report: inout IngestRunReport, started: Date, root: Root, log: StageLog, print: Bool) throws {
        let secs = Date().timeIntervalSince(started)
        report.finished = Time.iso(Date()); report.seconds = (secs * 1000).rounded() / 1000
        report.mbPerSecond = secs > 0 ? (Double(report.bytesTransferred) / 1e6 / secs * 10).rounded() / 10 : 0
        // the run's files are done (or said to have failed); a report that cannot be saved (a full
        // disk) is said, and makes the run fail, but takes nothing back
        let path: String
        do { path = try report.save(in: root.path + "/ingest/runs") } catch {
            log.error("run report not saved: \(describe(error))")
            throw EpipeExit(1)
        }
        // a run whose every file failed has said so, one line each; otherwise the summary
        if report.failed == 0 || report.transferred + report.skipped + report.settling > 0 {
            log.info(report.summary + "; report \(path)")
        }
    }

    /// MB/s of the latest run that moved at least 64 MB, from ROOT/ingest/runs.
    public static func lastRate(_ root: Root) -> Double? {
        let dir = root.path + "/ingest/runs"
        for f in Files.list(dir).filter({ $0.hasSuffix(".json") }).sorted().reversed() {
            guard let d = try? Files.read(dir + "/" + f), let r = try? JSONDecoder().decode(IngestRunReport.self, from: d) else { continue }
            if !r.dryRun && r.bytesTransferred >= 64_000_000 && r.mbPerSecond > 0 { return r.mbPerSecond }
        }
        return nil
    }

    static func duration(_ s: Double) -> String {
        s < 90 ? "\(Int(s.rounded())) s" : s < 5400 ? "\(Int((s / 60).rounded())) min" : String(format: "%.1f h", s / 3600)
    }
}

/// The store a run moves into: --to, else the root's epipe.json store.
struct StoreOpener {
    let flags: IngestOptions
    let root: Root
    let config: RootConfig

    func open() throws -> any ObjectStore {
        let uri = flags.to ?? config.store
        if uri.hasPrefix("file://") {
            for (flag, given) in [("--endpoint", flags.endpoint != nil), ("--region", flags.region != nil), ("--profile", flags.profile != nil)] where given {
                throw EpipeError.badInput("\(flag): only for an s3:// destination; the destination is \(uri)")
            }
            return try FileStore(uri: uri, bytesPerSecond: flags.bwlimit.map { $0 * 1e6 })
        }
        guard uri.hasPrefix("s3://") else { throw EpipeError.badInput("--to \(uri): expected s3://bucket/prefix or file:///path") }
        var o = StoreAccess.S3Options(endpoint: flags.endpoint, region: flags.region, profile: flags.profile).resolved(config.s3)
        o.partSize = flags.partSize << 20; o.parallel = flags.parallel; o.retries = flags.retries
        o.bytesPerSecond = flags.bwlimit.map { $0 * 1e6 }
        return try StoreAccess.open(uri: uri, s3: o, stateDir: root.path + "/ingest/uploads", check: true)
    }

    /// The endpoint and region new jobs record for an s3:// store.
    var s3Location: (endpoint: String?, region: String?) {
        let o = StoreAccess.S3Options(endpoint: flags.endpoint, region: flags.region, profile: flags.profile).resolved(config.s3)
        return (o.endpoint, o.region)
    }
}
