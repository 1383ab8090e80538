import Foundation
import Dispatch
import EpipeCore
import EpipeSegment
import EpipeDenoise
import EpipeKernels

/// cells.csv rows (MCQuant columns) from joined cell and nucleus rows.
enum CSVRows {
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
        let R = UnsafeShared(rows)
        DispatchQueue.concurrentPerform(iterations: chunks) { k in
            var s = ""
            for i in (R.value.count * k / chunks)..<(R.value.count * (k + 1) / chunks) { if let l = line(R.value[i], channels: C, stats: stats) { s += l } }
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
