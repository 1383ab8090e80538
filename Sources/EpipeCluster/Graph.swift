import Foundation
import Dispatch
import EpipeKernels

/// A weighted undirected graph in CSR form: the neighbours of node i are
/// `targets[offsets[i] ..< offsets[i+1]]` with `weights` at the same positions, sorted by
/// neighbour index. Every edge {i, j} (i != j) is stored twice, as i -> j and j -> i, with the same
/// weight. Self loops are not stored in the lists; `selfLoops[i]` (empty when there are none)
/// holds the weight of the loop at i, counted twice in i's strength (the igraph/networkx
/// convention: a loop of weight w adds 2w to the degree and w to the internal weight).
public struct Graph: Sendable {
    public let n: Int
    public var offsets: [Int]
    public var targets: [Int32]
    public var weights: [Double]
    public var selfLoops: [Double]

    public init(n: Int, offsets: [Int], targets: [Int32], weights: [Double], selfLoops: [Double] = []) {
        precondition(offsets.count == n + 1 && targets.count == weights.count && offsets[n] == targets.count)
        precondition(selfLoops.isEmpty || selfLoops.count == n)
        self.n = n; self.offsets = offsets; self.targets = targets; self.weights = weights; self.selfLoops = selfLoops
    }

    /// Directed entries (twice the number of undirected edges between distinct nodes).
    public var entryCount: Int { targets.count }

