import Foundation
import EpipeCore
import EpipeKernels
import EpipeStage
import EpipeSpatial

/// Everything epipe-stats writes for one job: the four tables, the QC pictures and the metrics.
struct StatsOutputs {
    let ctx: StageContext
    let params: StatsParams
    let report: SpatialReport
    let xs: [Double], ys: [Double]
    let labels: [String]
    let ids: [String]?

    var types: [String] { report.frequencies.types }
    var e: EnrichmentResult { report.enrichment }

    func writeAll() throws -> [String] {
        var out = [try frequencies(), try interactions()]
        if report.neighborhoods != nil { out += [try neighborhoods(), try cells()] }
        out += try pictures()
        // a previous run's files this run does not write (no neighbourhoods, no permutations) would
        // no longer match the manifest: remove them
        let all = ["neighborhoods.csv", "cells.csv", "qc/interactions.png", "qc/neighborhoods-map.png", "qc/neighborhoods.png"]
        for f in all { let p = try ctx.output(f); if !out.contains(p) && Files.exists(p) { try? FileManager.default.removeItem(atPath: p) } }
        return out
    }

    static func g(_ v: Double) -> String { v.isFinite ? String(format: "%.6g", v) : "" }

    /// stats/frequencies.csv: type, count, proportion (largest first).
    func frequencies() throws -> String {
        let f = report.frequencies
        var t = CSVTable(header: [params.label, "count", "proportion"])
        for i in 0..<f.types.count { t.rows.append([f.types[i], String(f.counts[i]), CSVTable.num(f.proportions[i], digits: 5)]) }
        let path = try ctx.output("frequencies.csv"); try t.write(path)
        return path
    }

    static let interactionColumns = ["type_a", "type_b", "observed", "expected", "z", "p_enriched", "p_depleted", "q_enriched", "q_depleted",
                                     "edges", "expected_edges", "cells_a", "cells_b"]

    /// stats/interactions.csv: one row per ordered pair of types (both orders).
    func interactions() throws -> String {
        var t = CSVTable(header: Self.interactionColumns)
        let nt = types.count, has = e.perms > 0
        for a in 0..<nt {
            for b in 0..<nt {
                let i = a * nt + b, pc = e.perCell(a, b)
                t.rows.append([types[a], types[b], Self.g(pc.observed), has ? Self.g(pc.expected) : "", has ? Self.g(e.z[i]) : "",
                               has ? Self.g(e.pEnriched[i]) : "", has ? Self.g(e.pDepleted[i]) : "",
                               has ? Self.g(e.qEnriched[i]) : "", has ? Self.g(e.qDepleted[i]) : "",
                               String(e.observed[i]), has ? Self.g(e.mean[i]) : "", String(e.cells[a]), String(e.cells[b])])
            }
        }
        let path = try ctx.output("interactions.csv"); try t.write(path)
        return path
    }

    /// stats/neighborhoods.csv: per neighbourhood its cells, share, the types over-represented in
    /// it (mean fraction at least 1.5x the slide's and at least 5 %, at most 4, largest first) and
    /// the mean fraction of every type in its windows.
    func neighborhoods() throws -> String {
        let nh = report.neighborhoods!, f = report.frequencies
        var t = CSVTable(header: ["neighborhood", "cells", "proportion", "top_types"] + types)
        for c in 0..<nh.clusters {
            let comp = nh.composition[c]
            let top = comp.indices.filter { comp[$0] >= 0.05 && comp[$0] >= 1.5 * f.proportions[$0] }
                .sorted { comp[$0] > comp[$1] }.prefix(4).map { types[$0] }.joined(separator: " ")
            t.rows.append([String(c), String(nh.counts[c]), CSVTable.num(Double(nh.counts[c]) / Double(labels.count), digits: 5), top]
                          + comp.map { CSVTable.num($0, digits: 4) })
        }
        let path = try ctx.output("neighborhoods.csv"); try t.write(path)
        return path
    }

    /// stats/cells.csv: CellID, the centroid columns, the type column and the neighbourhood.
    func cells() throws -> String {
        let nh = report.neighborhoods!
        var s = "CellID," + [params.x, params.y, params.label].map(CSV.quote).joined(separator: ",") + ",neighborhood\n"
        s.reserveCapacity(labels.count * 32)
        for i in 0..<labels.count {
            s += ids.map { CSV.quote($0[i]) } ?? String(i + 1)
            s += ","; s += CSV.number(xs[i], digits: 2); s += ","; s += CSV.number(ys[i], digits: 2)
            s += ","; s += CSV.quote(labels[i]); s += ","; s += String(nh.assignment[i]); s += "\n"
        }
        let path = try ctx.output("cells.csv"); try AtomicFile.write(s, to: path)
        return path
    }

