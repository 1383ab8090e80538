import Foundation

/// Order statistics for the streamed median.
enum Select {
    /// k-th smallest of a[0..<n] (0-based), partially reordering a so that a[0..<k] <= a[k]
    /// (Hoare partition with median-of-three pivots: linear on average, fine with many equal values).
    static func kth(_ a: UnsafeMutablePointer<Float>, _ n: Int, _ k: Int) -> Float {
        var lo = 0, hi = n - 1
        while lo < hi {
            let x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi]
            let pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y))
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { let t = a[i]; a[i] = a[j]; a[j] = t; i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
        }
        return a[k]
    }

    /// Median of a[0..<n] as numpy: the middle value, or the mean of the two middle values
    /// for an even count (in Double). Reorders a. NaN for n == 0.
    static func median(_ a: UnsafeMutablePointer<Float>, _ n: Int) -> Double {
        if n == 0 { return .nan }
        let k = n / 2
        let hiV = Double(kth(a, n, k))
        if n % 2 == 1 { return hiV }
        var loV = a[0]
        for i in 1..<k where a[i] > loV { loV = a[i] }
        return (Double(loV) + hiV) / 2
    }
}
