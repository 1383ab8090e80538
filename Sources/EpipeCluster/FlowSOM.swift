import Foundation
import EpipeKernels

/// FlowSOM (Van Gassen et al. 2015, Cytometry A 87:636): a self-organising map of
/// `xdim x ydim` nodes trained on the cells, then consensus metaclustering of the node codes
/// into `k` groups; every cell gets its nearest node's metacluster. Written from the
/// descriptions and the published behaviour of the R package (`SOM`, `C_SOM`,
/// `metaClustering_consensus`) and FlowSOM_Python (`SOMEstimator`, `ConsensusCluster`):
///
/// SOM (`train`)
/// - Grid: node `x + xdim * y` at (x, y) (R's `expand.grid` order); grid distance between nodes
///   is the Chebyshev ("maximum") distance of their grid positions.
/// - Codes start as `xdim * ydim` distinct cells drawn at random (when there are fewer cells than
///   nodes, a random permutation of the cells repeated).
/// - `rlen * n` online updates (R's `niter = rlen * n`): each draws a cell uniformly at random
///   (with replacement), finds its nearest code (Euclidean), and moves every code whose grid
///   distance to that node is <= the radius towards the cell by `alpha * (x - code)` (a bubble
///   neighbourhood, no Gaussian weight). `alpha` falls linearly from 0.05 to 0.01 over the
///   updates; the radius falls linearly from the 0.67 quantile of all grid distances (the full
///   node x node matrix, diagonal included, R's type-7 quantile) to 0, and once it is below 1 it
///   is 0.5 (only the winning node moves), as `C_SOM`.
/// - Not reproduced: `C_SOM`'s early stop when the summed |x - code| of a pass is below 1 (it
///   does not trigger on real data), the MST-neighbourhood variant (`mst > 1`), and R's RNG
///   stream (SplitMix64 here, so the same seed does not give R's codes).
///
/// Mapping: every cell to its nearest code (squared Euclidean; ties to the lower node index),
/// parallel over cells.
///
/// Consensus metaclustering (ConsensusClusterPlus as FlowSOM calls it: reps 100, pItem 0.9,
/// pFeature 1, clusterAlg "hc", distance "euclidean", inner and final linkage "average"):
/// 100 times, a random 90 % of the nodes (floor, at least 1) is clustered by average-linkage
/// agglomeration on the Euclidean distances of their codes, cut into `k` groups; the consensus
/// of two nodes is (times in the same group) / (times drawn together) (0 if never drawn
/// together, 1 on the diagonal); the final metaclusters are the average-linkage tree of
/// `1 - consensus` cut into `k` groups.
///
/// Labels: metaclusters are renumbered 0..<k by decreasing number of cells (ties: the one
/// holding the smaller cell index first); a metacluster made only of nodes without cells (only
/// possible when some nodes get no cell) has no cells and comes last (ties by its smallest
/// node), so `labels` may use fewer than `k` values. k is clipped to the number of nodes.
///
/// Deterministic: all randomness comes from SplitMix64(seed); training is sequential and the
/// parallel mapping writes one result per cell.
///
/// Cost: the training is `rlen * n` sequential updates, each a nearest-code search (nodes x d)
/// plus the neighbourhood update; on 1M cells x 30 markers, 10 x 10 nodes and rlen 10 that is
/// 10M updates, about 10 s on one core (mapping and metaclustering add under 1 s; see
/// `FlowSOMBench`). `Options.trainingCells` trains on a
/// seeded random subsample instead (FlowSOM's own advice for large data: build the SOM on an
/// aggregate of cells, then map every cell), keeping `rlen * trainingCells` updates.
public enum FlowSOM {
    public struct Options: Sendable {
        public var xdim = 10, ydim = 10, rlen = 10
        /// Number of metaclusters (clipped to xdim * ydim).
        public var k: Int
        public var seed: UInt64 = 0
        /// Learning rate at the first and the last update.
        public var alphaStart = 0.05, alphaEnd = 0.01
        /// ConsensusClusterPlus's reps and pItem.
        public var consensusReps = 100
        public var consensusItemFraction = 0.9
        /// Train the SOM on this many cells drawn at random (without replacement) when n is
        /// larger; nil trains on all cells. Every cell is mapped either way.
        public var trainingCells: Int? = nil

