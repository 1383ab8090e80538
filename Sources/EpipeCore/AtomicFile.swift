import Foundation
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// Every file epipe writes goes to a temporary name in the same folder, is flushed
/// to disk, then renamed into place: a reader never sees half a file.
public enum AtomicFile {
    /// `.name.tmp-PID-RANDOM` beside `path`. Whoever creates it reports it to `TempFiles`
    /// (`created`, then `finished` once renamed or removed), so a stop on SIGTERM removes it.
    public static func temporaryPath(for path: String) -> String {
        TempFiles.name(for: URL(fileURLWithPath: path).path)
    }

    /// `createDirectories: false` writes only into a folder that is there (a stage's manifest: a job
    /// folder removed while its stage ran is not made again).
    public static func write(_ data: Data, to path: String, createDirectories: Bool = true) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty && createDirectories { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = temporaryPath(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(path): cannot create temporary file (\(String(cString: strerror(errno)))); check permissions and free space") }
        TempFiles.created(tmp)
        var err = data.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        if err == 0 && fsync(fd) != 0 { err = errno }
        let ok = err == 0
        close(fd)
        guard ok else {
            unlink(tmp); TempFiles.finished(tmp)
            throw EpipeError.failed("\(path): write failed (\(String(cString: strerror(err)))); check free space")
        }
        try commit(temporary: tmp, to: path)
    }

    public static func write(_ string: String, to path: String, createDirectories: Bool = true) throws {
        try write(Data(string.utf8), to: path, createDirectories: createDirectories)
    }

    /// Renames a finished temporary file into place and syncs the folder.
    public static func commit(temporary tmp: String, to path: String) throws {
        Fault.point("temp-written")
        if rename(tmp, path) != 0 {
            let e = String(cString: strerror(errno)); unlink(tmp); TempFiles.finished(tmp)
            throw EpipeError.failed("\(path): cannot rename into place (\(e))")
        }
        TempFiles.finished(tmp)
        Fault.point("renamed")
        syncDirectory(of: path)
    }

    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Whether `name` is a temporary name a writer gives its file or folder until it is complete
    /// (`.name.tmp-PID-RANDOM`), or one a store being replaced gets (`.name.old-PID-RANDOM`).
    public static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".old-"))
    }

    /// The process id in a temporary name, if any.
    static func pid(of name: String) -> Int32? {
        guard let r = name.range(of: ".tmp-") ?? name.range(of: ".old-") else { return nil }
        return Int32(name[r.upperBound...].prefix { $0.isNumber })
    }

    /// Removes the temporary files and folders a killed writer left in a folder: those older than
    /// `age` seconds, and (`deadOwner`) those whose process is gone from this host. `recursive`
    /// goes into subfolders except those named in `skip` (relative paths). Returns the paths removed.
    @discardableResult
    public static func sweep(directory: String, olderThan age: TimeInterval = 3600, deadOwner: Bool = false,
                             recursive: Bool = false, skip: Set<String> = [], matching: (String) -> Bool = { _ in true }) -> [String] {
        var removed: [String] = []
        func walk(_ dir: String, _ rel: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            let now = Date()
            for n in names {
                let p = dir + "/" + n, r = rel.isEmpty ? n : rel + "/" + n
                if isTemporary(n) && matching(n) {
                    let old = (Files.mtime(p)).map { now.timeIntervalSince($0) > age } ?? false
                    let gone = deadOwner && pid(of: n).map { kill($0, 0) != 0 && errno == ESRCH } == true
                    if old || gone {
                        if unlink(p) != 0 { try? FileManager.default.removeItem(atPath: p) }
                        removed.append(p)
                    }
                } else if recursive && !skip.contains(r) && Files.isDirectory(p) && !n.hasSuffix(".lock") {
                    walk(p, r)
                }
            }
        }
        walk(directory, "")
        return removed
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
        TempFiles.created(temporaryPath)
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
        Fault.point("output-chunk")
    }

    /// Flushes and syncs the temporary file and closes it, without renaming (it can then be read
    /// at `temporaryPath`); `commit()` or `abort()` still apply.
    public func close() throws {
        guard fd >= 0 else { return }
        try flush()
        let ok = fsync(fd) == 0
        let err = errno
        Glibc.close(fd); fd = -2
        guard ok else { unlink(temporaryPath); TempFiles.finished(temporaryPath); fd = -1; throw EpipeError.failed("\(path): fsync failed (\(String(cString: strerror(err))))") }
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
        if fd != -1 { unlink(temporaryPath); TempFiles.finished(temporaryPath) }
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
