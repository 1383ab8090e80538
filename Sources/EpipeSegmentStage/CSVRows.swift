import Foundation
import EpipeCore
import EpipeSegment
import EpipeKernels

/// cells.csv as a file: committed, or rewritten with the rows that changed after they were
/// written (the format is `CellsCSV`).
enum CSVRows {
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

    /// Copies a written cells.csv (header, then rows in increasing CellID) into `out`, with the
    /// rows of the given ids (increasing) replaced, inserted or removed; `replaced` sees each old
    /// line dropped.
    static func replace(from path: String, into out: AtomicStreamWriter, rows: [CellRowJoiner.Joined], channels C: Int, stats: [String],
                        replaced: (Substring) -> Void) throws {
        let r = try LineReader(path: path)
        var k = 0, first = true
        func emit(upTo id: UInt32?) throws {
            while k < rows.count && (id == nil || rows[k].id < id!) {
                if let l = CellsCSV.line(rows[k], channels: C, stats: stats) { try out.write(l) }
                k += 1
            }
        }
        while let text = r.next({ String(decoding: $0, as: UTF8.self) }) {
            if first { first = false; try out.write(text); continue }
            let id = UInt32(text.prefix { $0 != "," }) ?? 0
            try emit(upTo: id)
            if k < rows.count && rows[k].id == id {
                replaced(Substring(text.dropLast(text.hasSuffix("\n") ? 1 : 0)))
                if let l = CellsCSV.line(rows[k], channels: C, stats: stats) { try out.write(l) }
                k += 1
            } else {
                try out.write(text)
            }
        }
        try emit(upTo: nil)
    }
}