        public init(k: Int, xdim: Int = 10, ydim: Int = 10, rlen: Int = 10, seed: UInt64 = 0, trainingCells: Int? = nil) {
            self.k = k; self.xdim = xdim; self.ydim = ydim; self.rlen = rlen; self.seed = seed
            self.trainingCells = trainingCells
        }
    }

    public struct Result: Sendable {
        /// Metacluster of each cell, 0..<k, renumbered by decreasing number of cells.
        public var labels: [Int]
        /// SOM node of each cell (0..<xdim*ydim).
        public var node: [Int32]
        /// Node codes, row-major nodes x d.
        public var codes: [Double]
        /// Metacluster of each node (same numbering as `labels`).
        public var nodeMeta: [Int]
        /// Number of metaclusters (the requested k clipped to the number of nodes; 0 when n == 0).
        public var k: Int
    }

    /// data row-major n x d (already transformed and z-scored by the caller).
    public static func cluster(_ data: [Double], n: Int, d: Int, options: Options) -> Result {
        precondition(d >= 1 && data.count == n * d, "data must be n x d")
        precondition(options.xdim >= 1 && options.ydim >= 1 && options.k >= 1 && options.rlen >= 0)
        guard n > 0 else { return Result(labels: [], node: [], codes: [], nodeMeta: [], k: 0) }
        let m = options.xdim * options.ydim
        let k = min(options.k, m)
        var master = SplitMix64(seed: options.seed)
        var initRng = SplitMix64(seed: master.next())
        var trainRng = SplitMix64(seed: master.next())
        var consRng = SplitMix64(seed: master.next())
        var subRng = SplitMix64(seed: master.next())

        // training cells: all, or a seeded subsample
        var train: [Int]? = nil
        if let t = options.trainingCells, t >= 1, t < n {
            train = sampleWithoutReplacement(n, t, rng: &subRng).sorted()
        }
        let nTrain = train?.count ?? n
        func cell(_ i: Int) -> Int { train?[i] ?? i }

        // initial codes: distinct random training cells (a repeated permutation if too few)
        var codes = [Double](repeating: 0, count: m * d)
        let picks: [Int]
        if nTrain >= m { picks = sampleWithoutReplacement(nTrain, m, rng: &initRng) }
        else {
            let perm = sampleWithoutReplacement(nTrain, nTrain, rng: &initRng)
            picks = (0..<m).map { perm[$0 % nTrain] }
        }
        for (c, p) in picks.enumerated() {
            let r = cell(p)
            for j in 0..<d { codes[c * d + j] = data[r * d + j] }
        }

        let grid = gridDistances(xdim: options.xdim, ydim: options.ydim)
        let r0 = quantileType7(grid, 0.67)
        codes = trainSOM(data, d: d, cells: train, nTrain: nTrain, codes: codes, m: m, grid: grid,
                       radius: r0, alpha: (options.alphaStart, options.alphaEnd), rlen: options.rlen, rng: &trainRng)

        let node = mapToCodes(data, n: n, d: d, codes: codes, m: m)

        // consensus metaclustering of the codes
        let meta = consensusMetaclusters(codes, m: m, d: d, k: k, reps: options.consensusReps,
                                         itemFraction: options.consensusItemFraction, rng: &consRng)

        // renumber metaclusters by decreasing cell count (ties: smaller first cell, then smaller node)
        var size = [Int](repeating: 0, count: k), firstCell = [Int](repeating: Int.max, count: k)
        var firstNode = [Int](repeating: Int.max, count: k)
        for c in 0..<m { firstNode[meta[c]] = min(firstNode[meta[c]], c) }
        for i in 0..<n {
            let g = meta[Int(node[i])]
            size[g] += 1
            if firstCell[g] == Int.max { firstCell[g] = i }
        }
        let order = (0..<k).sorted {
            if size[$0] != size[$1] { return size[$0] > size[$1] }
            if firstCell[$0] != firstCell[$1] { return firstCell[$0] < firstCell[$1] }
            return firstNode[$0] < firstNode[$1]
        }
        var rank = [Int](repeating: 0, count: k)
        for (r, g) in order.enumerated() { rank[g] = r }
        let nodeMeta = meta.map { rank[$0] }
        var labels = [Int](repeating: 0, count: n)
        for i in 0..<n { labels[i] = nodeMeta[Int(node[i])] }
        return Result(labels: labels, node: node, codes: codes, nodeMeta: nodeMeta, k: k)
    }

