import Foundation
import EpipeCore
import EpipeStore
#if canImport(Glibc)
import Glibc
#endif

/// A job's raw image (and markers.csv) when they live in an s3:// store: fetched into the job's
/// `.cache/` before the stage runs (ranged GETs, the sha256 checked against job.json), reused by a
/// later stage of the same run only if it is still there, and removed when the stage ends, so the
/// cache holds at most one scan per job being processed. Refused up front, with one line, when the
/// disk has not room for the scan plus 256 MiB.
public enum RawCache {
    public static func dir(_ job: Job) -> String { job.dir + "/.cache" }

    /// A local path of `uri` (file:// as it is; s3:// fetched into the cache as `name`).
    public static func local(_ job: Job, uri: String, sha256: String?, bytes: Int64?, endpoint: String?, region: String?, name: String, quiet: Bool = false) throws -> String {
        if uri.hasPrefix("file://") {
            let p = String(uri.dropFirst(7))
            try checkLocal(job, path: p, uri: uri)
            return p
        }
        let d = dir(job)
        try job.checkInside(d + "/" + name)
        try Files.mkdir(d)
        let path = d + "/" + name, ok = path + ".sha256"
        if let sha256, Files.exists(path), (try? String(contentsOfFile: ok, encoding: .utf8)) == sha256 { return path }
        if let bytes {
            var st = statvfs()
            if statvfs(d, &st) == 0 {
                let free = Int64(st.f_bavail) * Int64(st.f_frsize)
                if free < bytes + (256 << 20) {
                    throw EpipeError.badInput("\(uri): \(bytes >> 20) MiB to fetch but \(free >> 20) MiB free under \(d); free space or move the root")
                }
            }
        }
        let cfg = try? job.root.config()
        let o = StoreAccess.S3Options(endpoint: endpoint, region: region).resolved(cfg?.s3)
        let (store, key) = try StoreAccess.locate(uri, s3: o, stateDir: job.root.path + "/ingest/uploads")
        let prog = ProgressReporter(label: "\(job.spec.name) fetch", total: Int(max(1, (bytes ?? 0) >> 20)), unit: "MiB", quiet: quiet || (bytes ?? 0) < (64 << 20))
        var last = 0
        try store.fetch(key: key, to: path, sha256: sha256) { d, _ in let mb = Int(d >> 20); if mb > last { prog.advance(mb - last); last = mb } }
        prog.finish()
        if let sha256 { try AtomicFile.write(sha256, to: ok) }
        return path
    }

    /// A file:// URI from job.json is read only where the root keeps what ingest stored: inside the
    /// root, inside the root's own store (epipe.json), or the very object the ledger recorded for the
    /// job's source (a store given by `epipe-ingest --to file:///...`, and the markers.csv beside it).
    /// Anything else (a path with "..", a symbolic link out, another file of the machine) is refused
    /// with exit 2 and read not at all.
    public static func checkLocal(_ job: Job, path p: String, uri: String) throws {
        if let why = outside(job, path: p, uri: uri) {
            throw EpipeError.badInput("\(job.dir)/job.json: \(uri) \(why); a job reads its raw image only from its root's store (fix job.json or ingest the scan again)")
        }
    }

    /// Why a file:// path of job.json may not be read, nil when it may.
    public static func outside(_ job: Job, path p: String, uri: String) -> String? {
        if !p.hasPrefix("/") || p.split(separator: "/").contains("..") { return "is not an absolute path without \"..\"" }
        var bases = [job.root.path]
        if let s = try? job.root.config().store, s.hasPrefix("file://") { bases.append(Files.canonical(String(s.dropFirst(7)))) }
        if bases.contains(where: { Files.within(p, $0) }) { return nil }
        if let src = job.spec.source, let e = try? Ledger(dir: job.root.ledgerDir).entry(for: src), e.job == job.spec.id,
           e.dest.hasPrefix("file://"), !e.dest.split(separator: "/").contains("..") {
            let stored = String(e.dest.dropFirst(7))
            let folder = Files.canonical((stored as NSString).deletingLastPathComponent)
            if Files.within(p, folder) && !Files.isSymlink(p) && Files.canonical(p) == folder + "/" + (p as NSString).lastPathComponent { return nil }
        }
        return Files.canonical(p) == p ? "is outside the root \(job.root.path) and its store" : "leads out of the root \(job.root.path) and its store (to \(Files.canonical(p)))"
    }

    /// Removes the job's cache (after a stage, whatever its end).
    public static func clean(_ job: Job) { try? FileManager.default.removeItem(atPath: dir(job)) }
}
