import Foundation

/// Agreement between two labelings of the same items.
public enum Agreement {
    /// Adjusted Rand index (Hubert & Arabie 1985), as scikit-learn's `adjusted_rand_score`:
    /// (RI − E[RI]) / (max RI − E[RI]) over pairs of items, from the contingency table n_ij with
    /// row sums a_i and column sums b_j:
    ///     index = Σ C(n_ij, 2), expected = Σ C(a_i, 2) · Σ C(b_j, 2) / C(n, 2),
    ///     max = (Σ C(a_i, 2) + Σ C(b_j, 2)) / 2,  ARI = (index − expected) / (max − expected).
    /// 1 for identical partitions (up to label names); about 0 for independent ones; can be
    /// negative. When max == expected (e.g. both all one cluster, or both all singletons, or
    /// fewer than 2 items) it is 1, as scikit-learn. Labels are any integers.
    public static func adjustedRandIndex(_ a: [Int], _ b: [Int]) -> Double {
        precondition(a.count == b.count, "labelings differ in length")
        let n = a.count
        guard n >= 2 else { return 1 }
        func dense(_ x: [Int]) -> ([Int], Int) {
            var map: [Int: Int] = [:]
            var out = [Int](repeating: 0, count: x.count)
            for i in x.indices {
                if let m = map[x[i]] { out[i] = m } else { out[i] = map.count; map[x[i]] = out[i] }
            }
            return (out, map.count)
        }
        let (da, na) = dense(a), (db, nb) = dense(b)
        var cells: [Int: Int] = [:]
        var ra = [Int](repeating: 0, count: na), rb = [Int](repeating: 0, count: nb)
        for i in 0..<n {
            cells[da[i] * nb + db[i], default: 0] += 1
            ra[da[i]] += 1; rb[db[i]] += 1
        }
        @inline(__always) func c2(_ m: Int) -> Double { Double(m) * Double(m - 1) / 2 }
        var index = 0.0
        for (_, m) in cells { index += c2(m) }
        var sa = 0.0, sb = 0.0
        for m in ra { sa += c2(m) }
        for m in rb { sb += c2(m) }
        let expected = sa * sb / c2(n)
        let maxIndex = (sa + sb) / 2
        if maxIndex == expected { return 1 }
        return (index - expected) / (maxIndex - expected)
    }
}
