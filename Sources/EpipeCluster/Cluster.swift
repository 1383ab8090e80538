import Foundation
import Dispatch
import EpipeKernels

public enum Transform {
    /// x = asinh(x / cofactor).
    public static func arcsinh(_ x: inout [Double], cofactor: Double = 5) {
        let inv = 1 / cofactor
        for i in x.indices { x[i] = asinh(x[i] * inv) }
    }
    /// The transform of `kind` in place: arcsinh(x / cofactor), ln(1 + x) or nothing.
    public static func apply(_ kind: ClusterParams.TransformKind, _ x: inout [Double], cofactor: Double) {
        switch kind {
        case .arcsinh: arcsinh(&x, cofactor: cofactor)
        case .log1p: for i in x.indices { x[i] = Foundation.log1p(x[i]) }
        case .none: break
        }
    }
    /// The [100 - clip, clip] percentiles of `x` (numpy's default linear interpolation between
    /// order statistics); (min, max) for clip 100; (0, 0) for no values.
    public static func percentileBounds(_ x: [Double], clip: Double) -> (Double, Double) {
        guard !x.isEmpty else { return (0, 0) }
        if clip >= 100 { return (x.min()!, x.max()!) }
        let s = x.sorted()
        func q(_ p: Double) -> Double {
            let pos = p / 100 * Double(s.count - 1)
            let i = Int(pos.rounded(.down)), f = pos - Double(i)
            return i + 1 < s.count ? s[i] + (s[i + 1] - s[i]) * f : s[i]
        }
        return (q(100 - clip), q(clip))
    }
    /// Each column to zero mean, unit population std (ddof 0, like sklearn StandardScaler);
    /// constant columns become all zeros.
    public static func zscore(columns: inout [[Double]]) {
        for c in columns.indices {
            let n = columns[c].count
            guard n > 0 else { continue }
            var s = 0.0
            for v in columns[c] { s += v }
            let mean = s / Double(n)
            var ss = 0.0
            for v in columns[c] { ss += (v - mean) * (v - mean) }
            let sd = (ss / Double(n)).squareRoot()
            let inv = sd > 0 ? 1 / sd : 0
            for i in 0..<n { columns[c][i] = (columns[c][i] - mean) * inv }
        }
    }
    /// Columns (all the same length n) to row-major n x d.
    public static func rowMajor(columns: [[Double]]) -> [Double] {
        let d = columns.count, n = columns.first?.count ?? 0
        var out = [Double](repeating: 0, count: n * d)
        for (j, col) in columns.enumerated() {
            precondition(col.count == n)
            for i in 0..<n { out[i * d + j] = col[i] }
        }
        return out
    }
}

public struct KMeansResult: Sendable {
    public var labels: [Int]
    /// k' x d centroids; k' = min(k, number of distinct points) (see `KMeans.fit`).
    public var centroids: [[Double]]
    public var inertia: Double
    public var iterations: Int
}

public enum KMeans {
    /// data row-major n x d. Greedy k-means++ initialisation (2 + ln k local trials per centre,
    /// as scikit-learn) driven by SplitMix64(seed); Lloyd iterations until no label changes, the
    /// centres move less than `tol` x the mean feature variance (scikit-learn's rule), or maxIter;
    /// `nInit` restarts (seeds derived from `seed`; 1 as scikit-learn's "auto" for k-means++) keep
    /// the lowest inertia.
    /// Degenerate inputs: n == 0 -> empty result; if the data has fewer than k distinct points
    /// only that many centroids are returned (k' = centroids.count). Empty clusters during
    /// Lloyd are re-seeded from the point farthest from its centroid.
    public static func fit(_ data: [Double], n: Int, d: Int, k: Int, seed: UInt64 = 0, maxIter: Int = 300, nInit: Int = 1, tol: Double = 1e-4) -> KMeansResult {
        precondition(data.count == n * d && k >= 1 && d >= 1)
        guard n > 0 else { return KMeansResult(labels: [], centroids: [], inertia: 0, iterations: 0) }
        // scikit-learn: tol times the mean of the features' variances
        var meanVar = 0.0
        for j in 0..<d {
            var s = 0.0, ss = 0.0
            for i in 0..<n { let v = data[i * d + j]; s += v; ss += v * v }
            meanVar += max(0, ss / Double(n) - (s / Double(n)) * (s / Double(n)))
        }
        let tolAbs = tol * meanVar / Double(d)
        var best: KMeansResult? = nil
        var master = SplitMix64(seed: seed)
        for _ in 0..<max(1, nInit) {
            var rng = SplitMix64(seed: master.next())
            let c0 = plusPlusInit(data, n: n, d: d, k: k, rng: &rng)
            let r = lloyd(data, n: n, d: d, initial: c0, maxIter: maxIter, tol: tolAbs)
            if best == nil || r.inertia < best!.inertia { best = r }
        }
        return best!
    }

