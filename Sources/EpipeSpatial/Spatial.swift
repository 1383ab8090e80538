import Foundation
import Dispatch
import EpipeKernels

public struct Frequencies: Sendable, Equatable {
    public var types: [String]
    public var counts: [Int]
    public var proportions: [Double]
}

public enum CellTypeStats {
    /// Counts and proportions per cell type, sorted by count descending, then name ascending.
    public static func frequencies(labels: [String]) -> Frequencies {
        var c: [String: Int] = [:]
        for l in labels { c[l, default: 0] += 1 }
        let sorted = c.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let total = Double(labels.count)
        return Frequencies(types: sorted.map(\.key), counts: sorted.map(\.value),
                           proportions: sorted.map { total > 0 ? Double($0.value) / total : 0 })
    }
}

/// Static 2-D KD-tree over points (x[i], y[i]). Build O(n log n) (median split by
/// quickselect on the wider axis of each node's bounding box), leaves of up to 8 points stored
/// contiguously. Queries return original indices; exact (ties by index).
public struct KDTree2D: Sendable {
    public let xs: [Double]
    public let ys: [Double]
    struct Node: Sendable {
        var lo: Int32, hi: Int32, left: Int32, right: Int32
        var minX: Double, maxX: Double, minY: Double, maxY: Double
    }
    // points in tree order
    var px: [Double], py: [Double], pid: [Int32]
    var nodes: [Node] = []
    static let leafSize = 8

    public var count: Int { xs.count }

    public init(x: [Double], y: [Double]) {
        precondition(x.count == y.count && x.count < Int(Int32.max))
        xs = x; ys = y
        px = x; py = y
        pid = (0..<Int32(x.count)).map { $0 }
        nodes.reserveCapacity(max(1, 2 * x.count / KDTree2D.leafSize + 1))
        if !x.isEmpty {
            var nodesLocal: [Node] = []
            px.withUnsafeMutableBufferPointer { X in
                py.withUnsafeMutableBufferPointer { Y in
                    pid.withUnsafeMutableBufferPointer { I in
                        _ = KDTree2D.build(X, Y, I, 0, x.count, &nodesLocal)
                    }
                }
            }
            nodes = nodesLocal
        }
    }

    private static func build(_ X: UnsafeMutableBufferPointer<Double>, _ Y: UnsafeMutableBufferPointer<Double>,
                              _ I: UnsafeMutableBufferPointer<Int32>, _ a: Int, _ b: Int, _ nodes: inout [Node]) -> Int32 {
        var mnx = Double.infinity, mxx = -Double.infinity, mny = Double.infinity, mxy = -Double.infinity
        for i in a..<b {
            let x = X[i], y = Y[i]
            if x < mnx { mnx = x }
            if x > mxx { mxx = x }
            if y < mny { mny = y }
            if y > mxy { mxy = y }
        }
        let id = Int32(nodes.count)
        nodes.append(Node(lo: Int32(a), hi: Int32(b), left: -1, right: -1, minX: mnx, maxX: mxx, minY: mny, maxY: mxy))
        if b - a <= leafSize || (mnx == mxx && mny == mxy) { return id }
        let useX = mxx - mnx >= mxy - mny
        let mid = (a + b) / 2
        if useX { select(X, Y, I, a, b, mid) } else { select(Y, X, I, a, b, mid) }
        let l = build(X, Y, I, a, mid, &nodes)
        let r = build(X, Y, I, mid, b, &nodes)
        nodes[Int(id)].left = l; nodes[Int(id)].right = r
        return id
    }

    /// Quickselect on key array K (moving O and I along) so position k holds the k-th smallest.
    private static func select(_ K: UnsafeMutableBufferPointer<Double>, _ O: UnsafeMutableBufferPointer<Double>,
                               _ I: UnsafeMutableBufferPointer<Int32>, _ a0: Int, _ b0: Int, _ k: Int) {
        var a = a0, b = b0 - 1
        @inline(__always) func swp(_ i: Int, _ j: Int) { K.swapAt(i, j); O.swapAt(i, j); I.swapAt(i, j) }
        while a < b {
            // median of three pivot
            let m = (a + b) / 2
            let pivot = Swift.max(Swift.min(K[a], K[m]), Swift.min(Swift.max(K[a], K[m]), K[b]))
            var i = a, j = b
            while i <= j {
                while K[i] < pivot { i += 1 }
                while K[j] > pivot { j -= 1 }
                if i <= j { swp(i, j); i += 1; j -= 1 }
            }
            if k <= j { b = j } else if k >= i { a = i } else { return }
        }
    }

