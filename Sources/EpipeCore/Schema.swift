import Foundation

/// Versioned on-disk schemas. A reader refuses a version it does not know.
public enum Schema {
    public static let job = "epipe.job/1"
    public static let stage = "epipe.stage/1"
    public static let root = "epipe.root/1"
    public static let ledger = "epipe.ledger/1"
    public static let event = "epipe.event/1"

    /// Reads `schema` first and refuses an unknown one with a clear message.
    public static func decode<T: Decodable>(_ type: T.Type, expected: String, from data: Data, path: String) throws -> T {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) }
        catch { throw EpipeError.badInput("\(path): not valid JSON (\(shortReason(error))); restore the file or rerun the stage that wrote it") }
        guard let obj = any as? [String: Any] else { throw EpipeError.badInput("\(path): expected a JSON object") }
        guard let s = obj["schema"] as? String else {
            throw EpipeError.badInput("\(path): no \"schema\" field; expected \"\(expected)\"")
        }
        guard s == expected else {
            throw EpipeError.badInput("\(path): unknown schema version \"\(s)\"; this epipe reads \"\(expected)\" (upgrade epipe or rewrite the file)")
        }
        do { return try JSONDecoder().decode(T.self, from: data) }
        catch { throw EpipeError.badInput("\(path): does not match \(expected) (\(shortReason(error)))") }
    }

    static func shortReason(_ e: Error) -> String {
        if let d = e as? DecodingError {
            switch d {
            case .keyNotFound(let k, _): return "missing field \"\(k.stringValue)\""
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
                let p = c.codingPath.map { $0.stringValue }.joined(separator: ".")
                return p.isEmpty ? c.debugDescription : "field \"\(p)\": \(c.debugDescription)"
            @unknown default: return "\(d)"
            }
        }
        return (e as NSError).localizedDescription.replacingOccurrences(of: "\n", with: " ")
    }
}

public struct RawRef: Codable, Sendable, Equatable {
    public var uri: String
    public var sha256: String
    public var bytes: Int64
    /// For an s3:// URI: the server's endpoint URL and region, so a stage on any machine that shares
    /// the bucket can read it (credentials come from that machine's environment, never from here).
    public var endpoint: String?
    public var region: String?
    public init(uri: String, sha256: String, bytes: Int64, endpoint: String? = nil, region: String? = nil) {
        self.uri = uri; self.sha256 = sha256; self.bytes = bytes; self.endpoint = endpoint; self.region = region
    }
}

/// jobs/<id>/job.json: the event that travels from stage to stage.
public struct JobSpec: Codable, Sendable, Equatable {
    public var schema: String = Schema.job
    public var id: String
    public var name: String
    public var raw: RawRef
    public var stages: [String]
    public var params: [String: [String: JSONValue]]
    public var created: String
    public var source: String?
    public var markers: String?   // store URI of a markers.csv that came with the scan, if any
    /// What `raw` is: absent (or "scan") an image; "cells" a per-cell table (`epipe-ingest --cells`), whose
    /// segment stage ingest wrote. Optional and additive, so epipe.job/1 readers without it still read the file.
    public var kind: String?

    public static let scanKind = "scan", cellsKind = "cells"
    /// The job's raw file is a per-cell table, not an image.
    public var isCellTable: Bool { kind == Self.cellsKind }

    public init(id: String, name: String, raw: RawRef, stages: [String], params: [String: [String: JSONValue]] = [:], created: String = Time.iso(Date()), source: String? = nil, markers: String? = nil, kind: String? = nil) {
        self.id = id; self.name = name; self.raw = raw; self.stages = stages; self.params = params; self.created = created; self.source = source; self.markers = markers; self.kind = kind
    }

    public func next(after stage: String) -> String? {
        guard let i = stages.firstIndex(of: stage), i + 1 < stages.count else { return nil }
        return stages[i + 1]
    }

    public func validate(path: String) throws {
        try Names.validateID(id, what: "job id", path: path)
        try Names.validateName(name, what: "job name", path: path)
        for s in stages where !Names.stages.contains(s) {
            throw EpipeError.badInput("\(path): unknown stage \"\(s)\" in \"stages\"; known: \(Names.stages.joined(separator: ","))")
        }
        if let k = kind, k != Self.scanKind && k != Self.cellsKind {
            throw EpipeError.badInput("\(path): unknown \"kind\" \"\(k)\"; this epipe knows \"\(Self.scanKind)\" and \"\(Self.cellsKind)\" (upgrade epipe)")
        }
    }
}

