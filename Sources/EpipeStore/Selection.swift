import Foundation
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// One file a run of epipe-ingest considers: where it is, where it sits under the folder it was
/// found in, and whether it is a scan (an image of the TIFF family, which becomes a job) or a file
/// that only travels (scanner metadata, logs, a markers.csv).
public struct SourceFile: Sendable, Equatable {
    public var path: String
    /// Path relative to the folder given (the file name for a file given directly).
    public var rel: String
    /// The name of the folder given ("" for a file given directly).
    public var top: String
    public var isScan: Bool
    public var bytes: Int64
    public var mtime: Date

    /// The store key of a file that only travels: `files/<folder>/<relative path>`, so the source
    /// tree is mirrored and two folders' files never collide.
    public var carryKey: String { "files/" + (top.isEmpty ? rel : top + "/" + rel) }
}

/// Which files of the sources a run moves: folders are searched recursively (hidden files and
/// folders skipped), `include` globs (any, default all) then `exclude` globs (none may match) are
/// tried on each file's relative path and on its name (`*` matches across `/` too, as in
/// `--include '*.tif'`).
public enum Selection {
    public static func collect(_ sources: [String], include: [String] = [], exclude: [String] = []) throws -> (files: [SourceFile], excluded: Int) {
        var out: [SourceFile] = [], excluded = 0
        var seen = Set<String>()
        func add(_ path: String, rel: String, top: String) {
            let p = Files.canonical(path)
            guard !seen.contains(p) else { return }
            guard wanted(rel, include: include, exclude: exclude) else { excluded += 1; return }
            guard let size = Files.size(p), let mtime = Files.mtime(p) else { return }
            seen.insert(p)
            let lower = p.lowercased()
            out.append(SourceFile(path: p, rel: rel, top: top, isScan: Scans.extensions.contains { lower.hasSuffix($0) }, bytes: size, mtime: mtime))
        }
        for s in sources {
            guard Files.exists(s) else { throw EpipeError.badInput("\(s): no such file or folder") }
            if Files.isDirectory(s) {
                let dir = Files.canonical(s), top = Names.sanitize((dir as NSString).lastPathComponent)
                guard let e = FileManager.default.enumerator(atPath: dir) else { continue }
                var rels: [String] = []
                while let rel = e.nextObject() as? String {
                    let name = (rel as NSString).lastPathComponent
                    let full = dir + "/" + rel
                    if name.hasPrefix(".") { if Files.isDirectory(full) { e.skipDescendants() }; continue }
                    if !Files.isDirectory(full) { rels.append(rel) }
                }
                for rel in rels.sorted() { add(dir + "/" + rel, rel: rel, top: top) }
            } else {
                add(s, rel: (s as NSString).lastPathComponent, top: "")
            }
        }
        return (out, excluded)
    }

    public static func wanted(_ rel: String, include: [String], exclude: [String]) -> Bool {
        let name = (rel as NSString).lastPathComponent
        func match(_ g: String) -> Bool { fnmatch(g, rel, 0) == 0 || fnmatch(g, name, 0) == 0 }
        if !include.isEmpty && !include.contains(where: match) { return false }
        return !exclude.contains(where: match)
    }
}

/// What one run of epipe-ingest did, saved as ROOT/ingest/runs/<time>.json (schema epipe.ingest-run/1)
/// and printed as a summary; epipe-status shows the latest.
public struct IngestRunReport: Codable, Sendable {
    public struct Item: Codable, Sendable {
        public var source: String
        public var dest: String?
        public var bytes: Int64
        public var sent: Int64
        public var sha256: String?
        /// scan or file
        public var kind: String
        public var job: String?
        /// transferred, unchanged, settling, would-transfer (dry run), failed
        public var status: String
        public var error: String?
        public init(source: String, dest: String? = nil, bytes: Int64, sent: Int64 = 0, sha256: String? = nil, kind: String, job: String? = nil, status: String, error: String? = nil) {
            self.source = source; self.dest = dest; self.bytes = bytes; self.sent = sent; self.sha256 = sha256; self.kind = kind; self.job = job
            self.status = status; self.error = error
        }
    }
    public var schema = "epipe.ingest-run/1"
    public var started: String
    public var finished: String = ""
    public var seconds: Double = 0
    public var destination: String
    public var sources: [String]
    public var dryRun: Bool
    public var seen = 0, excluded = 0, skipped = 0, settling = 0, transferred = 0, failed = 0, newJobs = 0
    /// Source bytes of the files transferred, and bytes actually sent (less after a resume).
    public var bytesTransferred: Int64 = 0, bytesSent: Int64 = 0
    public var mbPerSecond: Double = 0
    public var items: [Item] = []
    /// SIGTERM or SIGINT when a signal stopped the run (the items are those it got to).
    public var interrupted: String? = nil

    public init(started: Date, destination: String, sources: [String], dryRun: Bool) {
        self.started = Time.iso(started); self.destination = destination; self.sources = sources; self.dryRun = dryRun
    }

    enum CodingKeys: String, CodingKey {
        case schema, started, finished, seconds, destination, sources, dryRun = "dry_run", seen, excluded, skipped, settling, transferred, failed
        case newJobs = "new_jobs", bytesTransferred = "bytes_transferred", bytesSent = "bytes_sent", mbPerSecond = "mb_per_second", items
        case interrupted
    }

    /// One line: new jobs, unchanged, settling, seen, excluded, transferred (bytes, sent, MB/s), failed.
    public var summary: String {
        (dryRun ? "dry run: " : "") + "\(newJobs) new job(s), \(skipped) unchanged, \(settling) still settling, \(seen) file(s) seen, \(excluded) excluded; "
            + "\(transferred) \(dryRun ? "to transfer" : "transferred") (\(String(format: "%.1f", Double(bytesTransferred) / 1e6)) MB, "
            + "\(String(format: "%.1f", Double(bytesSent) / 1e6)) MB sent, \(String(format: "%.1f", mbPerSecond)) MB/s), \(failed) failed"
    }

    /// Writes the report to DIR/<started>.json atomically; returns the path.
    @discardableResult
    public func save(in dir: String) throws -> String {
        try Files.mkdir(dir)
        // <started>-<ms of the save>: runs sort by time in a listing
        let stamp = started.replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
            + String(format: "-%03d", Int(Date().timeIntervalSince1970 * 1000) % 1000)
        var path = dir + "/" + stamp + ".json", n = 1
        while Files.exists(path) { n += 1; path = dir + "/" + stamp + "-\(n).json" }
        try AtomicFile.write(JSON.encode(self), to: path)
        return path
    }
}
