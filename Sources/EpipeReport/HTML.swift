import Foundation
import EpipeKernels

/// Escaping and formatting for the report pages. Every piece of text that comes from a file
/// (names, paths, params, metrics, errors, log lines) goes through `esc` or `href`.
enum HTML {
    /// Text or attribute value with & < > " ' escaped.
    static func esc(_ s: String) -> String { Markup.escape(s) }

    /// Characters a relative URL path keeps as they are; everything else (':' '?' '#' '%' spaces...)
    /// is percent-encoded, so a file name can neither start a scheme nor end the path.
    private static let pathAllowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~/")

    /// A job-relative path as an escaped href, or nil for one that could leave the folder
    /// (absolute, `..`, a backslash, empty).
    static func href(_ rel: String) -> String? {
        guard !rel.isEmpty, !rel.hasPrefix("/"), !rel.contains("\\"),
              !rel.split(separator: "/", omittingEmptySubsequences: false).contains(where: { $0 == ".." || $0.isEmpty }) else { return nil }
        guard let enc = rel.addingPercentEncoding(withAllowedCharacters: pathAllowed) else { return nil }
        return esc(enc)
    }

    /// A number for people: integers with thin-space groups, else four significant digits.
    static func num(_ d: Double) -> String {
        guard d.isFinite else { return "—" }
        if d == d.rounded(), abs(d) < 1e15 { return grouped(Int64(d)) }
        let a = abs(d)
        if a >= 1e4 { return grouped(Int64(d.rounded())) }
        if a >= 1e-3 {
            var s = String(format: "%.4g", d)
            if s.contains(".") && !s.contains("e") {
                while s.hasSuffix("0") { s.removeLast() }
                if s.hasSuffix(".") { s.removeLast() }
            }
            return s
        }
        return String(format: "%.2e", d)
    }

    static func grouped(_ v: Int64) -> String {
        let digits = String(v.magnitude)
        guard digits.count > 4 else { return v < 0 ? "-" + digits : digits }
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out += "\u{2009}" }
            out.append(ch)
        }
        return v < 0 ? "-" + out : out
    }

    /// 47398164 -> "45.2 MiB".
    static func bytes(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : String(format: v >= 100 ? "%.0f" : "%.1f", v) + " " + units[u]
    }

    /// 1.491 -> "1.49 s", 125 -> "2 min 05 s", 3720 -> "1 h 02 min".
    static func seconds(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "—" }
        if s < 60 { return String(format: s < 10 ? "%.2f s" : "%.1f s", s) }
        let t = Int(s.rounded())
        if t < 3600 { return String(format: "%d min %02d s", t / 60, t % 60) }
        return String(format: "%d h %02d min", t / 3600, (t % 3600) / 60)
    }
}
