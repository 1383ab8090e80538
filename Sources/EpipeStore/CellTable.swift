import Foundation
import EpipeCore
import EpipeKernels

/// A per-cell table segmented by another tool (MCMICRO/MCQuant, steinbock, SCIMAP, CellProfiler), checked
/// and normalised to the columns epipe-segment writes, so that cluster and stats run on it
/// (`epipe-ingest --cells`). Every refusal is one line naming the file and what is wrong.
///
/// The rules, each written here once:
/// - id: `--id COLUMN`, else the first of `idColumns` present (`label` only when all its values are
///   whole numbers), renamed `CellID`; with none, a `CellID` column 1...n is put first. Ids must be
///   non-empty and unique.
/// - coordinates: `--x` / `--y`, else the first pair of `coordinatePairs` present (steinbock's and
///   scikit-image's `centroid-0` is the row, so it is y), renamed `X_centroid` / `Y_centroid`; every
///   value must be a finite number.
/// - every other column is kept, in order, with its values as written (spaces around a field dropped).
///   When cluster runs on the table, columns named `cluster` or `phenotype` are kept as `input_cluster` /
///   `input_phenotype`, so that cluster's own columns of those names do not shadow them.
/// - a pandas index column (empty first header name) is called `index`; other empty or repeated column
///   names are refused.
public enum CellTable {
    /// Id columns recognised, the first present wins: MCQuant/SCIMAP, AnnData exports, steinbock,
    /// CellProfiler, scikit-image regionprops.
    public static let idColumns = ["CellID", "cell_id", "Object", "ObjectNumber", "label"]
    /// (x, y) column pairs recognised, the first pair present wins: MCQuant, SCIMAP, steinbock/scikit-image
    /// (`centroid-1` is the column, `centroid-0` the row), CellProfiler.
    public static let coordinatePairs: [(x: String, y: String)] = [
        ("X_centroid", "Y_centroid"), ("X_position", "Y_position"), ("centroid-1", "centroid-0"), ("Location_Center_X", "Location_Center_Y"),
    ]
    /// Columns cluster adds; a table that has them keeps them under `renamedPrefix + name` when cluster runs.
    public static let clusterColumns = ["cluster", "phenotype"]
    public static let renamedPrefix = "input_"
    /// File endings taken off a table's file name to make the job name.
    public static let extensions = [".csv", ".txt"]

    public struct Options: Sendable, Equatable {
        /// The id, x and y columns as given (`--id`, `--x`, `--y`); nil = recognised.
        public var id: String?, x: String?, y: String?
        /// Columns that must be present in the normalised table (stats' label when stats reads it directly).
        public var required: [String]
        /// Cluster runs on the table: its `cluster` / `phenotype` columns are renamed.
        public var clusterRuns: Bool
        public init(id: String? = nil, x: String? = nil, y: String? = nil, required: [String] = [], clusterRuns: Bool = true) {
            self.id = id; self.x = x; self.y = y; self.required = required; self.clusterRuns = clusterRuns
        }
    }

    /// The normalised table and what was decided.
    public struct Normalised: Sendable {
        public var table: CSVTable
        /// The source's id column; nil when CellID was generated.
        public var id: String?
        public var x: String, y: String
        /// The tool the columns suggest: mcquant, steinbock, scimap, cellprofiler or unknown.
        public var tool: String
        public var warnings: [String]

        /// What the segment manifest records as params (the columns chosen) and metrics.
        public var params: [String: JSONValue] { ["id": id.map { .string($0) } ?? .null, "x": .string(x), "y": .string(y)] }
        public var metrics: [String: JSONValue] {
            ["cells": .number(Double(table.rows.count)), "columns": .number(Double(table.header.count)),
             "id_column": .string(id ?? "generated 1..n"), "x_column": .string(x), "y_column": .string(y),
             "source_tool": .string(tool), "warnings": .array(warnings.map { .string($0) })]
        }
    }

    /// The job name of a table: its file name without .csv/.txt, sanitised.
    public static func jobName(_ path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for ext in extensions where base.lowercased().hasSuffix(ext) { base = String(base.dropLast(ext.count)); break }
        return Names.sanitize(base)
    }

