import Foundation
import Dispatch

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
/// quickselect on the wider axis), leaves of up to 8 points. Queries return original indices.
public struct KDTree2D: Sendable {
    public let xs: [Double]
    public let ys: [Double]
    /// permutation of point indices; node ranges refer to it
    var perm: [Int32]
    // implicit nodes: arrays indexed by node id
    var lo: [Int32] = [], hi: [Int32] = [], left: [Int32] = [], right: [Int32] = []
    var minX: [Double] = [], maxX: [Double] = [], minY: [Double] = [], maxY: [Double] = []
    static let leafSize = 8

    public var count: Int { xs.count }

    public init(x: [Double], y: [Double]) {
        precondition(x.count == y.count)
        xs = x; ys = y
        perm = (0..<Int32(x.count)).map { $0 }
        if !x.isEmpty { _ = build(0, x.count) }
    }

    private mutating func build(_ a: Int, _ b: Int) -> Int32 {
        var mnx = Double.infinity, mxx = -Double.infinity, mny = Double.infinity, mxy = -Double.infinity
        for i in a..<b {
            let p = Int(perm[i])
            mnx = min(mnx, xs[p]); mxx = max(mxx, xs[p]); mny = min(mny, ys[p]); mxy = max(mxy, ys[p])
        }
        let id = Int32(lo.count)
        lo.append(Int32(a)); hi.append(Int32(b)); left.append(-1); right.append(-1)
        minX.append(mnx); maxX.append(mxx); minY.append(mny); maxY.append(mxy)
        if b - a <= KDTree2D.leafSize || (mnx == mxx && mny == mxy) { return id }
        let useX = mxx - mnx >= mxy - mny
        let mid = (a + b) / 2
        select(a, b, mid, useX)
        let l = build(a, mid), r = build(mid, b)
        left[Int(id)] = l; right[Int(id)] = r
        return id
    }

    @inline(__always) private func coord(_ p: Int32, _ useX: Bool) -> Double { useX ? xs[Int(p)] : ys[Int(p)] }

    /// Quickselect so perm[k] holds the k-th smallest coordinate in [a, b).
    private mutating func select(_ a0: Int, _ b0: Int, _ k: Int, _ useX: Bool) {
        var a = a0, b = b0 - 1
        while a < b {
            let pivot = coord(perm[(a + b) / 2], useX)
            var i = a, j = b
            while i <= j {
                while coord(perm[i], useX) < pivot { i += 1 }
                while coord(perm[j], useX) > pivot { j -= 1 }
                if i <= j { perm.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { b = j } else if k >= i { a = i } else { return }
        }
    }

    @inline(__always) private func boxDist2(_ n: Int, _ x: Double, _ y: Double) -> Double {
        let dx = x < minX[n] ? minX[n] - x : (x > maxX[n] ? x - maxX[n] : 0)
        let dy = y < minY[n] ? minY[n] - y : (y > maxY[n] ? y - maxY[n] : 0)
        return dx * dx + dy * dy
    }

    /// The k nearest points to (x, y) as (index, squared distance), sorted by distance then
    /// index. Returns min(k, count) results.
    public func nearest(x: Double, y: Double, k: Int) -> [(index: Int, dist2: Double)] {
        guard k > 0, !xs.isEmpty else { return [] }
        // bounded max-heap of (d2, idx) kept as a sorted small array for small k
        var best: [(Double, Int)] = []
        best.reserveCapacity(k + 1)
        var stack: [Int32] = [0]
        func worse(_ a: (Double, Int), _ b: (Double, Int)) -> Bool { a.0 != b.0 ? a.0 > b.0 : a.1 > b.1 }
        while let nd = stack.popLast() {
            let n = Int(nd)
            let bd = boxDist2(n, x, y)
            if best.count == k && bd > best[k - 1].0 { continue }
            if left[n] < 0 {
                for i in Int(lo[n])..<Int(hi[n]) {
                    let p = Int(perm[i])
                    let dx = xs[p] - x, dy = ys[p] - y
                    let cand = (dx * dx + dy * dy, p)
                    if best.count == k && !worse(best[k - 1], cand) { continue }
                    // insertion
                    var pos = best.count
                    while pos > 0 && worse(best[pos - 1], cand) { pos -= 1 }
                    best.insert(cand, at: pos)
                    if best.count > k { best.removeLast() }
                }
            } else {
                let l = Int(left[n]), r = Int(right[n])
                // push farther child first
                if boxDist2(l, x, y) <= boxDist2(r, x, y) { stack.append(Int32(r)); stack.append(Int32(l)) }
                else { stack.append(Int32(l)); stack.append(Int32(r)) }
            }
        }
        return best.map { (index: $0.1, dist2: $0.0) }
    }

    /// Indices of all points with distance <= r from (x, y), sorted ascending.
    public func within(x: Double, y: Double, radius r: Double) -> [Int] {
        guard !xs.isEmpty, r >= 0 else { return [] }
        let r2 = r * r
        var out: [Int] = []
        var stack: [Int32] = [0]
        while let nd = stack.popLast() {
            let n = Int(nd)
            if boxDist2(n, x, y) > r2 { continue }
            if left[n] < 0 {
                for i in Int(lo[n])..<Int(hi[n]) {
                    let p = Int(perm[i])
                    let dx = xs[p] - x, dy = ys[p] - y
                    if dx * dx + dy * dy <= r2 { out.append(p) }
                }
            } else {
                stack.append(right[n]); stack.append(left[n])
            }
        }
        out.sort()
        return out
    }

    /// kNN of every point (excluding itself), parallel over points; row i holds up to k
    /// neighbour indices sorted by distance then index.
    public func knnGraph(k: Int) -> [[Int]] {
        let n = xs.count
        var out = [[Int]](repeating: [], count: n)
        let me = self
        out.withUnsafeMutableBufferPointer { o in
            let O = SharedBox(o)
            let chunks = max(1, min(64, n / 256))
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (n * c / chunks)..<(n * (c + 1) / chunks) {
                    let res = me.nearest(x: me.xs[i], y: me.ys[i], k: k + 1)
                    O.value[i] = res.lazy.map(\.index).filter { $0 != i }.prefix(k).map { $0 }
                }
            }
        }
        return out
    }

    /// Neighbours within `radius` of every point (excluding itself), parallel over points;
    /// row i is sorted ascending.
    public func radiusGraph(radius: Double) -> [[Int]] {
        let n = xs.count
        var out = [[Int]](repeating: [], count: n)
        let me = self
        out.withUnsafeMutableBufferPointer { o in
            let O = SharedBox(o)
            let chunks = max(1, min(64, n / 256))
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                for i in (n * c / chunks)..<(n * (c + 1) / chunks) {
                    O.value[i] = me.within(x: me.xs[i], y: me.ys[i], radius: radius).filter { $0 != i }
                }
            }
        }
        return out
    }
}

struct SharedBox<T>: @unchecked Sendable { let value: T; init(_ v: T) { value = v } }
