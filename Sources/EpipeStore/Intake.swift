import Foundation
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// Takes scans into a root: each is copied into the store under a name with its content's digest,
/// one job is registered per distinct content and queued for its first stage, and the ledger
/// records what was taken so that a rerun skips it. The caller checks the image first.
public struct Intake: Sendable {
    public let root: Root, store: any ObjectStore, ledger: Ledger
    /// Stages (in order) and per-job params of new jobs.
    public let stages: [String], params: [String: [String: JSONValue]]
    /// For an s3:// store: the endpoint and region recorded in each new job's raw reference.
    public var endpoint: String? = nil, region: String? = nil

    public init(root: Root, store: any ObjectStore, ledger: Ledger, stages: [String], params: [String: [String: JSONValue]]) {
        precondition(!stages.isEmpty)
        self.root = root; self.store = store; self.ledger = ledger; self.stages = stages; self.params = params
    }

    public enum Outcome: Equatable, Sendable {
        /// Touched but not changed: same content, same job.
        case unchanged
        case registered(id: String, dir: String, raw: RawRef)
    }

    /// Bytes sent to the store by this intake's puts (less than their size when a transfer resumed
    /// or an object was already there).
    public var sent: Int64 { counter.value }
    let counter = Counter()
    final class Counter: @unchecked Sendable {
        let lock = NSLock(); var v: Int64 = 0
        var value: Int64 { lock.lock(); defer { lock.unlock() }; return v }
        func add(_ n: Int64) { lock.lock(); v += n; lock.unlock() }
    }

    /// Whether the ledger has `src` at this size and mtime, verified in the store, with its copy still
    /// there (a file:// copy is looked for; an s3:// one is trusted to the ledger's verification, as a
    /// nightly run over thousands of files should not ask the server about each: --checksum re-checks).
    public func alreadyTaken(_ src: String, bytes: Int64, mtime: Date) throws -> Bool {
        guard let e = try ledger.entry(for: src), e.bytes == bytes, e.mtime == mtime.timeIntervalSince1970 else { return false }
        if e.dest.hasPrefix("file://") { return Files.exists(String(e.dest.dropFirst(7))) }
        return e.verified != nil
    }

    /// Moves a file that is not a scan (scanner metadata, logs, a markers.csv) to `key` as it is, and
    /// records it in the ledger (no job).
    public func carry(_ src: String, key: String, mtime: Date, progress: ((Int64, Int64) -> Void)? = nil) throws -> PutResult {
        let r = try store.put(source: src, key: { _ in key }, progress: progress)
        counter.add(r.sent)
        try ledger.record(LedgerEntry(source: src, bytes: r.raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: r.raw.sha256, dest: r.raw.uri, job: nil, verified: Time.iso(Date())))
        return r
    }

