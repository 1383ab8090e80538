import Foundation
import ArgumentParser
import EpipeCore
import EpipeKernels
import EpipeStage
import EpipeCluster

struct ClusterTool: StageTool {
    let stage = "cluster"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] { try typedParams(job, defaults: ClusterParams(), flags: flags).record }

    /// segment/cells.csv, plus the gates, workflow and names files when given (with their sha256,
    /// so an edited file reruns the stage).
    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        let p: ClusterParams = try decodeParams(params)
        return try upstream(job, "segment", ["segment/cells.csv"]) + [("gates", p.gates), ("workflow", p.workflow), ("names", p.names)]
            .filter { !$0.1.isEmpty }.map { key, path in
                guard Files.exists(path) else { throw EpipeError.badInput("cluster param \(key): \(path): no such file") }
                let (h, n) = try Digest.sha256(file: path)
                return FileRef(path: Files.canonical(path), sha256: h, bytes: n)
            }
    }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p: ClusterParams = try decodeParams(ctx.params)
        let src = "segment/cells.csv"
        let path = try ctx.job.path(src)
        let (header, first) = try CSVStream.head(path)
        var (markers, missing) = p.selectMarkers(header: header)
        if let w = missing.first {
            throw EpipeError.badInput("cluster param markers: no column \"\(w)\" in \(src); columns: \(ClusterParams.markerColumns(header: header).joined(separator: ","))")
        }
        // auto leaves out text columns (a sample or image name a table from another tool carries)
        if p.markerNames == nil, let first {
            markers = markers.filter { m in Double(first[header.firstIndex(of: m)!]) != nil }
        }
        guard !markers.isEmpty else { throw EpipeError.badInput("\(src): no marker columns to cluster on; columns: \(header.joined(separator: ","))") }
        // the columns, not the rows: a million cells cost their numbers only
        let shape = header.filter { ClusterParams.shapeColumns.contains($0) && !["CellID", "cluster", "phenotype"].contains($0) }
        let table = try CSVColumns.read(path, numbers: markers + shape, strings: ["CellID"])
        let n = table.count
        if n == 0 {   // segmentation found none: empty tables, a warning, the job goes on
            let none = "no cells in \(src) (segmentation found none): empty tables written, nothing clustered"
            ctx.log.warn("\(ctx.job.spec.name): \(none)")
            let cells = try ctx.output("cells.csv")
            try AtomicFile.write(header.filter { $0 != "cluster" && $0 != "phenotype" }.map(CSV.quote).joined(separator: ",") + ",cluster,phenotype\n", to: cells)
            let table = try ctx.output("markers.csv")
            try CSVTable(header: ["cluster", "phenotype", "cells", "top_markers"] + markers.map { $0 + "_mean" } + markers.map { $0 + "_z" }).write(table)
            for stale in ["cells.zarr", "qc", "rules.csv"] { try? FileManager.default.removeItem(atPath: try ctx.output(stale)) }
            return StageResult(outputs: [cells, table], metrics: [
                "method": .string(p.method.rawValue), "cells": .number(0), "k": .number(0), "markers": .array(markers.map { .string($0) }),
                "seed": .number(Double(p.seed)), "cluster_sizes": .array([]), "phenotypes": .array([]), "warnings": .array([.string(none)])])
        }
        if p.method == .kmeans || p.method == .flowsom, p.k > n {
            throw EpipeError.badInput("cluster param k: \(p.k) is more than the \(n) cells in \(src); give --k \(n) or less")
        }
        let cols = markers.map { table.numbers[$0]! }
        func text(_ path: String) throws -> String? {
            guard !path.isEmpty else { return nil }
            guard let t = try? String(contentsOfFile: path, encoding: .utf8) else { throw EpipeError.badInput("\(path): cannot read it as UTF-8 text") }
            return t
        }
        let files = ClusterFiles(gates: try text(p.gates), workflow: try text(p.workflow), names: try text(p.names))
        let prog = ctx.progress("cluster \(p.method.rawValue)", total: 3, unit: "steps")
        let prepared: PreparedMarkers, r: ClusterResult
        do {
            prepared = try Clustering.prepare(columns: cols, markers: markers, params: p)
            prog.advance()
            r = try Clustering.run(prepared: prepared, markers: markers, params: p, files: files) { prog.advance() }
        } catch let e as ClusterInputError {
            let file = e.message.hasPrefix("names") ? p.names : e.message.hasPrefix("phenotype workflow") ? p.workflow
                : e.message.hasPrefix("gates") ? p.gates : src
            throw EpipeError.badInput("\(file): \(e.message)")
        }
        ctx.log.info("\(ctx.job.spec.name): \(p.method.rawValue) on \(n) cells x \(markers.count) markers: \(r.k) clusters, \(r.quality.name) \(CSVTable.num(r.quality.value, digits: 4))"
                     + (r.knn.isEmpty ? "" : ", kNN \(r.knn)"))
        let out = ClusterOutputs(ctx: ctx, table: table, markers: markers, result: r, prepared: prepared, params: p)
        let written = try out.writeAll()
        var metrics: [String: JSONValue] = [
            "method": .string(p.method.rawValue), "cells": .number(Double(n)), "k": .number(Double(r.k)),
            "markers": .array(markers.map { .string($0) }), "seed": .number(Double(p.seed)),
            "quality": .object(["name": .string(r.quality.name), "value": .number(r.quality.value)]),
            "cluster_sizes": .array(r.counts.map { .number(Double($0)) }), "phenotypes": .array(r.phenotypes.map { .string($0) }),
            "warnings": .array(r.counts.contains(0) ? [.string("some clusters are empty")] : [])]
        for (key, v) in r.metrics { metrics[key] = .number(v) }
        if !r.knn.isEmpty { metrics["knn"] = .string(r.knn); metrics["graph_weights"] = .string(p.weights.rawValue) }
        if p.method == .rules {
            metrics["gates"] = .object(Dictionary(uniqueKeysWithValues: zip(markers, r.gates).map { ($0, .number($1)) }))
            metrics["rules"] = .array(r.rules.map { .object(["parent": .string($0.parent), "phenotype": .string($0.phenotype), "cells": .number(Double($0.cells))]) })
        }
        return StageResult(outputs: written, metrics: metrics)
    }
}

