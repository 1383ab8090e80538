import Foundation
import EpipeCore

/// Which files are scans, and the names a scan's job and store copies get.
public enum Scans {
    /// Image file endings ingest takes (longest first where one ends another).
    public static let extensions = [".ome.tif", ".ome.tiff", ".tif", ".tiff", ".qptiff", ".btf", ".tf8", ".tf2"]

    /// The scans among folders (searched recursively) and files given; a missing one is bad input.
    public static func collect(_ sources: [String]) throws -> [String] {
        var files: [String] = []
        for s in sources {
            guard Files.exists(s) else { throw EpipeError.badInput("\(s): no such file or folder") }
            if Files.isDirectory(s) { files += find(in: s) } else { files.append(s) }
        }
        return files
    }

    /// The image files under `dir`, recursively, sorted; hidden files and folders are skipped.
    public static func find(in dir: String) -> [String] {
        var out: [String] = []
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        while let rel = e.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.hasPrefix(".") { if Files.isDirectory(dir + "/" + rel) { e.skipDescendants() }; continue }
            let lower = name.lowercased()
            if extensions.contains(where: { lower.hasSuffix($0) }) && !Files.isDirectory(dir + "/" + rel) { out.append(dir + "/" + rel) }
        }
        return out.sorted()
    }

    /// A scan's image extension as it ends (".tif" when none matches).
    public static func ext(_ path: String) -> String { extensions.first { path.lowercased().hasSuffix($0) } ?? ".tif" }

    /// The job name a scan gets: its file name without the image extension, sanitized.
    public static func jobName(_ path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for ext in extensions where base.lowercased().hasSuffix(ext) { base = String(base.dropLast(ext.count)); break }
        return Names.sanitize(base)
    }

    /// The job id: the day, the name and the first 6 hex digits of the scan's sha256.
    public static func jobID(name: String, sha256: String, date: Date = Date()) -> String {
        "\(String(Time.iso(date).prefix(10)))-\(name)-\(sha256.prefix(6))"
    }
}
