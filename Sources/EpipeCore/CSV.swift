import Foundation
import EpipeKernels

/// A small CSV table: a header and rows of fields (RFC 4180 quoting on read and write; read by
/// EpipeKernels' `CSV.parse`).
public struct CSVTable: Sendable {
    public var header: [String]
    public var rows: [[String]]
    public init(header: [String], rows: [[String]] = []) { self.header = header; self.rows = rows }

    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }
    public func doubles(_ name: String) -> [Double]? {
        guard let i = column(name) else { return nil }
        return rows.map { i < $0.count ? Double($0[i]) ?? .nan : .nan }
    }
    public func strings(_ name: String) -> [String]? {
        guard let i = column(name) else { return nil }
        return rows.map { i < $0.count ? $0[i] : "" }
    }

    public static func read(_ path: String) throws -> CSVTable {
        let data = try Files.read(path)
        guard let text = String(data: data, encoding: .utf8) else { throw EpipeError.badInput("\(path): not UTF-8 text") }
        let recs = CSV.parse(text)
        guard let h = recs.first, !h.isEmpty else { throw EpipeError.badInput("\(path): empty CSV (no header line)") }
        let header = h.map { $0.trimmingCharacters(in: .whitespaces) }
        var rows: [[String]] = []
        rows.reserveCapacity(recs.count)
        for (i, r) in recs.dropFirst().enumerated() {
            if r.count == 1 && r[0].isEmpty { continue }
            guard r.count == header.count else {
                throw EpipeError.badInput("\(path): line \(i + 2) has \(r.count) fields, the header has \(header.count)")
            }
            rows.append(r)
        }
        return CSVTable(header: header, rows: rows)
    }

    public static func quote(_ s: String) -> String { CSV.quote(s) }

    public func render() -> String {
        var s = header.map(CSVTable.quote).joined(separator: ",") + "\n"
        s.reserveCapacity(rows.count * header.count * 8)
        for r in rows { s += r.map(CSVTable.quote).joined(separator: ",") + "\n" }
        return s
    }

    public func write(_ path: String) throws { try AtomicFile.write(render(), to: path) }

    /// Compact decimal rendering for numbers in CSV outputs (`CSV.number`).
    public static func num(_ v: Double, digits: Int = 4) -> String { CSV.number(v, digits: digits) }
}