    /// Scratch space for queries (reuse across queries on one thread).
    final class Scratch {
        var d: UnsafeMutablePointer<Double>
        var id: UnsafeMutablePointer<Int32>
        var cap: Int
        var stack: UnsafeMutablePointer<Int32>
        init(k: Int) {
            cap = Swift.max(1, k)
            d = .allocate(capacity: cap + 1); id = .allocate(capacity: cap + 1)
            stack = .allocate(capacity: 256)
        }
        func ensure(_ k: Int) {
            if k > cap { d.deallocate(); id.deallocate(); cap = k; d = .allocate(capacity: k + 1); id = .allocate(capacity: k + 1) }
        }
        deinit { d.deallocate(); id.deallocate(); stack.deallocate() }
    }

    /// Core kNN: fills s.d/s.id with up to k results sorted by (distance, index); returns count.
    @inline(__always)
    func knn(_ x: Double, _ y: Double, _ k: Int, _ s: Scratch, _ N: UnsafeBufferPointer<Node>,
             _ X: UnsafeBufferPointer<Double>, _ Y: UnsafeBufferPointer<Double>, _ I: UnsafeBufferPointer<Int32>) -> Int {
        let bd = s.d, bi = s.id, stack = s.stack
        var cnt = 0
        var sp = 1
        stack[0] = 0
        @inline(__always) func box(_ n: Node) -> Double {
            let dx = x < n.minX ? n.minX - x : (x > n.maxX ? x - n.maxX : 0)
            let dy = y < n.minY ? n.minY - y : (y > n.maxY ? y - n.maxY : 0)
            return dx * dx + dy * dy
        }
        while sp > 0 {
            sp -= 1
            let node = N[Int(stack[sp])]
            if cnt == k && box(node) > bd[k - 1] { continue }
            if node.left < 0 {
                for i in Int(node.lo)..<Int(node.hi) {
                    let dx = X[i] - x, dy = Y[i] - y
                    let d = dx * dx + dy * dy
                    let idx = I[i]
                    if cnt == k && (d > bd[k - 1] || (d == bd[k - 1] && idx > bi[k - 1])) { continue }
                    var pos = cnt < k ? cnt : k - 1
                    while pos > 0 && (bd[pos - 1] > d || (bd[pos - 1] == d && bi[pos - 1] > idx)) {
                        bd[pos] = bd[pos - 1]; bi[pos] = bi[pos - 1]; pos -= 1
                    }
                    bd[pos] = d; bi[pos] = idx
                    if cnt < k { cnt += 1 }
                }
            } else {
                let l = N[Int(node.left)], r = N[Int(node.right)]
                // visit the nearer child first (pushed last)
                if box(l) <= box(r) { stack[sp] = node.right; stack[sp + 1] = node.left }
                else { stack[sp] = node.left; stack[sp + 1] = node.right }
                sp += 2
            }
        }
        return cnt
    }

    /// The k nearest points to (x, y) as (index, squared distance), sorted by distance then
    /// index. Returns min(k, count) results.
    public func nearest(x: Double, y: Double, k: Int) -> [(index: Int, dist2: Double)] {
        guard k > 0, !xs.isEmpty else { return [] }
        let s = Scratch(k: k)
        let c = withBuffers { N, X, Y, I in knn(x, y, k, s, N, X, Y, I) }
        return (0..<c).map { (index: Int(s.id[$0]), dist2: s.d[$0]) }
    }

    @inline(__always)
    func withBuffers<R>(_ body: (UnsafeBufferPointer<Node>, UnsafeBufferPointer<Double>, UnsafeBufferPointer<Double>, UnsafeBufferPointer<Int32>) -> R) -> R {
        nodes.withUnsafeBufferPointer { N in px.withUnsafeBufferPointer { X in py.withUnsafeBufferPointer { Y in
            pid.withUnsafeBufferPointer { I in body(N, X, Y, I) } } } }
    }

