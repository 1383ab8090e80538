import Foundation
import EpipeCore

/// The parts of an MCMICRO markers.csv that preprocessing uses: cycle per channel, which
/// channels are blanks (a `blank`/`is_blank` column with TRUE/1, or a name matching the blank
/// pattern), and MCMICRO's `background` column naming the channel a marker subtracts.
public struct MarkerTable: Sendable {
    public var names: [String]
    public var cycles: [Int]?
    public var blank: [Bool]
    public var background: [String?]

    public static let defaultBlankPattern = "^(blank|bg[0-9_]*$|background|empty|autofluor|af[0-9]*$)"

    public init(names: [String], csvPath: String?, blankPattern: String = MarkerTable.defaultBlankPattern) throws {
        self.names = names
        let re = try? NSRegularExpression(pattern: blankPattern, options: [.caseInsensitive])
        func matches(_ s: String) -> Bool { re?.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil }
        blank = names.map(matches)
        background = names.map { _ in nil }
        cycles = nil
        guard let p = csvPath, Files.exists(p) else { return }
        let t = try CSVTable.read(p)
        let lower = t.header.map { $0.lowercased() }
        guard let ni = lower.firstIndex(of: "marker_name") else { return }
        let csvNames = t.rows.map { $0[ni].trimmingCharacters(in: .whitespaces) }
        guard csvNames.count == names.count else {
            throw EpipeError.badInput("\(p): lists \(csvNames.count) markers but the image has \(names.count) channels; fix markers.csv")
        }
        if let ci = lower.firstIndex(of: "cycle_number") ?? lower.firstIndex(of: "cycle") {
            var cs: [Int] = []
            for (i, r) in t.rows.enumerated() {
                guard let c = Int(r[ci].trimmingCharacters(in: .whitespaces)) else {
                    throw EpipeError.badInput("\(p): line \(i + 2): cycle_number \"\(r[ci])\" is not an integer")
                }
                cs.append(c)
            }
            cycles = cs
        }
        if let bi = lower.firstIndex(of: "blank") ?? lower.firstIndex(of: "is_blank") {
            for (i, r) in t.rows.enumerated() where ["true", "1", "yes", "t"].contains(r[bi].lowercased().trimmingCharacters(in: .whitespaces)) { blank[i] = true }
        }
        if let gi = lower.firstIndex(of: "background") {
            for (i, r) in t.rows.enumerated() {
                let v = r[gi].trimmingCharacters(in: .whitespaces)
                guard !v.isEmpty, !["na", "nan", "none"].contains(v.lowercased()) else { continue }
                guard let j = names.firstIndex(of: v) else {
                    throw EpipeError.badInput("\(p): line \(i + 2): background \"\(v)\" is not a marker_name in this file")
                }
                background[i] = names[j]; blank[j] = true
            }
        }
    }
}
