import Foundation
import EpipeCore
import EpipeImage

/// Resolves a channel given by name (case-insensitive) or index.
public func channelIndex(_ spec: String, names: [String], what: String) throws -> Int {
    if let i = Int(spec), i >= 0, i < names.count { return i }
    if let i = names.firstIndex(where: { $0.caseInsensitiveCompare(spec) == .orderedSame }) { return i }
    throw EpipeError.badInput("\(what) \"\(spec)\": no such channel; channels are \(names.joined(separator: ","))")
}

/// The nuclear stain by its usual names, else channel 0.
public func guessNuclear(_ names: [String]) -> Int {
    let keys = ["dapi", "hoechst", "dna", "nuclear", "nuclei", "h3342", "draq5", "sytox", "ir191", "ir193"]
    for k in keys { if let i = names.firstIndex(where: { $0.lowercased().hasPrefix(k) || $0.lowercased().contains(k) }) { return i } }
    return 0
}
