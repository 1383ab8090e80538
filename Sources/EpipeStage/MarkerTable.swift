import Foundation
import EpipeCore
import EpipeImage

/// The parts of an MCMICRO markers.csv (read by EpipeImage's `Markers`) that preprocessing uses:
/// cycle per channel, which channels are blanks (a `blank`/`is_blank` column with TRUE/1, or a
/// name matching the blank pattern), and MCMICRO's `background` column naming the channel a
/// marker subtracts.
public struct MarkerTable: Sendable {
    public var names: [String]
    public var cycles: [Int]?
    public var blank: [Bool]
    public var background: [String?]

    /// `blankPattern`: a case-insensitive regular expression for blank channel names (the
    /// default is `DenoiseParams.defaultBlankPattern`, the denoise stage's parameter).
    public init(names: [String], csvPath: String?, blankPattern: String) throws {
        self.names = names
        let re = try? NSRegularExpression(pattern: blankPattern, options: [.caseInsensitive])
        func matches(_ s: String) -> Bool { re?.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil }
        blank = names.map(matches)
        background = names.map { _ in nil }
        cycles = nil
        guard let p = csvPath, Files.exists(p) else { return }
        let t: Markers.Table, read: [String]?
        do {
            t = try Markers.table(csvPath: p)
            read = try t.names()
        } catch let e as ImageError { throw EpipeError.badInput(e.description) }
        guard let csvNames = read else { return }
        guard csvNames.count == names.count else {
            throw EpipeError.badInput("\(p): lists \(csvNames.count) markers but the image has \(names.count) channels; fix markers.csv")
        }
        if let ci = t.column("cycle_number") ?? t.column("cycle") {
            var cs: [Int] = []
            for (i, v) in t.values(ci).enumerated() {
                guard let c = Int(v) else {
                    throw EpipeError.badInput("\(p): line \(i + 2): cycle_number \"\(v)\" is not an integer")
                }
                cs.append(c)
            }
            cycles = cs
        }
        if let bi = t.column("blank") ?? t.column("is_blank") {
            for (i, v) in t.values(bi).enumerated() where ["true", "1", "yes", "t"].contains(v.lowercased()) { blank[i] = true }
        }
        if let gi = t.column("background") {
            for (i, v) in t.values(gi).enumerated() {
                guard !v.isEmpty, !["na", "nan", "none"].contains(v.lowercased()) else { continue }
                guard let j = names.firstIndex(of: v) else {
                    throw EpipeError.badInput("\(p): line \(i + 2): background \"\(v)\" is not a marker_name in this file")
                }
                background[i] = names[j]; blank[j] = true
            }
        }
    }
}
