import Foundation
import EpipeCore
import EpipeKernels
import EpipeStage
import EpipeCluster

/// Everything epipe-cluster writes: the two tables, the AnnData store and the QC pictures.
struct ClusterOutputs {
    let ctx: StageContext
    let table: CSVColumns
    let markers: [String]
    let result: ClusterResult
    let prepared: PreparedMarkers
    let params: ClusterParams

    /// Writes every output; returns their paths (the manifest hashes each file).
    func writeAll() throws -> [String] {
        var out = [try cells(), try markerTable()]
        out += try zarr()
        out += try pictures()
        if params.method == .rules { out.append(try rulesTable()) }
        return out
    }

    /// cluster/cells.csv: the input rows (a previous cluster/phenotype pair replaced) plus cluster, phenotype.
    func cells() throws -> String {
        let path = try ctx.output("cells.csv")
        let (lab, names) = (result.labels, result.phenotypes)
        try table.rewrite(to: path, drop: ["cluster", "phenotype"], appending: ["cluster", "phenotype"]) { [String(lab[$0]), names[lab[$0]]] }
        return path
    }

    /// cluster/markers.csv: per cluster its size, its markers by decreasing z-mean (those above
    /// 0.5, at most 8), then each marker's mean (of the table's values) and z-scored mean.
    func markerTable() throws -> String {
        let raw = ClusterProfile.means(columns: markers.map { table.numbers[$0]! }, labels: result.labels, k: result.k).means
        var t = CSVTable(header: ["cluster", "phenotype", "cells", "top_markers"] + markers.map { $0 + "_mean" } + markers.map { $0 + "_z" })
        for c in 0..<result.k {
            let z = result.zMeans[c]
            let top = Clustering.topMarkers(z).prefix(8).filter { z[$0] > 0.5 }.map { markers[$0] }.joined(separator: " ")
            t.rows.append([String(c), result.phenotypes[c], String(result.counts[c]), top]
                          + raw[c].map { CSVTable.num($0, digits: 4) } + z.map { CSVTable.num($0, digits: 3) })
        }
        let path = try ctx.output("markers.csv"); try t.write(path)
        return path
    }

    /// cluster/cells.zarr: X = the marker means, obs = CellID (index), cluster, phenotype and the
    /// shape columns, var = markers, obsm["spatial"] = the centroids.
    func zarr() throws -> [String] {
        let n = table.count, d = markers.count
        var x = [Float](repeating: 0, count: n * d)
        for (j, m) in markers.enumerated() { let c = table.numbers[m]!; for i in 0..<n { x[i * d + j] = Float(c[i]) } }
        let ids = table.strings["CellID"] ?? (0..<n).map { String($0 + 1) }
        var obs: [AnnDataZarr.Column] = [.categorical("cluster", result.labels.map(String.init)),
                                         .categorical("phenotype", result.labels.map { result.phenotypes[$0] })]
        for c in table.header where ClusterParams.shapeColumns.contains(c) && !["CellID", "cluster", "phenotype"].contains(c) {
            if let v = table.numbers[c] { obs.append(.float(c, v)) }
        }
        let xy = [("X_centroid", "Y_centroid"), ("X_position", "Y_position")].first { table.numbers[$0.0] != nil && table.numbers[$0.1] != nil }
        let spatial: [Double]? = xy.map { (cx, cy) in
            let (a, b) = (table.numbers[cx]!, table.numbers[cy]!)
            var s = [Double](repeating: 0, count: 2 * n)
            for i in 0..<n { s[2 * i] = a[i]; s[2 * i + 1] = b[i] }
            return s
        }
        let dir = try ctx.output("cells.zarr")
        try AnnDataZarr.write(to: URL(fileURLWithPath: dir), X: x, n: n, d: d, varNames: markers, obsIndex: ids, obs: obs, spatial: spatial)
        // every file of the store, so the manifest hashes (and epipe-status --verify checks) each
        guard let walk = FileManager.default.enumerator(atPath: dir) else { return [] }
        var files: [String] = []
        while let f = walk.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir + "/" + f, isDirectory: &isDir), !isDir.boolValue { files.append(dir + "/" + f) }
        }
        return files.sorted()
    }

    /// The clusters x markers heatmap and a PCA embedding of at most 20,000 cells.
    func pictures() throws -> [String] {
        let k = result.k, r = result
        let rows = (0..<k).map { "\(r.phenotypes[$0]) (\(r.counts[$0]))" }
        let hm = Canvas.heatmap(rows: rows, columns: markers, values: r.zMeans.map { $0.map { max(-2, min(2, $0)) } })
        let h = try ctx.qc("cluster-heatmap.png"); try hm.write(h)
        let n = prepared.n, d = prepared.d
        let step = max(1, n / 20_000)
        let pick = Array(stride(from: 0, to: n, by: step))
        var sample = [Double](); sample.reserveCapacity(pick.count * d)
        for i in pick { sample += prepared.z[i * d ..< i * d + d] }
        let (scores, _) = Embedding.pca2(sample, n: pick.count, d: d)
        let xs = stride(from: 0, to: scores.count, by: 2).map { scores[$0] }, ys = stride(from: 1, to: scores.count, by: 2).map { scores[$0] }
        let (x0, y0) = (xs.min() ?? 0, ys.min() ?? 0)
        let cats = pick.map { r.phenotypes[r.labels[$0]] }
        let map = Canvas.pointMap(xs: xs.map { $0 - x0 }, ys: ys.map { $0 - y0 }, categories: cats, order: r.phenotypes, side: 800)
        let e = try ctx.qc("cluster-embedding.png"); try map.write(e)
        var out = [h, e]
        if params.method == .rules {
            let b = Canvas.bars(labels: r.rules.map { "\($0.phenotype) <- \($0.parent) (\($0.cells))" }, values: r.rules.map { Double($0.cells) })
            let p = try ctx.qc("cluster-rules.png"); try b.write(p); out.append(p)
        }
        return out
    }

    /// cluster/rules.csv: per workflow row (in its order) the cells it took.
    func rulesTable() throws -> String {
        var t = CSVTable(header: ["parent", "phenotype", "cells"])
        t.rows = result.rules.map { [$0.parent, $0.phenotype, String($0.cells)] }
        let path = try ctx.output("rules.csv"); try t.write(path)
        return path
    }
}
