import Foundation
import ArgumentParser
import EpipeCore
import EpipeKernels
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
        var p: StatsParams = try decodeParams(ctx.params)
        let file = Self.source(ctx.job).file
        let path = try ctx.job.path(file)
        let (header, _) = try CSVStream.head(path)
        // the default centroid columns fall back to MCMICRO's older X_position/Y_position
        if p.x == StatsParams().x && !header.contains(p.x) && header.contains("X_position") { p.x = "X_position" }
        if p.y == StatsParams().y && !header.contains(p.y) && header.contains("Y_position") { p.y = "Y_position" }
        for (col, flag) in [(p.label, "--label"), (p.x, "--x"), (p.y, "--y")] where !header.contains(col) {
            throw EpipeError.badInput("\(file): no column \"\(col)\" (\(flag)); columns: \(header.joined(separator: ","))")
        }
        let t = try CSVColumns.read(path, numbers: [p.x, p.y], strings: [p.label] + (header.contains("CellID") ? ["CellID"] : []))
        let labels = t.strings[p.label]!, xs = t.numbers[p.x]!, ys = t.numbers[p.y]!
        if labels.isEmpty {   // segmentation found no cells: empty tables, a warning, the job completes
            let none = "no cells in \(file) (segmentation found none): empty tables written"
            ctx.log.warn("\(ctx.job.spec.name): \(none)")
            let freq = try ctx.output("frequencies.csv"), inter = try ctx.output("interactions.csv")
            try CSVTable(header: [p.label, "count", "proportion"]).write(freq)
            try CSVTable(header: StatsOutputs.interactionColumns).write(inter)
            for stale in ["neighborhoods.csv", "cells.csv", "qc"] { try? FileManager.default.removeItem(atPath: try ctx.output(stale)) }
            return StageResult(outputs: [freq, inter], metrics: ["cells": .number(0), "types": .number(0), "graph": .string(p.graph.rawValue),
                                                                 "edges": .number(0), "perms": .number(Double(p.perms)), "seed": .number(Double(p.seed)),
                                                                 "warnings": .array([.string(none)])])
        }
        let pixel = ctx.job.manifest("segment")?.metrics["pixel_size_um"]?.doubleValue
        let report: SpatialReport
        do {
            report = try SpatialAnalysis.run(x: xs, y: ys, labels: labels, ids: t.strings["CellID"], params: p, imagePixelSize: pixel) { label, total in
                let prog = ctx.progress("stats " + label, total: total, unit: label == "enrichment" ? "perms" : "steps")
                return { prog.advance($0) }
            }
        } catch let e as StatsInputError { throw EpipeError.badInput("\(file): \(e.message)") }
        let r = report.enrichment
        ctx.log.info("\(ctx.job.spec.name): \(labels.count) cells, \(r.types) types; \(p.graph.rawValue) graph \(report.edges) edges; "
                     + "\(p.perms) permutations; " + report.seconds.map { "\($0.0) \(CSVTable.num($0.1, digits: 2)) s" }.joined(separator: ", "))
        let out = StatsOutputs(ctx: ctx, params: p, report: report, xs: xs, ys: ys, labels: labels, ids: t.strings["CellID"])
        return StageResult(outputs: try out.writeAll(), metrics: out.metrics())
    }
}