    /// Greedy k-means++ seeding; returns k' x d row-major centroids (k' <= k when the data has
    /// fewer distinct points).
    public static func plusPlusInit(_ data: [Double], n: Int, d: Int, k: Int, rng: inout SplitMix64) -> [[Double]] {
        let trials = 2 + Int(log(Double(k)))
        var centers: [[Double]] = []
        let first = Int(rng.next() % UInt64(n))
        centers.append(Array(data[first * d ..< first * d + d]))
        var closest = [Double](repeating: .infinity, count: n)
        var cand = [Double](repeating: 0, count: n)
        var pot = minDistances(data, n: n, d: d, centre: centers[0], closest: closest, into: &cand)
        swap(&closest, &cand)
        while centers.count < k {
            if !(pot > 0) { break }   // all points coincide with chosen centres
            var bestPot = Double.infinity, bestIdx = -1
            var bestD: [Double] = []
            for _ in 0..<trials {
                // sample proportional to closest distance
                let r = rng.nextUnit() * pot
                var acc = 0.0, idx = n - 1
                for i in 0..<n { acc += closest[i]; if acc > r { idx = i; break } }
                while closest[idx] == 0 && idx > 0 { idx -= 1 }   // never pick a zero-potential point
                let c = Array(data[idx * d ..< idx * d + d])
                let p = minDistances(data, n: n, d: d, centre: c, closest: closest, into: &cand)
                if p < bestPot { bestPot = p; bestIdx = idx; bestD = cand }
            }
            if bestIdx < 0 || closest[bestIdx] == 0 { break }
            centers.append(Array(data[bestIdx * d ..< bestIdx * d + d]))
            closest = bestD; pot = bestPot
        }
        return centers
    }

