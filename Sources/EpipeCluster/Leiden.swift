import Foundation
import Dispatch
import EpipeKernels

/// The result of `Leiden.cluster`.
public struct LeidenResult: Sendable {
    /// Cluster of each node, 0..<clusterCount, numbered by decreasing size (ties: the cluster
    /// holding the smaller node index first).
    public var labels: [Int]
    public var clusterCount: Int
    /// `Leiden.modularity(graph, labels, resolution)`.
    public var quality: Double
    /// Full Leiden passes run (the last one changed nothing or gained less than the tolerance,
    /// unless the cap was reached).
    public var iterations: Int
}

/// Leiden community detection (Traag, Waltman & van Eck 2019, "From Louvain to Leiden:
/// guaranteeing well-connected communities", Sci. Rep. 9:5233), written from the paper's
/// pseudo-code, with the RB-configuration (modularity with a resolution γ) quality:
///
///     H = Σ_c [ E_c − γ K_c² / (4m) ]        (= m · Q with Q the modularity below)
///
/// E_c = weight of edges inside c (each undirected edge once, loops once), K_c = total strength
/// of c, 2m = total strength. Gains are in the raw units of H, as leidenalg's
/// RBConfigurationVertexPartition, so the refinement's randomness θ = 0.01 means the same here.
///
/// One pass: (1) fast local moving with a queue (nodes visited in a random order; a node that
/// moves puts its neighbours outside its new community back on the queue); (2) refinement:
/// inside each community, starting from singletons, every well-connected singleton node merges
/// into a well-connected sub-community of its community chosen at random with probability
/// ∝ exp(ΔH / θ) among those with ΔH >= 0 (only sub-communities it has edges to, so every
/// refined community is connected); (3) aggregation on the refined partition, the aggregate's
/// initial partition being the unrefined one; repeat (1)-(3) until local moving changes nothing.
/// Passes are repeated from the previous pass's partition until H stops increasing by more than
/// `tolerance` x H (1e-4; 0 runs to leidenalg's `n_iterations = -1` fixed point) or `maxIterations`.
///
/// Deterministic: all randomness comes from SplitMix64(seed); all loops are sequential.
public enum Leiden {
    /// Newman's modularity with resolution γ (networkx/igraph convention, loops counted twice in
    /// degrees): Q = Σ_c [ E_c / m − γ (K_c / 2m)² ]. Labels are any non-negative integers.
    public static func modularity(_ g: Graph, labels: [Int], resolution γ: Double = 1) -> Double {
        precondition(labels.count == g.n)
        guard g.n > 0 else { return 0 }
        let nc = (labels.max() ?? 0) + 1
        var e = [Double](repeating: 0, count: nc), kk = [Double](repeating: 0, count: nc)
        var twoM = 0.0
        for i in 0..<g.n {
            let c = labels[i]
            let loop = g.selfLoops.isEmpty ? 0 : g.selfLoops[i]
            e[c] += loop
            var s = 2 * loop
            for p in g.offsets[i]..<g.offsets[i + 1] {
                let w = g.weights[p]
                s += w
                if labels[Int(g.targets[p])] == c { e[c] += w / 2 }
            }
            kk[c] += s; twoM += s
        }
        guard twoM > 0 else { return 0 }
        let m = twoM / 2
        var q = 0.0
        for c in 0..<nc { q += e[c] / m - γ * (kk[c] / twoM) * (kk[c] / twoM) }
        return q
    }

    /// Leiden on `graph` with the RB-configuration quality at `resolution`.
    /// `theta` is the refinement's randomness (leidenalg's default 0.01).
    public static func cluster(_ graph: Graph, resolution: Double = 1, seed: UInt64 = 0, maxIterations: Int = 50, theta: Double = 0.01,
                               tolerance: Double = 1e-4) -> LeidenResult {
        let n = graph.n
        guard n > 0 else { return LeidenResult(labels: [], clusterCount: 0, quality: 0, iterations: 0) }
        var rng = SplitMix64(seed: seed)
        let base = Level(graph)
        var labels = Array(0..<n)
        var h = base.quality(labels, resolution)
        var it = 0
        while it < max(1, maxIterations) {
            it += 1
            let next = pass(base, initial: labels, resolution: resolution, theta: theta, rng: &rng)
            let h2 = base.quality(next, resolution)
            // A pass that adds less than `tolerance` x H is the last one (its partition is kept when
            // it is better at all): on graphs without clear structure every pass finds a little
            // more, and the passes after 1e-4 change modularity in its 5th decimal.
            if h2 > h + 1e-10 * max(1, abs(h)) { let gain = h2 - h; labels = next; h = h2; if gain < tolerance * abs(h) { break } } else { break }
        }
        let (lab, count) = renumberBySize(labels)
        return LeidenResult(labels: lab, clusterCount: count, quality: modularity(graph, labels: lab, resolution: resolution), iterations: it)
    }