    // MARK: - SOM

    /// Chebyshev distances between the grid positions of the nodes (node `x + xdim * y`), m x m.
    public static func gridDistances(xdim: Int, ydim: Int) -> [Double] {
        let m = xdim * ydim
        var g = [Double](repeating: 0, count: m * m)
        for a in 0..<m {
            for b in 0..<m {
                g[a * m + b] = Double(max(abs(a % xdim - b % xdim), abs(a / xdim - b / xdim)))
            }
        }
        return g
    }

    /// R's default (type 7) / numpy's default ("linear") quantile.
    public static func quantileType7(_ values: [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty)
        let s = values.sorted()
        let h = Double(s.count - 1) * p
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }

    /// `nTrain * rlen` online updates (see the type comment). Codes are kept padded to a
    /// multiple of 4 doubles for the SIMD distance loop.
    static func trainSOM(_ data: [Double], d: Int, cells: [Int]?, nTrain: Int, codes: [Double], m: Int, grid: [Double],
                       radius r0: Double, alpha: (Double, Double), rlen: Int, rng: inout SplitMix64) -> [Double] {
        let q = (d + 3) / 4
        var cp = [SIMD4<Double>](repeating: .zero, count: m * q)
        cp.withUnsafeMutableBufferPointer { c in
            let raw = UnsafeMutableRawPointer(c.baseAddress!).assumingMemoryBound(to: Double.self)
            for a in 0..<m { for j in 0..<d { raw[a * q * 4 + j] = codes[a * d + j] } }
        }
        // per node: the other nodes by increasing grid distance
        var nbr = [Int32](repeating: 0, count: m * m), nbrDist = [Double](repeating: 0, count: m * m)
        for a in 0..<m {
            let o = (0..<m).sorted { grid[a * m + $0] != grid[a * m + $1] ? grid[a * m + $0] < grid[a * m + $1] : $0 < $1 }
            for (t, b) in o.enumerated() { nbr[a * m + t] = Int32(b); nbrDist[a * m + t] = grid[a * m + b] }
        }
        let niter = rlen * nTrain
        guard niter > 0 else { return codes }
        var x = [SIMD4<Double>](repeating: .zero, count: q)
        var threshold = r0
        let step = r0 / Double(niter)
        let (a0, a1) = alpha
        let nD = Double(nTrain)
        data.withUnsafeBufferPointer { X in
        cp.withUnsafeMutableBufferPointer { C in
        x.withUnsafeMutableBufferPointer { xb in
        nbr.withUnsafeBufferPointer { NB in
        nbrDist.withUnsafeBufferPointer { ND in
            let xr = UnsafeMutableRawPointer(xb.baseAddress!).assumingMemoryBound(to: Double.self)
            let cc = C.baseAddress!, xv = xb.baseAddress!
            for it in 0..<niter {
                var i = Int(rng.nextUnit() * nD)
                if i >= nTrain { i = nTrain - 1 }
                if let cells { i = cells[i] }
                let row = X.baseAddress! + i * d
                for j in 0..<d { xr[j] = row[j] }
                let nearest = nearestCode(xv, cc, m: m, q: q)
                if threshold < 1 { threshold = 0.5 }
                let al = SIMD4<Double>(repeating: a0 - (a0 - a1) * Double(it) / Double(niter))
                let base = nearest * m
                var t = 0
                while t < m && ND[base + t] <= threshold {
                    let c = cc + Int(NB[base + t]) * q
                    for u in 0..<q { c[u] += al * (xv[u] - c[u]) }
                    t += 1
                }
                threshold -= step
            }
        }}}}}
        var out = [Double](repeating: 0, count: m * d)
        cp.withUnsafeBufferPointer { c in
            let raw = UnsafeRawPointer(c.baseAddress!).assumingMemoryBound(to: Double.self)
            for a in 0..<m { for j in 0..<d { out[a * d + j] = raw[a * q * 4 + j] } }
        }
        return out
    }