    /// The tool whose column names the header carries.
    public static func guessTool(header: [String]) -> String {
        let h = Set(header)
        if h.contains("Object") || h.contains("centroid-0") { return "steinbock" }
        if h.contains("ObjectNumber") || h.contains("Location_Center_X") { return "cellprofiler" }
        if h.contains("imageid") || h.contains("X_position") { return "scimap" }
        if h.contains("CellID") && h.contains("X_centroid") { return "mcquant" }
        return "unknown"
    }

    /// Reads, checks and normalises the bytes of a table; `source` names it in messages.
    public static func normalise(data: Data, source: String, options o: Options = Options()) throws -> Normalised {
        func bad(_ m: String) -> EpipeError { EpipeError.badInput("\(source): \(m)") }
        guard !data.isEmpty else { throw bad("empty file; expected a CSV table with a header line") }
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
            throw bad("not a CSV table (binary or not UTF-8 text); expected comma-separated text with a header line")
        }
        let recs = CSV.parse(text)
        guard var header = recs.first, !(header.count == 1 && header[0].trimmingCharacters(in: .whitespaces).isEmpty) else {
            throw bad("no header line; expected a CSV table whose first line names the columns")
        }
        header = header.map { $0.trimmingCharacters(in: .whitespaces) }
        if header.count == 1 {
            let h = header[0]
            let sep = h.contains("\t") ? "tab" : h.contains(";") ? "semicolon" : nil
            if let sep { throw bad("the header is one \(sep)-separated field; epipe reads comma-separated tables (convert it, e.g. tr '\\t' ',')") }
        }
        // pandas writes its index as a first column without a name.
        if header[0].isEmpty { header[0] = "index" }
        var seen: [String: Int] = [:]
        for (i, h) in header.enumerated() {
            if h.isEmpty { throw bad("column \(i + 1) of the header has no name") }
            if let j = seen[h] { throw bad("column \"\(h)\" appears twice in the header (columns \(j + 1) and \(i + 1))") }
            seen[h] = i
        }
        let cols = header.joined(separator: ",")

        // Data rows: blank lines are skipped; line numbers count line breaks inside quoted fields.
        var rows: [[String]] = []
        rows.reserveCapacity(recs.count - 1)
        var rowLine: [Int] = []
        var line = 1 + breaks(recs[0])
        for r in recs.dropFirst() {
            let here = line + 1
            line = here + breaks(r)
            if r.count == 1 && r[0].isEmpty { continue }
            guard r.count == header.count else { throw bad("line \(here) has \(r.count) fields, the header has \(header.count)") }
            rows.append(r.contains(where: padded) ? r.map { padded($0) ? $0.trimmingCharacters(in: .whitespaces) : $0 } : r)
            rowLine.append(here)
        }
        guard !rows.isEmpty else { throw bad("no cells (a header line and no rows)") }

        // The columns: id, x, y.
        let pair = coordinatePairs.first { seen[$0.x] != nil && seen[$0.y] != nil }
        let xName = o.x ?? pair?.x ?? coordinatePairs[0].x, yName = o.y ?? pair?.y ?? coordinatePairs[0].y
        let missing = [xName, yName].filter { seen[$0] == nil }
        if !missing.isEmpty {
            let how = o.x == nil && o.y == nil ? "; name them with --x/--y" : ""
            throw bad("no coordinate column\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", "))\(how); columns: \(cols)")
        }
        guard xName != yName else { throw bad("--x and --y name the same column \(xName)") }
        var idName: String? = nil
        if let i = o.id {
            guard seen[i] != nil else { throw bad("no id column \(i) (--id); columns: \(cols)") }
            idName = i
        } else {
            // scikit-image's `label` is an id only when it holds whole numbers; a label of cell types is data.
            idName = idColumns.first { c in
                guard let i = seen[c] else { return false }
                return c != "label" || rows.allSatisfy { Int($0[i].trimmingCharacters(in: .whitespaces)) != nil }
            }
        }
        if let idName, idName == xName || idName == yName { throw bad("the id column \(idName) is also a coordinate column") }

