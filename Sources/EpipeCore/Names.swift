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
