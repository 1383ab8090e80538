import Foundation
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

    public static func write(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let tmp = temporaryPath(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw EpipeError.failed("\(path): cannot create temporary file (\(String(cString: strerror(errno)))); check permissions and free space") }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { if errno == EINTR { continue }; ok = false; return }
                off += n
            }
        }
        let err = errno
        if ok && fsync(fd) != 0 { ok = false }
        close(fd)
        guard ok else {
            unlink(tmp)
            throw EpipeError.failed("\(path): write failed (\(String(cString: strerror(err)))); check free space")
        }
        try commit(temporary: tmp, to: path)
    }

    public static func write(_ string: String, to path: String) throws { try write(Data(string.utf8), to: path) }

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
