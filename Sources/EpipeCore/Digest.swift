import Foundation
import Crypto
#if canImport(Glibc)
import Glibc
#endif

/// Streaming SHA-256 of files and bytes.
public struct SHA256Stream {
    private var h = SHA256()
    public init() {}
    public mutating func update(_ p: UnsafeRawBufferPointer) { h.update(bufferPointer: p) }
    public mutating func update(_ d: Data) { h.update(data: d) }
    public func hex() -> String { h.finalize().map { String(format: "%02x", $0) }.joined() }
}

public enum Digest {
    public static func sha256(_ data: Data) -> String { SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined() }
    public static func sha256(_ s: String) -> String { sha256(Data(s.utf8)) }

    /// SHA-256 and size of a file, read in 4 MiB blocks.
    public static func sha256(file path: String) throws -> (hex: String, bytes: Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EpipeError.badInput("\(path): cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var s = SHA256Stream()
        let cap = 4 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 64)
        defer { buf.deallocate() }
        var total: Int64 = 0
        while true {
            let n = read(fd, buf, cap)
            if n < 0 { if errno == EINTR { continue }; throw EpipeError.failed("\(path): read error (\(String(cString: strerror(errno))))") }
            if n == 0 { break }
            s.update(UnsafeRawBufferPointer(start: buf, count: n)); total += Int64(n)
        }
        return (s.hex(), total)
    }
}
