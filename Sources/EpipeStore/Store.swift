import Foundation
import EpipeCore

/// Where ingest puts what it moves, and where stages read raw images from: the root's folder
/// (file://, `FileStore`, the embedded default) or a bucket on any S3-compatible server (s3://,
/// `S3Store`). One protocol, two implementations; the ledger, jobs and stages see only URIs.
public protocol ObjectStore: Sendable {
    /// "file:///abs/path/store" or "s3://bucket/prefix" (no trailing slash).
    var base: String { get }
    /// The URI of `key` (a relative path: segments checked by `Names.validateName`).
    func uri(_ key: String) -> String
    /// Copies the local file `source` into the store. The source's SHA-256 is computed as it is read;
    /// `key(sha256)` names the object (content-addressed keys use the digest; others ignore it). The
    /// stored object is verified before this returns (file://: re-read and re-hashed; s3://: HEAD gives
    /// the size and the sha256 in the object's metadata), so a returned ref is never a half copy.
    /// An interrupted transfer of the same content resumes (the bytes already there are not sent
    /// again); an object already holding the same content is not sent at all. `progress(done, total)`
    /// reports source bytes processed.
    func put(source: String, key: (String) -> String, progress: ((Int64, Int64) -> Void)?) throws -> PutResult
    /// Whether `key` holds `bytes` bytes whose recorded SHA-256 is `sha256` (no download).
    func verify(key: String, sha256: String, bytes: Int64) throws -> Bool
    /// Copies `key` to the local file `path` (a temporary name renamed into place), checking the
    /// SHA-256 of what arrived against `sha256` when given.
    func fetch(key: String, to path: String, sha256: String?, progress: ((Int64, Int64) -> Void)?) throws
    /// Removes `key` (no error when it is not there).
    func delete(key: String) throws
    /// See the extension: a hint that `source` comes next.
    func prepare(source: String)
}

extension ObjectStore {
    /// A hint that `source` is put next: a store may start work on it (S3 hashes it ahead, so the
    /// hashing overlaps the transfer before). Nothing by default.
    public func prepare(source: String) {}
}

public struct PutResult: Sendable, Equatable {
    public var raw: RawRef
    /// The key the object was stored under.
    public var key: String
    /// Bytes sent to the store by this call (0 when the object was already there; less than the
    /// size when an interrupted transfer resumed).
    public var sent: Int64
    public init(raw: RawRef, key: String, sent: Int64) { self.raw = raw; self.key = key; self.sent = sent }
}
