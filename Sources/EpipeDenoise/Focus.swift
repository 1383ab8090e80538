import Foundation

/// Focus score of one channel, streaming and band-invariant: the variance of the 4-neighbour
/// Laplacian `L = x(l) + x(r) + x(u) + x(d) - 4 x` over all pixels, with edge replication
/// (L is 0 across a replicated edge in that direction). Higher = sharper: blurring removes
/// high frequencies and lowers it. `normalized` divides by the squared mean intensity so
/// channels of different brightness can be compared (scale invariant).
///
/// Per-row sums are stored and combined in row order at the end, so the result is bit-identical
/// for any band split or order. Feed bands with 1 row of context (or fewer at the image edges).
public struct FocusAccumulator: Sendable {
    public let width: Int, height: Int
    var rowSum: [Double], rowSum2: [Double], rowVal: [Double], seen: [Bool]

    public init(width: Int, height: Int) {
        self.width = width; self.height = height
        rowSum = [Double](repeating: 0, count: height); rowSum2 = rowSum; rowVal = rowSum
        seen = [Bool](repeating: false, count: height)
    }

    /// `band` = `haloTop + rows + haloBottom` rows: image rows `y0-haloTop ..< y0+rows+haloBottom`
    /// (rows outside the image are ignored; edge rows are replicated internally).
    public mutating func add(band: UnsafeBufferPointer<Float>, haloTop: Int, rows: Int, haloBottom: Int, y0: Int) {
        let w = width
        precondition(band.count >= (haloTop + rows + haloBottom) * w && y0 >= 0 && y0 + rows <= height)
        let top = y0 - haloTop
        for y in y0..<(y0 + rows) {
            let yu = Swift.max(0, y - 1), yd = Swift.min(height - 1, y + 1)
            precondition(yu - top >= 0 && yd - top < haloTop + rows + haloBottom, "band lacks a context row")
            let c = band.baseAddress! + (y - top) * w, u = band.baseAddress! + (yu - top) * w, d = band.baseAddress! + (yd - top) * w
            var s = 0.0, s2 = 0.0, sv = 0.0
            for x in 0..<w {
                let l = c[Swift.max(0, x - 1)], r = c[Swift.min(w - 1, x + 1)]
                let v = Double(c[x])
                let lap = Double(l) + Double(r) + Double(u[x]) + Double(d[x]) - 4 * v
                s += lap; s2 += lap * lap; sv += v
            }
            rowSum[y] = s; rowSum2[y] = s2; rowVal[y] = sv; seen[y] = true
        }
    }

    public var complete: Bool { !seen.contains(false) }

    /// The per-row sums of rows `r` (all seen), to carry to another process (`setRows`).
    public func rows(_ r: Range<Int>) -> (sum: [Double], sum2: [Double], val: [Double]) {
        precondition(r.allSatisfy { seen[$0] }, "rows not added")
        return (Array(rowSum[r]), Array(rowSum2[r]), Array(rowVal[r]))
    }

    /// Rows from `y0` as `rows` returned them (e.g. by the part of the slide that added them).
    public mutating func setRows(_ y0: Int, sum: [Double], sum2: [Double], val: [Double]) {
        precondition(sum.count == sum2.count && sum.count == val.count && y0 >= 0 && y0 + sum.count <= height)
        for k in 0..<sum.count { rowSum[y0 + k] = sum[k]; rowSum2[y0 + k] = sum2[k]; rowVal[y0 + k] = val[k]; seen[y0 + k] = true }
    }

    /// Variance of the Laplacian over the rows added so far.
    public var variance: Double {
        var n = 0, s = 0.0, s2 = 0.0
        for y in 0..<height where seen[y] { n += width; s += rowSum[y]; s2 += rowSum2[y] }
        guard n > 0 else { return 0 }
        let m = s / Double(n)
        return Swift.max(0, s2 / Double(n) - m * m)
    }

    /// Mean intensity over the rows added so far.
    public var mean: Double {
        var n = 0, s = 0.0
        for y in 0..<height where seen[y] { n += width; s += rowVal[y] }
        return n > 0 ? s / Double(n) : 0
    }

    /// `variance / max(mean^2, 1)`.
    public var normalized: Double { variance / Swift.max(mean * mean, 1) }

    /// Whole plane convenience.
    public static func score(_ plane: [Float], width: Int, height: Int) -> FocusAccumulator {
        var f = FocusAccumulator(width: width, height: height)
        plane.withUnsafeBufferPointer { f.add(band: $0, haloTop: 0, rows: height, haloBottom: 0, y0: 0) }
        return f
    }
}
