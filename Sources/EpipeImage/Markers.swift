import Foundation
import EpipeKernels

/// MCMICRO-style markers.csv (`cycle_number,marker_name,...`), one row per channel in file order:
/// the one reader of the format (channel names for `ImageReader`; cycles, blank flags and
/// background columns for EpipeStage's `MarkerTable`).
public enum Markers {
    /// A markers.csv as read: its header (trimmed, lower case) and rows, blank lines left out.
    public struct Table: Sendable {
        public var path: String
        public var header: [String]
        public var rows: [[String]]

        /// The column named `name` (lower case), if any.
        public func column(_ name: String) -> Int? { header.firstIndex(of: name) }

        /// The values of column `i`, trimmed; "" where a row is too short.
        public func values(_ i: Int) -> [String] {
            rows.map { i < $0.count ? $0[i].trimmingCharacters(in: .whitespaces) : "" }
        }

        /// The marker_name column (trimmed), nil when there is none; a row too short to have it
        /// is an error.
        public func names() throws -> [String]? {
            guard let idx = column("marker_name") else { return nil }
            for (ln, f) in rows.enumerated() where idx >= f.count {
                throw ImageError(path: path, message: "line \(ln + 2) has \(f.count) fields, marker_name is field \(idx + 1); fix the CSV line")
            }
            return values(idx)
        }
    }

    /// The channel names (marker_name) of a markers.csv.
    public static func read(csvPath: String) throws -> [String] {
        let t = try table(csvPath: csvPath)
        guard let names = try t.names() else {
            throw ImageError(path: csvPath, message: "markers file has no marker_name column (header: \(t.header.joined(separator: ",").prefix(80))); add a marker_name column as in MCMICRO markers.csv")
        }
        return names
    }

    public static func table(csvPath: String) throws -> Table {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: csvPath))
        } catch {
            throw ImageError(path: csvPath, message: "cannot read markers file (\(error.localizedDescription)); check the path")
        }
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) else {
            throw ImageError(path: csvPath, message: "markers file is not text; provide a CSV with a marker_name column")
        }
        return try table(text: text, path: csvPath)
    }

    public static func table(text: String, path: String) throws -> Table {
        let records = CSV.parse(text).filter { $0.count > 1 || !$0[0].trimmingCharacters(in: .whitespaces).isEmpty }
        guard let header = records.first else {
            throw ImageError(path: path, message: "markers file is empty; add a header line with a marker_name column and one line per channel")
        }
        return Table(path: path, header: header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }, rows: Array(records.dropFirst()))
    }
}
