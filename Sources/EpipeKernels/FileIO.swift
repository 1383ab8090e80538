#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Raw file-descriptor writes for the files epipe writes itself (atomic files, stored objects,
/// TIFF tiles).
public enum FileIO {
    /// Writes all of `buffer` to `fd`: at the file offset with `write`, or at `offset` with
    /// `pwrite`. A short write continues where it stopped and an interrupted one (EINTR) is
    /// retried. Returns 0, or the errno of the failure (EIO for a write of no bytes).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int64? = nil) -> Int32 {
        guard let bytes = buffer.baseAddress else { return 0 }
        let count = buffer.count
        if let budget = faultBudget, FaultCounter.shared.add(count) > budget { return ENOSPC }
        var done = 0
        while done < count {
            let n: Int
            if let offset { n = pwrite(fd, bytes + done, count - done, off_t(offset) + off_t(done)) }
            else { n = write(fd, bytes + done, count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            if n == 0 { return EIO }
            done += n
        }
        return 0
    }

    /// Test hook: with `EPIPE_FAULT_ENOSPC_AFTER=N` in the environment, every write fails with ENOSPC
    /// once this process has written N bytes: how the tests stand in for a full disk where they
    /// cannot mount a small file system. Unset (always, outside tests): no effect.
    static let faultBudget: Int? = getenv("EPIPE_FAULT_ENOSPC_AFTER").flatMap { Int(String(cString: $0)) }
}

/// Bytes written by this process, counted only while the fault hook is set.
final class FaultCounter: @unchecked Sendable {
    static let shared = FaultCounter()
    private var mutex = pthread_mutex_t()
    private var total = 0
    init() { pthread_mutex_init(&mutex, nil) }
    func add(_ n: Int) -> Int {
        pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }
        total += n
        return total
    }
}
