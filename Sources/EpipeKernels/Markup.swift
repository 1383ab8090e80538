/// Escaping for XML and HTML text and attribute values, shared by the OME-XML writer, the S3
/// client's request bodies and the QC report: & < > " ' and the whitespace controls an attribute
/// would otherwise normalise away (\n \r \t) become character references.
public enum Markup {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

extension Markup {
    /// `s` as one line for a terminal or a log: line breaks and tabs become spaces, every other
    /// control character (C0, DEL, C1) a "?", so that text quoted from a file (a CSV field, a TIFF
    /// tag, a JSON string) cannot break a message over lines or send escape sequences.
    public static func oneLine(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: isControl) else { return s }
        var out = String.UnicodeScalarView()
        for c in s.unicodeScalars {
            if c == "\n" || c == "\r" || c == "\t" { out.append(" ") } else if isControl(c) { out.append("?") } else { out.append(c) }
        }
        return String(out)
    }

    @inline(__always) static func isControl(_ c: Unicode.Scalar) -> Bool { c.value < 0x20 || (c.value >= 0x7F && c.value < 0xA0) }
}
