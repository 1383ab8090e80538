import Foundation
import Dispatch
import EpipeKernels

/// Final measurements of one id of one compartment: the fields of `CellTable` for that id.
public struct CellRow: Sendable, Equatable {
    public var id: UInt32
    public var area: Int
    public var centroidX = 0.0, centroidY = 0.0
    public var majorAxis = 0.0, minorAxis = 0.0, eccentricity = 0.0, solidity = 0.0, extent = 0.0, orientation = 0.0
    /// [channel]
    public var means: [Double]
    /// [channel], empty unless asked for (see `CellStats`)
    public var medians: [Double] = [], stds: [Double] = [], sums: [Double] = []
    /// first and last row of the label
    public var minY = 0, maxY = 0
    public init(id: UInt32, area: Int, means: [Double]) { self.id = id; self.area = area; self.means = means }
}

/// UInt32 id -> Int32 slot, open addressing with linear probing and backward-shift deletion
/// (no tombstones). Key 0 is "empty" (label 0 is background). Size ~ 2-4 x the entries.
struct IdSlotMap {
    private var keys: [UInt32] = [UInt32](repeating: 0, count: 256)
    private var vals: [Int32] = [Int32](repeating: 0, count: 256)
    private var mask = 255
    private(set) var count = 0

    @inline(__always) private func home(_ k: UInt32) -> Int { Int(truncatingIfNeeded: (UInt64(k) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    func find(_ k: UInt32) -> Int32? {
        var i = home(k)
        while true {
            let q = keys[i]
            if q == k { return vals[i] }
            if q == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    mutating func set(_ k: UInt32, _ v: Int32) {
        if (count + 1) * 2 > keys.count { rehash(keys.count * 2) }
        var i = home(k)
        while keys[i] != 0 && keys[i] != k { i = (i + 1) & mask }
        if keys[i] == 0 { count += 1; keys[i] = k }
        vals[i] = v
    }

    mutating func remove(_ k: UInt32) {
        var i = home(k)
        while keys[i] != k { if keys[i] == 0 { return }; i = (i + 1) & mask }
        keys[i] = 0; count -= 1
        var j = i
        while true {
            j = (j + 1) & mask
            let q = keys[j]
            if q == 0 { return }
            let h = home(q)
            // the entry at j may fill the hole at i unless its home lies cyclically in (i, j]
            let inRange = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !inRange { keys[i] = q; vals[i] = vals[j]; keys[j] = 0; i = j }
        }
    }

    private mutating func rehash(_ cap: Int) {
        let ok = keys, ov = vals
        keys = [UInt32](repeating: 0, count: cap); vals = [Int32](repeating: 0, count: cap)
        mask = cap - 1; count = 0
        for i in 0..<ok.count where ok[i] != 0 { set(ok[i], ov[i]) }
    }

    var bytes: Int { keys.count * 8 }
}

/// Per-cell quantification accumulated band by band (labels band + matching channel bands),
/// giving the same numbers as `Quantify.cells` on the whole image, cell by cell as cells are
/// finished.
///
/// State is kept only for *open* cells, in a pool of slots (id -> slot through a small hash map):
/// area; integer sums of (x - x_ref), (y - y_ref) and their products relative to the cell's
/// first pixel (exact in Int, so centroids are bitwise those of `Quantify`, second central
/// moments equal to ~1e-12); bounding box; each row's leftmost/rightmost pixel, folded into
/// the running hull (hull(A ∪ B) = hull(hull(A) ∪ B); integer coordinates, exact cross
/// products, so the final hull and solidity are identical); sum of each channel (accumulated
/// in raster order like `Quantify.means`, so bitwise equal when bands are added top to bottom).
///
/// A cell is *closed* after the first band whose last row is more than `grace` rows below its
/// last row so far (a label whose rows are contiguous cannot come back; `grace` > 0 keeps labels
/// with a few empty rows inside, e.g. split nuclei, open instead of reopened): its `CellRow` is
/// computed and returned by `add` (or `finish()` for the cells still open after the last band)
/// and its slot is reused. Memory: the slots of the cells open across a band edge plus those of
/// the band, not the number of cells (`openCells`, `peakOpenCells`, `retainedBytes`), plus one
/// bit per id (closed ids, to detect labels that come back).
///
/// Optional extra statistics per channel (`stats`), as MCQuant's `intensity_sum`,
/// `intensity_std` and `intensity_median`:
/// - sum: the running sum above (Double, raster order).
/// - std: population standard deviation (numpy `np.std`, ddof 0), from sums shifted by the value
///   of the cell's first pixel: var = S2/n - (S1/n)^2 with S1 = sum(v - K) = sum - n K and
///   S2 = sum((v - K)^2) in Double, so there is no cancellation when the mean is large.
/// - median: exact, as numpy (mean of the two middle values for an even count). The values of
///   each open cell are kept (pixel-major, `channels` Floats per pixel) until it closes, then its
///   median is selected (linear time) and the values are freed: at most (rows of one band +
///   height of the tallest cell open across a band edge) x width x channels x 4 bytes (x 1.5
///   for buffer growth).
///
/// Labels whose rows are not contiguous (two parts with an empty row between, e.g. an imported
/// mask) come back after being closed. Two modes:
/// - `retain: true` (default; `table(count:)`): closed cells' state and rows are kept (memory
///   per cell, as for a whole-image table); a label that comes back resumes its state exactly,
///   only its median needs the repair pass (`beginRepair()` / `repair(...)` / `endRepair()`).
/// - `retain: false` (streaming): nothing is kept after a close but one bit per id. A label that
///   comes back is listed in `reopened`, ignored for the rest of the pass (`status` .reopened);
///   its row already returned is wrong. The repair pass (its rows read again, from the first row
///   of its first part when the caller still has it, `CellRow.minY`, else row 0, to its last)
///   recomputes all its values from scratch, with any `extra` ids the caller wants again (all
///   rows: their extent is not known). Memory of the repair: the labels repaired only.
///   The median's open values: at most (band + tallest cell + grace) rows x width x channels x 4
///   bytes.
///
/// Bands must be added in increasing y and must not overlap; each row must be complete
/// (`width` px). Ids may be sparse.
public final class CellAccumulator {
    public let channels: Int
    public let stats: CellStats
    public let retain: Bool
    /// a cell closes once the band's last row is more than `grace` rows below its last row
    public let grace: Int
    /// largest id seen
    public private(set) var maxId = 0
    var nextRow = 0

    // slots
    private var map = IdSlotMap()
    private var slotId: [UInt32] = []
    // per-slot columns with stable base addresses (grown only when a slot is added)
    private let area = IdColumn<Int>(fill: 0), refX = IdColumn<Int>(fill: 0), refY = IdColumn<Int>(fill: 0)
    private let sx = IdColumn<Int>(fill: 0), sy = IdColumn<Int>(fill: 0), sxx = IdColumn<Int>(fill: 0), syy = IdColumn<Int>(fill: 0), sxy = IdColumn<Int>(fill: 0)
    private let minX = IdColumn<Int>(fill: 0), maxX = IdColumn<Int>(fill: 0), minY = IdColumn<Int>(fill: 0), maxY = IdColumn<Int>(fill: 0)
    private let mN = IdColumn<Int>(fill: 0)
    private let rowLo = IdColumn<Int32>(fill: 0), rowHi = IdColumn<Int32>(fill: 0), rowSeen = IdColumn<Int32>(fill: -1), touchedMark = IdColumn<Int32>(fill: 0)
    /// hull candidate points per slot, (y, x) pairs interleaved, lexicographically sorted
    private var pts: [[Int32]] = []
    private var sums: [IdColumn<Double>] = []
    private var shift: [IdColumn<Float>] = [], sq: [IdColumn<Double>] = []
    private var mPtr: [UnsafeMutablePointer<Float>?] = [], mCap: [Int] = []
    private var freeSlots: [Int] = [], openList: [Int] = []
    private var colCap = 1
    public private(set) var peakOpenCells = 0
    /// Largest number of open median values (Floats) held at once, for tests and logs.
    public private(set) var peakOpenValues = 0

    // scratch per band
    private var slotIdx: [Int32] = [], pixPos: [Int32] = []
    private var touched: [Int] = [], firsts: [Int] = [], firstPos: [Int] = []
    private var bandCounter: Int32 = 0

    // closed ids (streaming mode): bit per id
    private var closedBits: [UInt64] = []
    /// ids that came back after being closed, in order of detection (streaming mode: all values
    /// pending the repair pass; retain mode: the median only).
    public private(set) var reopened: [UInt32] = []
    /// streaming: reopened id -> last row seen so far
    private var reopenedLast: [UInt32: Int] = [:]
    // retain mode: closed state and rows
    private struct Saved { var area, refX, refY, sx, sy, sxx, syy, sxy, minX, maxX, minY, maxY: Int; var pts: [Int32]; var sums: [Double], shift: [Float], sq: [Double] }
    private var saved: [UInt32: Saved] = [:]
    private var kept: [UInt32: CellRow] = [:]
    private var medPending = Set<UInt32>()
    // repair pass
    private var repairing = false, repairNextRow = 0
    private var repairSet = Set<UInt32>()
    private var repairLast: [UInt32: Int] = [:]
    private var carry: [CellRow] = []
    /// During a repair pass: the rows holding labels to repair (sorted, disjoint); rows outside
    /// them need not be fed.
    public private(set) var repairRows: [Range<Int>] = []

    public init(channels: Int, stats: CellStats = [], retain: Bool = true, grace: Int = 0) {
        self.channels = channels
        self.grace = max(0, grace)
        self.stats = stats
        self.retain = retain
        sums = (0..<channels).map { _ in IdColumn(fill: 0) }
        if stats.contains(.std) {
            shift = (0..<channels).map { _ in IdColumn(fill: 0) }
            sq = (0..<channels).map { _ in IdColumn(fill: 0) }
        }
    }

    deinit { for p in mPtr { p?.deallocate() } }

    private var doMed: Bool { stats.contains(.median) }

    /// Number of cells open now.
    public var openCells: Int { openList.count }

    /// Bytes held for the open cells (slots, hull points, median values, id map), excluding the
    /// per-band scratch (~8 bytes per pixel of the largest band) and the closed-id bits.
    public var retainedBytes: Int {
        let cap = slotId.count
        var b = cap * (4 + 12 * 8 + 4 * 4 + 8 * channels * (1 + (shift.isEmpty ? 0 : 2)) + 24 + 24)
        for s in 0..<cap { b += pts[s].capacity * 4 + mCap[s] * 4 }
        return b + map.bytes
    }

    private func newSlot() -> Int {
        if let s = freeSlots.popLast() { return s }
        let s = slotId.count
        slotId.append(0)
        pts.append([])
        mPtr.append(nil); mCap.append(0)
        if slotId.count > colCap {
            colCap = max(slotId.count, 2 * colCap, 256)
            for c in [area, refX, refY, sx, sy, sxx, syy, sxy, minX, maxX, minY, maxY, mN] { c.grow(to: colCap) }
            for c in [rowLo, rowHi, rowSeen, touchedMark] { c.grow(to: colCap) }
            for c in sums { c.grow(to: colCap) }
            for c in shift { c.grow(to: colCap) }
            for c in sq { c.grow(to: colCap) }
        }
        return s
    }

    /// Opens a slot for `l` (fresh, or resumed from its saved state in retain mode).
    private func open(_ l: UInt32) -> Int32 {
        let s = newSlot()
        slotId[s] = l
        area[s] = 0; refX[s] = 0; refY[s] = 0; sx[s] = 0; sy[s] = 0; sxx[s] = 0; syy[s] = 0; sxy[s] = 0
        minX[s] = Int.max; maxX[s] = -1; minY[s] = Int.max; maxY[s] = -1
        pts[s].removeAll(keepingCapacity: true)
        rowSeen[s] = -1; touchedMark[s] = 0; mN[s] = 0
        for c in 0..<channels { sums[c][s] = 0 }
        for c in 0..<sq.count { sq[c][s] = 0; shift[c][s] = 0 }
        if !repairing, let v = saved.removeValue(forKey: l) {
            area[s] = v.area; refX[s] = v.refX; refY[s] = v.refY; sx[s] = v.sx; sy[s] = v.sy; sxx[s] = v.sxx; syy[s] = v.syy; sxy[s] = v.sxy
            minX[s] = v.minX; maxX[s] = v.maxX; minY[s] = v.minY; maxY[s] = v.maxY; pts[s] = v.pts
            for c in 0..<channels { sums[c][s] = v.sums[c] }
            for c in 0..<sq.count { sq[c][s] = v.sq[c]; shift[c][s] = v.shift[c] }
        }
        map.set(l, Int32(s))
        openList.append(s)
        peakOpenCells = max(peakOpenCells, openList.count)
        if Int(l) > maxId { maxId = Int(l) }
        return Int32(s)
    }

    @inline(__always) private func isClosed(_ l: UInt32) -> Bool {
        let w = Int(l >> 6)
        return w < closedBits.count && closedBits[w] & (1 << UInt64(l & 63)) != 0
    }

    private func markClosed(_ l: UInt32) {
        let w = Int(l >> 6)
        if w >= closedBits.count { closedBits += [UInt64](repeating: 0, count: max(w + 1, 2 * closedBits.count) - closedBits.count) }
        closedBits[w] |= 1 << UInt64(l & 63)
    }

    /// The slot of label `l` met at row `y` (at the start of a run), opening one if needed;
    /// -1: ignored (streaming: came back after its close; repair: not to repair).
    private func lookup(_ l: UInt32, _ y: Int) -> Int32 {
        if let s = map.find(l) {
            if s < 0 { reopenedLast[l] = y }
            return s
        }
        if repairing {
            return repairSet.contains(l) ? open(l) : -1
        }
        if retain {
            if saved[l] != nil {
                reopened.append(l)
                if doMed { medPending.insert(l) }
            }
            return open(l)
        }
        if isClosed(l) {
            reopened.append(l)
            reopenedLast[l] = y
            map.set(l, -1)
            return -1
        }
        return open(l)
    }

    /// Adds rows [y0, y0 + rows) of the label image and of every channel (same layout). Returns
    /// the rows of the cells closed by this band (increasing id).
    @discardableResult
    public func add(labels: UnsafeBufferPointer<UInt32>, y0: Int, rows: Int, width: Int, channels ch: [UnsafeBufferPointer<Float>]) -> [CellRow] {
        precondition(!repairing, "add after beginRepair")
        precondition(labels.count >= rows * width && ch.count == channels, "band size / channel count mismatch")
        precondition(y0 >= nextRow, "bands must be added top to bottom without overlap")
        for c in ch { precondition(c.count >= rows * width, "channel band too small") }
        nextRow = y0 + rows
        accumulate(labels, y0: y0, rows: rows, width: width, ch)
        return closeFinished(lastRow: y0 + rows - 1)
    }

    private func accumulate(_ labels: UnsafeBufferPointer<UInt32>, y0: Int, rows: Int, width: Int, _ ch: [UnsafeBufferPointer<Float>]) {
        let n = rows * width
        if slotIdx.count < n { slotIdx = [Int32](repeating: -1, count: n) }
        let med = doMed
        if med && pixPos.count < n { pixPos = [Int32](repeating: -1, count: n) }
        bandCounter &+= 1
        if bandCounter == 0 { bandCounter = 1; for s in 0..<touchedMark.count { touchedMark[s] = 0 } }
        let bc = bandCounter
        touched.removeAll(keepingCapacity: true)
        firsts.removeAll(keepingCapacity: true); firstPos.removeAll(keepingCapacity: true)
        // pass 1: slot of each pixel (opening slots, which may grow the columns); the slot array
        // is detached from self while it is filled (no uniqueness check per pixel)
        var si = slotIdx
        slotIdx = []
        si.withUnsafeMutableBufferPointer { S in
            for ry in 0..<rows {
                let y = y0 + ry, row = ry * width
                var prevL: UInt32 = 0, prevS: Int32 = -1
                for x in 0..<width {
                    let lab = labels[row + x]
                    if lab == 0 { S[row + x] = -1; continue }
                    if lab != prevL { prevS = lookup(lab, y); prevL = lab }
                    S[row + x] = prevS
                }
            }
        }
        slotIdx = si
        // pass 2: moments, box, row ends, first pixels (columns through their stable pointers)
        let A = area.p, RX = refX.p, RY = refY.p, SX = sx.p, SY = sy.p, SXX = sxx.p, SYY = syy.p, SXY = sxy.p
        let X0 = minX.p, X1 = maxX.p, Y0 = minY.p, Y1 = maxY.p, MN = mN.p
        let RS = rowSeen.p, RL = rowLo.p, RH = rowHi.p, TM = touchedMark.p
        slotIdx.withUnsafeBufferPointer { si in
        pixPos.withUnsafeMutableBufferPointer { pp in
            for ry in 0..<rows {
                let y = y0 + ry, row = ry * width, y32 = Int32(y)
                for x in 0..<width {
                    let s32 = si[row + x]
                    if s32 < 0 { continue }
                    let l = Int(s32)
                    if A[l] == 0 { RX[l] = x; RY[l] = y; firsts.append(l); firstPos.append(row + x) }
                    A[l] += 1
                    let dx = x - RX[l], dy = y - RY[l]
                    SX[l] += dx; SY[l] += dy; SXX[l] += dx * dx; SYY[l] += dy * dy; SXY[l] += dx * dy
                    if x < X0[l] { X0[l] = x }
                    if x > X1[l] { X1[l] = x }
                    if y < Y0[l] { Y0[l] = y }
                    Y1[l] = y
                    if RS[l] != y32 {
                        if RS[l] >= 0 && RS[l] >= Int32(y0) { appendRow(l) }
                        RS[l] = y32; RL[l] = Int32(x); RH[l] = Int32(x)
                        if TM[l] != bc { TM[l] = bc; touched.append(l) }
                    } else {
                        RH[l] = Int32(x)
                    }
                    if med { pp[row + x] = Int32(MN[l]); MN[l] += 1 }
                }
            }
        } }
        for l in touched {
            appendRow(l)
            rowSeen[l] = -1
            if pts[l].count > 32 { compress(l) }
        }
        if med {
            var held = 0
            for s in touched {
                let need = mN[s] * channels
                if need > mCap[s] {
                    let cap = max(need, mCap[s] + mCap[s] / 2, 16 * channels)
                    let q = UnsafeMutablePointer<Float>.allocate(capacity: cap)
                    if let old = mPtr[s] { q.update(from: old, count: mCap[s]); old.deallocate() }
                    mPtr[s] = q; mCap[s] = cap
                }
            }
            for s in openList { held += mN[s] * channels }
            peakOpenValues = max(peakOpenValues, held)
        }
        // channel sums in raster order per channel (channels in parallel); std and median values
        let C = UnsafeShared(ch)
        let F = UnsafeShared(firstPos), firstSlots = UnsafeShared(firsts)
        let SU = UnsafeShared(sums), SH = UnsafeShared(shift), SQ = UnsafeShared(sq)
        let doStd = !shift.isEmpty
        let nch = channels
        slotIdx.withUnsafeBufferPointer { SIb in
        mPtr.withUnsafeBufferPointer { MPb in
        pixPos.withUnsafeBufferPointer { PPb in
            let SI = UnsafeShared(SIb), MP = UnsafeShared(MPb), PP = UnsafeShared(PPb)
            DispatchQueue.concurrentPerform(iterations: nch) { c in
                let v = C.value[c], si = SI.value
                let s = SU.value[c].p
                for i in 0..<n { let l = si[i]; if l >= 0 { s[Int(l)] += Double(v[i]) } }
                if doStd {
                    let k = SH.value[c].p, q = SQ.value[c].p
                    for (j, l) in firstSlots.value.enumerated() { k[l] = v[F.value[j]] }
                    for i in 0..<n {
                        let l = si[i]
                        if l >= 0 { let d = Double(v[i]) - Double(k[Int(l)]); q[Int(l)] += d * d }
                    }
                }
                if med {
                    let mp = MP.value, pp = PP.value
                    for i in 0..<n { let l = si[i]; if l >= 0 { mp[Int(l)]![Int(pp[i]) * nch + c] = v[i] } }
                }
            }
        } } }
    }

    /// Closes the open cells finished after row `lastRow`: main pass, cells absent from that row;
    /// repair pass, cells whose last row (known) is at or above it. nil: all.
    private func closeFinished(lastRow: Int?) -> [CellRow] {
        var closing: [Int] = [], keep: [Int] = []
        for s in openList {
            let done: Bool
            if let r = lastRow {
                if repairing { done = repairLast[slotId[s]].map { $0 <= r } ?? false } else { done = maxY[s] + grace < r }
            } else { done = true }
            if done { closing.append(s) } else { keep.append(s) }
        }
        guard !closing.isEmpty else { return [] }
        openList = keep
        closing.sort { slotId[$0] < slotId[$1] }
        var out = rows(of: closing)
        for (j, s) in closing.enumerated() {
            let l = slotId[s]
            if retain && !repairing && medPending.contains(l) {
                for c in 0..<out[j].medians.count { out[j].medians[c] = .nan }
            }
            if retain {
                if !repairing {
                    var v = Saved(area: area[s], refX: refX[s], refY: refY[s], sx: sx[s], sy: sy[s], sxx: sxx[s], syy: syy[s], sxy: sxy[s],
                                  minX: minX[s], maxX: maxX[s], minY: minY[s], maxY: maxY[s], pts: pts[s], sums: [], shift: [], sq: [])
                    v.sums = (0..<channels).map { sums[$0][s] }
                    if !sq.isEmpty { v.sq = (0..<channels).map { sq[$0][s] }; v.shift = (0..<channels).map { shift[$0][s] } }
                    saved[l] = v
                } else {
                    medPending.remove(l)
                }
                kept[l] = out[j]
            } else if !repairing {
                markClosed(l)
            }
            if repairing { repairSet.remove(l) }
            map.remove(l)
            mN[s] = 0
            // keep small buffers for reuse; give large ones back
            if mCap[s] > 4096 * channels { mPtr[s]?.deallocate(); mPtr[s] = nil; mCap[s] = 0 }
            if pts[s].capacity > 256 { pts[s] = [] }
            freeSlots.append(s)
        }
        return out
    }

    /// The rows of the given slots (in that order); chunks in parallel when many.
    private func rows(of slots: [Int]) -> [CellRow] {
        let m = slots.count
        var out = [CellRow](repeating: CellRow(id: 0, area: 0, means: []), count: m)
        let chunks = m >= 2048 ? 8 : 1
        let S = UnsafeShared(slots), me = UnsafeShared(self)
        out.withUnsafeMutableBufferPointer { ob in
            let O = UnsafeShared(ob)
            DispatchQueue.concurrentPerform(iterations: chunks) { k in
                var hull: [(Double, Double)] = [], lo: [Double] = [], hi: [Double] = []
                for j in (m * k / chunks)..<(m * (k + 1) / chunks) { O.value[j] = me.value.row(S.value[j], &hull, &lo, &hi) }
            }
        }
        if doMed {
            // medians: channels in parallel over the closing cells
            var longest = 0
            for s in slots { longest = max(longest, mN[s]) }
            let res = UnsafeMutablePointer<Double>.allocate(capacity: max(1, m * channels))
            defer { res.deallocate() }
            let R = UnsafeShared(res), nch = channels, L = longest
            mPtr.withUnsafeBufferPointer { MPb in
                let MP = UnsafeShared(MPb), MN = UnsafeShared(mN.p)
                DispatchQueue.concurrentPerform(iterations: nch) { c in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(1, L))
                    defer { scratch.deallocate() }
                    for (j, s) in S.value.enumerated() {
                        let cnt = MN.value[s]
                        if let src = MP.value[s] { for k in 0..<cnt { scratch[k] = src[k * nch + c] } }
                        R.value[j * nch + c] = Select.median(scratch, cnt)
                    }
                }
            }
            for j in 0..<m { out[j].medians = (0..<channels).map { res[j * nch + $0] } }
        }
        return out
    }

    /// Final values of slot s (as `Quantify.cells` for that id).
    private func row(_ l: Int, _ hull: inout [(Double, Double)], _ lo: inout [Double], _ hi: inout [Double]) -> CellRow {
        let a0 = area[l], m0 = Double(a0)
        var r = CellRow(id: slotId[l], area: a0, means: (0..<channels).map { sums[$0][l] / m0 })
        r.minY = minY[l]; r.maxY = maxY[l]
        // centroid exactly as Quantify: (sum of coordinates) / area, sums exact in Int
        r.centroidX = Double(refX[l] * a0 + sx[l]) / m0; r.centroidY = Double(refY[l] * a0 + sy[l]) / m0
        // central moments from exact integer sums relative to the reference pixel
        let fx = Double(sx[l]), fy = Double(sy[l])
        let mxx = Double(sxx[l]) - fx * fx / m0, myy = Double(syy[l]) - fy * fy / m0
        let mxy = Double(sxy[l]) - fx * fy / m0
        let a = mxx / m0, b = -mxy / m0, c = myy / m0
        let disc = (((a - c) / 2) * ((a - c) / 2) + b * b).squareRoot()
        let l1 = max(0, (a + c) / 2 + disc), l2 = max(0, (a + c) / 2 - disc)
        r.majorAxis = 4 * l1.squareRoot()
        r.minorAxis = 4 * l2.squareRoot()
        r.eccentricity = l1 == 0 ? 0 : (1 - l2 / l1).squareRoot()
        r.orientation = a - c == 0 ? (b < 0 ? Double.pi / 4 : -Double.pi / 4) : 0.5 * atan2(-2 * b, c - a)
        r.extent = m0 / Double((maxX[l] - minX[l] + 1) * (maxY[l] - minY[l] + 1))
        // solidity: same hull rasterisation as Quantify.cells
        Quantify.convexHull(hullPoints(l), into: &hull)
        let convex = Quantify.hullPixelCount(hull, y0: minY[l], rows: maxY[l] - minY[l] + 1, lo: &lo, hi: &hi)
        r.solidity = convex > 0 ? min(1, m0 / Double(convex)) : 1
        if stats.contains(.sum) { r.sums = (0..<channels).map { sums[$0][l] } }
        if stats.contains(.std) {
            r.stds = (0..<channels).map { c in
                let s1 = (sums[c][l] - m0 * Double(shift[c][l])) / m0
                return max(0, sq[c][l] / m0 - s1 * s1).squareRoot()
            }
        }
        return r
    }

    /// After the last band: closes every open cell and returns their rows (increasing id). In
    /// streaming mode the ids in `reopened` stay pending until the repair pass.
    @discardableResult
    public func finish() -> [CellRow] {
        guard !repairing else { return [] }
        return closeFinished(lastRow: nil)
    }

    public enum Status: Sendable { case none, open, reopened }
    /// open: its row may still change; reopened (streaming): came back after its close, pending
    /// the repair pass; none: closed, or not seen.
    public func status(_ id: UInt32) -> Status {
        if let s = map.find(id) { return s >= 0 ? .open : .reopened }
        return repairing && repairSet.contains(id) ? .open : .none
    }

    /// Closes the open cells and starts the repair pass for the labels that came back after
    /// their close (see the type's notes) and the `extra` ids (streaming mode; recomputed from
    /// scratch, e.g. rows the caller could not use). `firstRow(id)` may give the first row of a
    /// reopened label (e.g. from its first row returned, `CellRow.minY`); else row 0. Returns the
    /// rows to feed again through `repair(...)` (top to bottom, complete rows, the same labels
    /// and channels), nil when there is nothing to repair. Rows of labels whose last row is
    /// unknown (extra ids) are returned by `endRepair()`.
    public func beginRepair(extra: [UInt32] = [], firstRow: (UInt32) -> Int? = { _ in nil }) -> Range<Int>? {
        guard !repairing else { return nil }
        carry += closeFinished(lastRow: nil)
        var set = Set<UInt32>(), lo = Int.max, hi = -1
        if retain {
            guard doMed else { return nil }
            set = medPending
            for l in set { if let v = saved[l] { lo = min(lo, v.minY); hi = max(hi, v.maxY); repairLast[l] = v.maxY } }
        } else {
            for l in reopened { set.insert(l); let y = reopenedLast[l]!; repairLast[l] = y; hi = max(hi, y); lo = min(lo, firstRow(l) ?? 0) }
            for l in extra where l != 0 { set.insert(l) }
            // extra ids: extent unknown, all rows so far
            if extra.contains(where: { $0 != 0 && repairLast[$0] == nil }) { lo = 0; hi = nextRow - 1 }
            for l in reopened { map.remove(l) }
            reopened.removeAll(); reopenedLast.removeAll()
        }
        guard !set.isEmpty, hi >= lo else { return nil }
        // rows that hold a label to repair (merged intervals; the caller may skip the others)
        var spans: [Range<Int>] = []
        if retain { for l in set { if let v = saved[l] { spans.append(v.minY..<(v.maxY + 1)) } } }
        else if lo == 0 && hi == nextRow - 1 && extra.contains(where: { $0 != 0 && repairLast[$0] == nil }) { spans = [0..<nextRow] }
        else { for (l, y) in repairLast { spans.append(min(y, firstRow(l) ?? 0)..<(y + 1)) } }
        spans.sort { $0.lowerBound < $1.lowerBound }
        repairRows = []
        for r in spans {
            if let last = repairRows.last, r.lowerBound <= last.upperBound { repairRows[repairRows.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound) }
            else { repairRows.append(r) }
        }
        repairing = true
        repairSet = set
        repairNextRow = lo
        return lo..<(hi + 1)
    }

    /// Number of labels waiting for the repair pass (0 after it).
    public var repairCount: Int {
        if repairing { return repairSet.count }
        return retain ? medPending.count : reopened.count
    }

    /// Repair pass (see `beginRepair`): accumulates only the labels to repair, from scratch,
    /// closing each at its last row when known. Returns the rows closed.
    @discardableResult
    public func repair(labels: UnsafeBufferPointer<UInt32>, y0: Int, rows: Int, width: Int, channels ch: [UnsafeBufferPointer<Float>]) -> [CellRow] {
        precondition(repairing, "call beginRepair() first")
        precondition(labels.count >= rows * width && ch.count == channels, "band size / channel count mismatch")
        precondition(y0 >= repairNextRow, "bands must be added top to bottom without overlap")
        repairNextRow = y0 + rows
        accumulate(labels, y0: y0, rows: rows, width: width, ch)
        return closeFinished(lastRow: y0 + rows - 1)
    }

    /// Ends the repair pass: the rows of the labels still open (and of the cells closed by
    /// `beginRepair`).
    @discardableResult
    public func endRepair() -> [CellRow] {
        var out = carry
        carry = []
        guard repairing else { return out }
        out += closeFinished(lastRow: nil)
        repairing = false
        repairSet.removeAll(); repairLast.removeAll()
        return out
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

    /// Replaces the stored points of slot l by its hull vertices (lexicographic order kept).
    private func compress(_ l: Int) {
        var h: [(Double, Double)] = []
        Quantify.convexHull(hullPoints(l), into: &h)
        h.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        var p: [Int32] = []
        p.reserveCapacity(2 * h.count)
        for q in h { p.append(Int32(q.0)); p.append(Int32(q.1)) }
        pts[l] = p
    }

    /// Table for ids 1...count (default: the largest id seen) from the rows (retain mode); absent
    /// ids get zeros, like `Quantify.cells`; a median still waiting for the repair pass is NaN.
    /// Closes the open cells (and ends a repair pass).
    public func table(count: Int? = nil) -> CellTable {
        precondition(retain, "table(count:) needs retain: true")
        if repairing { for r in endRepair() { kept[r.id] = r } } else { for r in finish() { kept[r.id] = r } }
        let n = count ?? maxId
        let z = [Double](repeating: 0, count: n)
        var t = CellTable(ids: (0..<n).map { UInt32($0 + 1) }, area: [Int](repeating: 0, count: n),
                          centroidX: z, centroidY: z, majorAxis: z, minorAxis: z, eccentricity: z, solidity: z,
                          extent: z, orientation: z, means: [[Double]](repeating: z, count: channels))
        let zeros = [[Double]](repeating: z, count: channels)
        if stats.contains(.sum) { t.sums = zeros }
        if stats.contains(.std) { t.stds = zeros }
        if stats.contains(.median) { t.medians = zeros }
        for (id, r) in kept where id >= 1 && Int(id) <= n {
            let i = Int(id) - 1
            t.area[i] = r.area; t.centroidX[i] = r.centroidX; t.centroidY[i] = r.centroidY
            t.majorAxis[i] = r.majorAxis; t.minorAxis[i] = r.minorAxis; t.eccentricity[i] = r.eccentricity
            t.solidity[i] = r.solidity; t.extent[i] = r.extent; t.orientation[i] = r.orientation
            for c in 0..<channels {
                t.means[c][i] = r.means[c]
                if !r.sums.isEmpty { t.sums[c][i] = r.sums[c] }
                if !r.stds.isEmpty { t.stds[c][i] = r.stds[c] }
                if !r.medians.isEmpty { t.medians[c][i] = medPending.contains(id) ? .nan : r.medians[c] }
            }
        }
        return t
    }
}
