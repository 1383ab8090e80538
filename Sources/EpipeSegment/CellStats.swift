import Foundation

/// Optional per-marker statistics besides the mean, as MCQuant's `--intensity_props`
/// `intensity_median`, `intensity_std` (numpy's population std, ddof 0) and `intensity_sum`.
public struct CellStats: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let median = CellStats(rawValue: 1)
    public static let std = CellStats(rawValue: 2)
    public static let sum = CellStats(rawValue: 4)
    /// Canonical order (also the order of the columns).
    public static let all: [(name: String, stat: CellStats)] = [("median", .median), ("std", .std), ("sum", .sum)]

    /// Parses a comma-separated list such as "median,std,sum" (any order and subset; "" or
    /// "none" for none). Returns the set and the items that are not statistics.
    public static func parse(_ list: String) -> (stats: CellStats, unknown: [String]) {
        var s: CellStats = [], bad: [String] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !item.isEmpty {
            if item == "none" { continue }
            if let m = all.first(where: { $0.name == item || "intensity_" + $0.name == item }) { s.insert(m.stat) } else { bad.append(item) }
        }
        return (s, bad)
    }

    /// "median,std,sum" in canonical order, "none" when empty.
    public var list: String {
        let n = CellStats.all.filter { contains($0.stat) }.map(\.name)
        return n.isEmpty ? "none" : n.joined(separator: ",")
    }
    public var names: [String] { CellStats.all.filter { contains($0.stat) }.map(\.name) }
}

/// A growable per-id column with a stable base address (safe to write from several threads at
/// different indices).
final class IdColumn<T> {
    private(set) var p: UnsafeMutablePointer<T>
    private(set) var count: Int
    let fill: T
    init(fill: T) { self.fill = fill; count = 1; p = .allocate(capacity: 1); p.initialize(to: fill) }
    func grow(to n: Int) {
        guard n > count else { return }
        let q = UnsafeMutablePointer<T>.allocate(capacity: n)
        q.moveInitialize(from: p, count: count)
        (q + count).initialize(repeating: fill, count: n - count)
        p.deallocate()
        p = q; count = n
    }
    subscript(i: Int) -> T {
        get { p[i] }
        set { p[i] = newValue }
    }
    deinit { p.deinitialize(count: count); p.deallocate() }
}

enum Select {
    /// k-th smallest of a[0..<n] (0-based), partially reordering a so that a[0..<k] <= a[k]
    /// (Hoare partition with median-of-three pivots: linear on average, fine with many equal values).
    static func kth(_ a: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int) -> Float {
        var lo = 0, hi = n - 1
        while lo < hi {
            let x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi]
            let pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y))
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { let t = a[i]; a[i] = a[j]; a[j] = t; i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
        }
        return a[k]
    }

    /// Median of a[0..<n] as numpy: the middle value, or the mean of the two middle values
    /// for an even count (in Double). Reorders a. NaN for n == 0.
    static func median(_ a: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
        if n == 0 { return .nan }
        let k = n / 2
        let hiV = Double(kth(a, n, k))
        if n % 2 == 1 { return hiV }
        var loV = a[0]
        for i in 1..<k where a[i] > loV { loV = a[i] }
        return (Double(loV) + hiV) / 2
    }
}

public enum QuantPlan {
    /// Rows per quantification sub-band so that the channel planes of one sub-band take about
    /// `budgetBytes` (Float32 per pixel and channel), between 8 and 256 rows. With the median,
    /// the values of open cells are bounded by (these rows + the tallest open cell's height)
    /// x width x channels x 4 bytes per compartment (see `CellAccumulator`).
    public static func subBandRows(width: Int, channels: Int, budgetBytes: Int = 128 << 20) -> Int {
        let row = max(1, width * max(1, channels) * 4)
        return max(8, min(256, budgetBytes / row))
    }
}

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
