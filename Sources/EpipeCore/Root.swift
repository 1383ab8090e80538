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

    /// Refuses, in one line, a root this process cannot write (a read-only file system, permissions).
    public func requireWritable(_ tool: String, writes what: String) throws {
        if let why = Files.unwritable(path) {
            throw EpipeError.failed("\(path): cannot write the epipe root (\(why)); \(tool) writes \(what) there: remount it read-write or run as a user who can write it")
        }
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
        let given = dir.hasSuffix("/") && dir.count > 1 ? String(dir.dropLast()) : dir
        if Files.isSymlink(given) {
            throw EpipeError.badInput("\(given): a symbolic link (to \(Files.canonical(given))), not a job folder; a job directory must be a real folder ROOT/jobs/<id> inside its root")
        }
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
    /// A path read from a manifest goes through here: absolute paths, "..", and symbolic links that
    /// lead out of the job directory are refused (exit 2), so nothing outside is read or written.
    public func path(_ rel: String) throws -> String { try Job.resolve(rel, in: dir) }

    /// `rel` inside the job directory `dir` (canonical), or a refusal.
    public static func resolve(_ rel: String, in dir: String) throws -> String {
        if rel.isEmpty || rel.hasPrefix("/") || rel.split(separator: "/").contains("..") {
            throw EpipeError.badInput("\(dir): path \"\(rel)\" leaves the job directory; manifests list job-relative paths (fix or remove the manifest and rerun the stage)")
        }
        let p = dir + "/" + rel
        guard Files.within(p, dir) else {
            throw EpipeError.badInput("\(p): a symbolic link leads out of the job directory (to \(Files.resolved(p) ?? "a link that leads nowhere")); refusing to read or write through it")
        }
        return p
    }

    /// Refuses (exit 2) an absolute path that a symbolic link leads out of the job directory.
    public func checkInside(_ abs: String) throws {
        guard Files.within(abs, dir) else {
            throw EpipeError.badInput("\(abs): a symbolic link leads out of the job directory (to \(Files.resolved(abs) ?? "a link that leads nowhere")); refusing to read or write through it")
        }
    }

    /// Whether the job is still there (its folder and job.json): a folder removed while a stage ran is
    /// not made again by that stage.
    public var stillThere: Bool { Files.exists(dir + "/job.json") }

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
