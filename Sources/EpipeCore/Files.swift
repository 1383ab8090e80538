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
    /// Whether `p` stays inside the folder `base` once every symbolic link on its way is followed
    /// (its deepest existing ancestor is resolved; the rest must hold no ".."). `base` is canonical.
    public static func within(_ p: String, _ base: String) -> Bool {
        guard let full = resolved(p) else { return false }
        return full == base || full.hasPrefix(base + "/")
    }
    /// `p` with every symbolic link on its way followed (its deepest existing ancestor canonical, the
    /// rest as it is); nil for a dangling link or a ".." after it.
    public static func resolved(_ p: String) -> String? {
        var probe = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        var rest: [String] = []
        while !exists(probe) && !isSymlink(probe) && probe != "/" && !probe.isEmpty {
            rest.insert((probe as NSString).lastPathComponent, at: 0)
            probe = (probe as NSString).deletingLastPathComponent
        }
        if isSymlink(probe) && !exists(probe) { return nil }
        if rest.contains("..") { return nil }
        return ([canonical(probe)] + rest).joined(separator: "/")
    }
    /// Whether `p` itself is a symbolic link (not followed).
    public static func isSymlink(_ p: String) -> Bool {
        var st = stat()
        return lstat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
    }
    /// Why the folder `dir` cannot be written (read-only file system, permissions), nil when it can.
    public static func unwritable(_ dir: String) -> String? {
        if access(dir, W_OK) == 0 { return nil }
        let e = errno
        if e == ENOENT { return nil }   // not there yet: whoever creates it says why it cannot
        return String(cString: strerror(e))
    }
    public static func random(hex n: Int) -> String {
        (0..<n).map { _ in String(Int.random(in: 0..<16), radix: 16) }.joined()
    }
}
