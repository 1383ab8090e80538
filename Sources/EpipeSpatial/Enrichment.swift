import Foundation
import EpipeKernels

/// Neighbourhood enrichment by label permutation, as squidpy's `nhood_enrichment` defines it.
///
/// `observed[a * T + b]` counts the graph's edges i -> j with type(i) = a and type(j) = b (an
/// undirected graph holds each edge both ways, so its matrix is symmetric; the kNN graph's is not).
/// The null shuffles the labels over the cells `perms` times (a uniform permutation each, by
/// Fisher-Yates, from its own SplitMix64 stream seeded by (seed, permutation index), so the result
/// does not depend on the number of threads) and counts again on the same graph. Per pair:
/// - z = (observed - mean of the null) / std of the null (population std, as numpy's), squidpy's z;
///   NaN where the null never varies;
/// - p_enriched = (1 + #null >= observed) / (1 + perms), p_depleted = (1 + #null <= observed) / (1 + perms);
/// - q-values by Benjamini-Hochberg over all T x T ordered pairs, each direction on its own.
/// Cost: perms x (n + edges) memory reads, split over the cores by permutation; memory: one label
/// copy and four T x T count tables per worker (the four tables break the store-to-load chain when
/// consecutive edges land in one bin, as they do where a type forms patches).
public struct EnrichmentResult: Sendable {
    public let types: Int
    public let perms: Int
    /// Cells of each type.
    public let cells: [Int]
    /// T x T, row-major: edges from a type-a cell to a type-b cell.
    public let observed: [Int]
    /// T x T: the null's mean, standard deviation and the z-score (empty when perms = 0).
    public let mean: [Double], std: [Double], z: [Double]
    public let pEnriched: [Double], pDepleted: [Double], qEnriched: [Double], qDepleted: [Double]

    /// Observed and expected mean number of type-b neighbours around a type-a cell (SCIMAP's
    /// interaction summary): the edge counts over the type-a cells.
    public func perCell(_ a: Int, _ b: Int) -> (observed: Double, expected: Double) {
        let na = Double(max(cells[a], 1))
        return (Double(observed[a * types + b]) / na, perms > 0 ? mean[a * types + b] / na : .nan)
    }
}

public enum Enrichment {
    /// Runs the permutation test. `labels[i]` in 0..<types (types <= 65536); `progress` is called
    /// with the number of permutations finished since its last call (from any thread).
    public static func run(graph: SpatialGraph, labels: [Int32], types t: Int, perms: Int, seed: UInt64,
                           progress: (@Sendable (Int) -> Void)? = nil) -> EnrichmentResult {
        precondition(labels.count == graph.nodes && t >= 1 && t <= 65536)
        if t <= 256 { return runTyped(graph, labels.map { UInt8($0) }, t, perms, seed, progress) }
        return runTyped(graph, labels.map { UInt16($0) }, t, perms, seed, progress)
    }

    static func runTyped<L: FixedWidthInteger & UnsignedInteger & Sendable>(_ g: SpatialGraph, _ labels: [L], _ t: Int, _ perms: Int, _ seed: UInt64,
                                                                          _ progress: (@Sendable (Int) -> Void)?) -> EnrichmentResult {
        let n = labels.count, tt = t * t
        var cells = [Int](repeating: 0, count: t)
        for l in labels { cells[Int(l)] += 1 }
        var tables = [UInt32](repeating: 0, count: 4 * tt)
        let observed: [Int] = labels.withUnsafeBufferPointer { lab in
            tables.withUnsafeMutableBufferPointer { tab in
                count(g, lab, t, tab)
                return (0..<tt).map { Int(tab[$0]) }
            }
        }
        guard perms > 0 else {
            return EnrichmentResult(types: t, perms: 0, cells: cells, observed: observed, mean: [], std: [], z: [],
                                    pEnriched: [], pDepleted: [], qEnriched: [], qDepleted: [])
        }
        // integer sums: exact and independent of how the permutations were split
        let acc = Accumulator(tt)
        let obs32 = observed.map { UInt32(clamping: $0) }
        parallelChunks(perms, minChunk: 1, cost: 1 << 20) { lo, hi in
            var buf = labels
            var tab = [UInt32](repeating: 0, count: 4 * tt)
            var sum = [UInt64](repeating: 0, count: tt), sq = sum, ge = [Int](repeating: 0, count: tt), le = ge
            for p in lo..<hi {
                var rng = SplitMix64(seed: SplitMix64.hash(seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(p)))
                buf.withUnsafeMutableBufferPointer { b in
                    labels.withUnsafeBufferPointer { src in _ = b.initialize(from: src) }
                    var i = n - 1
                    while i > 0 {
                        let j = Int(rng.next().multipliedFullWidth(by: UInt64(i + 1)).high)
                        b.swapAt(i, j)
                        i -= 1
                    }
                }
                buf.withUnsafeBufferPointer { b in
                    tab.withUnsafeMutableBufferPointer { tb in
                        count(g, b, t, tb)
                        for e in 0..<tt {
                            let c = tb[e], o = obs32[e]
                            sum[e] &+= UInt64(c); sq[e] &+= UInt64(c) * UInt64(c)
                            if c >= o { ge[e] += 1 }
                            if c <= o { le[e] += 1 }
                        }
                    }
                }
                progress?(1)
            }
            acc.add(sum, sq, ge, le)
        }
        let np = Double(perms)
        var mean = [Double](repeating: 0, count: tt), sd = mean, z = mean, pe = mean, pd = mean
        for e in 0..<tt {
            let s = acc.sum[e], q = acc.sq[e]
            mean[e] = Double(s) / np
            // var = (perms * sumsq - sum^2) / perms^2, the numerator exact in 128 bits (two words)
            let a = q.multipliedFullWidth(by: UInt64(perms)), b = s.multipliedFullWidth(by: s)
            let (lo, borrow) = a.low.subtractingReportingOverflow(b.low)
            let hi = a.high &- b.high &- (borrow ? 1 : 0)
            sd[e] = ((Double(hi) * 0x1p64 + Double(lo)) / (np * np)).squareRoot()
            z[e] = sd[e] > 0 ? (Double(observed[e]) - mean[e]) / sd[e] : .nan
            pe[e] = Double(1 + acc.ge[e]) / (1 + np)
            pd[e] = Double(1 + acc.le[e]) / (1 + np)
        }
        return EnrichmentResult(types: t, perms: perms, cells: cells, observed: observed, mean: mean, std: sd, z: z,
                                pEnriched: pe, pDepleted: pd, qEnriched: benjaminiHochberg(pe), qDepleted: benjaminiHochberg(pd))
    }

