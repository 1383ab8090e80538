import Foundation
import Dispatch
import EpipeDenoise

/// Per-cell quantification accumulated band by band (labels band + matching channel bands),
/// giving the same `CellTable` as `Quantify.cells` on the whole image.
///
/// Per cell it keeps O(1) numbers plus the convex-hull vertices of its pixel centres so far:
/// area; integer sums of (x - x_ref), (y - y_ref) and their products relative to the cell's
/// first pixel (exact in Int, so centroids are bitwise those of `Quantify`, second central
/// moments equal to ~1e-12); bounding box; each row's leftmost/rightmost pixel, folded into
/// the running hull (hull(A ∪ B) = hull(hull(A) ∪ B); integer coordinates, exact cross
/// products, so the final hull and solidity are identical); sum of each channel (accumulated
/// in raster order like `Quantify.means`, so bitwise equal when bands are added top to bottom).
///
/// Bands must be added in increasing y and must not overlap; each row must be complete
/// (`width` px). Ids may be sparse: storage grows to the largest id seen.
public final class CellAccumulator {
    public let channels: Int
    var maxId = 0
    var area: [Int] = [0]
    var refX: [Int] = [0], refY: [Int] = [0]
    var sx: [Int] = [0], sy: [Int] = [0], sxx: [Int] = [0], syy: [Int] = [0], sxy: [Int] = [0]
    var minX: [Int] = [Int.max], maxX: [Int] = [-1], minY: [Int] = [Int.max], maxY: [Int] = [-1]
    /// hull candidate points per cell, (y, x) pairs interleaved, lexicographically sorted
    var pts: [[Int32]] = [[]]
    /// [channel][id] sums
    var sums: [[Double]]
    var nextRow = 0
    // scratch per band
    private var rowLo: [Int32] = [], rowHi: [Int32] = [], rowSeen: [Int32] = []
    private var touched: [Int] = []
    private var touchedMark: [Int32] = [0]
    private var bandCounter: Int32 = 0

    public init(channels: Int) {
        self.channels = channels
        sums = [[Double]](repeating: [0], count: channels)
    }

    private func grow(to id: Int) {
        guard id > maxId else { return }
        var cap = area.count
        while cap <= id { cap = Swift.max(2 * cap, 1024) }
        let extra = cap - area.count
        if extra > 0 {
            area += repeatElement(0, count: extra)
            refX += repeatElement(0, count: extra); refY += repeatElement(0, count: extra)
            sx += repeatElement(0, count: extra); sy += repeatElement(0, count: extra)
            sxx += repeatElement(0, count: extra); syy += repeatElement(0, count: extra); sxy += repeatElement(0, count: extra)
            minX += repeatElement(Int.max, count: extra); maxX += repeatElement(-1, count: extra)
            minY += repeatElement(Int.max, count: extra); maxY += repeatElement(-1, count: extra)
            pts += repeatElement([], count: extra)
            rowLo += repeatElement(0, count: extra); rowHi += repeatElement(0, count: extra)
            rowSeen += repeatElement(-1, count: extra)
            touchedMark += repeatElement(0, count: extra)
            for c in 0..<channels { sums[c] += repeatElement(0, count: extra) }
        }
        maxId = id
    }

    /// Adds rows [y0, y0 + rows) of the label image and of every channel (same layout).
    public func add(labels: UnsafeBufferPointer<UInt32>, y0: Int, rows: Int, width: Int, channels ch: [UnsafeBufferPointer<Float>]) {
        precondition(labels.count >= rows * width && ch.count == channels, "band size / channel count mismatch")
        precondition(y0 >= nextRow, "bands must be added top to bottom without overlap")
        for c in ch { precondition(c.count >= rows * width, "channel band too small") }
        nextRow = y0 + rows
        var bandMax: UInt32 = 0
        for i in 0..<(rows * width) where labels[i] > bandMax { bandMax = labels[i] }
        grow(to: Int(bandMax))
        bandCounter &+= 1
        let bc = bandCounter
        touched.removeAll(keepingCapacity: true)
        for ry in 0..<rows {
            let y = y0 + ry, row = ry * width
            for x in 0..<width {
                let l = Int(labels[row + x])
                if l == 0 { continue }
                if area[l] == 0 { refX[l] = x; refY[l] = y }
                area[l] += 1
                let dx = x - refX[l], dy = y - refY[l]
                sx[l] += dx; sy[l] += dy; sxx[l] += dx * dx; syy[l] += dy * dy; sxy[l] += dx * dy
                if x < minX[l] { minX[l] = x }
                if x > maxX[l] { maxX[l] = x }
                if y < minY[l] { minY[l] = y }
                maxY[l] = y
                if rowSeen[l] != Int32(y) {
                    if rowSeen[l] >= 0 && rowSeen[l] >= Int32(y0) { appendRow(l) }
                    rowSeen[l] = Int32(y); rowLo[l] = Int32(x); rowHi[l] = Int32(x)
                    if touchedMark[l] != bc { touchedMark[l] = bc; touched.append(l) }
                } else {
                    rowHi[l] = Int32(x)
                }
            }
        }
        for l in touched {
            appendRow(l)
            rowSeen[l] = -1
            if pts[l].count > 32 { compress(l) }
        }
        // channel sums, in raster order per channel (channels in parallel)
        let L = UnsafeShared(labels), C = UnsafeShared(ch), n = rows * width
        sums.withUnsafeMutableBufferPointer { S in
            let SS = UnsafeShared(S)
            DispatchQueue.concurrentPerform(iterations: channels) { c in
                let v = C.value[c], lab = L.value
                SS.value[c].withUnsafeMutableBufferPointer { s in
                    for i in 0..<n { let l = Int(lab[i]); if l != 0 { s[l] += Double(v[i]) } }
                }
            }
        }
    }

