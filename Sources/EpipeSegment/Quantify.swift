import Foundation
import Dispatch

/// Per-cell measurements; index i describes label `ids[i]` (= i + 1).
public struct CellTable: Sendable {
    public var ids: [UInt32]
    public var area: [Int]
    public var centroidX: [Double]
    public var centroidY: [Double]
    public var majorAxis: [Double]
    public var minorAxis: [Double]
    public var eccentricity: [Double]
    public var solidity: [Double]
    public var extent: [Double]
    public var orientation: [Double]
    /// [channel][cell] mean intensity.
    public var means: [[Double]]
    /// Optional statistics ([channel][cell]; empty unless asked for, see `CellStats`): median
    /// (numpy: mean of the two middle values for an even count), population std, sum.
    public var medians: [[Double]] = []
    public var stds: [[Double]] = []
    public var sums: [[Double]] = []
    public var count: Int { ids.count }

    public init(ids: [UInt32], area: [Int], centroidX: [Double], centroidY: [Double], majorAxis: [Double],
                minorAxis: [Double], eccentricity: [Double], solidity: [Double], extent: [Double],
                orientation: [Double], means: [[Double]]) {
        self.ids = ids; self.area = area; self.centroidX = centroidX; self.centroidY = centroidY
        self.majorAxis = majorAxis; self.minorAxis = minorAxis; self.eccentricity = eccentricity
        self.solidity = solidity; self.extent = extent; self.orientation = orientation; self.means = means
    }
}

public enum Quantify {
    /// Pixel centres inside a convex hull (points (y, x)) on rows y0..<y0+rows: the solidity
    /// denominator, shared by `cells` and the streaming `CellAccumulator`. `lo`/`hi` are scratch.
    static func hullPixelCount(_ hull: [(Double, Double)], y0: Int, rows rowsN: Int, lo rowLo: inout [Double], hi rowHi: inout [Double]) -> Int {
        rowLo = [Double](repeating: .infinity, count: rowsN)
        rowHi = [Double](repeating: -.infinity, count: rowsN)
        let hn = hull.count
        for k in 0..<hn {
            let p = hull[k], q = hull[(k + 1) % hn]
            if p.0 == q.0 {
                let r = Int(p.0) - y0
                rowLo[r] = min(rowLo[r], p.1, q.1); rowHi[r] = max(rowHi[r], p.1, q.1)
            } else {
                let ya = Int(min(p.0, q.0)), yb = Int(max(p.0, q.0))
                for yy in ya...yb {
                    let xx = p.1 + (q.1 - p.1) * (Double(yy) - p.0) / (q.0 - p.0)
                    let r = yy - y0
                    rowLo[r] = min(rowLo[r], xx); rowHi[r] = max(rowHi[r], xx)
                }
            }
        }
        var convex = 0
        for r in 0..<rowsN where rowHi[r] >= rowLo[r] {
            convex += Int((rowHi[r] + 1e-9).rounded(.down)) - Int((rowLo[r] - 1e-9).rounded(.up)) + 1
        }
        return convex
    }


    /// Andrew's monotone chain on lexicographically sorted points; counter-clockwise hull
    /// without collinear points (1 or 2 points for degenerate input).
    static func convexHull(_ p: [(Double, Double)], into h: inout [(Double, Double)]) {
        h.removeAll(keepingCapacity: true)
        if p.count <= 2 { h.append(contentsOf: p); return }
        @inline(__always) func cross(_ o: (Double, Double), _ a: (Double, Double), _ b: (Double, Double)) -> Double {
            (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
        }
        for q in p {
            while h.count >= 2 && cross(h[h.count - 2], h[h.count - 1], q) <= 0 { h.removeLast() }
            h.append(q)
        }
        let lower = h.count + 1
        for q in p.reversed().dropFirst() {
            while h.count >= lower && cross(h[h.count - 2], h[h.count - 1], q) <= 0 { h.removeLast() }
            h.append(q)
        }
        h.removeLast()
    }

}
