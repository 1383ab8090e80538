import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The parsers under test read paths, so each input is written to a file first: one private
/// folder per process (under $EPIPE_FUZZ_TMP, else /dev/shm when there is one, so no disk is touched), one file per name,
/// rewritten in place for every input and removed when the process exits.
enum FuzzFile {
    nonisolated(unsafe) private static var folder: String?
    private static let lock = NSLock()

    /// Writes `data` to `name` in the process's folder and returns its path.
    static func write(_ data: UnsafeRawBufferPointer, name: String) -> String {
        let path = dir() + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "fuzz: cannot write \(path): \(String(cString: strerror(errno)))")
        defer { close(fd) }
        var off = 0
        while off < data.count {
            let n = Glibc.write(fd, data.baseAddress! + off, data.count - off)
            precondition(n > 0, "fuzz: cannot write \(path): \(String(cString: strerror(errno)))")
            off += n
        }
        return path
    }

    static func write(_ text: String, name: String) -> String {
        var t = text
        return t.withUTF8 { write(UnsafeRawBufferPointer($0), name: name) }
    }

    static func remove(_ name: String) { unlink(dir() + "/" + name) }

    static func dir() -> String {
        lock.lock(); defer { lock.unlock() }
        if let folder { return folder }
        let env = ProcessInfo.processInfo.environment["EPIPE_FUZZ_TMP"] ?? ""
        let base = !env.isEmpty ? env : FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        var template = Array((base + "/epipe-fuzz-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "fuzz: cannot make a folder in \(base): \(String(cString: strerror(errno)))")
        let f = String(cString: made!)
        folder = f
        atexit { FuzzFile.cleanUp() }
        return f
    }

    private static func cleanUp() {
        guard let folder else { return }
        try? FileManager.default.removeItem(atPath: folder)
    }
}
