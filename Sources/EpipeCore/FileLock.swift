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
    deinit { flock(fd, LOCK_UN); close(fd) }
}
