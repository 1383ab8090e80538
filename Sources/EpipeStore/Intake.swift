import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// Takes scans into a root: each is copied into the store under a name with its content's digest,
/// one job is registered per distinct content and queued for its first stage, and the ledger
/// records what was taken so that a rerun skips it. The caller checks the image first.
public struct Intake: Sendable {
    public let root: Root, store: FileStore, ledger: Ledger
    /// Stages (in order) and per-job params of new jobs.
    public let stages: [String], params: [String: [String: JSONValue]]

    public init(root: Root, store: FileStore, ledger: Ledger, stages: [String], params: [String: [String: JSONValue]]) {
        precondition(!stages.isEmpty)
        self.root = root; self.store = store; self.ledger = ledger; self.stages = stages; self.params = params
    }

    public enum Outcome: Equatable, Sendable {
        /// Touched but not changed: same content, same job.
        case unchanged
        case registered(id: String, dir: String, raw: RawRef)
    }

    /// Whether the ledger has `src` at this size and mtime, with its copy still in the store.
    public func alreadyTaken(_ src: String, bytes: Int64, mtime: Date) throws -> Bool {
        guard let e = try ledger.entry(for: src) else { return false }
        return e.bytes == bytes && e.mtime == mtime.timeIntervalSince1970 && Files.exists(String(e.dest.dropFirst(7)))
    }

    /// Copies `src` into the store as `<name>-<sha256 8><ext>` (end-to-end checksums; an interrupted
    /// copy resumes; `progress(done, total)` as it goes, `copied()` when done), with the markers.csv
    /// beside it if any; registers job `<day>-<name>-<sha256 6>` unless it exists and records the ledger.
    public func take(_ src: String, name: String, mtime: Date, progress: ((Int64, Int64) -> Void)? = nil, copied: () -> Void = {}) throws -> Outcome {
        let ext = Scans.ext(src)
        let tmpKey = "\(name)-incoming\(ext)"
        let raw0 = try store.put(source: src, key: tmpKey, progress: progress)
        copied()
        let key = "\(name)-\(raw0.sha256.prefix(8))\(ext)"
        if Files.exists(store.path(key)) { unlink(store.path(tmpKey)) } else {
            try AtomicFile.commit(temporary: store.path(tmpKey), to: store.path(key))
        }
        let raw = RawRef(uri: store.uri(key), sha256: raw0.sha256, bytes: raw0.bytes)
        if let p = try ledger.entry(for: src), p.sha256 == raw.sha256, let j = p.job, Files.exists(root.jobsDir + "/" + j + "/job.json") {
            try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: j))
            return .unchanged
        }
        var markersURI: String? = nil
        let mcsv = ((src as NSString).deletingLastPathComponent) + "/markers.csv"
        if Files.exists(mcsv) { markersURI = try store.put(source: mcsv, key: "\(name)-\(raw.sha256.prefix(8))-markers.csv").uri }
        let id = Scans.jobID(name: name, sha256: raw.sha256)
        let jobDir = root.jobsDir + "/" + id
        if !Files.exists(jobDir + "/job.json") {
            try Job.create(root: root, spec: JobSpec(id: id, name: name, raw: raw, stages: stages, params: params, source: src, markers: markersURI))
            try Queue(root: root, stage: stages[0]).enqueue(id: id, jobDir: jobDir)
        }
        try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: id))
        return .registered(id: id, dir: jobDir, raw: raw)
    }
}
