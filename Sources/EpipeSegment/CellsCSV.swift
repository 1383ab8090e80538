import Foundation
import Dispatch
import EpipeKernels

/// cells.csv in MCQuant's columns, from joined cell and nucleus rows: the header and the lines.
public enum CellsCSV {
    /// The header: CellID, one mean per marker, the shape columns, <marker>_nucleus; then the extra
    /// statistics named as MCQuant's intensity_props (<marker>_intensity_median, ...), the nucleus
    /// compartment with the _nucleus suffix.
    public static func header(_ names: [String], stats: [String]) -> String {
        var h = ["CellID"] + names
        h += ["X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation"]
        h += names.map { $0 + "_nucleus" }
        for s in stats { h += names.map { "\($0)_intensity_\(s)" } + names.map { "\($0)_intensity_\(s)_nucleus" } }
        return h.map(CSV.quote).joined(separator: ",") + "\n"
    }

    /// The line of one id, nil when the cell is absent (area 0). Nucleus columns are 0 when the
    /// nucleus is absent.
    public static func line(_ j: CellRowJoiner.Joined, channels C: Int, stats: [String]) -> String? {
        guard let c = j.cell, c.area > 0 else { return nil }
        var out = ""
        func put(_ v: String) { out += v; out += "," }
        put(String(j.id))
        for k in 0..<C { put(CSV.number(c.means[k], digits: 3)) }
        for v in [c.centroidX, c.centroidY] { put(CSV.number(v)) }
        put(String(c.area))
        for v in [c.majorAxis, c.minorAxis, c.eccentricity, c.solidity, c.extent, c.orientation] { put(CSV.number(v)) }
        let n = j.nucleus.flatMap { $0.area > 0 ? $0 : nil }
        for k in 0..<C { put(CSV.number(n?.means[k] ?? 0, digits: 3)) }
        func values(_ r: CellRow, _ s: String) -> [Double] { s == "median" ? r.medians : s == "std" ? r.stds : r.sums }
        for s in stats {
            let cv = values(c, s)
            for k in 0..<C { put(CSV.number(cv[k], digits: 3)) }
            let nv = n.map { values($0, s) }
            for k in 0..<C { put(CSV.number(nv?[k] ?? 0, digits: 3)) }
        }
        out.removeLast()
        out += "\n"
        return out
    }

    /// The lines of many rows, in order (chunks formatted in parallel when many).
    public static func format(_ rows: [CellRowJoiner.Joined], channels C: Int, stats: [String]) -> String {
        let chunks = rows.count > 4000 ? 8 : 1
        if chunks == 1 { return rows.compactMap { line($0, channels: C, stats: stats) }.joined() }
        let parts = Slots<String>(chunks)
        let R = rows
        DispatchQueue.concurrentPerform(iterations: chunks) { k in
            var s = ""
            for i in (R.count * k / chunks)..<(R.count * (k + 1) / chunks) { if let l = line(R[i], channels: C, stats: stats) { s += l } }
            parts[k] = s
        }
        return parts.values.map { $0! }.joined()
    }
}