    /// Edge counts by (source type, target type) into `tab[0..<T*T]` (the table needs 4 T x T
    /// slots: edges alternate over four partial tables, summed at the end).
    @inline(__always)
    static func count<L: FixedWidthInteger & UnsignedInteger>(_ g: SpatialGraph, _ lab: UnsafeBufferPointer<L>, _ t: Int, _ tab: UnsafeMutableBufferPointer<UInt32>) {
        let tt = t * t
        for e in 0..<4 * tt { tab[e] = 0 }
        g.offsets.withUnsafeBufferPointer { off in
            g.targets.withUnsafeBufferPointer { tg in
                let T0 = tab.baseAddress!, T1 = T0 + tt, T2 = T1 + tt, T3 = T2 + tt
                for i in 0..<lab.count {
                    let base = Int(lab[i]) &* t
                    var e = off[i]
                    let end = off[i + 1]
                    while e + 4 <= end {
                        T0[base &+ Int(lab[Int(tg[e])])] &+= 1
                        T1[base &+ Int(lab[Int(tg[e + 1])])] &+= 1
                        T2[base &+ Int(lab[Int(tg[e + 2])])] &+= 1
                        T3[base &+ Int(lab[Int(tg[e + 3])])] &+= 1
                        e += 4
                    }
                    while e < end { T0[base &+ Int(lab[Int(tg[e])])] &+= 1; e += 1 }
                }
                for e in 0..<tt { T0[e] = T0[e] &+ T1[e] &+ T2[e] &+ T3[e] }
            }
        }
    }

    /// Benjamini-Hochberg q-values of `p` (same order): q_(i) = min over j >= i of p_(j) m / j,
    /// capped at 1; NaN p-values are left out and stay NaN.
    public static func benjaminiHochberg(_ p: [Double]) -> [Double] {
        let idx = p.indices.filter { !p[$0].isNaN }.sorted { p[$0] != p[$1] ? p[$0] < p[$1] : $0 < $1 }
        var q = [Double](repeating: .nan, count: p.count)
        let m = Double(idx.count)
        var running = 1.0
        for r in stride(from: idx.count - 1, through: 0, by: -1) {
            running = min(running, p[idx[r]] * m / Double(r + 1))
            q[idx[r]] = running
        }
        return q
    }

    final class Accumulator: @unchecked Sendable {
        var sum: [UInt64], sq: [UInt64], ge: [Int], le: [Int]
        let lock = NSLock()
        init(_ tt: Int) { sum = [UInt64](repeating: 0, count: tt); sq = sum; ge = [Int](repeating: 0, count: tt); le = ge }
        func add(_ s: [UInt64], _ q: [UInt64], _ g: [Int], _ l: [Int]) {
            lock.lock(); defer { lock.unlock() }
            for e in sum.indices { sum[e] &+= s[e]; sq[e] &+= q[e]; ge[e] += g[e]; le[e] += l[e] }
        }
    }
}
