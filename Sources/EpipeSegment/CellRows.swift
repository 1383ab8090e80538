import Foundation

/// Exact multiset of cell areas (counts per area): the order statistics and histogram of the
/// sorted list of areas without keeping one entry per cell (memory ~ the largest area below
/// 65536, plus one entry per distinct larger area).
public struct AreaCounts: Sendable {
    private var small = [Int](repeating: 0, count: 1 << 16)
    private var large: [Int: Int] = [:]
    public private(set) var count = 0
    public init() {}
    public mutating func add(_ a: Int, _ n: Int = 1) {
        if a >= 0 && a < small.count { small[a] += n } else { large[a, default: 0] += n; if large[a] == 0 { large[a] = nil } }
        count += n
    }
    public mutating func remove(_ a: Int) { add(a, -1) }
    /// (area, count) in increasing area, counts > 0.
    public var pairs: [(area: Int, count: Int)] {
        var out: [(area: Int, count: Int)] = []
        for a in large.keys.sorted() where a < 0 { out.append((a, large[a]!)) }
        for a in 0..<small.count where small[a] != 0 { out.append((a, small[a])) }
        for a in large.keys.sorted() where a >= small.count { out.append((a, large[a]!)) }
        return out
    }
    /// The element at `rank` (0-based) of the sorted areas, as `sorted[rank]`.
    public func value(atRank rank: Int) -> Int {
        precondition(rank >= 0 && rank < count)
        var seen = 0
        for (a, n) in pairs { seen += n; if rank < seen { return a } }
        fatalError("rank out of range")
    }
    /// The element at rank count / 2 of the sorted areas (0 when empty).
    public var median: Int { count == 0 ? 0 : value(atRank: count / 2) }
    /// The median and a histogram of `bins` equal bins from 0 to the 99th percentile (larger
    /// areas in the last bin): counts, the bin width, that percentile.
    public func histogram(bins nb: Int = 40) -> (counts: [Int], binWidth: Int, max: Int, median: Int) {
        guard count > 0 else { return ([Int](repeating: 0, count: nb), 1, 0, 0) }
        let maxA = value(atRank: Swift.min(count - 1, Int(Double(count) * 0.99)))
        let bw = Swift.max(1, (maxA + nb - 1) / nb)
        var hist = [Int](repeating: 0, count: nb)
        for (a, k) in pairs { hist[Swift.min(nb - 1, a / bw)] += k }
        return (hist, bw, maxA, median)
    }
}

/// Joins the rows of cells and nuclei by id and releases them in increasing id order while the
/// slide streams, with what the segment metrics need.
///
/// A row for id k is released when every id < k was released, neither compartment has it open,
/// and the caller knows that no id <= k can still appear for the first time (`release(upTo:)`).
/// For our own segmentation ids are in raster order of the nucleus's first pixel and each cell
/// holds its nucleus, so after a band every id up to the largest nucleus id seen has appeared if
/// it exists: the rows held are those of the cells open across the band edge and the ones after
/// them. For imported masks (arbitrary ids) the caller releases only at the end (`releaseAll()`),
/// so every row is held until then.
///
/// Out of order, handled at the end through `corrections` (rows the caller writes into the file
/// once more, see `CSVRows.replace`):
/// - deferred: an id reached by the release while one compartment has it *reopened* (a label
///   whose rows are not contiguous came back after its close; its repaired row comes at the end):
///   skipped, its parts kept.
/// - redo: a part arriving for an id already released (the release rule assumed wrongly that it
///   was absent or final), or a label reopened after its release: the caller recomputes both
///   compartments of those ids (`CellAccumulator.beginRepair(extra:)`).
public final class CellRowJoiner {
    public typealias Joined = (id: UInt32, cell: CellRow?, nucleus: CellRow?)
    private var cellParts: [UInt32: CellRow] = [:], nucParts: [UInt32: CellRow] = [:]
    /// every id < nextId is released (or deferred)
    public private(set) var nextId: UInt32 = 1
    /// released ids whose row must be recomputed in both compartments
    public private(set) var redo = Set<UInt32>()
    /// ids skipped by the release (reopened), written at the end
    public private(set) var deferred = Set<UInt32>()
    public private(set) var peakHeld = 0
    public var held: Int { max(cellParts.count, nucParts.count) }
    // metrics: nuclei counted, nuclei without a cell; per released id two bits (nucleus counted,
    // without counted) so that a redone row can take its contribution back
    public private(set) var nuclei = 0, nucleiWithoutCell = 0
    public private(set) var areas = AreaCounts()
    private var flags: [UInt64] = []

    public init() {}

    private func store(_ r: CellRow, _ parts: inout [UInt32: CellRow]) {
        if r.id < nextId && !deferred.contains(r.id) { redo.insert(r.id) } else { parts[r.id] = r }
    }