    /// Node strengths: sum of incident weights, loops counted twice.
    public func strengths() -> [Double] {
        var s = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var t = selfLoops.isEmpty ? 0 : 2 * selfLoops[i]
            for e in offsets[i]..<offsets[i + 1] { t += weights[e] }
            s[i] = t
        }
        return s
    }

    /// From an undirected edge list (i, j, w): each pair once or twice in any order; duplicates
    /// of a pair are summed; i == j adds a self loop of weight w. Weights must be > 0.
    public static func fromEdges(n: Int, edges: [(Int, Int, Double)]) -> Graph {
        var deg = [Int](repeating: 0, count: n + 1)
        var loops = [Double](repeating: 0, count: n)
        var anyLoop = false
        for (i, j, w) in edges {
            precondition(i >= 0 && i < n && j >= 0 && j < n && w > 0)
            if i == j { loops[i] += w; anyLoop = true } else { deg[i] += 1; deg[j] += 1 }
        }
        var off = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { off[i + 1] = off[i] + deg[i] }
        var pos = Array(off[0..<n])
        var tg = [Int32](repeating: 0, count: off[n]), wt = [Double](repeating: 0, count: off[n])
        for (i, j, w) in edges where i != j {
            tg[pos[i]] = Int32(j); wt[pos[i]] = w; pos[i] += 1
            tg[pos[j]] = Int32(i); wt[pos[j]] = w; pos[j] += 1
        }
        return sortAndMerge(n: n, offsets: off, targets: tg, weights: wt, selfLoops: anyLoop ? loops : [], sum: true)
    }

    /// Sorts every row by target and merges duplicate targets (summing their weights when `sum`,
    /// else keeping one: used when duplicates carry the same weight).
    static func sortAndMerge(n: Int, offsets: [Int], targets: [Int32], weights: [Double], selfLoops: [Double], sum: Bool) -> Graph {
        var newDeg = [Int](repeating: 0, count: n)
        var tg = targets, wt = weights
        tg.withUnsafeMutableBufferPointer { tb in
            wt.withUnsafeMutableBufferPointer { wb in
                newDeg.withUnsafeMutableBufferPointer { nb in
                    let T = SharedPointer(tb.baseAddress!), W = SharedPointer(wb.baseAddress!), N = SharedPointer(nb.baseAddress!)
                    let O = UnsafeShared(offsets)
                    parallelChunks(n, minChunk: 256, cost: 64) { lo, hi in
                        var pairs: [(Int32, Double)] = []
                        for i in lo..<hi {
                            let a = O.value[i], b = O.value[i + 1]
                            pairs.removeAll(keepingCapacity: true)
                            for e in a..<b { pairs.append((T[e], W[e])) }
                            pairs.sort { $0.0 < $1.0 }
                            var m = 0
                            for (t, w) in pairs {
                                if m > 0 && T[a + m - 1] == t {
                                    if sum { W[a + m - 1] += w }
                                } else { T[a + m] = t; W[a + m] = w; m += 1 }
                            }
                            N[i] = m
                        }
                    }
                }
            }
        }
        var off = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { off[i + 1] = off[i] + newDeg[i] }
        if off[n] == targets.count { return Graph(n: n, offsets: off, targets: tg, weights: wt, selfLoops: selfLoops) }
        var t2 = [Int32](repeating: 0, count: off[n]), w2 = [Double](repeating: 0, count: off[n])
        for i in 0..<n {
            let a = offsets[i]
            for m in 0..<newDeg[i] { t2[off[i] + m] = tg[a + m]; w2[off[i] + m] = wt[a + m] }
        }
        return Graph(n: n, offsets: off, targets: t2, weights: w2, selfLoops: selfLoops)
    }

    /// The shared-neighbour graph of a kNN result, weighted by the Jaccard index, as PhenoGraph
    /// (Levine et al. 2015) and scanpy's PhenoGraph wrapper build it for Leiden/Louvain. The
    /// definition implemented here (written from the definition, no code copied):
    ///
    /// - N+(i) = {i} ∪ kNN(i), the point with its k neighbours (k + 1 distinct indices).
    /// - There is an edge {i, j}, i != j, when j ∈ kNN(i) or i ∈ kNN(j) (the union of the two
    ///   directions: symmetric by construction), with weight
    ///   J(i, j) = |N+(i) ∩ N+(j)| / |N+(i) ∪ N+(j)| = s / (2(k+1) - s), s = |N+(i) ∩ N+(j)|.
    ///   Since one of i, j is in the other's kNN list, s >= 1, so every weight is in (0, 1].
    /// - No self loops.
    ///
    /// Differences from PhenoGraph's `jaccard_kernel`: PhenoGraph's sets leave the point out
    /// (s / (2k - s), which can be 0 for an edge) and it symmetrises by averaging W and its
    /// transpose, so a one-directional edge gets half its weight; here the weight is the same
    /// symmetric index from either side.
    public static func jaccard(_ knn: KNNResult) -> Graph {
        let n = knn.n, k = knn.k
        guard n > 0, k > 0 else { return Graph(n: n, offsets: [Int](repeating: 0, count: n + 1), targets: [], weights: []) }
        let k1 = k + 1
        // N+(i) sorted, row-major n x (k+1)
        var sets = [Int32](repeating: 0, count: n * k1)
        knn.indices.withUnsafeBufferPointer { ib in
            sets.withUnsafeMutableBufferPointer { sb in
                let I = UnsafeShared(ib.baseAddress!), S = SharedPointer(sb.baseAddress!)
                parallelChunks(n, minChunk: 512, cost: k1 * 8) { lo, hi in
                    for i in lo..<hi {
                        let row = S.pointer + i * k1
                        row[0] = Int32(i)
                        for j in 0..<k { row[j + 1] = I.value[i * k + j] }
                        // insertion sort (k is small)
                        for a in 1..<k1 {
                            let v = row[a]; var b = a
                            while b > 0 && row[b - 1] > v { row[b] = row[b - 1]; b -= 1 }
                            row[b] = v
                        }
                    }
                }
            }
        }
        // adjacency: both directions of every kNN pair, then sort and drop duplicates
        var deg = [Int](repeating: 0, count: n)
        for i in 0..<n {
            for j in 0..<k { deg[i] += 1; deg[Int(knn.indices[i * k + j])] += 1 }
        }
        var off = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { off[i + 1] = off[i] + deg[i] }
        var pos = Array(off[0..<n])
        var tg = [Int32](repeating: 0, count: off[n])
        for i in 0..<n {
            for j in 0..<k {
                let t = Int(knn.indices[i * k + j])
                tg[pos[i]] = Int32(t); pos[i] += 1
                tg[pos[t]] = Int32(i); pos[t] += 1
            }
        }
        // every row sorted and its duplicates dropped in place, the rows then packed to the front:
        // no second copy of the lists and no weights until their final number is known (at 2.9 M
        // cells and k 15 this pass peaked at 4.1 GB with the merge's copies)
        var newDeg = [Int](repeating: 0, count: n)
        tg.withUnsafeMutableBufferPointer { tb in
            newDeg.withUnsafeMutableBufferPointer { nb in
                let T = SharedPointer(tb.baseAddress!), N = SharedPointer(nb.baseAddress!), O = UnsafeShared(off)
                parallelChunks(n, minChunk: 256, cost: 64) { lo, hi in
                    for i in lo..<hi {
                        let a = O.value[i]
                        var row = UnsafeMutableBufferPointer(start: T.pointer + a, count: O.value[i + 1] - a)
                        row.sort()
                        var m = 0
                        for e in 0..<row.count where m == 0 || row[m - 1] != row[e] { row[m] = row[e]; m += 1 }
                        N[i] = m
                    }
                }
            }
        }
        var packed = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { packed[i + 1] = packed[i] + newDeg[i] }
        tg.withUnsafeMutableBufferPointer { tb in
            for i in 0..<n where packed[i] != off[i] {
                (tb.baseAddress! + packed[i]).update(from: tb.baseAddress! + off[i], count: newDeg[i])   // forward: packed[i] < off[i]
            }
        }
        if packed[n] != tg.count { tg = Array(tg[0..<packed[n]]) }
        deg = []; pos = []; off = []; newDeg = []
        var g = Graph(n: n, offsets: packed, targets: tg, weights: [Double](repeating: 0, count: packed[n]), selfLoops: [])
        tg = []
        // weights: merge-intersect the two sorted sets
        let offs = g.offsets, tgs = g.targets
        sets.withUnsafeBufferPointer { sb in
            g.weights.withUnsafeMutableBufferPointer { wb in
                let S = UnsafeShared(sb.baseAddress!), W = SharedPointer(wb.baseAddress!)
                let O = UnsafeShared(offs), T = UnsafeShared(tgs)
                parallelChunks(n, minChunk: 256, cost: 2 * k * k1) { lo, hi in
                    for i in lo..<hi {
                        let a = S.value + i * k1
                        for e in O.value[i]..<O.value[i + 1] {
                            let b = S.value + Int(T.value[e]) * k1
                            var p = 0, q = 0, s = 0
                            while p < k1 && q < k1 {
                                let x = a[p], y = b[q]
                                if x == y { s += 1; p += 1; q += 1 } else if x < y { p += 1 } else { q += 1 }
                            }
                            W[e] = Double(s) / Double(2 * k1 - s)
                        }
                    }
                }
            }
        }
        return g
    }
}