        // New names; a rename onto a column that exists is refused.
        var names = header
        var renames: [(from: String, to: String, flag: String)] = [(xName, "X_centroid", "--x"), (yName, "Y_centroid", "--y")]
        if let idName { renames.insert((idName, "CellID", "--id"), at: 0) } else if seen["CellID"] != nil {
            throw bad("a column CellID is there but another id column was chosen")
        }
        for r in renames where r.from != r.to {
            if seen[r.to] != nil { throw bad("\(r.flag) \(r.from) becomes \(r.to), but the table has a column \(r.to) too; name that one with \(r.flag) or drop one") }
            names[seen[r.from]!] = r.to
        }
        var warnings: [String] = []
        if o.clusterRuns {
            for c in clusterColumns { if let i = seen[c] {
                let to = renamedPrefix + c
                if seen[to] != nil { throw bad("columns \(c) and \(to) are both there; cluster adds its own \(c) column: rename or drop them") }
                names[i] = to
                warnings.append("column \(c) kept as \(to) (cluster adds its own \(c))")
            } }
        }
        for r in o.required where !names.contains(r) {
            throw bad("no column \"\(r)\" for stats' cell types (stats runs on this table without cluster); name the column with --label COLUMN; columns: \(cols)")
        }

        // Values: coordinates are finite numbers, ids non-empty and unique.
        let xi = seen[xName]!, yi = seen[yName]!
        let ii = idName.map { seen[$0]! }
        var firstLine: [String: Int] = [:]
        firstLine.reserveCapacity(rows.count)
        for (k, r) in rows.enumerated() {
            let where_ = "line \(rowLine[k])" + (ii.map { " (\(idName!) \(r[$0]))" } ?? "")
            for (ci, cname) in [(xi, xName), (yi, yName)] {
                let s = r[ci].trimmingCharacters(in: .whitespaces)
                guard let v = Double(s), v.isFinite else {
                    throw bad("\(where_): coordinate \(cname) is \"\(r[ci])\", not a finite number")
                }
            }
            if let ii {
                let id = r[ii].trimmingCharacters(in: .whitespaces)
                guard !id.isEmpty else { throw bad("line \(rowLine[k]): empty id (\(idName!))") }
                if let f = firstLine[id] {
                    throw bad("duplicate id \(idName!) \(id) on lines \(f) and \(rowLine[k]); ids must be unique (a table per image: split tables of several images)")
                }
                firstLine[id] = rowLine[k]
            }
        }
        // A column that holds numbers (its first row does) holds them in every row: text in a marker
        // column (a shifted field, "n/a", "#DIV/0!") is refused here, where its line is known. "NaN"
        // parses; cluster refuses it in the markers it uses.
        if let first = rows.first {
            let numeric = first.indices.filter { $0 != ii && Double(first[$0].trimmingCharacters(in: .whitespaces)) != nil }
            for (k, r) in rows.enumerated() {
                for ci in numeric where Double(r[ci].trimmingCharacters(in: .whitespaces)) == nil {
                    let where_ = "line \(rowLine[k])" + (ii.map { " (\(idName!) \(r[$0]))" } ?? "")
                    throw bad("\(where_): column \(header[ci]) is \"\(r[ci])\", not a number (the column holds numbers); fix or drop the row")
                }
            }
        }
        var out = CSVTable(header: names, rows: rows)
        if ii == nil {
            out.header.insert("CellID", at: 0)
            for k in out.rows.indices { out.rows[k].insert(String(k + 1), at: 0) }
            warnings.append("no id column (\(idColumns.joined(separator: ", "))): CellID 1..\(rows.count) in row order")
        }
        return Normalised(table: out, id: idName, x: xName, y: yName, tool: guessTool(header: header), warnings: warnings)
    }

    /// A field with spaces or tabs around it (`1, 2.5`): they are dropped, as epipe's readers do not trim.
    static func padded(_ f: String) -> Bool {
        guard let a = f.utf8.first, let z = f.utf8.last else { return false }
        return a == 32 || a == 9 || z == 32 || z == 9
    }

    /// Line breaks inside a record's fields (quoted).
    static func breaks(_ r: [String]) -> Int {
        var n = 0
        for f in r where f.utf8.contains(10) || f.utf8.contains(13) {
            var prevCR = false
            for b in f.utf8 { if b == 13 { n += 1; prevCR = true } else { if b == 10 && !prevCR { n += 1 }; prevCR = false } }
        }
        return n
    }
}
