import Foundation
import Dispatch
import EpipeDenoise

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

    /// Per label 1...count: area, centroid (pixel centres, x = column, y = row), shape from
    /// second central moments as skimage regionprops (major/minor = 4 sqrt(eigenvalue),
    /// eccentricity = sqrt(1 - l2/l1), orientation = angle in radians between the row axis and
    /// the major axis in (-pi/2, pi/2]), extent = area / bbox area, solidity = area / convex
    /// area where the convex area counts pixels whose centres lie in the convex hull of the
    /// object's pixel centres (so a rectangle has solidity exactly 1), and channel means.
    /// Labels > count are ignored. Cells with area 0 get zeros.
    public static func cells(labels: [UInt32], count: Int, width: Int, height: Int, channels: [[Float]]) -> CellTable {
        precondition(labels.count == width * height)
        let n = count
        var area = [Int](repeating: 0, count: n + 1)
        var sx = [Double](repeating: 0, count: n + 1), sy = sx
        var minX = [Int](repeating: Int.max, count: n + 1), maxX = [Int](repeating: -1, count: n + 1)
        var minY = minX, maxY = maxX
        // row extents: runs (label, y, xmin, xmax), appended in raster order
        var runIndex = [Int32](repeating: -1, count: n + 1)
        var lastRow = [Int32](repeating: -1, count: n + 1)
        var runLabel: [Int32] = [], runY: [Int32] = [], runMin: [Int32] = [], runMax: [Int32] = []
        labels.withUnsafeBufferPointer { L in
            for y in 0..<height {
                let row = y * width
                for x in 0..<width {
                    let l = Int(L[row + x])
                    if l == 0 || l > n { continue }
                    area[l] += 1; sx[l] += Double(x); sy[l] += Double(y)
                    if x < minX[l] { minX[l] = x }
                    if x > maxX[l] { maxX[l] = x }
                    if y < minY[l] { minY[l] = y }
                    maxY[l] = y
                    if lastRow[l] != Int32(y) {
                        lastRow[l] = Int32(y)
                        runIndex[l] = Int32(runLabel.count)
                        runLabel.append(Int32(l)); runY.append(Int32(y)); runMin.append(Int32(x)); runMax.append(Int32(x))
                    } else {
                        runMax[Int(runIndex[l])] = Int32(x)   // pixels of a row arrive in increasing x
                    }
                }
            }
        }
        var cx = [Double](repeating: 0, count: n + 1), cy = cx
        for l in 1...max(n, 1) where l <= n && area[l] > 0 { cx[l] = sx[l] / Double(area[l]); cy[l] = sy[l] / Double(area[l]) }
        // second central moments
        var mxx = [Double](repeating: 0, count: n + 1), myy = mxx, mxy = mxx
        labels.withUnsafeBufferPointer { L in
            for y in 0..<height {
                let row = y * width
                for x in 0..<width {
                    let l = Int(L[row + x])
                    if l == 0 || l > n { continue }
                    let dx = Double(x) - cx[l], dy = Double(y) - cy[l]
                    mxx[l] += dx * dx; myy[l] += dy * dy; mxy[l] += dx * dy
                }
            }
        }
        // group runs by label (stable counting sort keeps increasing y)
        var start = [Int](repeating: 0, count: n + 2)
        for l in runLabel { start[Int(l) + 1] += 1 }
        for l in 0..<(n + 1) { start[l + 1] += start[l] }
        var order = [Int](repeating: 0, count: runLabel.count)
        var fill = start
        for (i, l) in runLabel.enumerated() { order[fill[Int(l)]] = i; fill[Int(l)] += 1 }

        var t = CellTable(ids: (0..<n).map { UInt32($0 + 1) }, area: Array(area.dropFirst()),
                          centroidX: Array(cx.dropFirst()), centroidY: Array(cy.dropFirst()),
                          majorAxis: [Double](repeating: 0, count: n), minorAxis: [Double](repeating: 0, count: n),
                          eccentricity: [Double](repeating: 0, count: n), solidity: [Double](repeating: 0, count: n),
                          extent: [Double](repeating: 0, count: n), orientation: [Double](repeating: 0, count: n),
                          means: [])
        var hull: [(Double, Double)] = []
        var pts: [(Double, Double)] = []
        var rowLo: [Double] = [], rowHi: [Double] = []
        for l in 1..<(n + 1) where area[l] > 0 {
            let m0 = Double(area[l])
            let a = mxx[l] / m0, b = -mxy[l] / m0, c = myy[l] / m0
            let disc = (((a - c) / 2) * ((a - c) / 2) + b * b).squareRoot()
            let l1 = max(0, (a + c) / 2 + disc), l2 = max(0, (a + c) / 2 - disc)
            t.majorAxis[l - 1] = 4 * l1.squareRoot()
            t.minorAxis[l - 1] = 4 * l2.squareRoot()
            t.eccentricity[l - 1] = l1 == 0 ? 0 : (1 - l2 / l1).squareRoot()
            t.orientation[l - 1] = a - c == 0 ? (b < 0 ? Double.pi / 4 : -Double.pi / 4) : 0.5 * atan2(-2 * b, c - a)
            t.extent[l - 1] = m0 / Double((maxX[l] - minX[l] + 1) * (maxY[l] - minY[l] + 1))
            // convex hull of row-extreme pixel centres, points as (y, x), sorted lexicographically
            pts.removeAll(keepingCapacity: true)
            for k in start[l]..<start[l + 1] {
                let r = order[k]
                pts.append((Double(runY[r]), Double(runMin[r])))
                if runMax[r] != runMin[r] { pts.append((Double(runY[r]), Double(runMax[r]))) }
            }
            convexHull(pts, into: &hull)
            let convex = hullPixelCount(hull, y0: minY[l], rows: maxY[l] - minY[l] + 1, lo: &rowLo, hi: &rowHi)
            t.solidity[l - 1] = convex > 0 ? min(1, m0 / Double(convex)) : 1
        }
        t.means = means(labels: labels, count: count, channels: channels)
        return t
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

    /// Mean of each channel per label 1...count ([channel][label-1]); labels 0 and > count ignored,
    /// empty labels get 0. Channels are processed in parallel.
    public static func means(labels: [UInt32], count: Int, channels: [[Float]]) -> [[Double]] {
        var area = [Int](repeating: 0, count: count + 1)
        for v in labels where Int(v) <= count { area[Int(v)] += 1 }
        var result = [[Double]](repeating: [], count: channels.count)
        let A = UnsafeShared(area), Lb = UnsafeShared(labels), Ch = UnsafeShared(channels)
        result.withUnsafeMutableBufferPointer { R in
            let RS = UnsafeShared(R)
            DispatchQueue.concurrentPerform(iterations: channels.count) { c in
                let ch = Ch.value[c]
                precondition(ch.count == Lb.value.count, "channel size mismatch")
                var sums = [Double](repeating: 0, count: count + 1)
                ch.withUnsafeBufferPointer { v in
                    Lb.value.withUnsafeBufferPointer { L in
                        sums.withUnsafeMutableBufferPointer { S in
                            for i in 0..<L.count {
                                let l = Int(L[i])
                                if l <= count { S[l] += Double(v[i]) }
                            }
                        }
                    }
                }
                var m = [Double](repeating: 0, count: count)
                for l in 1..<(count + 1) where A.value[l] > 0 { m[l - 1] = sums[l] / Double(A.value[l]) }
                RS.value[c] = m
            }
        }
        return result
    }
}
