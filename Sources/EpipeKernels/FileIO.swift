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
}
