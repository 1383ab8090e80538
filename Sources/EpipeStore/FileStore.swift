import Foundation
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// The embedded default store: a folder (file://). Objects are written under a
/// temporary name, verified by re-reading, then renamed into place.
public struct FileStore: Sendable {
    public let base: String
    public init(base: String) throws {
        try Files.mkdir(base)
        self.base = Files.canonical(base)
    }
    public init(uri: String) throws {
        guard uri.hasPrefix("file://") else {
            throw EpipeError.badInput("store \(uri): only file:// stores are supported by this version")
        }
        try self.init(base: String(uri.dropFirst(7)))
    }

    public func path(_ key: String) -> String { base + "/" + key }
    public func uri(_ key: String) -> String { "file://" + path(key) }

    /// Copies `source` to `key` with an end-to-end SHA-256: the source is hashed as it is
    /// read, the copy is re-read and hashed, and the two must agree. A `.partial` left by an
    /// interrupted copy is resumed when its bytes match the source's prefix.
    public func put(source: String, key: String, progress: ((Int64, Int64) -> Void)? = nil) throws -> RawRef {
        for part in key.split(separator: "/") { try Names.validateName(String(part), what: "store key", path: base) }
        let dest = path(key)
        try Files.mkdir((dest as NSString).deletingLastPathComponent)
        let partial = (dest as NSString).deletingLastPathComponent + "/." + (dest as NSString).lastPathComponent + ".partial"
        let copied = try Copier.copy(from: source, to: partial, progress: progress)
        let check = try Digest.sha256(file: partial)
        guard check.hex == copied.hex, check.bytes == copied.bytes else {
            unlink(partial)
            throw EpipeError.failed("\(dest): checksum of the copy (\(check.hex.prefix(12))) differs from the source (\(copied.hex.prefix(12))); the copy was removed, rerun to retry")
        }
        try AtomicFile.commit(temporary: partial, to: dest)
        return RawRef(uri: uri(key), sha256: copied.hex, bytes: copied.bytes)
    }
}

public enum Copier {
    static let block = 8 << 20

    /// Streams `src` into `dst` (appending to an existing prefix that matches), hashing
    /// the source. Returns the source's SHA-256 and size. fsyncs before returning.
    public static func copy(from src: String, to dst: String, progress: ((Int64, Int64) -> Void)? = nil) throws -> (hex: String, bytes: Int64) {
        let ifd = open(src, O_RDONLY | O_CLOEXEC)
        guard ifd >= 0 else { throw EpipeError.badInput("\(src): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(ifd) }
        let total = Files.size(src) ?? 0
        var hasher = SHA256Stream()
        let buf = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 64)
        let buf2 = UnsafeMutableRawPointer.allocate(byteCount: block, alignment: 64)
        defer { buf.deallocate(); buf2.deallocate() }

        // Resume: keep the longest prefix of an existing partial that equals the source.
        var done: Int64 = 0
        if let have = Files.size(dst), have > 0, have <= total {
            let pfd = open(dst, O_RDONLY | O_CLOEXEC)
            if pfd >= 0 {
                var same = true
                while done < have && same {
                    let want = Int(min(Int64(block), have - done))
                    let a = readFully(ifd, buf, want), b = readFully(pfd, buf2, want)
                    if a != want || b != want || memcmp(buf, buf2, want) != 0 { same = false; break }
                    hasher.update(UnsafeRawBufferPointer(start: buf, count: want)); done += Int64(want)
                }
                close(pfd)
                if !same { done = 0; hasher = SHA256Stream(); lseek(ifd, 0, SEEK_SET); truncate(dst, 0) }
            }
        } else if Files.exists(dst) { truncate(dst, 0) }

        let ofd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard ofd >= 0 else { throw EpipeError.failed("\(dst): cannot create (\(String(cString: strerror(errno))))") }
        defer { close(ofd) }
        ftruncate(ofd, off_t(done)); lseek(ofd, off_t(done), SEEK_SET); lseek(ifd, off_t(done), SEEK_SET)
        progress?(done, total)
        while true {
            let n = readFully(ifd, buf, block)
            if n < 0 { throw EpipeError.failed("\(src): read error (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(start: buf, count: n))
            let werr = FileIO.writeAll(ofd, UnsafeRawBufferPointer(start: buf, count: n))
            if werr != 0 { throw EpipeError.failed("\(dst): write error (\(String(cString: strerror(werr)))); check free space") }
            done += Int64(n)
            progress?(done, total)
        }
        guard fsync(ofd) == 0 else { throw EpipeError.failed("\(dst): fsync failed") }
        return (hasher.hex(), done)
    }

    static func readFully(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
        var got = 0
        while got < n {
            let r = read(fd, p + got, n - got)
            if r < 0 { if errno == EINTR { continue }; return -1 }
            if r == 0 { break }
            got += r
        }
        return got
    }
}

/// ledger/: one JSON record per source file that ingest has transferred.
public struct LedgerEntry: Codable, Sendable, Equatable {
    public var schema: String = Schema.ledger
    public var source: String
    public var bytes: Int64
    public var mtime: Double
    public var sha256: String
    public var dest: String
    public var job: String?
    public var ingested: String
    public init(source: String, bytes: Int64, mtime: Double, sha256: String, dest: String, job: String?, ingested: String = Time.iso(Date())) {
        self.source = source; self.bytes = bytes; self.mtime = mtime; self.sha256 = sha256; self.dest = dest; self.job = job; self.ingested = ingested
    }
}

public struct Ledger: Sendable {
    public let dir: String
    public init(dir: String) throws { try Files.mkdir(dir); self.dir = dir }
    func file(_ source: String) -> String { dir + "/" + Digest.sha256(source).prefix(32) + ".json" }
    public func entry(for source: String) throws -> LedgerEntry? {
        let f = file(source)
        guard Files.exists(f) else { return nil }
        return try Schema.decode(LedgerEntry.self, expected: Schema.ledger, from: Files.read(f), path: f)
    }
    public func record(_ e: LedgerEntry) throws { try AtomicFile.write(JSON.encode(e), to: file(e.source)) }
    public func all() -> [LedgerEntry] {
        Files.list(dir).filter { $0.hasSuffix(".json") }.compactMap { try? Schema.decode(LedgerEntry.self, expected: Schema.ledger, from: Files.read(dir + "/" + $0), path: $0) }
    }
}
