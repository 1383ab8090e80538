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
/// Optional extra statistics per channel (`stats`), as MCQuant's `intensity_sum`,
/// `intensity_std` and `intensity_median`:
/// - sum: the running sum above (Double, raster order).
/// - std: population standard deviation (numpy `np.std`, ddof 0), from sums shifted by the value
///   of the cell's first pixel: var = S2/n - (S1/n)^2 with S1 = sum(v - K) = sum - n K and
///   S2 = sum((v - K)^2) in Double, so there is no cancellation when the mean is large.
/// - median: exact, as numpy (mean of the two middle values for an even count). The values of
///   each *open* cell are kept (pixel-major, `channels` Floats per pixel) until a band has a row
///   below the cell's last row, i.e. the cell is absent from the last row of a band; then its
///   median is selected (linear time) and the values are freed. Memory of the open values is
///   at most (rows of one band + height of the tallest cell open across a band edge) x width x
///   channels x 4 bytes (x 1.5 for buffer growth): bounded by the band, not the slide. A label
///   whose rows are not contiguous (two parts with an empty row between, e.g. an imported mask)
///   is detected when it reappears after being closed; `beginRepair()` then gives the rows to
///   feed again through `repair(...)`, where it is closed at its known last row, so its median
///   is exact too.
///
/// Bands must be added in increasing y and must not overlap; each row must be complete
/// (`width` px). Ids may be sparse: storage grows to the largest id seen.
public final class CellAccumulator {
    public let channels: Int
    public let stats: CellStats
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
    /// cells whose first pixel is in the current band (std shifts)
    private var firsts: [Int] = []

    // std: [channel] per-id shift K (first pixel's value) and sum of (v - K)^2
    private var shift: [IdColumn<Float>] = []
    private var sq: [IdColumn<Double>] = []
    // median: [channel] per-id result; per-id state; open cells' values in slots
    private var med: [IdColumn<Double>] = []
    /// 0 not seen, 1 open, 2 closed (median known), 3 reappeared after closing (needs repair)
    private var mstate: [UInt8] = [0]
    private var slotOf: [Int32] = [-1]
    private var slotPtr: [UnsafeMutablePointer<Float>?] = [], slotCap: [Int] = [], slotN: [Int] = [], slotId: [Int] = []
    private var freeSlots: [Int] = [], openSlots: [Int] = []
    private var pixPos: [Int32] = []
    private var repairing = false, repairNextRow = 0
    /// Largest number of open values (Floats) held at once, for tests and logs.
    public private(set) var peakOpenValues = 0

    public init(channels: Int, stats: CellStats = []) {
        self.channels = channels
        self.stats = stats
        sums = [[Double]](repeating: [0], count: channels)
        if stats.contains(.std) {
            shift = (0..<channels).map { _ in IdColumn(fill: 0) }
            sq = (0..<channels).map { _ in IdColumn(fill: 0) }
        }
        if stats.contains(.median) { med = (0..<channels).map { _ in IdColumn(fill: 0) } }
    }

