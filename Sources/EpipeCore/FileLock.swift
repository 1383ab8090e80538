import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Serialises concurrent runs of one stage on one job (make -j, two pipes, a drain
/// worker and a hand run): an flock on <stage>/.lock.
public final class FileLock {
    let fd: Int32
    public init?(path: String, wait: Bool = true) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        if flock(fd, wait ? LOCK_EX : (LOCK_EX | LOCK_NB)) != 0 { close(fd); return nil }
        self.fd = fd
    }

    private init(fd: Int32) { self.fd = fd }

    /// Takes the lock at `path`; when another process holds it, calls `busy()` once (to say who
    /// and that this one waits) and waits for it. Throws, saying why, when the lock file cannot be
    /// opened (a read-only file system, permissions).
    public static func acquire(path: String, busy: () -> Void) throws -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw EpipeError.failed("\(path): cannot open the lock (\(String(cString: strerror(e)))); "
                + (e == EROFS ? "the root is on a read-only file system: remount it read-write" : "check that this user can write there"))
        }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { return FileLock(fd: fd) }
        busy()
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            let e = errno; close(fd)
            throw EpipeError.failed("\(path): cannot lock (\(String(cString: strerror(e))))")
        }
        return FileLock(fd: fd)
    }

    deinit { flock(fd, LOCK_UN); close(fd) }
}
