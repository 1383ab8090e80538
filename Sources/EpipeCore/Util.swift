import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum Names {
    public static let stages = ["denoise", "segment", "cluster", "stats"]
    public static let defaultStages = ["denoise", "segment", "cluster", "stats"]

    static func check(_ s: String, what: String, path: String, max: Int) throws {
        func bad(_ why: String) -> EpipeError {
            EpipeError.badInput("\(path): \(what) \"\(s.unicodeScalars.map { $0.value < 32 || $0.value == 127 ? "?" : String($0) }.joined())\" \(why); use letters, digits, '.', '-', '_'")
        }
        if s.isEmpty { throw bad("is empty") }
        if s.utf8.count > max { throw bad("is longer than \(max) bytes") }
        if s.contains("/") || s.contains("\\") { throw bad("contains a path separator") }
        if s.contains("..") { throw bad("contains \"..\"") }
        if s.hasPrefix(".") || s.hasPrefix("-") { throw bad("starts with '\(s.first!)'") }
        if s.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) { throw bad("contains a control character") }
    }
    public static func validateName(_ s: String, what: String = "name", path: String = "") throws { try check(s, what: what, path: path.isEmpty ? "epipe" : path, max: 200) }
    public static func validateID(_ s: String, what: String = "job id", path: String = "") throws {
        try check(s, what: what, path: path.isEmpty ? "epipe" : path, max: 240)
        if !s.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }) {
            throw EpipeError.badInput("\(path.isEmpty ? "epipe" : path): \(what) \"\(s)\" has characters other than ASCII letters, digits, '.', '-', '_'")
        }
    }
    /// A safe name derived from a file name ("s 01 (1).ome.tif" -> "s_01_1").
    public static func sanitize(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            if u.isASCII && (CharacterSet.alphanumerics.contains(u) || u == "-" || u == "_" || u == ".") { out.unicodeScalars.append(u) } else { out += "_" }
        }
        while out.contains("..") { out = out.replacingOccurrences(of: "..", with: ".") }
        while out.hasPrefix(".") || out.hasPrefix("-") { out.removeFirst() }
        return out.isEmpty ? "scan" : String(out.prefix(120))
    }
}

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

public enum Files {
    public static func exists(_ p: String) -> Bool { FileManager.default.fileExists(atPath: p) }
    public static func isDirectory(_ p: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: p, isDirectory: &d) && d.boolValue
    }
    public static func read(_ p: String) throws -> Data {
        guard let d = FileManager.default.contents(atPath: p) else {
            throw EpipeError.badInput("\(p): cannot read (missing or not readable)")
        }
        return d
    }
    public static func mkdir(_ p: String) throws { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true) }
    public static func list(_ p: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).sorted() }
    public static func size(_ p: String) -> Int64? { (try? FileManager.default.attributesOfItem(atPath: p))?[.size] as? Int64 }
    public static func mtime(_ p: String) -> Date? { (try? FileManager.default.attributesOfItem(atPath: p))?[.modificationDate] as? Date }
    /// Absolute, symlink-resolved path.
    public static func canonical(_ p: String) -> String {
        let abs = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        if let r = realpath(abs, nil) { defer { free(r) }; return String(cString: r) }
        return URL(fileURLWithPath: abs).standardizedFileURL.path
    }
    public static func random(hex n: Int) -> String {
        (0..<n).map { _ in String(Int.random(in: 0..<16), radix: 16) }.joined()
    }
}

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