    /// One fast-local-moving phase on the graph from singletons, no refinement or aggregation
    /// (a Louvain-style first level): the baseline Leiden must match or beat.
    public static func localMovingOnly(_ graph: Graph, resolution: Double = 1, seed: UInt64 = 0) -> [Int] {
        var rng = SplitMix64(seed: seed)
        let lv = Level(graph)
        var p = Array(0..<graph.n)
        moveNodesFast(lv, &p, resolution: resolution, rng: &rng)
        return renumberBySize(p).0
    }

    /// Labels renumbered 0..<count by decreasing cluster size, ties by the smallest member index.
    public static func renumberBySize(_ labels: [Int]) -> ([Int], Int) {
        let n = labels.count
        guard n > 0 else { return ([], 0) }
        let nc = (labels.max() ?? 0) + 1
        var size = [Int](repeating: 0, count: nc), first = [Int](repeating: Int.max, count: nc)
        for i in 0..<n { size[labels[i]] += 1; if first[labels[i]] == Int.max { first[labels[i]] = i } }
        let used = (0..<nc).filter { size[$0] > 0 }
            .sorted { size[$0] != size[$1] ? size[$0] > size[$1] : first[$0] < first[$1] }
        var map = [Int](repeating: -1, count: nc)
        for (r, c) in used.enumerated() { map[c] = r }
        return (labels.map { map[$0] }, used.count)
    }

    // MARK: - internals

    /// A graph level: CSR adjacency without loops, loop weights and strengths.
    struct Level {
        let n: Int
        let off: [Int]
        let adj: [Int32]
        let w: [Double]
        let loop: [Double]
        let k: [Double]
        let twoM: Double

        init(_ g: Graph) {
            n = g.n; off = g.offsets; adj = g.targets; w = g.weights
            loop = g.selfLoops.isEmpty ? [Double](repeating: 0, count: g.n) : g.selfLoops
            let s = g.strengths()
            k = s; twoM = s.reduce(0, +)
        }
        init(n: Int, off: [Int], adj: [Int32], w: [Double], loop: [Double], k: [Double], twoM: Double) {
            self.n = n; self.off = off; self.adj = adj; self.w = w; self.loop = loop; self.k = k; self.twoM = twoM
        }

        /// H = Σ_c [E_c − γ K_c² / (2·2m)] for a partition of this level's nodes.
        func quality(_ p: [Int], _ γ: Double) -> Double {
            guard twoM > 0 else { return 0 }
            var e = [Double](repeating: 0, count: n), kk = [Double](repeating: 0, count: n)
            for i in 0..<n {
                let c = p[i]
                e[c] += loop[i]; kk[c] += k[i]
                for q in off[i]..<off[i + 1] where p[Int(adj[q])] == c { e[c] += w[q] / 2 }
            }
            var h = 0.0
            for c in 0..<n { h += e[c] - γ * kk[c] * kk[c] / (2 * twoM) }
            return h
        }
    }