    func radius(_ x: Double, _ y: Double, _ r2: Double, _ stack: UnsafeMutablePointer<Int32>, _ out: inout [Int],
                _ N: UnsafeBufferPointer<Node>, _ X: UnsafeBufferPointer<Double>, _ Y: UnsafeBufferPointer<Double>, _ I: UnsafeBufferPointer<Int32>) {
        var sp = 1
        stack[0] = 0
        while sp > 0 {
            sp -= 1
            let n = N[Int(stack[sp])]
            let dx = x < n.minX ? n.minX - x : (x > n.maxX ? x - n.maxX : 0)
            let dy = y < n.minY ? n.minY - y : (y > n.maxY ? y - n.maxY : 0)
            if dx * dx + dy * dy > r2 { continue }
            if n.left < 0 {
                for i in Int(n.lo)..<Int(n.hi) {
                    let ex = X[i] - x, ey = Y[i] - y
                    if ex * ex + ey * ey <= r2 { out.append(Int(I[i])) }
                }
            } else {
                stack[sp] = n.right; stack[sp + 1] = n.left; sp += 2
            }
        }
    }

    /// Indices of all points with distance <= r from (x, y), sorted ascending.
    public func within(x: Double, y: Double, radius r: Double) -> [Int] {
        guard !xs.isEmpty, r >= 0 else { return [] }
        var out: [Int] = []
        let s = Scratch(k: 1)
        withBuffers { N, X, Y, I in radius(x, y, r * r, s.stack, &out, N, X, Y, I) }
        out.sort()
        return out
    }

    /// The directed kNN graph: each point to its k nearest others (ties by index), row i sorted
    /// by distance then index; parallel over points in tree order (consecutive queries touch the
    /// same leaves). k is capped at count - 1.
    public func knnGraph(k k0: Int) -> SpatialGraph {
        let n = xs.count
        let k = Swift.max(0, Swift.min(k0, n - 1))
        guard k > 0 else { return SpatialGraph(offsets: [Int](repeating: 0, count: n + 1), targets: []) }
        var out = [Int32](repeating: 0, count: n * k)
        let me = self
        out.withUnsafeMutableBufferPointer { o in
            let O = UnsafeShared(o)
            parallelChunks(n, minChunk: 4096) { lo, hi in
                let s = Scratch(k: k + 1)
                me.withBuffers { N, X, Y, I in
                    for j in lo..<hi {
                        let i = Int(I[j])
                        let cnt = me.knn(X[j], Y[j], k + 1, s, N, X, Y, I)
                        var w = i * k
                        for m in 0..<cnt where Int(s.id[m]) != i && w < (i + 1) * k { O.value[w] = s.id[m]; w += 1 }
                    }
                }
            }
        }
        return SpatialGraph(uniform: k, targets: out)
    }

    /// The undirected radius graph: every pair at distance <= r (each edge in both rows), rows
    /// sorted ascending, no self edges; parallel over points, each chunk's rows gathered then joined.
    public func radiusGraph(radius r: Double) -> SpatialGraph {
        let n = xs.count
        guard n > 0, r >= 0 else { return SpatialGraph(offsets: [Int](repeating: 0, count: n + 1), targets: []) }
        // rows are gathered per chunk of original indices, so the join is in index order
        let chunks = Swift.max(1, Swift.min(256, n / 2048))
        var parts = [[Int32]](repeating: [], count: chunks)
        var degree = [Int](repeating: 0, count: n)
        let me = self
        parts.withUnsafeMutableBufferPointer { pp in
            degree.withUnsafeMutableBufferPointer { dd in
                let P = UnsafeShared(pp), D = UnsafeShared(dd)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    let s = Scratch(k: 1)
                    var tmp: [Int] = [], part: [Int32] = []
                    me.withBuffers { N, X, Y, I in
                        for i in (n * c / chunks)..<(n * (c + 1) / chunks) {
                            tmp.removeAll(keepingCapacity: true)
                            me.radius(me.xs[i], me.ys[i], r * r, s.stack, &tmp, N, X, Y, I)
                            tmp.sort()
                            var d = 0
                            for j in tmp where j != i { part.append(Int32(j)); d += 1 }
                            D.value[i] = d
                        }
                    }
                    P.value[c] = part
                }
            }
        }
        var offsets = [Int](repeating: 0, count: n + 1)
        for i in 0..<n { offsets[i + 1] = offsets[i] + degree[i] }
        var targets = [Int32](); targets.reserveCapacity(offsets[n])
        for p in parts { targets.append(contentsOf: p) }
        return SpatialGraph(offsets: offsets, targets: targets)
    }
}