public struct FileRef: Codable, Sendable, Equatable {
    public var path: String          // relative to the job directory
    public var sha256: String
    public var bytes: Int64?
    public init(path: String, sha256: String, bytes: Int64? = nil) { self.path = path; self.sha256 = sha256; self.bytes = bytes }
}

public struct ToolRef: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public init(name: String, version: String) { self.name = name; self.version = version }
}

public struct ProgressRef: Codable, Sendable, Equatable {
    public var done: Int
    public var total: Int
    public var unit: String
    public init(done: Int, total: Int, unit: String) { self.done = done; self.total = total; self.unit = unit }
}

/// jobs/<id>/<stage>/manifest.json, written last.
public struct StageManifest: Codable, Sendable, Equatable {
    /// running while it works; complete; failed (with `error`); interrupted: stopped by SIGTERM or
    /// SIGINT at a safe point (`error` names the signal), its temporary files removed, to be rerun.
    public enum Status: String, Codable, Sendable { case running, complete, failed, interrupted }
    public var schema: String = Schema.stage
    public var stage: String
    public var status: Status
    public var run: String
    public var tool: ToolRef
    public var params: [String: JSONValue]
    public var inputs: [FileRef]
    public var outputs: [FileRef]
    public var metrics: [String: JSONValue]
    public var progress: ProgressRef?
    public var started: String
    public var finished: String?
    public var seconds: Double?
    public var peak_rss_bytes: Int64?
    public var host: String
    public var pid: Int32
    public var error: String?

    public init(stage: String, status: Status, run: String, tool: ToolRef, params: [String: JSONValue], inputs: [FileRef], outputs: [FileRef] = [], metrics: [String: JSONValue] = [:], progress: ProgressRef? = nil, started: String, host: String = Host.name, pid: Int32 = getpid()) {
        self.stage = stage; self.status = status; self.run = run; self.tool = tool; self.params = params
        self.inputs = inputs; self.outputs = outputs; self.metrics = metrics; self.progress = progress
        self.started = started; self.host = host; self.pid = pid
    }

    public static func load(_ path: String) throws -> StageManifest {
        let data = try Files.read(path)
        return try Schema.decode(StageManifest.self, expected: Schema.stage, from: data, path: path)
    }

    /// Refuses (exit 2) a manifest, read from `path`, whose outputs leave the job directory (absolute,
    /// ".."): what a stage reads from an upstream manifest stays in the job.
    public func checkOutputPaths(_ path: String) throws {
        for o in outputs where o.path.isEmpty || o.path.hasPrefix("/") || o.path.split(separator: "/").contains("..") {
            throw EpipeError.badInput("\(path): output \"\(o.path)\" leaves the job directory; a manifest lists job-relative paths (rerun the stage with --force)")
        }
    }
}

/// ROOT/epipe.json
public struct RootConfig: Codable, Sendable, Equatable {
    public var schema: String = Schema.root
    public var store: String
    public var stages: [String]
    public var created: String
    /// For an s3:// store: its endpoint URL, region and credentials profile (the keys themselves come
    /// from the environment or the shared credentials file, never from here).
    public var s3: S3Settings?
    public struct S3Settings: Codable, Sendable, Equatable {
        public var endpoint: String?
        public var region: String?
        public var profile: String?
        public init(endpoint: String? = nil, region: String? = nil, profile: String? = nil) { self.endpoint = endpoint; self.region = region; self.profile = profile }
    }
    public init(store: String, stages: [String] = Names.defaultStages, created: String = Time.iso(Date())) {
        self.store = store; self.stages = stages; self.created = created
    }
}

/// The line a stage prints with --json, one per finished job.
public struct StageEvent: Codable, Sendable {
    public var schema: String = Schema.event
    public var stage: String
    public var job: String
    public var id: String
    public var name: String
    public var status: String      // complete | up-to-date | failed
    public var next: String?
    public var seconds: Double?
    public var error: String?
    public var outputs: [String]?
    public init(stage: String, job: String, id: String, name: String, status: String, next: String? = nil, seconds: Double? = nil, error: String? = nil, outputs: [String]? = nil) {
        self.stage = stage; self.job = job; self.id = id; self.name = name; self.status = status; self.next = next; self.seconds = seconds; self.error = error; self.outputs = outputs
    }
}
