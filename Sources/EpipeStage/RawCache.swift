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
        if uri.hasPrefix("file://") { return String(uri.dropFirst(7)) }
        let d = dir(job)
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

    /// Removes the job's cache (after a stage, whatever its end).
    public static func clean(_ job: Job) { try? FileManager.default.removeItem(atPath: dir(job)) }
}