    /// Copies `src` into the store as `<name>-<sha256 8><ext>` (end-to-end checksums; an interrupted
    /// copy resumes; `progress(done, total)` as it goes, `copied()` when done), with the markers.csv
    /// beside it if any; registers job `<day>-<name>-<sha256 6>` unless it exists and records the ledger.
    public func take(_ src: String, name: String, mtime: Date, progress: ((Int64, Int64) -> Void)? = nil, copied: () -> Void = {}) throws -> Outcome {
        var (raw, _) = try put(src, name: name, ext: Scans.ext(src), progress: progress, copied: copied) { _ in () }
        if raw.uri.hasPrefix("s3://") { raw.endpoint = endpoint; raw.region = region }
        if try unchanged(src, raw: raw, mtime: mtime) { return .unchanged }
        var markersURI: String? = nil
        let mcsv = ((src as NSString).deletingLastPathComponent) + "/markers.csv"
        if Files.exists(mcsv) {
            let r = try store.put(source: mcsv, key: { _ in "\(name)-\(raw.sha256.prefix(8))-markers.csv" }, progress: nil)
            counter.add(r.sent); markersURI = r.raw.uri
        }
        let id = Scans.jobID(name: name, sha256: raw.sha256)
        let jobDir = root.jobsDir + "/" + id
        if !Files.exists(jobDir + "/job.json") {
            try Job.create(root: root, spec: JobSpec(id: id, name: name, raw: raw, stages: stages, params: params, source: src, markers: markersURI))
        }
        try queueOnce(id: id, jobDir: jobDir, stage: stages[0])
        try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: id, verified: Time.iso(Date())))
        return .registered(id: id, dir: jobDir, raw: raw)
    }

    /// Takes a per-cell table made by another tool (`epipe-ingest --cells`): copies it into the store as
    /// `<name>-<sha256 8>.csv` like a scan, checks and normalises the stored copy (`CellTable.normalise`; a
    /// bad table is removed from the store and nothing is registered), and registers job
    /// `<day>-<name>-<sha256 6>` of kind "cells" whose segment stage is written here: `segment/cells.csv` (the
    /// normalised table) and a complete `segment/manifest.json` (tool epipe-ingest, the stored table as
    /// input, both with sha256), then job.json, then the job is queued for its first stage after segment.
    /// `stages` must be "segment" then cluster and/or stats. Returns the outcome and the normalised table.
    public func takeCells(_ src: String, name: String, mtime: Date, options: CellTable.Options, progress: ((Int64, Int64) -> Void)? = nil, copied: () -> Void = {}) throws -> (Outcome, CellTable.Normalised) {
        precondition(stages.first == "segment" && stages.count > 1, "a cell-table job's stages are segment, then cluster and/or stats")
        let started = Date()
        var (raw, table) = try put(src, name: name, ext: ".csv", progress: progress, copied: copied) { source in
            try CellTable.normalise(data: try Files.read(source), source: src, options: options)
        }
        if raw.uri.hasPrefix("s3://") { raw.endpoint = endpoint; raw.region = region }
        if try unchanged(src, raw: raw, mtime: mtime) { return (.unchanged, table) }
        let id = Scans.jobID(name: name, sha256: raw.sha256)
        let jobDir = try root.jobDir(id)
        if !Files.exists(jobDir + "/job.json") {
            let spec = JobSpec(id: id, name: name, raw: raw, stages: stages, params: params, source: src, kind: JobSpec.cellsKind)
            try spec.validate(path: root.jobsDir)
            try root.checkInside(jobDir)
            // segment/ first, job.json last: a job is registered only with its segment stage complete.
            let seg = jobDir + "/segment"
            try Files.mkdir(seg)
            try table.table.write(seg + "/cells.csv")
            let (h, n) = try Digest.sha256(file: seg + "/cells.csv")
            var m = StageManifest(stage: "segment", status: .complete, run: Files.random(hex: 6), tool: ToolRef(name: "epipe-ingest", version: Version.string),
                                  params: table.params, inputs: [FileRef(path: raw.uri, sha256: raw.sha256, bytes: raw.bytes)],
                                  outputs: [FileRef(path: "segment/cells.csv", sha256: h, bytes: n)], metrics: table.metrics, started: Time.iso(started))
            m.finished = Time.iso(Date())
            m.seconds = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
            m.peak_rss_bytes = Memory.peakRSS()
            try AtomicFile.write(JSON.encode(m), to: seg + "/manifest.json")
            let log = StageLog(tool: "epipe-ingest", file: jobDir + "/logs/segment.log", quiet: true)
            log.info("\(name): segment/ imported from \(src) (\(table.tool) table, \(table.table.rows.count) cells, sha256 \(raw.sha256.prefix(12)))")
            for w in table.warnings { log.detail("warning: " + w) }
            try Job.create(root: root, spec: spec)
        }
        try queueOnce(id: id, jobDir: jobDir, stage: stages[1])
        try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: id, verified: Time.iso(Date())))
        return (.registered(id: id, dir: jobDir, raw: raw), table)
    }

    /// Queues a registered job for its first stage unless that queue holds it already (in any state):
    /// a run killed between job.json and the queue entry left it unqueued, and its rerun, finding
    /// job.json, must still queue it, once.
    func queueOnce(id: String, jobDir: String, stage: String) throws {
        let q = Queue(root: root, stage: stage)
        if q.places(of: id).isEmpty { try q.enqueue(id: id, jobDir: jobDir) }
    }

    /// Runs `check` on the source (a throw stops here: nothing is stored), then copies it into the store
    /// as `<name>-<sha256 8><ext>`.
    func put<T>(_ src: String, name: String, ext: String, progress: ((Int64, Int64) -> Void)?, copied: () -> Void, check: (String) throws -> T) throws -> (RawRef, T) {
        let checked = try check(src)
        let r = try store.put(source: src, key: { "\(name)-\($0.prefix(8))\(ext)" }, progress: progress)
        counter.add(r.sent)
        Fault.point("stored")
        copied()
        return (r.raw, checked)
    }

    /// Same content as the job the ledger records for `src`, and that job still there: the ledger is
    /// brought up to date (mtime) and nothing else is done.
    func unchanged(_ src: String, raw: RawRef, mtime: Date) throws -> Bool {
        guard let p = try ledger.entry(for: src), p.sha256 == raw.sha256, let j = p.job, Files.exists(root.jobsDir + "/" + j + "/job.json") else { return false }
        try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: j, verified: Time.iso(Date())))
        return true
    }
}