    public func add(cells: [CellRow], nuclei: [CellRow]) {
        for r in cells { store(r, &cellParts) }
        for r in nuclei { store(r, &nucParts) }
        peakHeld = max(peakHeld, held)
    }

    /// Labels reported by an accumulator as reopened: those already released must be redone.
    public func reopened(_ ids: [UInt32]) { for l in ids where l < nextId && !deferred.contains(l) { redo.insert(l) } }

    /// First row of the part held for `id` (cells or nuclei), if any.
    public func heldMinY(_ id: UInt32, cells: Bool) -> Int? { (cells ? cellParts : nucParts)[id]?.minY }

    /// Before a repair pass: the parts held for the ids repaired in each compartment are dropped
    /// (the repaired rows replace them).
    public func beginRepair(cells: some Sequence<UInt32>, nuclei: some Sequence<UInt32>) {
        for l in cells { cellParts[l] = nil }
        for l in nuclei { nucParts[l] = nil }
    }

    /// Rows from a repair pass.
    public func repaired(cells: [CellRow], nuclei: [CellRow]) {
        for r in cells { cellParts[r.id] = r }
        for r in nuclei { nucParts[r.id] = r }
        peakHeld = max(peakHeld, held)
    }

    private func flag(_ id: UInt32, _ bit: Int) -> Bool {
        let i = 2 * Int(id) + bit, w = i >> 6
        return w < flags.count && flags[w] & (1 << UInt64(i & 63)) != 0
    }
    private func setFlag(_ id: UInt32, _ bit: Int, _ on: Bool) {
        let i = 2 * Int(id) + bit, w = i >> 6
        if w >= flags.count {
            if !on { return }
            flags += [UInt64](repeating: 0, count: max(w + 1, 2 * flags.count) - flags.count)
        }
        if on { flags[w] |= 1 << UInt64(i & 63) } else { flags[w] &= ~(1 << UInt64(i & 63)) }
    }

    private func count(_ j: Joined, covered: (UInt32) -> Bool) {
        let hasNuc = (j.nucleus?.area ?? 0) > 0, hasCell = (j.cell?.area ?? 0) > 0
        if hasCell { areas.add(j.cell!.area) }
        let without = hasNuc && (!hasCell || !covered(j.id))
        if hasNuc { nuclei += 1 }
        if without { nucleiWithoutCell += 1 }
        setFlag(j.id, 0, hasNuc); setFlag(j.id, 1, without)
    }

    /// Releases ids nextId... up to `upTo`, stopping at the first id open in a compartment;
    /// absent ids are skipped, reopened ones deferred. The joined rows (either part may be nil;
    /// a line is written when the cell has area > 0).
    public func release(upTo: UInt32, isOpen: (UInt32) -> Bool, isReopened: (UInt32) -> Bool, covered: (UInt32) -> Bool) -> [Joined] {
        var out: [Joined] = []
        while nextId <= upTo && !isOpen(nextId) {
            if isReopened(nextId) { deferred.insert(nextId); nextId += 1; continue }
            let c = cellParts.removeValue(forKey: nextId), n = nucParts.removeValue(forKey: nextId)
            if c != nil || n != nil { let j = (nextId, c, n); count(j, covered: covered); out.append(j) }
            nextId += 1
        }
        return out
    }

    /// After the last band and the repair pass: every row held (but the deferred and redone ids),
    /// in increasing id.
    public func releaseAll(covered: (UInt32) -> Bool) -> [Joined] {
        let ids = Set(cellParts.keys).union(nucParts.keys).filter { !deferred.contains($0) && !redo.contains($0) }.sorted()
        var out: [Joined] = []
        out.reserveCapacity(ids.count)
        for id in ids {
            let j = (id, cellParts.removeValue(forKey: id), nucParts.removeValue(forKey: id))
            count(j, covered: covered); out.append(j)
        }
        if let m = ids.last, m >= nextId { nextId = m + 1 }
        return out
    }

    /// Then: the rows of the deferred and redone ids (increasing id), to write into the file in
    /// place of the lines written before for them (if any), with the metrics updated (the caller
    /// takes back the areas of the lines it replaces with `forgetArea`).
    public func corrections(covered: (UInt32) -> Bool) -> [Joined] {
        var out: [Joined] = []
        for id in redo.union(deferred).sorted() {
            if flag(id, 0) { nuclei -= 1 }
            if flag(id, 1) { nucleiWithoutCell -= 1 }
            let j = (id, cellParts.removeValue(forKey: id), nucParts.removeValue(forKey: id))
            count(j, covered: covered); out.append(j)
        }
        return out
    }

    /// Takes back the area of a line written before and now replaced.
    public func forgetArea(_ a: Int) { areas.remove(a) }

    /// Fraction of nuclei without a cell, as `NucleusCellMatch.withoutCellFraction`.
    public var withoutCellFraction: Double { nuclei == 0 ? 0 : Double(nucleiWithoutCell) / Double(nuclei) }
}
