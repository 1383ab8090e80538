import Foundation

/// Optional per-marker statistics besides the mean, as MCQuant's `--intensity_props`
/// `intensity_median`, `intensity_std` (numpy's population std, ddof 0) and `intensity_sum`.
public struct CellStats: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let median = CellStats(rawValue: 1)
    public static let std = CellStats(rawValue: 2)
    public static let sum = CellStats(rawValue: 4)
    /// Canonical order (also the order of the columns).
    public static let all: [(name: String, stat: CellStats)] = [("median", .median), ("std", .std), ("sum", .sum)]

    /// Parses a comma-separated list such as "median,std,sum" (any order and subset; "" or
    /// "none" for none). Returns the set and the items that are not statistics.
    public static func parse(_ list: String) -> (stats: CellStats, unknown: [String]) {
        var s: CellStats = [], bad: [String] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !item.isEmpty {
            if item == "none" { continue }
            if let m = all.first(where: { $0.name == item || "intensity_" + $0.name == item }) { s.insert(m.stat) } else { bad.append(item) }
        }
        return (s, bad)
    }

    /// "median,std,sum" in canonical order, "none" when empty.
    public var list: String {
        let n = CellStats.all.filter { contains($0.stat) }.map(\.name)
        return n.isEmpty ? "none" : n.joined(separator: ",")
    }
    public var names: [String] { CellStats.all.filter { contains($0.stat) }.map(\.name) }
}
