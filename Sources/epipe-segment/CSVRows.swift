import Foundation
import Dispatch
import EpipeCore
import EpipeSegment
import EpipeKernels

/// cells.csv rows (MCQuant columns) from joined cell and nucleus rows.
enum CSVRows {
    /// The header: CellID, one mean per marker, the shape columns, <marker>_nucleus; then the extra
    /// statistics named as MCQuant's intensity_props (<marker>_intensity_median, ...), the nucleus
    /// compartment with the _nucleus suffix.
    static func header(_ names: [String], stats: [String]) -> String {
        var h = ["CellID"] + names
        h += ["X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation"]
        h += names.map { $0 + "_nucleus" }
        for s in stats { h += names.map { "\($0)_intensity_\(s)" } + names.map { "\($0)_intensity_\(s)_nucleus" } }
        return h.map(CSVTable.quote).joined(separator: ",") + "\n"
    }

    /// Commits the streamed table; when rows were written before their final values
    /// (`corrections`), the file once more with those rows replaced (their old areas leave the
    /// joiner's area counts).
    static func finish(_ csv: AtomicStreamWriter, path: String, corrections: [CellRowJoiner.Joined], channels C: Int, stats: [String],
                       joiner: CellRowJoiner, log: StageLog) throws {
        guard !corrections.isEmpty else { return try csv.commit() }
        log.detail("quantification: \(corrections.count) rows replaced in cells.csv")
        try csv.close()
        let out = try AtomicStreamWriter(path: path)
        let areaCol = 1 + C + 2
        try replace(from: csv.temporaryPath, into: out, rows: corrections, channels: C, stats: stats) { old in
            if let a = Int(old.split(separator: ",", omittingEmptySubsequences: false)[areaCol]) { joiner.forgetArea(a) }
        }
        try out.commit()
        csv.abort()
    }

    /// The line of one id, nil when the cell is absent (area 0). Nucleus columns are 0 when the
    /// nucleus is absent.
    static func line(_ j: CellRowJoiner.Joined, channels C: Int, stats: [String]) -> String? {
        guard let c = j.cell, c.area > 0 else { return nil }
        var out = ""
        func put(_ v: String) { out += v; out += "," }
        put(String(j.id))
        for k in 0..<C { put(CSVTable.num(c.means[k], digits: 3)) }
        for v in [c.centroidX, c.centroidY] { put(CSVTable.num(v)) }
        put(String(c.area))
        for v in [c.majorAxis, c.minorAxis, c.eccentricity, c.solidity, c.extent, c.orientation] { put(CSVTable.num(v)) }
        let n = j.nucleus.flatMap { $0.area > 0 ? $0 : nil }
        for k in 0..<C { put(CSVTable.num(n?.means[k] ?? 0, digits: 3)) }
        func values(_ r: CellRow, _ s: String) -> [Double] { s == "median" ? r.medians : s == "std" ? r.stds : r.sums }
        for s in stats {
            let cv = values(c, s)
            for k in 0..<C { put(CSVTable.num(cv[k], digits: 3)) }
            let nv = n.map { values($0, s) }
            for k in 0..<C { put(CSVTable.num(nv?[k] ?? 0, digits: 3)) }
        }
        out.removeLast()
        out += "\n"
        return out
    }

    /// The lines of many rows, in order (chunks formatted in parallel when many).
    static func format(_ rows: [CellRowJoiner.Joined], channels C: Int, stats: [String]) -> String {
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

    /// Copies a written cells.csv (header, then rows in increasing CellID) into `out`, with the
    /// rows of the given ids (increasing) replaced, inserted or removed; `replaced` sees each old
    /// line dropped.
    static func replace(from path: String, into out: AtomicStreamWriter, rows: [CellRowJoiner.Joined], channels C: Int, stats: [String],
                        replaced: (Substring) -> Void) throws {
        let r = try LineReader(path: path)
        var k = 0, first = true
        func emit(upTo id: UInt32?) throws {
            while k < rows.count && (id == nil || rows[k].id < id!) {
                if let l = line(rows[k], channels: C, stats: stats) { try out.write(l) }
                k += 1
            }
        }
        while let text = r.next({ String(decoding: $0, as: UTF8.self) }) {
            if first { first = false; try out.write(text); continue }
            let id = UInt32(text.prefix { $0 != "," }) ?? 0
            try emit(upTo: id)
            if k < rows.count && rows[k].id == id {
                replaced(Substring(text.dropLast(text.hasSuffix("\n") ? 1 : 0)))
                if let l = line(rows[k], channels: C, stats: stats) { try out.write(l) }
                k += 1
            } else {
                try out.write(text)
            }
        }
        try emit(upTo: nil)
    }
}
