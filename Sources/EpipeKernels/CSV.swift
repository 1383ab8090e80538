/// The one CSV reader (RFC 4180 with the usual leniency), for tables epipe writes and for the
/// markers.csv files people write.
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
}