    /// Index of the code nearest to x (squared Euclidean; ties to the lower index). Padding lanes
    /// are zero in both x and the codes.
    @inline(__always)
    static func nearestCode(_ x: UnsafePointer<SIMD4<Double>>, _ codes: UnsafePointer<SIMD4<Double>>, m: Int, q: Int) -> Int {
        var best = Double.infinity, bi = 0
        for a in 0..<m {
            let c = codes + a * q
            var acc0 = SIMD4<Double>.zero, acc1 = SIMD4<Double>.zero
            var u = 0, pruned = false
            // partial sums only grow: give up on a code once one reaches the best so far (checked
            // every 4 vectors; the full sums are computed the same way either way, so the
            // winner is the one of the plain search)
            while u + 4 <= q {
                let t0 = x[u] - c[u], t1 = x[u + 1] - c[u + 1], t2 = x[u + 2] - c[u + 2], t3 = x[u + 3] - c[u + 3]
                acc0 += t0 * t0; acc1 += t1 * t1; acc0 += t2 * t2; acc1 += t3 * t3
                u += 4
                if u < q && (acc0 + acc1).sum() >= best { pruned = true; break }
            }
            if pruned { continue }
            while u < q { let t = x[u] - c[u]; acc0 += t * t; u += 1 }
            let s = (acc0 + acc1).sum()
            if s < best { best = s; bi = a }
        }
        return bi
    }

    /// Nearest code of every cell (parallel over cells).
    public static func mapToCodes(_ data: [Double], n: Int, d: Int, codes: [Double], m: Int) -> [Int32] {
        let q = (d + 3) / 4
        var cp = [SIMD4<Double>](repeating: .zero, count: m * q)
        cp.withUnsafeMutableBufferPointer { c in
            let raw = UnsafeMutableRawPointer(c.baseAddress!).assumingMemoryBound(to: Double.self)
            for a in 0..<m { for j in 0..<d { raw[a * q * 4 + j] = codes[a * d + j] } }
        }
        var out = [Int32](repeating: 0, count: n)
        data.withUnsafeBufferPointer { X in
        cp.withUnsafeBufferPointer { C in
        out.withUnsafeMutableBufferPointer { O in
            let xs = UnsafeShared(X), cs = UnsafeShared(C), o = SharedPointer(O.baseAddress!)
            parallelChunks(n, minChunk: 2048, cost: m * d) { lo, hi in
                let x = UnsafeMutablePointer<SIMD4<Double>>.allocate(capacity: q)
                defer { x.deallocate() }
                x.initialize(repeating: .zero, count: q)
                let xr = UnsafeMutableRawPointer(x).assumingMemoryBound(to: Double.self)
                for i in lo..<hi {
                    let row = xs.value.baseAddress! + i * d
                    for j in 0..<d { xr[j] = row[j] }
                    o[i] = Int32(nearestCode(x, cs.value.baseAddress!, m: m, q: q))
                }
            }
        }}}
        return out
    }

    /// `count` distinct values of 0..<n in draw order (a partial Fisher-Yates shuffle of a
    /// virtual identity array).
    static func sampleWithoutReplacement(_ n: Int, _ count: Int, rng: inout SplitMix64) -> [Int] {
        precondition(count <= n)
        var swapped: [Int: Int] = [:]
        var out = [Int](); out.reserveCapacity(count)
        for t in 0..<count {
            let j = t + Int(rng.next() % UInt64(n - t))
            let vj = swapped[j] ?? j, vt = swapped[t] ?? t
            out.append(vj)
            swapped[j] = vt
        }
        return out
    }

    // MARK: - Consensus metaclustering

    /// ConsensusClusterPlus with FlowSOM's settings (see the type comment): metacluster of each of
    /// the m codes, 0..<min(k, m) (numbered by the smallest node of each group).
    public static func consensusMetaclusters(_ codes: [Double], m: Int, d: Int, k: Int, reps: Int = 100,
                                             itemFraction: Double = 0.9, rng: inout SplitMix64) -> [Int] {
        precondition(codes.count == m * d && m >= 1)
        let k = min(max(k, 1), m)
        var dist = [Double](repeating: 0, count: m * m)
        for a in 0..<m {
            for b in (a + 1)..<max(a + 1, m) {
                var s = 0.0
                for j in 0..<d { let t = codes[a * d + j] - codes[b * d + j]; s += t * t }
                dist[a * m + b] = s.squareRoot(); dist[b * m + a] = dist[a * m + b]
            }
        }
        let s = max(1, min(m, Int(Double(m) * itemFraction)))
        var together = [Int](repeating: 0, count: m * m), drawn = [Int](repeating: 0, count: m * m)
        var sub = [Double](repeating: 0, count: s * s)
        for _ in 0..<reps {
            let idx = sampleWithoutReplacement(m, s, rng: &rng).sorted()
            for a in 0..<s { for b in 0..<s { sub[a * s + b] = dist[idx[a] * m + idx[b]] } }
            let lab = cutTree(averageLinkage(sub, m: s, stopAt: min(k, s)), m: s, k: min(k, s))
            for a in 0..<s {
                for b in (a + 1)..<max(a + 1, s) {
                    let p = idx[a] * m + idx[b]
                    drawn[p] += 1
                    if lab[a] == lab[b] { together[p] += 1 }
                }
            }
        }
        var cd = [Double](repeating: 0, count: m * m)   // 1 - consensus
        for a in 0..<m {
            for b in (a + 1)..<max(a + 1, m) {
                let p = a * m + b
                let c = drawn[p] > 0 ? Double(together[p]) / Double(drawn[p]) : 0
                cd[p] = 1 - c; cd[b * m + a] = 1 - c
            }
        }
        return cutTree(averageLinkage(cd, m: m, stopAt: k), m: m, k: k)
    }

