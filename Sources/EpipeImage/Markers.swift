import Foundation

/// MCMICRO-style markers.csv (`cycle,marker_name,...`): channel names in file order.
public enum Markers {
    public static func read(csvPath: String) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: csvPath))
        } catch {
            throw ImageError(path: csvPath, message: "cannot read markers file (\(error.localizedDescription)); check the path")
        }
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) else {
            throw ImageError(path: csvPath, message: "markers file is not text; provide a CSV with a marker_name column")
        }
        return try parse(text, path: csvPath)
    }

    static func parse(_ text: String, path: String) throws -> [String] {
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" })
            .map { String($0) }
        // strip BOM
        if var first = lines.first, first.hasPrefix("\u{FEFF}") { first.removeFirst(); lines[0] = first }
        lines = lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard let header = lines.first else {
            throw ImageError(path: path, message: "markers file is empty; add a header line with a marker_name column and one line per channel")
        }
        let cols = splitCSVLine(header).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let idx = cols.firstIndex(of: "marker_name") else {
            throw ImageError(path: path, message: "markers file has no marker_name column (header: \(header.prefix(80))); add a marker_name column as in MCMICRO markers.csv")
        }
        var names: [String] = []
        for (ln, line) in lines.dropFirst().enumerated() {
            let f = splitCSVLine(line)
            guard idx < f.count else {
                throw ImageError(path: path, message: "line \(ln + 2) has \(f.count) fields, marker_name is field \(idx + 1); fix the CSV line")
            }
            names.append(f[idx].trimmingCharacters(in: .whitespaces))
        }
        return names
    }

    /// RFC-4180-ish: commas, double quotes with "" escapes.
    static func splitCSVLine(_ line: String) -> [String] {
        var fields: [String] = []
        var cur = ""
        var inQ = false
        var it = line.makeIterator()
        var pending: Character? = nil
        while true {
            let ch: Character
            if let p = pending { ch = p; pending = nil } else if let c = it.next() { ch = c } else { break }
            if inQ {
                if ch == "\"" {
                    if let nx = it.next() {
                        if nx == "\"" { cur.append("\"") } else { inQ = false; pending = nx }
                    } else { inQ = false }
                } else { cur.append(ch) }
            } else if ch == "\"" {
                inQ = true
            } else if ch == "," {
                fields.append(cur); cur = ""
            } else {
                cur.append(ch)
            }
        }
        fields.append(cur)
        return fields
    }
}
