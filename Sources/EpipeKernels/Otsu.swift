/// Otsu's threshold on a histogram: the split that maximises the between-class variance
/// `w0 * w1 * (m0 - m1)^2`, where bin `i` stands for the value `i`.
public enum Otsu {
    /// The last bin of the lower class (foreground is the bins above it). Ties (within a
    /// relative 1e-12) go to the lowest split; 0 when no split separates two non-empty classes.
    public static func split(_ hist: UnsafeBufferPointer<Double>) -> Int {
        let bins = hist.count
        guard bins > 1 else { return 0 }
        var total = 0.0, sumAll = 0.0
        for i in 0..<bins { total += hist[i]; sumAll += hist[i] * Double(i) }
        var w0 = 0.0, s0 = 0.0, best = -1.0, bestIdx = 0
        for i in 0..<(bins - 1) {
            w0 += hist[i]; s0 += hist[i] * Double(i)
            let w1 = total - w0
            if w0 == 0 || w1 == 0 { continue }
            let m0 = s0 / w0, m1 = (sumAll - s0) / w1
            let v = w0 * w1 * (m0 - m1) * (m0 - m1)
            if v > best * (1 + 1e-12) { best = v; bestIdx = i }
        }
        return bestIdx
    }

    public static func split(_ hist: [Double]) -> Int { hist.withUnsafeBufferPointer { split($0) } }

    /// The threshold level of integer counts (`counts[level]`, e.g. `Histogram16.bins`): the
    /// largest level of the lower class, searched between the lowest and highest occupied levels;
    /// the occupied level when there is only one (0 when there is none).
    public static func level(counts: [Int]) -> Int {
        guard let lo = counts.firstIndex(where: { $0 > 0 }), let hi = counts.lastIndex(where: { $0 > 0 }), lo < hi else {
            return counts.firstIndex(where: { $0 > 0 }) ?? 0
        }
        return lo + split(counts[lo...hi].map { Double($0) })
    }
}
