import Foundation
import EpipeCore

/// epipe-ingest's parameters, each written here once: its default (the flag's), where else it comes
/// from (the stage list from the root's epipe.json) and how it is checked, with one line saying what
/// is wrong. Ingest has no manifest: job.json records the stages and per-job params it chose.
public struct IngestParams: Sendable, Equatable {
    public static let defaultSettle: Double = 30
    public static let defaultMaxPixels = 20_000_000_000

    /// Only files whose mtime is at least this many seconds old are taken.
    public var settle: Double
    /// `--stages` as given (comma-separated); nil = the root's epipe.json list.
    public var stages: String?
    /// The job name (only with a single scan); nil = from the file name.
    public var name: String?
    /// Per-job params by stage, from `--param stage.key=value`.
    public var params: [String: [String: JSONValue]]
    /// Images with more pixels (width x height x channels) are refused.
    public var maxPixels: Int

    /// Checks the name and reads the `--param` values (numbers, true/false, else strings) before
    /// anything is registered.
    public init(settle: Double = defaultSettle, stages: String? = nil, name: String? = nil, param: [String] = [], maxPixels: Int = defaultMaxPixels) throws {
        if let n = name { try Names.validateName(n, what: "job name", path: "--name") }
        self.settle = settle; self.stages = stages; self.name = name; self.maxPixels = maxPixels
        params = [:]
        for p in param {
            guard let eq = p.firstIndex(of: "="), let dot = p[..<eq].firstIndex(of: ".") else {
                throw EpipeError.badInput("--param \(p): expected stage.key=value, e.g. segment.nuclear=DAPI")
            }
            let st = String(p[..<dot]), key = String(p[p.index(after: dot)..<eq]), val = String(p[p.index(after: eq)...])
            guard Names.stages.contains(st) else { throw EpipeError.badInput("--param \(p): unknown stage \"\(st)\"") }
            params[st, default: [:]][key] = Double(val).map { .number($0) } ?? (val == "true" ? .bool(true) : val == "false" ? .bool(false) : .string(val))
        }
    }

    /// The stages new jobs go through, in order: `stages`, else the root's; each must be a known stage.
    public func stageList(config: RootConfig) throws -> [String] {
        let list = stages.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? config.stages
        for s in list where !Names.stages.contains(s) {
            throw EpipeError.badInput("--stages: unknown stage \"\(s)\"; known: \(Names.stages.joined(separator: ","))")
        }
        guard !list.isEmpty else { throw EpipeError.badInput("--stages: empty stage list") }
        return list
    }

    /// The stages a cell-table job (`--cells`) runs after ingest, when `--stages` is not given.
    public static let defaultCellStages = ["cluster", "stats"]

    /// The stages of a cell-table job, in order: "segment" (which ingest writes), then `stages` (default
    /// cluster,stats), which may name only cluster and stats, cluster first. The root's list does not apply.
    public func cellStageList() throws -> [String] {
        let list = stages.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? Self.defaultCellStages
        guard [["cluster"], ["stats"], ["cluster", "stats"]].contains(list) else {
            throw EpipeError.badInput("--stages \(stages ?? ""): a cell table (--cells) stands in for denoise and segment; give cluster,stats, cluster or stats")
        }
        return ["segment"] + list
    }

    /// A name given names exactly one scan.
    public func check(scans: Int) throws {
        if name != nil && scans > 1 { throw EpipeError.badInput("--name: given, but \(scans) scans were found; --name needs exactly one") }
    }
}
