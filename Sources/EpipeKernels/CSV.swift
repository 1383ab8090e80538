import Foundation

/// The one CSV reader (RFC 4180 with the usual leniency), for tables epipe writes and for the
/// markers.csv files people write; and how epipe writes a field and a number.
public enum CSV {
    /// The records of `text`: fields separated by commas; a field that begins with a double
    /// quote is quoted (`""` inside stands for one quote; commas and line breaks are data; text
    /// after the closing quote is appended); records end at LF, CRLF or a lone CR. A leading
    /// byte-order mark is dropped. A blank line is a record of one empty field; a last line
    /// without a line break is a record.
    public static func parse(_ text: String) -> [[String]] {
        var out: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQ = false
        var it = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        var first = true
        while let c = pending ?? it.next() {
            pending = nil
            if first {
                first = false
                if c == "\u{FEFF}" { continue }
            }
            if inQ {
                if c == "\"" {
                    if let n = it.next() { if n == "\"" { field.unicodeScalars.append("\"") } else { inQ = false; pending = n } } else { inQ = false }
                } else { field.unicodeScalars.append(c) }
            } else if c == "\"" && field.isEmpty { inQ = true }
            else if c == "," { row.append(field); field = "" }
            else if c == "\n" || c == "\r" {
                row.append(field); field = ""; out.append(row); row = []
                if c == "\r", let n = it.next(), n != "\n" { pending = n }
            }
            else { field.unicodeScalars.append(c) }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); out.append(row) }
        return out
    }

    // MARK: - Writing

    /// A field as written: quoted (inner quotes doubled) when it holds a comma, quote or line break.
    /// Quotes are doubled scalar by scalar: a quote followed by a combining mark is one Character
    /// to String's replacing, and would be left single (the field cut short when read back).
    public static func quote(_ s: String) -> String {
        var needs = false
        for b in s.utf8 where b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r") { needs = true; break }
        guard needs else { return s }
        var out = String.UnicodeScalarView()
        out.append("\"")
        for c in s.unicodeScalars {
            if c == "\"" { out.append("\"") }
            out.append(c)
        }
        out.append("\"")
        return String(out)
    }

    /// Compact decimal rendering for numbers in CSV outputs: integers without a point, else at
    /// most `digits` decimals with trailing zeros removed; NaN as "NaN".
    public static func number(_ v: Double, digits: Int = 4) -> String {
        if v.isNaN { return "NaN" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        if let f = fastFixed(v, digits: digits) { return f }
        var s = String(format: "%.\(digits)f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        if s == "-0" { return "0" }   // a tiny negative rounded to zero
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