    /// out[i] = min(closest[i], |x_i - centre|^2); returns the sum. Parallel in a fixed number
    /// of parts that depends only on n*d, so the sum is deterministic.
    static func minDistances(_ data: [Double], n: Int, d: Int, centre: [Double], closest: [Double], into out: inout [Double]) -> Double {
        let parts = n * d >= 1 << 16 ? 8 : 1
        var sums = [Double](repeating: 0, count: parts)
        let X = UnsafeShared(data), C = UnsafeShared(centre), CL = UnsafeShared(closest)
        out.withUnsafeMutableBufferPointer { Ob in
            sums.withUnsafeMutableBufferPointer { Sb in
                let O = UnsafeShared(Ob), S = UnsafeShared(Sb)
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    let a = n * p / parts, b = n * (p + 1) / parts
                    var sum = 0.0
                    X.value.withUnsafeBufferPointer { x in
                        C.value.withUnsafeBufferPointer { c in
                            CL.value.withUnsafeBufferPointer { cl in
                                for i in a..<b {
                                    let xi = x.baseAddress! + i * d
                                    var s = 0.0
                                    for j in 0..<d { let t = xi[j] - c[j]; s += t * t }
                                    let v = Swift.min(cl[i], s)
                                    O.value[i] = v; sum += v
                                }
                            }
                        }
                    }
                    S.value[p] = sum
                }
            }
        }
        return sums.reduce(0, +)
    }

    @inline(__always) static func dist2(_ data: [Double], _ i: Int, _ d: Int, _ c: [Double]) -> Double {
        var s = 0.0
        let b = i * d
        for j in 0..<d { let t = data[b + j] - c[j]; s += t * t }
        return s
    }

    /// Lloyd iterations from the given centroids (parallel assignment over points) until no label
    /// changes or the centres move less than `tol` in total (squared; scikit-learn's rule with its
    /// tol 1e-4 times the mean variance of the features), or `maxIter`.
    public static func lloyd(_ data: [Double], n: Int, d: Int, initial: [[Double]], maxIter: Int = 300, tol: Double = 0) -> KMeansResult {
        let k = initial.count
        precondition(k >= 1 && data.count == n * d)
        var cent = [Double](repeating: 0, count: k * d)
        for c in 0..<k { for j in 0..<d { cent[c * d + j] = initial[c][j] } }
        var labels = [Int](repeating: -1, count: n)
        var dists = [Double](repeating: 0, count: n)
        var iter = 0, stop = false
        let parts = n * k * d >= 200_000 ? 2 : 1
        while true {
            // assignment
            var changed = 0
            let C = UnsafeShared(cent), X = UnsafeShared(data)
            var changedParts = [Int](repeating: 0, count: parts)
            labels.withUnsafeMutableBufferPointer { Lp in
                dists.withUnsafeMutableBufferPointer { Dp in
                    changedParts.withUnsafeMutableBufferPointer { Cp in
                        let L = UnsafeShared(Lp), D = UnsafeShared(Dp), CP = UnsafeShared(Cp)
                        DispatchQueue.concurrentPerform(iterations: parts) { p in
                            let a = n * p / parts, b = n * (p + 1) / parts
                            var ch = 0
                            X.value.withUnsafeBufferPointer { x in
                                C.value.withUnsafeBufferPointer { c in
                                    for i in a..<b {
                                        var bd = Double.infinity, bl = 0
                                        let xi = x.baseAddress! + i * d
                                        let raw = UnsafeRawPointer(xi), d4 = d & ~3
                                        for q in 0..<k {
                                            let cq = c.baseAddress! + q * d, rc = UnsafeRawPointer(cq)
                                            // four lanes at a time (a fixed summation order: deterministic)
                                            var acc = SIMD4<Double>.zero
                                            var j = 0
                                            while j < d4 {
                                                let t = raw.loadUnaligned(fromByteOffset: j * 8, as: SIMD4<Double>.self) - rc.loadUnaligned(fromByteOffset: j * 8, as: SIMD4<Double>.self)
                                                acc += t * t; j += 4
                                            }
                                            var s = acc.sum()
                                            while j < d { let t = xi[j] - cq[j]; s += t * t; j += 1 }
                                            if s < bd { bd = s; bl = q }
                                        }
                                        if L.value[i] != bl { ch += 1; L.value[i] = bl }
                                        D.value[i] = bd
                                    }
                                }
                            }
                            CP.value[p] = ch
                        }
                    }
                }
            }
            changed = changedParts.reduce(0, +)
            if changed == 0 || iter >= maxIter || stop { break }
            iter += 1
            // update
            var sums = [Double](repeating: 0, count: k * d)
            var counts = [Int](repeating: 0, count: k)
            for i in 0..<n {
                let l = labels[i]; counts[l] += 1
                for j in 0..<d { sums[l * d + j] += data[i * d + j] }
            }
            for c in 0..<k where counts[c] == 0 {
                // re-seed from the point farthest from its centroid (in a cluster with > 1 point)
                var far = -1, fd = -1.0
                for i in 0..<n where counts[labels[i]] > 1 && dists[i] > fd { fd = dists[i]; far = i }
                guard far >= 0, fd > 0 else { continue }
                let old = labels[far]
                counts[old] -= 1
                for j in 0..<d { sums[old * d + j] -= data[far * d + j]; sums[c * d + j] = data[far * d + j] }
                counts[c] = 1; labels[far] = c; dists[far] = 0
            }
            var shift = 0.0
            for c in 0..<k where counts[c] > 0 {
                for j in 0..<d {
                    let v = sums[c * d + j] / Double(counts[c])
                    shift += (v - cent[c * d + j]) * (v - cent[c * d + j]); cent[c * d + j] = v
                }
            }
            // scikit-learn's stopping rule: the centres moved less than tol (squared, summed)
            if shift <= tol { stop = true }   // one more assignment, so labels match the centres
        }
        let inertia = dists.reduce(0, +)
        let cents = (0..<k).map { Array(cent[$0 * d ..< $0 * d + d]) }
        return KMeansResult(labels: labels, centroids: cents, inertia: inertia, iterations: iter)
    }

    /// Inertia (sum of squared distances to the assigned cluster mean) of a given labelling.
    public static func inertia(_ data: [Double], n: Int, d: Int, labels: [Int], k: Int) -> Double {
        let m = ClusterProfile.means(data, n: n, d: d, labels: labels, k: k).means
        var s = 0.0
        for i in 0..<n { s += dist2(data, i, d, m[labels[i]]) }
        return s
    }
}

public enum ClusterProfile {
    /// Per-cluster size and mean of each feature: means[cluster][feature] (0 for empty clusters).
    public static func means(_ data: [Double], n: Int, d: Int, labels: [Int], k: Int) -> (counts: [Int], means: [[Double]]) {
        var counts = [Int](repeating: 0, count: k)
        var m = [[Double]](repeating: [Double](repeating: 0, count: d), count: k)
        for i in 0..<n {
            let l = labels[i]; counts[l] += 1
            for j in 0..<d { m[l][j] += data[i * d + j] }
        }
        for c in 0..<k where counts[c] > 0 { for j in 0..<d { m[c][j] /= Double(counts[c]) } }
        return (counts, m)
    }

    /// Same from column-major features (columns[feature][cell]): means[cluster][feature].
    public static func means(columns: [[Double]], labels: [Int], k: Int) -> (counts: [Int], means: [[Double]]) {
        let n = labels.count, d = columns.count
        return means(Transform.rowMajor(columns: columns), n: n, d: d, labels: labels, k: k)
    }
}
