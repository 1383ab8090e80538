import Foundation
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// Every file epipe writes goes to a temporary name in the same folder, is flushed
/// to disk, then renamed into place: a reader never sees half a file.
public enum AtomicFile {
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let rnd = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-" + rnd
    }

    /// `createDirectories: false` writes only into a folder that is there (a stage's manifest: a job
    /// folder removed while its stage ran is not made again).
    public static func write(_ data: Data, to path: String, createDirectories: Bool = true) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && createDirectories { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = temporaryPath(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(path): cannot create temporary file (\(String(cString: strerror(errno)))); check permissions and free space") }
        var err = data.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        if err == 0 && fsync(fd) != 0 { err = errno }
        let ok = err == 0
        close(fd)
        guard ok else {
            unlink(tmp)
            throw EpipeError.failed("\(path): write failed (\(String(cString: strerror(err)))); check free space")
        }
        try commit(temporary: tmp, to: path)
    }

    public static func write(_ string: String, to path: String, createDirectories: Bool = true) throws {
        try write(Data(string.utf8), to: path, createDirectories: createDirectories)
    }

    /// Renames a finished temporary file into place and syncs the folder.
    public static func commit(temporary tmp: String, to path: String) throws {
        if rename(tmp, path) != 0 {
            let e = String(cString: strerror(errno)); unlink(tmp)
            throw EpipeError.failed("\(path): cannot rename into place (\(e))")
        }
        syncDirectory(of: path)
    }

    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Removes temporary files left by a killed writer in a folder (older than `age` seconds).
    public static func sweep(directory: String, olderThan age: TimeInterval = 3600) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        let now = Date()
        for n in names where n.hasPrefix(".") && n.contains(".tmp-") {
            let p = directory + "/" + n
            if let m = (try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date, now.timeIntervalSince(m) > age {
                unlink(p)
            }
        }
    }
}

/// A file written piece by piece under a temporary name in the same folder (buffered), then
/// flushed to disk and renamed into place by `commit()`; `abort()` (or deinit without commit)
/// removes the temporary file. A reader never sees half a file.
public final class AtomicStreamWriter {
    public let path: String
    public let temporaryPath: String
    private var fd: Int32
    private var buf: [UInt8] = []
    private let limit: Int
    public private(set) var bytesWritten = 0

    public init(path: String, bufferBytes: Int = 4 << 20) throws {
        self.path = path
        limit = bufferBytes
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        temporaryPath = AtomicFile.temporaryPath(for: path)
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(path): cannot create temporary file (\(String(cString: strerror(errno)))); check permissions and free space") }
        buf.reserveCapacity(bufferBytes + 4096)
    }

    deinit { if fd != -1 { abort() } }

    public func write(_ s: String) throws {
        var s = s
        s.withUTF8 { buf.append(contentsOf: $0) }
        if buf.count >= limit { try flush() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        buf.append(contentsOf: bytes)
        if buf.count >= limit { try flush() }
    }

    private func flush() throws {
        precondition(fd >= 0, "writer closed")
        let err = buf.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        let ok = err == 0
        bytesWritten += buf.count
        buf.removeAll(keepingCapacity: true)
        guard ok else { abort(); throw EpipeError.failed("\(path): write failed (\(String(cString: strerror(err)))); check free space") }
    }

    /// Flushes and syncs the temporary file and closes it, without renaming (it can then be read
    /// at `temporaryPath`); `commit()` or `abort()` still apply.
    public func close() throws {
        guard fd >= 0 else { return }
        try flush()
        let ok = fsync(fd) == 0
        let err = errno
        Glibc.close(fd); fd = -2
        guard ok else { unlink(temporaryPath); fd = -1; throw EpipeError.failed("\(path): fsync failed (\(String(cString: strerror(err))))") }
    }

    /// Flush, fsync, rename into place.
    public func commit() throws {
        try close()
        guard fd == -2 else { throw EpipeError.failed("\(path): writer already finished") }
        fd = -1
        try AtomicFile.commit(temporary: temporaryPath, to: path)
    }

    /// Drops the temporary file.
    public func abort() {
        if fd >= 0 { Glibc.close(fd) }
        if fd != -1 { unlink(temporaryPath) }
        fd = -1
    }
}

/// Lines of a text file, read in chunks (memory ~ the chunk, not the file).
public final class LineReader {
    private let f: UnsafeMutablePointer<FILE>
    private var line: UnsafeMutablePointer<CChar>? = nil
    private var cap = 0
    public init(path: String) throws {
        guard let f = fopen(path, "r") else { throw EpipeError.failed("\(path): cannot open (\(String(cString: strerror(errno))))") }
        self.f = f
    }
    deinit { free(line); fclose(f) }
    /// The next line with its newline, nil at the end; `body` sees the bytes.
    public func next<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        let n = getline(&line, &cap, f)
        guard n >= 0, let l = line else { return nil }
        return try body(UnsafeRawBufferPointer(start: l, count: n))
    }
}
