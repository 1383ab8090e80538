import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
