import Foundation

/// Nuclei without a cell, streamed band by band: a nucleus id counts as without a cell when none
/// of its pixels lies in a cell (cells label 0 there) or when the cells mask has no pixel with
/// its id (MCMICRO pairing: cell i holds nucleus i).
public struct NucleusCellMatch: Sendable {
    /// bit per nucleus id: some pixel of it lies in a cell
    var covered: [UInt64] = []
    public init() {}
    public mutating func add(nuclei: UnsafeBufferPointer<UInt32>, cells: UnsafeBufferPointer<UInt32>) {
        precondition(nuclei.count == cells.count)
        for i in 0..<nuclei.count {
            let n = Int(nuclei[i])
            if n == 0 || cells[i] == 0 { continue }
            let w = n >> 6
            if w >= covered.count { covered += [UInt64](repeating: 0, count: max(w + 1, 2 * covered.count) - covered.count) }
            covered[w] |= 1 << UInt64(n & 63)
        }
    }
    /// Some pixel of nucleus `id` lies in a cell.
    public func isCovered(_ id: UInt32) -> Bool {
        let w = Int(id >> 6)
        return w < covered.count && covered[w] & (1 << UInt64(id & 63)) != 0
    }
    /// Fraction of nuclei (ids with nucleusArea > 0) without a cell; cellArea[i] is the area of
    /// cell id i + 1 (as `CellTable.area`). 0 when there are no nuclei.
    public func withoutCellFraction(nucleusArea: [Int], cellArea: [Int]) -> Double {
        var nuclei = 0, without = 0
        for i in 0..<nucleusArea.count where nucleusArea[i] > 0 {
            nuclei += 1
            let id = i + 1, w = id >> 6
            let cov = w < covered.count && covered[w] & (1 << UInt64(id & 63)) != 0
            if !cov || i >= cellArea.count || cellArea[i] == 0 { without += 1 }
        }
        return nuclei == 0 ? 0 : Double(without) / Double(nuclei)
    }
}
