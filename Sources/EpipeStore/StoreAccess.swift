import Foundation
import EpipeCore

/// Opens stores from URIs: the destination of an ingest run, and the store holding a job's raw image
/// when a stage on any machine reads it back.
public enum StoreAccess {
    /// Where S3 settings come from, in order: the flags, the root's epipe.json `s3`, the environment
    /// (AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE), the defaults.
    public struct S3Options: Sendable {
        public var endpoint: String?, region: String?, profile: String?
        public var partSize: Int = 64 << 20, parallel: Int = 4, bytesPerSecond: Double? = nil, retries: Int = 6
        public init(endpoint: String? = nil, region: String? = nil, profile: String? = nil) { self.endpoint = endpoint; self.region = region; self.profile = profile }

        /// These options with the gaps filled from epipe.json and the environment.
        public func resolved(_ settings: RootConfig.S3Settings?, env: [String: String] = ProcessInfo.processInfo.environment) -> S3Options {
            var o = self
            o.endpoint = endpoint ?? settings?.endpoint ?? env["AWS_ENDPOINT_URL_S3"] ?? env["AWS_ENDPOINT_URL"]
            o.region = region ?? settings?.region ?? env["AWS_REGION"] ?? env["AWS_DEFAULT_REGION"] ?? "us-east-1"
            o.profile = profile ?? settings?.profile
            return o
        }
    }

    /// The store at `uri` (file:///path or s3://bucket/prefix). `stateDir` keeps S3 resume records.
    /// `check`: ask an S3 server for the bucket first (HeadBucket), so bad credentials or a missing
    /// bucket are one line before anything moves.
    public static func open(uri: String, s3 o: S3Options, stateDir: String, check: Bool = false) throws -> any ObjectStore {
        if uri.hasPrefix("file://") { return try FileStore(uri: uri, bytesPerSecond: o.bytesPerSecond) }
        guard uri.hasPrefix("s3://") else { throw EpipeError.badInput("store \(uri): expected s3://bucket/prefix or file:///path") }
        let creds = try S3Credentials.resolve(profile: o.profile)
        let cfg = S3Config(credentials: creds, endpoint: o.endpoint, region: o.region ?? "us-east-1", partSize: o.partSize,
                           parallel: o.parallel, retries: o.retries, bytesPerSecond: o.bytesPerSecond)
        let store = try S3Store(uri: uri, config: cfg, stateDir: stateDir)
        if check { try store.check() }
        return store
    }

    /// The store and key of one stored object's URI: file:///a/b/c -> (the folder /a/b, "c");
    /// s3://bucket/k/e/y -> (s3://bucket, "k/e/y").
    public static func locate(_ uri: String, s3 o: S3Options, stateDir: String) throws -> (store: any ObjectStore, key: String) {
        if uri.hasPrefix("file://") {
            let p = String(uri.dropFirst(7))
            return (try FileStore(base: (p as NSString).deletingLastPathComponent), (p as NSString).lastPathComponent)
        }
        guard uri.hasPrefix("s3://") else { throw EpipeError.badInput("\(uri): expected an s3:// or file:// URI") }
        let rest = uri.dropFirst(5)
        guard let slash = rest.firstIndex(of: "/"), rest.index(after: slash) < rest.endIndex else { throw EpipeError.badInput("\(uri): no object key after the bucket") }
        return (try open(uri: "s3://" + rest[..<slash], s3: o, stateDir: stateDir), String(rest[rest.index(after: slash)...]))
    }
}