    private func appendRow(_ l: Int) {
        let y = rowSeen[l]
        pts[l].append(y); pts[l].append(rowLo[l])
        if rowHi[l] != rowLo[l] { pts[l].append(y); pts[l].append(rowHi[l]) }
    }

    private func hullPoints(_ l: Int) -> [(Double, Double)] {
        let p = pts[l]
        var out: [(Double, Double)] = []
        out.reserveCapacity(p.count / 2)
        var k = 0
        while k < p.count { out.append((Double(p[k]), Double(p[k + 1]))); k += 2 }
        return out
    }

    /// Replaces the stored points of cell l by its hull vertices (lexicographic order kept).
    private func compress(_ l: Int) {
        var h: [(Double, Double)] = []
        Quantify.convexHull(hullPoints(l), into: &h)
        h.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var p: [Int32] = []
        p.reserveCapacity(2 * h.count)
        for q in h { p.append(Int32(q.0)); p.append(Int32(q.1)) }
        pts[l] = p
    }

    /// Table for ids 1...count (default: the largest id seen); absent ids get zeros, like
    /// `Quantify.cells`.
    public func table(count: Int? = nil) -> CellTable {
        let n = count ?? maxId
        grow(to: n)
        var t = CellTable(ids: (0..<n).map { UInt32($0 + 1) }, area: Array(area[1..<(n + 1)]),
                          centroidX: [Double](repeating: 0, count: n), centroidY: [Double](repeating: 0, count: n),
                          majorAxis: [Double](repeating: 0, count: n), minorAxis: [Double](repeating: 0, count: n),
                          eccentricity: [Double](repeating: 0, count: n), solidity: [Double](repeating: 0, count: n),
                          extent: [Double](repeating: 0, count: n), orientation: [Double](repeating: 0, count: n),
                          means: [[Double]](repeating: [Double](repeating: 0, count: n), count: channels))
        var hull: [(Double, Double)] = []
        var lo: [Double] = [], hi: [Double] = []
        for l in stride(from: 1, through: n, by: 1) where area[l] > 0 {
            let a0 = area[l], m0 = Double(a0)
            // centroid exactly as Quantify: (sum of coordinates) / area, sums exact in Int
            let cx = Double(refX[l] * a0 + sx[l]) / m0, cy = Double(refY[l] * a0 + sy[l]) / m0
            t.centroidX[l - 1] = cx; t.centroidY[l - 1] = cy
            // central moments from exact integer sums relative to the reference pixel
            let fx = Double(sx[l]), fy = Double(sy[l])
            let mxx = Double(sxx[l]) - fx * fx / m0, myy = Double(syy[l]) - fy * fy / m0
            let mxy = Double(sxy[l]) - fx * fy / m0
            let a = mxx / m0, b = -mxy / m0, c = myy / m0
            let disc = (((a - c) / 2) * ((a - c) / 2) + b * b).squareRoot()
            let l1 = max(0, (a + c) / 2 + disc), l2 = max(0, (a + c) / 2 - disc)
            t.majorAxis[l - 1] = 4 * l1.squareRoot()
            t.minorAxis[l - 1] = 4 * l2.squareRoot()
            t.eccentricity[l - 1] = l1 == 0 ? 0 : (1 - l2 / l1).squareRoot()
            t.orientation[l - 1] = a - c == 0 ? (b < 0 ? Double.pi / 4 : -Double.pi / 4) : 0.5 * atan2(-2 * b, c - a)
            t.extent[l - 1] = m0 / Double((maxX[l] - minX[l] + 1) * (maxY[l] - minY[l] + 1))
            // solidity: same hull rasterisation as Quantify.cells
            Quantify.convexHull(hullPoints(l), into: &hull)
            let convex = Quantify.hullPixelCount(hull, y0: minY[l], rows: maxY[l] - minY[l] + 1, lo: &lo, hi: &hi)
            t.solidity[l - 1] = convex > 0 ? min(1, m0 / Double(convex)) : 1
            for ch in 0..<channels { t.means[ch][l - 1] = sums[ch][l] / m0 }
        }
        return t
    }
}