    /// QC: frequencies bar chart, the z heatmap, the slide by type and by neighbourhood, the
    /// neighbourhoods' compositions.
    func pictures() throws -> [String] {
        let f = report.frequencies, nt = types.count
        var out: [String] = []
        let bar = Canvas.bars(labels: (0..<nt).map { "\(f.types[$0])  \(f.counts[$0])  \(String(format: "%.1f%%", 100 * f.proportions[$0]))" }, values: f.proportions)
        let q1 = try ctx.qc("frequencies.png"); try bar.write(q1); out.append(q1)
        let q2 = try ctx.qc("cell-types-map.png"); try Canvas.pointMap(xs: xs, ys: ys, categories: labels, order: types).write(q2); out.append(q2)
        if e.perms > 0 {
            let zmax = e.z.filter(\.isFinite).map(abs).max() ?? 2
            let scale = Swift.min(Swift.max(zmax, 2), 50)
            let values = (0..<nt).map { a in (0..<nt).map { b in e.z[a * nt + b].isFinite ? 2 * e.z[a * nt + b] / scale : 0 } }
            let marks = (0..<nt).map { a in (0..<nt).map { b in e.qEnriched[a * nt + b] < 0.05 || e.qDepleted[a * nt + b] < 0.05 } }
            var hm = Canvas.heatmap(rows: types, columns: types, values: values, marks: marks)
            let legend = "row: cell type  column: neighbour type  red z>0  blue z<0  full colour at |z| \(Int(scale.rounded()))  dot: q<0.05"
            var c = Canvas(width: Swift.max(hm.width, Canvas.textWidth(legend) + 12), height: hm.height + 20)
            c.blit(hm, at: 0, 0); c.text(legend, x: 6, y: hm.height + 6, color: (0, 0, 0), box: nil)
            hm = c
            let q3 = try ctx.qc("interactions.png"); try hm.write(q3); out.append(q3)
        }
        if let nh = report.neighborhoods {
            let names = (0..<nh.clusters).map { "CN\($0)" }
            let q4 = try ctx.qc("neighborhoods-map.png")
            try Canvas.pointMap(xs: xs, ys: ys, categories: nh.assignment.map { names[Int($0)] }, order: names).write(q4); out.append(q4)
            // log2 of each type's fraction in the neighbourhood over its share of the slide, clipped to +-2
            let values = (0..<nh.clusters).map { c in (0..<nt).map { t in
                Swift.max(-2, Swift.min(2, log2(Swift.max(nh.composition[c][t], 1e-6) / Swift.max(f.proportions[t], 1e-12)))) } }
            let q5 = try ctx.qc("neighborhoods.png")
            try Canvas.heatmap(rows: (0..<nh.clusters).map { "\(names[$0]) \(nh.counts[$0])" }, columns: types, values: values).write(q5); out.append(q5)
        }
        return out
    }

    /// Unordered pairs (the stronger direction of each) with q < 0.05, strongest first.
    func top(enriched: Bool, _ n: Int = 5) -> [(a: Int, b: Int, z: Double, q: Double)] {
        guard e.perms > 0 else { return [] }
        let nt = types.count
        var best: [Int: (a: Int, b: Int, z: Double, q: Double)] = [:]
        for a in 0..<nt {
            for b in 0..<nt {
                let i = a * nt + b, z = e.z[i], q = enriched ? e.qEnriched[i] : e.qDepleted[i]
                guard z.isFinite, q < 0.05, enriched ? z > 0 : z < 0 else { continue }
                let key = min(a, b) * nt + max(a, b)
                if let o = best[key], abs(o.z) >= abs(z) { continue }
                best[key] = (a, b, z, q)
            }
        }
        return best.values.sorted { abs($0.z) != abs($1.z) ? abs($0.z) > abs($1.z) : ($0.a, $0.b) < ($1.a, $1.b) }.prefix(n).map { $0 }
    }

    func metrics() -> [String: JSONValue] {
        let f = report.frequencies, nt = types.count
        var m: [String: JSONValue] = ["cells": .number(Double(labels.count)), "types": .number(Double(nt)),
                                      "graph": .string(report.graphKind.rawValue), "edges": .number(Double(report.edges)),
                                      "mean_degree": .number(Double(report.edges) / Double(max(1, labels.count))),
                                      "edge_median_px": .number(report.edgeMedian), "edge_max_px": .number(report.edgeMax),
                                      "isolated_cells": .number(Double(report.isolated)),
                                      "perms": .number(Double(params.perms)), "seed": .number(Double(params.seed))]
        if let r = report.radiusPx { m["radius_px"] = .number(r) }
        m["frequencies"] = .object(Dictionary(uniqueKeysWithValues: (0..<nt).map { (f.types[$0], JSONValue.number(f.proportions[$0])) }))
        for (s, v) in report.seconds { m["seconds_" + s] = .number((v * 1000).rounded() / 1000) }
        func pairs(_ l: [(a: Int, b: Int, z: Double, q: Double)]) -> JSONValue {
            .array(l.map { .object(["type_a": .string(types[$0.a]), "type_b": .string(types[$0.b]), "z": .number(($0.z * 100).rounded() / 100), "q": .number($0.q)]) })
        }
        m["top_enriched"] = pairs(top(enriched: true)); m["top_depleted"] = pairs(top(enriched: false))
        if e.perms > 0 {
            m["pairs_enriched_q05"] = .number(Double(e.qEnriched.filter { $0 < 0.05 }.count))
            m["pairs_depleted_q05"] = .number(Double(e.qDepleted.filter { $0 < 0.05 }.count))
        }
        if let nh = report.neighborhoods {
            m["neighborhoods"] = .number(Double(nh.clusters))
            m["neighborhood_sizes"] = .array(nh.counts.map { .number(Double($0)) })
        }
        var warnings: [JSONValue] = report.warnings.map { .string($0) }
        if report.isolated > 0 { warnings.append(.string("\(report.isolated) cells have no neighbour in the \(report.graphKind.rawValue) graph")) }
        if params.perms > 0 && params.perms < 100 { warnings.append(.string("only \(params.perms) permutations: p-values cannot go below \(CSVTable.num(1 / Double(params.perms + 1), digits: 3))")) }
        m["warnings"] = .array(warnings)
        return m
    }
}