@main
struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-cluster",
        abstract: "Cell phenotypes: kNN graph + Leiden (default), FlowSOM, k-means, or SCIMAP-style marker gating.",
        discussion: """
        Reads segment/cells.csv (from epipe-segment, or a table from another tool taken in by \
        epipe-ingest --cells), transforms the marker means (arcsinh(x / cofactor) by default), clips each \
        marker to its [100 - clip, clip] percentiles, z-scores, and clusters. Writes cluster/cells.csv \
        (the input columns plus cluster and phenotype), cluster/markers.csv (per cluster: size, top \
        markers, mean and z-scored mean of each marker), cluster/cells.zarr (AnnData: anndata.read_zarr \
        opens it), and QC pictures in cluster/qc/ (clusters x markers heatmap, PCA embedding). \
        Clusters are numbered by decreasing size; the manifest records the method, params, seed, \
        sizes and a quality score (modularity for leiden, silhouette on 2,000 cells otherwise).
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "leiden (default), flowsom, kmeans or rules.") var method: String?
    @Option(name: .long, help: "Clusters of kmeans / metaclusters of flowsom, 1...1000. Default \(ClusterParams().k).") var k: Int?
    @Option(name: .long, help: "arcsinh (default), log1p or none.") var transform: String?
    @Option(name: .long, help: "arcsinh cofactor, > 0. Default \(String(format: "%g", ClusterParams().cofactor)).") var cofactor: Double?
    @Option(name: .long, help: "Clip each marker to its [100-P, P] percentiles, 50 < P <= 100 (100: off). Default \(String(format: "%g", ClusterParams().clip)).") var clip: Double?
    @Option(name: .long, help: "Comma-separated marker columns (default auto: all but nuclear/background).") var markers: String?
    @Option(name: .long, help: "Seed of every random choice, >= 0. Default \(ClusterParams().seed).") var seed: Int?
    @Option(name: .long, help: "leiden: neighbours per cell in the kNN graph, 2...200. Default \(ClusterParams().neighbors).") var neighbors: Int?
    @Option(name: .long, help: "leiden: resolution (higher: more clusters), > 0. Default \(String(format: "%g", ClusterParams().resolution)).") var resolution: Double?
    @Option(name: .long, help: "leiden: kNN search exact, approx (NN-descent) or auto (exact up to \(ClusterParams.exactLimit) cells).") var knn: String?
    @Option(name: .long, help: "leiden: kNN graph edge weights jaccard (PhenoGraph, default) or none (every edge 1).") var weights: String?
    @Option(name: .long, help: "flowsom: SOM grid <x>x<y>. Default \(ClusterParams().som).") var som: String?
    @Option(name: .long, help: "rules: marker,gate CSV on the transform's scale (default: a Gaussian-mixture gate per marker).") var gates: String?
    @Option(name: .long, help: "rules: SCIMAP phenotype_workflow.csv (parent, phenotype, then pos/neg/allpos/allneg/anypos/anyneg per marker).") var workflow: String?
    @Option(name: .long, help: "cluster,phenotype CSV naming clusters after a first look.") var names: String?

    func run() throws {
        // Flag names are ClusterParams' keys; values are checked where the struct is decoded.
        // Files are recorded by absolute path so the manifest names them wherever it is read.
        func path(_ s: String?) -> JSONValue? { s.map { .string($0.isEmpty ? "" : Files.canonical($0)) } }
        typealias K = ClusterParams.CodingKeys
        let tool = ClusterTool(flags: [
            K.method.rawValue: method.map { .string($0) }, K.k.rawValue: k.map { .number(Double($0)) },
            K.transform.rawValue: transform.map { .string($0) }, K.cofactor.rawValue: cofactor.map { .number($0) },
            K.clip.rawValue: clip.map { .number($0) }, K.markers.rawValue: markers.map { .string($0) },
            K.seed.rawValue: seed.map { .number(Double($0)) }, K.neighbors.rawValue: neighbors.map { .number(Double($0)) },
            K.resolution.rawValue: resolution.map { .number($0) }, K.knn.rawValue: knn.map { .string($0) },
            K.weights.rawValue: weights.map { .string($0) },
            K.som.rawValue: som.map { .string($0) }, K.gates.rawValue: path(gates), K.workflow.rawValue: path(workflow),
            K.names.rawValue: path(names)])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
