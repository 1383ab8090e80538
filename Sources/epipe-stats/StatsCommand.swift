import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage
import EpipeSpatial

struct StatsTool: StageTool {
    let stage = "stats"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] { try typedParams(job, defaults: StatsParams(), flags: flags).record }
    /// The table stats reads: cluster/cells.csv; for a job whose stages do not include cluster (a cell
    /// table ingested with its own cell types, `epipe-ingest --cells FILE --stages stats`), segment/cells.csv.
    static func source(_ job: Job) -> (stage: String, file: String) {
        job.spec.stages.contains("cluster") ? ("cluster", "cluster/cells.csv") : ("segment", "segment/cells.csv")
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        let s = Self.source(job)
        return try upstream(job, s.stage, [s.file])
    }

    func run(_ ctx: StageContext) throws -> StageResult {
        let col = (try decodeParams(ctx.params) as StatsParams).label
        let file = Self.source(ctx.job).file
        let t = try CSVTable.read(try ctx.job.path(file))
        guard let labels = t.strings(col) else { throw EpipeError.badInput("\(file): no column \"\(col)\"; columns: \(t.header.joined(separator: ","))") }
        let f = CellTypeStats.frequencies(labels: labels)
        var out = CSVTable(header: [col, "count", "proportion"])
        for i in 0..<f.types.count { out.rows.append([f.types[i], String(f.counts[i]), CSVTable.num(f.proportions[i], digits: 5)]) }
        let fp = try ctx.output("frequencies.csv"); try out.write(fp)
        // QC: bar chart of proportions (one line per type: colour, name, count and percentage), and the cells on the slide coloured by type.
        let nb = f.types.count
        let bar = Canvas.bars(labels: (0..<nb).map { "\(f.types[$0])  \(f.counts[$0])  \(String(format: "%.1f%%", 100 * f.proportions[$0]))" }, values: f.proportions)
        let q1 = try ctx.qc("frequencies.png"); try bar.write(q1)
        var outputs = [fp, q1]
        let xs = t.doubles("X_centroid") ?? t.doubles("X_position"), ys = t.doubles("Y_centroid") ?? t.doubles("Y_position")
        if let xs, let ys, !xs.isEmpty {
            let q2 = try ctx.qc("cell-types-map.png"); try Canvas.pointMap(xs: xs, ys: ys, categories: labels, order: f.types).write(q2); outputs.append(q2)
        }
        var m: [String: JSONValue] = ["cells": .number(Double(labels.count)), "types": .number(Double(nb))]
        m["frequencies"] = .object(Dictionary(uniqueKeysWithValues: (0..<nb).map { (f.types[$0], JSONValue.number(f.proportions[$0])) }))
        m["warnings"] = .array(labels.isEmpty ? ["no cells"] : [])
        return StageResult(outputs: outputs, metrics: m)
    }
}

@main
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-stats",
        abstract: "Cell-type statistics: counts and proportions per phenotype.",
        discussion: """
        Reads cluster/cells.csv (segment/cells.csv when the job's stages do not include cluster, as for \
        epipe-ingest --cells FILE --stages stats) and writes stats/frequencies.csv (type, count, \
        proportion) with a bar chart and a map of cell types in stats/qc/.
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Column holding the cell type. Default \(StatsParams().label).") var label: String?

    func run() throws {
        // Flag names are StatsParams' keys; values are checked where the struct is decoded.
        let code = StageRunner(tool: StatsTool(flags: [StatsParams.CodingKeys.label.rawValue: label.map { .string($0) }]), options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