@main
struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-stats",
        abstract: "Spatial statistics per image: cell-type frequencies, neighbour graphs, neighbourhood enrichment with permutation p-values, cellular neighbourhoods; and cohort tables.",
        discussion: """
        Reads cluster/cells.csv (segment/cells.csv when the job's stages do not include cluster, as for \
        epipe-ingest --cells FILE --stages stats). Each image is analysed on its own, never pooled.

        Graph: knn (each cell to its --k nearest, directed, as squidpy's spatial_neighbors), radius (every \
        pair within --radius px, or --radius-um with the image's pixel size or --pixel-size) or delaunay \
        (the triangulation of the centroids, edges longer than --max-edge px dropped).

        Enrichment: per ordered pair of types (a, b), the edges from a-cells to b-cells against --perms label \
        permutations (seeded; in parallel): z = (observed - null mean) / null std (squidpy's nhood_enrichment), \
        p_enriched = (1 + #null >= observed) / (1 + perms), p_depleted its twin, Benjamini-Hochberg q-values \
        over all pairs; observed and expected are the mean number of b-neighbours around an a-cell.

        Cellular neighbourhoods (Schürch et al. 2020): each cell's window of its --window nearest cells \
        (itself included) as type fractions, k-means into --neighborhoods groups (0: skip).

        Writes stats/frequencies.csv, interactions.csv, neighborhoods.csv, cells.csv (CellID, x, y, type, \
        neighborhood) and stats/qc/*.png. With --cohort ROOT: one table over every job of ROOT whose \
        stats are complete (ROOT/cohort/frequencies.csv, interactions.csv and a stacked-bar picture).
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Column holding the cell type (default phenotype).") var label: String?
    @Option(name: .long, help: "Neighbour graph: knn (default), radius or delaunay.") var graph: String?
    @Option(name: .long, help: "knn: neighbours per cell (default 6).") var k: Int?
    @Option(name: .long, help: "radius: distance in pixels.") var radius: Double?
    @Option(name: .customLong("radius-um"), help: "radius: distance in micrometres (with the image's pixel size or --pixel-size).") var radiusUm: Double?
    @Option(name: .customLong("pixel-size"), help: "Micrometres per pixel (default: the segmented image's).") var pixelSize: Double?
    @Option(name: .customLong("max-edge"), help: "delaunay: drop edges longer than this many pixels.") var maxEdge: Double?
    @Option(name: .long, help: "Label permutations of the null (default 1000; 0: counts only).") var perms: Int?
    @Option(name: .long, help: "Seed of the permutations and of the neighbourhoods' k-means (default 0).") var seed: Int?
    @Option(name: .long, help: "Cellular neighbourhoods to find (default 10; 0: none).") var neighborhoods: Int?
    @Option(name: .long, help: "Cells in a neighbourhood window, the cell included (default 10).") var window: Int?
    @Option(name: .long, help: "Column of the x centroid (default X_centroid, else X_position).") var x: String?
    @Option(name: .long, help: "Column of the y centroid (default Y_centroid, else Y_position).") var y: String?
    @Option(name: .long, help: "Instead of running jobs: gather every job of ROOT with complete stats into ROOT/cohort/.") var cohort: String?

    func run() throws {
        if let cohort {
            try Cohort.run(rootPath: cohort, json: common.json)
            return
        }
        if let k, let g = graph, g.lowercased() != "knn" {
            throw EpipeError.badInput("--k \(k) is the knn graph's; with --graph \(g) it would change nothing (the neighbourhood window is --window)")
        }
        typealias K = StatsParams.CodingKeys
        let given: [(K, JSONValue?)] = [
            (.label, label.map { .string($0) }), (.graph, graph.map { .string($0) }), (.k, k.map { .number(Double($0)) }),
            (.radius, radius.map { .number($0) }), (.radiusUm, radiusUm.map { .number($0) }), (.pixelSize, pixelSize.map { .number($0) }),
            (.maxEdge, maxEdge.map { .number($0) }), (.perms, perms.map { .number(Double($0)) }), (.seed, seed.map { .number(Double($0)) }),
            (.neighborhoods, neighborhoods.map { .number(Double($0)) }), (.window, window.map { .number(Double($0)) }),
            (.x, x.map { .string($0) }), (.y, y.map { .string($0) })]
        // Flag names are StatsParams' keys; values are checked where the struct is decoded.
        let flags = Dictionary(uniqueKeysWithValues: given.map { ($0.0.rawValue, $0.1) })
        let code = StageRunner(tool: StatsTool(flags: flags), options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