    /// One agglomeration step: clusters `a` < `b` joined at `height` into a cluster of `size`
    /// items. Cluster ids as scipy's linkage matrix: 0..<m the items, m + i the cluster made by
    /// merge i.
    public struct Merge: Sendable, Equatable {
        public var a: Int, b: Int
        public var height: Double
        public var size: Int
        public init(a: Int, b: Int, height: Double, size: Int) { self.a = a; self.b = b; self.height = height; self.size = size }
    }

    /// Average-linkage (UPGMA) agglomerative clustering of m items from their symmetric m x m
    /// distance matrix (row-major; the diagonal is ignored): repeatedly joins the two clusters
    /// with the smallest average pairwise distance, the distance of the union to any other
    /// cluster being the size-weighted mean (Lance-Williams). Ties: the pair found first scanning
    /// cluster slots in order, a cluster keeping the slot of its lower-slot part (R hclust's
    /// convention). Stops when `stopAt` clusters remain (default 1: the full tree, m - 1 merges).
    /// O(m^3), for small m (the SOM nodes).
    public static func averageLinkage(_ dist: [Double], m: Int, stopAt: Int = 1) -> [Merge] {
        precondition(dist.count == m * m)
        guard m > 1 else { return [] }
        var D = dist
        var size = [Int](repeating: 1, count: m)
        var id = Array(0..<m)
        var active = Array(0..<m)   // live slots, increasing
        var merges: [Merge] = []
        let target = max(1, stopAt)
        while active.count > target {
            var best = Double.infinity, bi = -1, bj = -1
            for x in 0..<active.count {
                let i = active[x]
                for y in (x + 1)..<active.count {
                    let j = active[y]
                    let v = D[i * m + j]
                    if v < best || bi < 0 { best = v; bi = i; bj = j }
                }
            }
            let ni = Double(size[bi]), nj = Double(size[bj])
            for t in active where t != bi && t != bj {
                let v = (ni * D[bi * m + t] + nj * D[bj * m + t]) / (ni + nj)
                D[bi * m + t] = v; D[t * m + bi] = v
            }
            merges.append(Merge(a: min(id[bi], id[bj]), b: max(id[bi], id[bj]), height: best, size: size[bi] + size[bj]))
            size[bi] += size[bj]
            id[bi] = m + merges.count - 1
            active.removeAll { $0 == bj }
        }
        return merges
    }

    /// Groups after the first m - k merges (R's cutree for a monotone tree), numbered 0..<k by
    /// their smallest item.
    public static func cutTree(_ merges: [Merge], m: Int, k: Int) -> [Int] {
        precondition(k >= 1 && k <= m && merges.count >= m - k)
        var parent = Array(0..<(2 * m))
        func find(_ x: Int) -> Int {
            var r = x
            while parent[r] != r { r = parent[r] }
            var y = x
            while parent[y] != r { let nx = parent[y]; parent[y] = r; y = nx }
            return r
        }
        for (t, g) in merges.prefix(m - k).enumerated() {
            parent[find(g.a)] = m + t; parent[find(g.b)] = m + t
        }
        var map: [Int: Int] = [:]
        var out = [Int](repeating: 0, count: m)
        for i in 0..<m {
            let r = find(i)
            if let l = map[r] { out[i] = l } else { out[i] = map.count; map[r] = out[i] }
        }
        return out
    }
}
