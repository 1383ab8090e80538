import Foundation
import EpipeKernels

/// The parameters of one stats run, each written here once: its key (the flag's name and job.json's
/// `params.stats` key), its default, how it is read and how it is checked. The runner encodes the
/// defaults, overlays job.json and the flags given, decodes this struct once (which validates it)
/// and records its encoding in the manifest.
public struct StatsParams: Codable, Sendable, Equatable {
    /// The column of cluster/cells.csv holding each cell's type.
    public var label: String = "phenotype"

    public init(label: String = "phenotype") { self.label = label }

    public enum CodingKeys: String, CodingKey, CaseIterable { case label }

    /// A parameter that cannot be used; `message` is one line naming the key.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads each key (a missing one takes its default) and checks it. Unknown keys are refused so a
    /// typo is not silently ignored; a label must be a non-empty column name (a string).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let known = CodingKeys.allCases.map(\.rawValue)
        if let bad = c.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw Invalid(message: "\(bad): unknown parameter; known: \(known.joined(separator: ", "))")
        }
        let lk = AnyKey(CodingKeys.label.rawValue)
        if !c.contains(lk) { label = StatsParams().label }
        else if let s = try? c.decode(String.self, forKey: lk) { label = s }
        else { throw Invalid(message: "label: expected a column name of cluster/cells.csv (a string)") }
        guard !label.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Invalid(message: "label: expected a column name of cluster/cells.csv, got \"\(label)\"")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label)
    }
}
