import Foundation

/// Wall time of a stage's steps, for the log: `lap("threshold")` closes a step; `text` lists them.
public struct LapTimer {
    var clock = Date()
    public private(set) var laps: [(String, Double)] = []
    public init() {}
    public mutating func lap(_ what: String) { laps.append((what, Date().timeIntervalSince(clock))); clock = Date() }
    /// "threshold 1.2 s, table 0.3 s"
    public var text: String { laps.map { $0.0 + " " + CSVTable.num($0.1, digits: 1) + " s" }.joined(separator: ", ") }
}