    /// Random permutation of 0..<n (Fisher–Yates on SplitMix64).
    static func permutation(_ n: Int, _ rng: inout SplitMix64) -> [Int32] {
        var p = (0..<n).map { Int32($0) }
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                p.swapAt(i, j)
            }
        }
        return p
    }

    /// One Leiden pass from the partition `initial` of the base level's nodes.
    static func pass(_ base: Level, initial: [Int], resolution γ: Double, theta: Double, rng: inout SplitMix64) -> [Int] {
        var level = base
        var part = compact(initial)            // partition of `level`'s nodes
        var memb = Array(0..<base.n)           // base node -> level node
        // Each round either stops (every community is one node of the level) or aggregates into
        // a strictly smaller level, so the loop ends.
        while true {
            moveNodesFast(level, &part, resolution: γ, rng: &rng)
            let nComm = compactInPlace(&part)
            if nComm == level.n { break }
            var refined = refine(level, part, nComm: nComm, resolution: γ, theta: theta, rng: &rng)
            var nRef = compactInPlace(&refined)
            if nRef == level.n {
                // refinement merged nothing: aggregate on the unrefined partition
                refined = part; nRef = nComm
            }
            let agg = aggregate(level, refined, nRef)
            var newPart = [Int](repeating: 0, count: nRef)
            for v in 0..<level.n { newPart[refined[v]] = part[v] }
            for v in 0..<base.n { memb[v] = refined[memb[v]] }
            level = agg; part = newPart
        }
        var out = [Int](repeating: 0, count: base.n)
        for v in 0..<base.n { out[v] = part[memb[v]] }
        return out
    }

    /// Renumbers labels to 0..<count in order of first appearance; returns the count.
    @discardableResult
    static func compactInPlace(_ p: inout [Int]) -> Int {
        var map = [Int](repeating: -1, count: (p.max() ?? -1) + 1)
        var c = 0
        for i in p.indices {
            if map[p[i]] < 0 { map[p[i]] = c; c += 1 }
            p[i] = map[p[i]]
        }
        return c
    }
    static func compact(_ p: [Int]) -> [Int] { var q = p; compactInPlace(&q); return q }

    /// Fast local moving (the paper's MoveNodesFast). `part` holds labels in 0..<n on entry
    /// (any values below n) and on exit. Returns whether any node changed community.
    @discardableResult
    static func moveNodesFast(_ g: Level, _ part: inout [Int], resolution γ: Double, rng: inout SplitMix64) -> Bool {
        let n = g.n
        guard n > 1, g.twoM > 0 else { return false }
        var K = [Double](repeating: 0, count: n)      // community strengths
        var size = [Int](repeating: 0, count: n)
        for v in 0..<n { K[part[v]] += g.k[v]; size[part[v]] += 1 }
        var empties: [Int] = []
        for c in stride(from: n - 1, through: 0, by: -1) where size[c] == 0 { empties.append(c) }
        // the queue: a ring of n slots in a random order
        var queue = permutation(n, &rng)
        var inQueue = [Bool](repeating: true, count: n)
        var head = 0, count = n
        var neighW = [Double](repeating: 0, count: n)
        var touched: [Int] = []
        touched.reserveCapacity(64)
        let scale = γ / g.twoM
        var anyMove = false
        while count > 0 {
            let v = Int(queue[head]); head += 1; if head == n { head = 0 }; count -= 1
            inQueue[v] = false
            let cv = part[v], kv = g.k[v]
            // weights to neighbouring communities
            touched.removeAll(keepingCapacity: true)
            for q in g.off[v]..<g.off[v + 1] {
                let c = part[Int(g.adj[q])]
                if neighW[c] == 0 { touched.append(c) }
                neighW[c] += g.w[q]
            }
            // remove v from its community
            K[cv] -= kv; size[cv] -= 1
            // staying (cv) is the baseline; an empty community gains 0 - 0
            var best = cv
            var bestGain = neighW[cv] - scale * kv * K[cv]
            for c in touched where c != cv {
                let gain = neighW[c] - scale * kv * K[c]
                if gain > bestGain { bestGain = gain; best = c }
            }
            if size[cv] > 0 && 0 > bestGain, let e = empties.last {
                best = e; bestGain = 0
            }
            for c in touched { neighW[c] = 0 }
            if best == empties.last { empties.removeLast() }
            K[best] += kv; size[best] += 1
            if size[cv] == 0 { empties.append(cv) }
            if best != cv {
                part[v] = best
                anyMove = true
                for q in g.off[v]..<g.off[v + 1] {
                    let u = Int(g.adj[q])
                    if !inQueue[u] && part[u] != best {
                        inQueue[u] = true
                        var t = head + count; if t >= n { t -= n }
                        queue[t] = Int32(u); count += 1
                    }
                }
            }
        }
        return anyMove
    }

    /// The paper's RefinePartition / MergeNodesSubset: returns a refinement of `part` (labels of
    /// refined communities, not compact) in which every community is connected.
    static func refine(_ g: Level, _ part: [Int], nComm: Int, resolution γ: Double, theta: Double, rng: inout SplitMix64) -> [Int] {
        let n = g.n
        var ref = Array(0..<n)
        guard g.twoM > 0 else { return ref }
        let scale = γ / g.twoM
        var KC = [Double](repeating: 0, count: nComm)       // strength of each community of `part`
        for v in 0..<n { KC[part[v]] += g.k[v] }
        var Kr = g.k                                        // strength of each refined community
        var sizeR = [Int](repeating: 1, count: n)
        // wOut[r] = E(S_r, C − S_r): weight from refined community r to the rest of its community
        var wOut = [Double](repeating: 0, count: n)
        for v in 0..<n {
            var s = 0.0
            for q in g.off[v]..<g.off[v + 1] where part[Int(g.adj[q])] == part[v] { s += g.w[q] }
            wOut[v] = s
        }
        let order = permutation(n, &rng)
        var neighW = [Double](repeating: 0, count: n)
        var touched: [Int] = []
        var cand: [Int] = [], candGain: [Double] = []
        for vi in order {
            let v = Int(vi)
            guard ref[v] == v && sizeR[v] == 1 else { continue }   // v still a singleton
            let c = part[v], kv = g.k[v]
            // v must be well connected to its community
            guard wOut[v] >= scale * kv * (KC[c] - kv) else { continue }
            touched.removeAll(keepingCapacity: true)
            for q in g.off[v]..<g.off[v + 1] {
                let u = Int(g.adj[q])
                guard part[u] == c else { continue }
                let r = ref[u]
                if r == v { continue }
                if neighW[r] == 0 { touched.append(r) }
                neighW[r] += g.w[q]
            }
            cand.removeAll(keepingCapacity: true); candGain.removeAll(keepingCapacity: true)
            var maxGain = 0.0
            for r in touched {
                // only well-connected sub-communities
                if wOut[r] >= scale * Kr[r] * (KC[c] - Kr[r]) {
                    let gain = neighW[r] - scale * kv * Kr[r]
                    if gain >= 0 {
                        cand.append(r); candGain.append(gain)
                        if gain > maxGain { maxGain = gain }
                    }
                }
            }
            var target = v
            if !cand.isEmpty {
                // staying alone (gain 0) is a candidate too, as in the paper
                var total = exp((0 - maxGain) / theta)
                for gn in candGain { total += exp((gn - maxGain) / theta) }
                var u = rng.nextUnit() * total
                u -= exp((0 - maxGain) / theta)
                if u >= 0 {
                    target = cand[cand.count - 1]
                    for (i, gn) in candGain.enumerated() {
                        u -= exp((gn - maxGain) / theta)
                        if u < 0 { target = cand[i]; break }
                    }
                }
            }
            if target != v {
                let wvt = neighW[target]
                ref[v] = target
                sizeR[target] += 1; sizeR[v] = 0
                Kr[target] += kv; Kr[v] = 0
                wOut[target] = wOut[target] + wOut[v] - 2 * wvt
                wOut[v] = 0
            }
            for r in touched { neighW[r] = 0 }
        }
        return ref
    }

    /// The graph whose nodes are the communities 0..<nc of `p` (compact labels): edge weights
    /// summed, internal edges and loops summed into the loop, strengths summed.
    static func aggregate(_ g: Level, _ p: [Int], _ nc: Int) -> Level {
        let n = g.n
        // members of each community, by counting sort
        var start = [Int](repeating: 0, count: nc + 1)
        for v in 0..<n { start[p[v] + 1] += 1 }
        for c in 0..<nc { start[c + 1] += start[c] }
        var fill = Array(start[0..<nc])
        var members = [Int](repeating: 0, count: n)
        for v in 0..<n { members[fill[p[v]]] = v; fill[p[v]] += 1 }
        var off = [Int](repeating: 0, count: nc + 1)
        var adj: [Int32] = [], w: [Double] = []
        adj.reserveCapacity(g.adj.count / 2); w.reserveCapacity(g.adj.count / 2)
        var loop = [Double](repeating: 0, count: nc), k = [Double](repeating: 0, count: nc)
        var acc = [Double](repeating: 0, count: nc)
        var seen = [Bool](repeating: false, count: nc)
        var touched: [Int] = []
        for c in 0..<nc {
            touched.removeAll(keepingCapacity: true)
            var lw = 0.0, kc = 0.0
            for m in start[c]..<start[c + 1] {
                let v = members[m]
                lw += g.loop[v]; kc += g.k[v]
                for q in g.off[v]..<g.off[v + 1] {
                    let d = p[Int(g.adj[q])]
                    if d == c { lw += g.w[q] / 2; continue }
                    if !seen[d] { seen[d] = true; touched.append(d) }
                    acc[d] += g.w[q]
                }
            }
            touched.sort()
            for d in touched { adj.append(Int32(d)); w.append(acc[d]); acc[d] = 0; seen[d] = false }
            off[c + 1] = adj.count
            loop[c] = lw; k[c] = kc
        }
        return Level(n: nc, off: off, adj: adj, w: w, loop: loop, k: k, twoM: g.twoM)
    }
}
