import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Time {
    public static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter(); f.formatOptions = [.withInternetDateTime]
        return f.string(from: d)
    }
    public static func parse(_ s: String) -> Date? {
        let f = ISO8601DateFormatter(); f.formatOptions = [.withInternetDateTime]
        return f.date(from: s)
    }
    public static func now() -> Double { Date().timeIntervalSince1970 }
}

public enum Host {
    public static let name: String = {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        let s = String(cString: buf)
        return s.isEmpty ? "localhost" : s
    }()
}

public enum Memory {
    /// Peak resident set size of this process (VmHWM), in bytes.
    public static func peakRSS() -> Int64 {
        if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in s.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                if parts.count >= 2, let kb = Int64(parts[1]) { return kb * 1024 }
            }
        }
        var u = rusage(); getrusage(RUSAGE_SELF.rawValue, &u)
        return Int64(u.ru_maxrss) * 1024
    }
}
