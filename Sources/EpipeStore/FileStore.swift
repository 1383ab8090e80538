import Foundation
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// The embedded default store: a folder (file://). A put copies the source into a hidden partial
/// file named after the source path (so an interrupted copy of the same file resumes), hashing the
/// source as it reads; the copy is re-read and re-hashed, and only when the two agree is it renamed
/// to its key.
public struct FileStore: ObjectStore {
    public let root: String
    /// --bwlimit: bytes per second written by puts (nil: as fast as the disks go).
    public var bytesPerSecond: Double?
    public init(base: String, bytesPerSecond: Double? = nil) throws {
        try Files.mkdir(base)
        self.root = Files.canonical(base)
        self.bytesPerSecond = bytesPerSecond
    }
    public init(uri: String, bytesPerSecond: Double? = nil) throws {
        guard uri.hasPrefix("file://") else {
            throw EpipeError.badInput("store \(uri): not a file:// store")
        }
        try self.init(base: String(uri.dropFirst(7)), bytesPerSecond: bytesPerSecond)
    }

    public var base: String { "file://" + root }
    public func path(_ key: String) -> String { root + "/" + key }
    public func uri(_ key: String) -> String { "file://" + path(key) }

    public func put(source: String, key: (String) -> String, progress: ((Int64, Int64) -> Void)?) throws -> PutResult {
        let partial = partialPath(for: source)
        let copied = try Copier.copy(from: source, to: partial, progress: progress, bytesPerSecond: bytesPerSecond)
        let check = try Digest.sha256(file: partial)
        guard check.hex == copied.hex, check.bytes == copied.bytes else {
            unlink(partial)
            throw EpipeError.failed("\(source): checksum of the copy in \(root) (\(check.hex.prefix(12))) differs from the source (\(copied.hex.prefix(12))); the copy was removed, rerun to retry")
        }
        let k = key(copied.hex)
        for part in k.split(separator: "/") { try Names.validateName(String(part), what: "store key", path: root) }
        let dest = path(k)
        try Files.mkdir((dest as NSString).deletingLastPathComponent)
        if Files.size(dest) == copied.bytes, (try? Digest.sha256(file: dest).hex) == copied.hex {
            unlink(partial)   // the same content is already there
        } else {
            try AtomicFile.commit(temporary: partial, to: dest)
        }
        return PutResult(raw: RawRef(uri: uri(k), sha256: copied.hex, bytes: copied.bytes), key: k, sent: copied.written)
    }

    /// The hidden file an interrupted copy of `source` leaves, resumed by the next put of it.
    public func partialPath(for source: String) -> String { root + "/.partial-" + String(Digest.sha256(Files.canonical(source)).prefix(16)) }

    public func verify(key: String, sha256: String, bytes: Int64) throws -> Bool {
        let p = path(key)
        guard Files.size(p) == bytes else { return false }
        return try Digest.sha256(file: p).hex == sha256
    }

    public func fetch(key: String, to dest: String, sha256: String?, progress: ((Int64, Int64) -> Void)?) throws {
        let src = path(key)
        guard Files.exists(src) else { throw EpipeError.failed("\(uri(key)): not in the store") }
        let tmp = AtomicFile.temporaryPath(for: dest)
        TempFiles.created(tmp)
        defer { TempFiles.finished(tmp) }
        let got: (hex: String, bytes: Int64, written: Int64)
        do { got = try Copier.copy(from: src, to: tmp, progress: progress) } catch { unlink(tmp); throw error }
        if let sha256, got.hex != sha256 {
            unlink(tmp)
            throw EpipeError.failed("\(uri(key)): its sha256 \(got.hex.prefix(12)) is not the recorded \(sha256.prefix(12)); the store's copy is damaged")
        }
        try AtomicFile.commit(temporary: tmp, to: dest)
    }

    public func delete(key: String) throws {
        let p = path(key)
        if Files.exists(p) && unlink(p) != 0 { throw EpipeError.failed("\(p): cannot remove (\(String(cString: strerror(errno))))") }
    }
}

public enum Copier {
    static let block = 8 << 20

    /// Streams `src` into `dst` (appending to an existing prefix that matches), hashing
    /// the source, at most `bytesPerSecond` when given. Returns the source's SHA-256 and size and the
    /// bytes written by this call. fsyncs before returning.
    public static func copy(from src: String, to dst: String, progress: ((Int64, Int64) -> Void)? = nil, bytesPerSecond: Double? = nil) throws -> (hex: String, bytes: Int64, written: Int64) {
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
        let resumedAt = done, t0 = Date()
        let step = bytesPerSecond.map { max(64 << 10, min(block, Int($0 / 8))) } ?? block
        while true {
            let n = readFully(ifd, buf, step)
            if n < 0 { throw EpipeError.failed("\(src): read error (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(start: buf, count: n))
            let werr = FileIO.writeAll(ofd, UnsafeRawBufferPointer(start: buf, count: n))
            if werr != 0 { throw EpipeError.failed("\(dst): write error (\(String(cString: strerror(werr)))); check free space") }
            done += Int64(n)
            Fault.point("output-chunk")
            progress?(done, total)
            if let bps = bytesPerSecond {
                let ahead = Double(done - resumedAt) / bps - Date().timeIntervalSince(t0)
                if ahead > 0 { usleep(useconds_t(min(ahead, 5) * 1e6)) }
            }
        }
        guard fsync(ofd) == 0 else { throw EpipeError.failed("\(dst): fsync failed") }
        return (hasher.hex(), done, done - resumedAt)
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
    /// When the destination's size and sha256 were last confirmed equal to the source's.
    public var verified: String?
    public init(source: String, bytes: Int64, mtime: Double, sha256: String, dest: String, job: String?, ingested: String = Time.iso(Date()), verified: String? = nil) {
        self.source = source; self.bytes = bytes; self.mtime = mtime; self.sha256 = sha256; self.dest = dest; self.job = job; self.ingested = ingested
        self.verified = verified
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
