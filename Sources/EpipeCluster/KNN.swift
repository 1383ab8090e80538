import Foundation
import Dispatch
import EpipeKernels

/// k nearest neighbours of every point: row i's neighbours are `indices[i*k ..< i*k + k]`,
/// nearest first, with their Euclidean distances in `distances` at the same positions.
public struct KNNResult: Sendable {
    public var n: Int
    public var k: Int
    public var indices: [Int32]
    public var distances: [Double]

    public init(n: Int, k: Int, indices: [Int32], distances: [Double]) {
        precondition(indices.count == n * k && distances.count == n * k)
        self.n = n; self.k = k; self.indices = indices; self.distances = distances
    }

    /// Neighbour `j` (0 = nearest) of point `i`.
    @inlinable public func neighbor(_ i: Int, _ j: Int) -> Int { Int(indices[i * k + j]) }
}

public enum KNN {
    /// Exact k nearest neighbours of the n points of `data` (row-major n x d, as `KMeans.fit`),
    /// Euclidean, excluding the point itself.
    ///
    /// - Order: by squared distance `sum_j (x_ij - y_j)^2` summed in column order (the same
    ///   arithmetic as a brute-force loop), ties broken by the lower index. A point's duplicates
    ///   are neighbours at distance 0; only the point's own index is excluded.
    /// - k is clamped to n - 1 (the result's `k` says what was used); n <= 1 gives k = 0.
    /// - Deterministic: every query row is independent of the split into threads.
    /// - Work: queries in blocks of 32 against references in blocks of 256 so a reference block
    ///   stays in cache for the query block; a running sum that already exceeds the k-th best
    ///   stops early (exact: the sum only grows). No allocation per pair; one scratch per chunk.
    public static func exact(_ data: [Double], n: Int, d: Int, k: Int) -> KNNResult {
        precondition(d >= 1 && data.count == n * d && k >= 0)
        let k = Swift.max(0, Swift.min(k, n - 1))
        guard k > 0 else { return KNNResult(n: n, k: 0, indices: [], distances: []) }
        var idx = [Int32](repeating: -1, count: n * k)
        var dist = [Double](repeating: .infinity, count: n * k)
        let qBlock = 32, rBlock = 256
        data.withUnsafeBufferPointer { xb in
            idx.withUnsafeMutableBufferPointer { ib in
                dist.withUnsafeMutableBufferPointer { db in
                    let X = UnsafeShared(xb.baseAddress!), I = SharedPointer(ib.baseAddress!), D = SharedPointer(db.baseAddress!)
                    parallelChunks(n, minChunk: qBlock, cost: n * d) { lo, hi in
                        let x = X.value
                        var q0 = lo
                        while q0 < hi {
                            let q1 = Swift.min(q0 + qBlock, hi)
                            var r0 = 0
                            while r0 < n {
                                let r1 = Swift.min(r0 + rBlock, n)
                                for q in q0..<q1 {
                                    let xq = x + q * d
                                    let bd = D.pointer + q * k, bi = I.pointer + q * k
                                    var worst = bd[k - 1]
                                    for r in r0..<r1 where r != q {
                                        let xr = x + r * d
                                        var s = 0.0
                                        var j = 0
                                        // 4 columns at a time, then check against the worst kept.
                                        while j + 4 <= d {
                                            let t0 = xq[j] - xr[j], t1 = xq[j + 1] - xr[j + 1]
                                            let t2 = xq[j + 2] - xr[j + 2], t3 = xq[j + 3] - xr[j + 3]
                                            s += t0 * t0; s += t1 * t1; s += t2 * t2; s += t3 * t3
                                            j += 4
                                            if s > worst { break }
                                        }
                                        if s > worst { continue }
                                        while j < d { let t = xq[j] - xr[j]; s += t * t; j += 1 }
                                        if !(s < worst) { continue }
                                        // insert after every kept entry with distance <= s (r is larger
                                        // than every kept index, so equal distances keep the lower index first)
                                        var p = k - 1
                                        while p > 0 && bd[p - 1] > s { bd[p] = bd[p - 1]; bi[p] = bi[p - 1]; p -= 1 }
                                        bd[p] = s; bi[p] = Int32(truncatingIfNeeded: r)
                                        worst = bd[k - 1]
                                    }
                                }
                                r0 = r1
                            }
                            for q in q0..<q1 {
                                let bd = D.pointer + q * k
                                for p in 0..<k { bd[p] = bd[p].squareRoot() }
                            }
                            q0 = q1
                        }
                    }
                }
            }
        }
        return KNNResult(n: n, k: k, indices: idx, distances: dist)
    }

    /// Single-precision input (row-major n x d): converted to Double once, then `exact`.
    public static func exact(_ data: [Float], n: Int, d: Int, k: Int) -> KNNResult {
        exact(data.map { Double($0) }, n: n, d: d, k: k)
    }
}