    deinit { for p in slotPtr { p?.deallocate() } }

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
            for col in shift { col.grow(to: cap) }
            for col in sq { col.grow(to: cap) }
            for col in med { col.grow(to: cap) }
            if !med.isEmpty { mstate += repeatElement(0, count: extra); slotOf += repeatElement(-1, count: extra) }
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
        firsts.removeAll(keepingCapacity: true)
        for ry in 0..<rows {
            let y = y0 + ry, row = ry * width
            for x in 0..<width {
                let l = Int(labels[row + x])
                if l == 0 { continue }
                if area[l] == 0 { refX[l] = x; refY[l] = y; firsts.append(l) }
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
        // channel sums, in raster order per channel (channels in parallel); std and median values
        let n = rows * width
        if !med.isEmpty { collect(labels, n: n) }
        let L = UnsafeShared(labels), C = UnsafeShared(ch)
        let F = UnsafeShared(firsts.map { (refY[$0] - y0) * width + refX[$0] })
        let firstIds = UnsafeShared(firsts)
        let SH = UnsafeShared(shift), SQ = UnsafeShared(sq)
        let doStd = !shift.isEmpty, doMed = !med.isEmpty
        let nch = channels
        sums.withUnsafeMutableBufferPointer { S in
            let SS = UnsafeShared(S)
            slotPtr.withUnsafeBufferPointer { SPb in
            slotOf.withUnsafeBufferPointer { SOb in
            pixPos.withUnsafeBufferPointer { PPb in
            let SP = UnsafeShared(SPb), SO = UnsafeShared(SOb), PP = UnsafeShared(PPb)
            DispatchQueue.concurrentPerform(iterations: nch) { c in
                let v = C.value[c], lab = L.value
                SS.value[c].withUnsafeMutableBufferPointer { s in
                    for i in 0..<n { let l = Int(lab[i]); if l != 0 { s[l] += Double(v[i]) } }
                }
                if doStd {
                    let k = SH.value[c].p, q = SQ.value[c].p
                    for (j, l) in firstIds.value.enumerated() { k[l] = v[F.value[j]] }
                    for i in 0..<n {
                        let l = Int(lab[i])
                        if l != 0 { let d = Double(v[i]) - Double(k[l]); q[l] += d * d }
                    }
                }
                if doMed {
                    let sp = SP.value, so = SO.value, pp = PP.value
                    for i in 0..<n where pp[i] >= 0 {
                        sp[Int(so[Int(lab[i])])]![Int(pp[i]) * nch + c] = v[i]
                    }
                }
            }
            } } }
        }
        if doMed { closeFinished(lastRow: y0 + rows - 1) }
    }

    /// Median values of open cells: marks, per pixel of the band, its position in its cell's
    /// slot (-1: not collected), opening slots for new cells and growing them. Main pass: a
    /// closed id that reappears is marked for the repair pass. Repair pass: only ids in state 0.
    private func collect(_ labels: UnsafeBufferPointer<UInt32>, n: Int) {
        if pixPos.count < n { pixPos = [Int32](repeating: -1, count: n) }
        for i in 0..<n {
            let l = Int(labels[i])
            if l == 0 { pixPos[i] = -1; continue }
            var st = mstate[l]
            if st == 0 {
                // open a slot
                let s: Int
                if let f = freeSlots.popLast() { s = f } else {
                    s = slotPtr.count
                    slotPtr.append(nil); slotCap.append(0); slotN.append(0); slotId.append(0)
                }
                slotN[s] = 0; slotId[s] = l; slotOf[l] = Int32(s)
                openSlots.append(s)
                mstate[l] = 1; st = 1
            } else if st == 2 && !repairing {
                mstate[l] = 3; st = 3
            }
            if st != 1 { pixPos[i] = -1; continue }
            let s = Int(slotOf[l])
            pixPos[i] = Int32(slotN[s]); slotN[s] += 1
        }
        for s in openSlots {
            let need = slotN[s] * channels
            if need > slotCap[s] {
                let cap = max(need, slotCap[s] + slotCap[s] / 2, 16 * channels)
                let q = UnsafeMutablePointer<Float>.allocate(capacity: cap)
                if let old = slotPtr[s] { q.update(from: old, count: slotCap[s]); old.deallocate() }
                slotPtr[s] = q; slotCap[s] = cap
            }
        }
        var held = 0
        for s in openSlots { held += slotN[s] * channels }
        peakOpenValues = max(peakOpenValues, held)
    }

    /// Closes the open cells that are finished after row `lastRow`: main pass, cells absent from
    /// that row; repair pass, cells whose last row (known) is at or above it. nil: all.
    private func closeFinished(lastRow: Int?) {
        var closing: [Int] = [], keep: [Int] = []
        for s in openSlots {
            let l = slotId[s]
            let done: Bool
            if let r = lastRow { done = repairing ? maxY[l] <= r : maxY[l] < r } else { done = true }
            if done { closing.append(s) } else { keep.append(s) }
        }
        guard !closing.isEmpty else { return }
        openSlots = keep
        let nch = channels
        var longest0 = 0
        for s in closing { longest0 = max(longest0, slotN[s]) }
        let longest = longest0
        let CL = UnsafeShared(closing), M = UnsafeShared(med)
        slotPtr.withUnsafeBufferPointer { SPb in
        slotN.withUnsafeBufferPointer { SNb in
        slotId.withUnsafeBufferPointer { SIb in
            let SP = UnsafeShared(SPb), SN = UnsafeShared(SNb), SI = UnsafeShared(SIb)
            DispatchQueue.concurrentPerform(iterations: nch) { c in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, longest))
                defer { scratch.deallocate() }
                let out = M.value[c].p
                for s in CL.value {
                    let m = SN.value[s], src = SP.value[s]!
                    for k in 0..<m { scratch[k] = src[k * nch + c] }
                    out[SI.value[s]] = Select.median(scratch, m)
                }
            }
        } } }
        for s in closing {
            let l = slotId[s]
            mstate[l] = 2; slotOf[l] = -1; slotN[s] = 0
            // keep small buffers for reuse; give large ones back
            if slotCap[s] > 4096 * channels { slotPtr[s]?.deallocate(); slotPtr[s] = nil; slotCap[s] = 0 }
            freeSlots.append(s)
        }
    }

    /// After the last band: closes the open cells and, when some label reappeared after being
    /// closed (rows not contiguous), returns the rows to feed again through `repair(...)`
    /// (top to bottom, complete rows, the same labels and channels) for exact medians of those
    /// labels. nil when there is nothing to repair (or no median).
    public func beginRepair() -> Range<Int>? {
        guard !med.isEmpty, !repairing else { return nil }
        closeFinished(lastRow: nil)
        var lo = Int.max, hi = -1
        for l in stride(from: 1, through: maxId, by: 1) where mstate[l] == 3 { lo = min(lo, minY[l]); hi = max(hi, maxY[l]) }
        guard hi >= 0 else { return nil }
        repairing = true
        for l in stride(from: 1, through: maxId, by: 1) { mstate[l] = mstate[l] == 3 ? 0 : 2 }
        repairNextRow = lo
        return lo..<(hi + 1)
    }

    /// Number of labels whose median needs the repair pass (0 after it).
    public var repairCount: Int {
        var k = 0
        for l in stride(from: 1, through: maxId, by: 1) where mstate.count > l && (mstate[l] == 3 || (repairing && mstate[l] != 2)) { k += 1 }
        return k
    }

    /// Repair pass (see `beginRepair`): collects only the labels to repair, closing each at its
    /// last row; the rows beyond `maxId` or other labels are ignored.
    public func repair(labels: UnsafeBufferPointer<UInt32>, y0: Int, rows: Int, width: Int, channels ch: [UnsafeBufferPointer<Float>]) {
        precondition(repairing, "call beginRepair() first")
        precondition(labels.count >= rows * width && ch.count == channels, "band size / channel count mismatch")
        precondition(y0 >= repairNextRow, "bands must be added top to bottom without overlap")
        repairNextRow = y0 + rows
        let n = rows * width
        // ids above maxId cannot be in the repair set: treat them as background
        var lab = [UInt32](repeating: 0, count: n)
        for i in 0..<n { let l = labels[i]; lab[i] = Int(l) <= maxId ? l : 0 }
        lab.withUnsafeBufferPointer { L in
            collect(L, n: n)
            let C = UnsafeShared(ch), nch = channels
            slotPtr.withUnsafeBufferPointer { SPb in
            slotOf.withUnsafeBufferPointer { SOb in
            pixPos.withUnsafeBufferPointer { PPb in
                let SP = UnsafeShared(SPb), SO = UnsafeShared(SOb), PP = UnsafeShared(PPb), LL = UnsafeShared(L)
                DispatchQueue.concurrentPerform(iterations: nch) { c in
                    let v = C.value[c], sp = SP.value, so = SO.value, pp = PP.value, lb = LL.value
                    for i in 0..<n where pp[i] >= 0 { sp[Int(so[Int(lb[i])])]![Int(pp[i]) * nch + c] = v[i] }
                }
            } } }
        }
        closeFinished(lastRow: y0 + rows - 1)
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
        if !med.isEmpty { closeFinished(lastRow: nil) }
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
        let zeros = [[Double]](repeating: [Double](repeating: 0, count: n), count: channels)
        if stats.contains(.sum) {
            t.sums = zeros
            for c in 0..<channels { for l in stride(from: 1, through: n, by: 1) { t.sums[c][l - 1] = sums[c][l] } }
        }
        if stats.contains(.std) {
            t.stds = zeros
            for c in 0..<channels {
                for l in stride(from: 1, through: n, by: 1) where area[l] > 0 {
                    let m0 = Double(area[l])
                    let s1 = (sums[c][l] - m0 * Double(shift[c][l])) / m0
                    t.stds[c][l - 1] = max(0, sq[c][l] / m0 - s1 * s1).squareRoot()
                }
            }
        }
        if stats.contains(.median) {
            t.medians = zeros
            for c in 0..<channels {
                for l in stride(from: 1, through: n, by: 1) where area[l] > 0 {
                    // a label waiting for the repair pass has no exact median: NaN
                    t.medians[c][l - 1] = mstate[l] == 2 ? med[c][l] : .nan
                }
            }
        }
        return t
    }
}
