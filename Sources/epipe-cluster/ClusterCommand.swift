import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage
import EpipeCluster

struct ClusterTool: StageTool {
    let stage = "cluster"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] { try typedParams(job, defaults: ClusterParams(), flags: flags).record }
    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] { try upstream(job, "segment", ["segment/cells.csv"]) }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p: ClusterParams = try decodeParams(ctx.params)
        let table = try CSVTable.read(try ctx.job.path("segment/cells.csv"))
        let (markers, missing) = p.selectMarkers(header: table.header)
        if let w = missing.first {
            throw EpipeError.badInput("cluster param markers: no column \"\(w)\" in segment/cells.csv; columns: \(ClusterParams.markerColumns(header: table.header).joined(separator: ","))")
        }
        guard !markers.isEmpty else { throw EpipeError.badInput("segment/cells.csv: no marker columns to cluster on; columns: \(table.header.joined(separator: ","))") }
        let cols = try markers.map { m -> [Double] in
            guard let c = table.doubles(m) else { throw EpipeError.badInput("segment/cells.csv: no column \(m)") }
            return c
        }
        let prog = ctx.progress("cluster", total: 3, unit: "steps")
        let r = Clustering.run(columns: cols, markers: markers, params: p) { prog.advance() }
        let (k, d, n, names, count, mean) = (r.k, markers.count, table.rows.count, r.phenotypes, r.counts, r.zMeans)
        var out = CSVTable(header: table.header + ["cluster", "phenotype"])
        out.rows = table.rows.enumerated().map { i, row in row + [String(r.labels[i]), names[r.labels[i]]] }
        let cellsPath = try ctx.output("cells.csv"); try out.write(cellsPath)
        var mk = CSVTable(header: ["cluster", "phenotype", "cells"] + markers.map { $0 + "_z" } + markers.map { $0 + "_asinh" })
        for c in 0..<k { mk.rows.append([String(c), names[c], String(count[c])] + mean[c].map { CSVTable.num($0, digits: 3) } + r.asinhMeans[c].map { CSVTable.num($0, digits: 3) }) }
        let mPath = try ctx.output("markers.csv"); try mk.write(mPath)
        // QC: heatmap clusters (name, cells) x markers, coloured by the z of the cluster mean.
        let hm = Canvas.heatmap(rows: (0..<k).map { "\(names[$0]) (\(count[$0]))" }, columns: markers, values: mean)
        let q = try ctx.qc("cluster-heatmap.png"); try hm.write(q)
        return StageResult(outputs: [cellsPath, mPath, q], metrics: [
            "cells": .number(Double(n)), "k": .number(Double(k)), "markers": .array(markers.map { .string($0) }),
            "inertia": .number(r.inertia), "iterations": .number(Double(r.iterations)),
            "cluster_sizes": .array(count.map { .number(Double($0)) }), "phenotypes": .array(names.map { .string($0) }),
            "warnings": .array(n == 0 ? ["no cells to cluster"] : [])])
    }
}

@main
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-cluster",
        abstract: "Cluster cells into phenotypes: arcsinh, z-score, k-means (k-means++ with a seed).",
        discussion: """
        Reads segment/cells.csv, transforms marker means by arcsinh(x / cofactor), z-scores each marker, \
        and runs k-means. Writes cluster/cells.csv (the input columns plus cluster and phenotype), \
        cluster/markers.csv (per-cluster mean of each marker) and a heatmap in cluster/qc/.
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Number of clusters, 1...1000. Default \(ClusterParams().k).") var k: Int?
    @Option(name: .long, help: "arcsinh cofactor, > 0. Default \(String(format: "%g", ClusterParams().cofactor)).") var cofactor: Double?
    @Option(name: .long, help: "Comma-separated marker columns (default \(ClusterParams().markers): all but nuclear/background).") var markers: String?
    @Option(name: .long, help: "Random seed of the k-means++ initialisation, >= 0. Default \(ClusterParams().seed).") var seed: Int?

    func run() throws {
        // Flag names are ClusterParams' keys; values are checked where the struct is decoded.
        let tool = ClusterTool(flags: [ClusterParams.CodingKeys.k.rawValue: k.map { .number(Double($0)) },
                                       ClusterParams.CodingKeys.cofactor.rawValue: cofactor.map { .number($0) },
                                       ClusterParams.CodingKeys.markers.rawValue: markers.map { .string($0) },
                                       ClusterParams.CodingKeys.seed.rawValue: seed.map { .number(Double($0)) }])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
