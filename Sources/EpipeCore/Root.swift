import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// ROOT: --root, else $EPIPE_ROOT, else ./epipe-data. Holds epipe.json, store/, ledger/, queue/, jobs/.
public struct Root: Sendable {
    public let path: String

    public static func resolve(_ explicit: String?) -> String {
        if let e = explicit, !e.isEmpty { return e }
        if let env = ProcessInfo.processInfo.environment["EPIPE_ROOT"], !env.isEmpty { return env }
        return "./epipe-data"
    }

    /// Opens (creating when asked) a root. An existing epipe.json must have a known schema.
    public init(_ path: String, create: Bool = true) throws {
        if create { try Files.mkdir(path) }
        guard Files.isDirectory(path) else {
            throw EpipeError.badInput("\(path): no epipe root here; run epipe-ingest --root \(path) first or pass the right --root")
        }
        self.path = Files.canonical(path)
        if create {
            for d in ["jobs", "ledger", "store", "queue"] { try Files.mkdir(self.path + "/" + d) }
            for s in Names.stages { try Queue(root: self, stage: s).ensure() }
            if !Files.exists(configPath) {
                try AtomicFile.write(JSON.encode(RootConfig(store: "file://" + self.path + "/store")), to: configPath)
            }
        }
        _ = try config()
    }

    public var configPath: String { path + "/epipe.json" }
    public var jobsDir: String { path + "/jobs" }
    public var ledgerDir: String { path + "/ledger" }
    public var storeDir: String { path + "/store" }

    public func config() throws -> RootConfig {
        guard Files.exists(configPath) else { return RootConfig(store: "file://" + path + "/store") }
        return try Schema.decode(RootConfig.self, expected: Schema.root, from: Files.read(configPath), path: configPath)
    }

    public func jobDir(_ id: String) throws -> String {
        try Names.validateID(id, path: jobsDir)
        return jobsDir + "/" + id
    }

    /// Every write goes through this: refuses a path that leaves the root.
    public func contains(_ p: String) -> Bool {
        let c = Files.canonical(p)
        return c == path || c.hasPrefix(path + "/")
    }
    public func checkInside(_ p: String) throws {
        // Canonicalise the deepest existing ancestor so that symlinks cannot point out.
        var probe = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        var rest: [String] = []
        while !Files.exists(probe) && probe != "/" {
            rest.insert((probe as NSString).lastPathComponent, at: 0)
            probe = (probe as NSString).deletingLastPathComponent
        }
        let full = ([Files.canonical(probe)] + rest).joined(separator: "/")
        if rest.contains("..") || !(full == path || full.hasPrefix(path + "/")) {
            throw EpipeError.badInput("\(p): outside the epipe root \(path); refusing to write there")
        }
    }

    /// Finds the root of a job directory (ROOT/jobs/<id>).
    public static func of(jobDir: String) -> String {
        let c = Files.canonical(jobDir)
        return ((c as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
    }

    public func allJobIDs() -> [String] {
        Files.list(jobsDir).filter { !$0.hasPrefix(".") && Files.exists(jobsDir + "/" + $0 + "/job.json") }
    }
}

/// A job directory and its job.json.
public struct Job: Sendable {
    public let root: Root
    public let dir: String
    public let spec: JobSpec

    public init(dir: String) throws {
        let jobJSON = dir + "/job.json"
        guard Files.isDirectory(dir) else { throw EpipeError.badInput("\(dir): not a job directory (no such folder); pass ROOT/jobs/<id>") }
        guard Files.exists(jobJSON) else { throw EpipeError.badInput("\(dir): not a job directory (no job.json); pass ROOT/jobs/<id>") }
        let spec = try Schema.decode(JobSpec.self, expected: Schema.job, from: Files.read(jobJSON), path: jobJSON)
        try spec.validate(path: jobJSON)
        let canon = Files.canonical(dir)
        guard (canon as NSString).lastPathComponent == spec.id,
              ((canon as NSString).deletingLastPathComponent as NSString).lastPathComponent == "jobs" else {
            throw EpipeError.badInput("\(jobJSON): job id \"\(spec.id)\" does not match its folder \(canon); jobs live at ROOT/jobs/<id>")
        }
        self.root = try Root(Root.of(jobDir: canon), create: false)
        self.dir = canon
        self.spec = spec
    }

    public func stageDir(_ stage: String) -> String { dir + "/" + stage }
    public func manifestPath(_ stage: String) -> String { dir + "/" + stage + "/manifest.json" }
    public func logPath(_ stage: String) -> String { dir + "/logs/" + stage + ".log" }
    public func manifest(_ stage: String) -> StageManifest? { try? StageManifest.load(manifestPath(stage)) }
    /// Absolute path of a job-relative path, refused if it leaves the job directory.
    public func path(_ rel: String) throws -> String {
        if rel.hasPrefix("/") || rel.split(separator: "/").contains("..") {
            throw EpipeError.badInput("\(dir): path \"\(rel)\" leaves the job directory")
        }
        return dir + "/" + rel
    }

    /// Registers a new job: writes jobs/<id>/job.json atomically.
    @discardableResult
    public static func create(root: Root, spec: JobSpec) throws -> Job {
        try spec.validate(path: root.jobsDir)
        let dir = try root.jobDir(spec.id)
        try root.checkInside(dir)
        try Files.mkdir(dir + "/logs")
        AtomicFile.sweep(directory: dir, olderThan: 60, deadOwner: true) { $0.hasPrefix(".job.json.tmp-") }   // a crashed registration's
        try AtomicFile.write(JSON.encode(spec), to: dir + "/job.json")
        return try Job(dir: dir)
    }
}
