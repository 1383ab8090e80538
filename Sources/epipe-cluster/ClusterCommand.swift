import Foundation
import ArgumentParser
import EpipeCore
import EpipeStage
import EpipeCluster

/// Marker columns of an MCQuant table: the per-cell means between CellID and X_centroid.
func markerColumns(_ t: CSVTable) -> [String] {
    let shape: Set<String> = ["CellID", "X_centroid", "Y_centroid", "X_position", "Y_position", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation", "cluster", "phenotype"]
    return t.header.filter { !shape.contains($0) && !$0.hasSuffix("_nucleus") }
}

struct ClusterTool: StageTool {
    let stage = "cluster"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
        let p = mergeParams(job, defaults: ["k": 8, "cofactor": 5.0, "markers": "auto", "seed": 0], flags: flags)
        guard let k = p["k"]?.intValue, k >= 1, k <= 1000 else { throw EpipeError.badInput("cluster param k: expected 1...1000") }
        guard let cf = p["cofactor"]?.doubleValue, cf > 0 else { throw EpipeError.badInput("cluster param cofactor: expected > 0") }
        return p
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] { try upstream(job, "segment", ["segment/cells.csv"]) }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p = ctx.params
        let table = try CSVTable.read(try ctx.job.path("segment/cells.csv"))
        var markers = markerColumns(table)
        if let m = p["markers"]?.stringValue, m != "auto" {
            let want = m.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            for w in want where table.column(w) == nil { throw EpipeError.badInput("cluster param markers: no column \"\(w)\" in segment/cells.csv; columns: \(markers.joined(separator: ","))") }
            markers = want
        } else {
            // Leave the nuclear stain and background channels out of the phenotype space.
            let skip = ["dapi", "hoechst", "dna", "bg", "background", "blank", "autofluor"]
            let kept = markers.filter { m in !skip.contains { m.lowercased().hasPrefix($0) } }
            if !kept.isEmpty { markers = kept }
        }
        let n = table.rows.count, d = markers.count
        let k = min(p["k"]?.intValue ?? 8, max(1, n))
        let cof = p["cofactor"]?.doubleValue ?? 5
        let prog = ctx.progress("cluster", total: 3, unit: "steps")
        var cols = try markers.map { m -> [Double] in
            guard var c = table.doubles(m) else { throw EpipeError.badInput("segment/cells.csv: no column \(m)") }
            Transform.arcsinh(&c, cofactor: cof); return c
        }
        let transformed = cols
        Transform.zscore(columns: &cols)
        prog.advance()
        var labels = [Int](repeating: 0, count: n)
        var inertia = 0.0, iters = 0
        let data = Transform.rowMajor(columns: cols)
        if n > 0 && d > 0 {
            let r = KMeans.fit(data, n: n, d: d, k: k, seed: UInt64(p["seed"]?.intValue ?? 0))
            labels = r.labels; inertia = r.inertia; iters = r.iterations
        }
        prog.advance()
        // Per-cluster mean of each marker (z-scored) and a phenotype name from the top markers.
        let (count, mean) = ClusterProfile.means(data, n: n, d: d, labels: labels, k: k)
        let rawMean = ClusterProfile.means(columns: transformed, labels: labels, k: k).means
        var names = [String](repeating: "", count: k)
        for c in 0..<k {
            let top = (0..<d).sorted { mean[c][$0] > mean[c][$1] }.prefix(2).filter { mean[c][$0] > 0.5 }
            names[c] = top.isEmpty ? "c\(c) low" : "c\(c) " + top.map { markers[$0] + "+" }.joined(separator: " ")
        }
        var out = CSVTable(header: table.header + ["cluster", "phenotype"])
        out.rows = table.rows.enumerated().map { i, r in r + [String(labels[i]), names[labels[i]]] }
        let cellsPath = try ctx.output("cells.csv"); try out.write(cellsPath)
        var mk = CSVTable(header: ["cluster", "phenotype", "cells"] + markers.map { $0 + "_z" } + markers.map { $0 + "_asinh" })
        for c in 0..<k { mk.rows.append([String(c), names[c], String(count[c])] + mean[c].map { CSVTable.num($0, digits: 3) } + rawMean[c].map { CSVTable.num($0, digits: 3) }) }
        let mPath = try ctx.output("markers.csv"); try mk.write(mPath)
        prog.advance()
        // QC: heatmap clusters x markers (z of cluster means), cell height proportional to nothing: fixed cells.
        // Rows: clusters (name, cells); columns: markers (names written downwards); colour: z of the cluster mean.
        let cw = 18, chh = 18
        let rowLabels = (0..<k).map { "\(names[$0]) (\(count[$0]))" }
        let left = (rowLabels.map { Canvas.textWidth($0) }.max() ?? 0) + 8
        let top = (markers.map { $0.count }.max() ?? 0) * 9 + 6
        var hm = Canvas(width: left + d * cw + 2, height: top + k * chh + 2, fill: (255, 255, 255))
        for j in 0..<d { for (i, ch) in markers[j].enumerated() { hm.text(String(ch), x: left + j * cw + 6, y: 3 + i * 9, color: (0, 0, 0), box: nil) } }
        for c in 0..<k {
            hm.text(rowLabels[c], x: 3, y: top + c * chh + 5, color: (0, 0, 0), box: nil)
            for j in 0..<d { hm.rect(left + 1 + j * cw, top + 1 + c * chh, cw - 1, chh - 1, Canvas.diverging(mean[c][j])) }
        }
        let q = try ctx.qc("cluster-heatmap.png"); try hm.write(q)
        return StageResult(outputs: [cellsPath, mPath, q], metrics: [
            "cells": .number(Double(n)), "k": .number(Double(k)), "markers": .array(markers.map { .string($0) }),
            "inertia": .number(inertia), "iterations": .number(Double(iters)),
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
    @Option(name: .long, help: "Number of clusters. Default 8.") var k: Int?
    @Option(name: .long, help: "arcsinh cofactor. Default 5.") var cofactor: Double?
    @Option(name: .long, help: "Comma-separated marker columns (default: all but nuclear/background).") var markers: String?
    @Option(name: .long, help: "Random seed. Default 0.") var seed: Int?

    func run() throws {
        let tool = ClusterTool(flags: ["k": k.map { .number(Double($0)) }, "cofactor": cofactor.map { .number($0) },
                                       "markers": markers.map { .string($0) }, "seed": seed.map { .number(Double($0)) }])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
