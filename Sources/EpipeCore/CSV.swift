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

    public static func quote(_ s: String) -> String {
        var needs = false
        for b in s.utf8 where b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { needs = true; break }
        if needs { return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        return s
    }

    public func render() -> String {
        var s = header.map(CSVTable.quote).joined(separator: ",") + "\n"
        s.reserveCapacity(rows.count * header.count * 8)
        for r in rows { s += r.map(CSVTable.quote).joined(separator: ",") + "\n" }
        return s
    }

    public func write(_ path: String) throws { try AtomicFile.write(render(), to: path) }

    /// Compact decimal rendering for numbers in CSV outputs.
    public static func num(_ v: Double, digits: Int = 4) -> String {
        if v.isNaN { return "NaN" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        if let f = fastFixed(v, digits: digits) { return f }
        var s = String(format: "%.\(digits)f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    private static let pow10: [Double] = (0...9).map { pow(10, Double($0)) }

    /// `%.Nf` with trailing zeros removed, without Foundation formatting: the value scaled by 10^N
    /// is rounded to an integer when it is far enough from a rounding tie that the scaling's
    /// error (< 1 ulp) cannot change the result; otherwise nil (the caller uses printf).
    static func fastFixed(_ v: Double, digits: Int) -> String? {
        guard digits >= 0 && digits <= 9 && v.isFinite else { return nil }
        let x = abs(v) * pow10[digits]
        guard x < 1e15 else { return nil }
        let fl = x.rounded(.down), frac = x - fl
        guard abs(frac - 0.5) > 1e-6 else { return nil }
        var m = Int64(frac > 0.5 ? fl + 1 : fl)
        if m == 0 { return "0" }
        let p = Int64(pow10[digits])
        let ip = m / p
        var fp = m % p, d = digits
        while d > 0 && fp % 10 == 0 { fp /= 10; d -= 1 }
        m = 0
        var s = v < 0 ? "-" : ""
        s += String(ip)
        if d > 0 {
            let f = String(fp)
            s += "." + String(repeating: "0", count: d - f.count) + f
        }
        return s
    }
}
