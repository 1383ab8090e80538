import Foundation

/// Robust z-scores across jobs: how far a job's value sits from the median of all jobs, in units of
/// the spread a normal sample with the same median absolute deviation would have.
public enum RobustZ {
    /// |z| above this marks an outlier (Iglewicz and Hoaglin's 3.5).
    public static let threshold = 3.5
    /// Fewer values than this give no z at all: a median of three says little.
    public static let minCount = 5
    /// The spread never counts as smaller than this fraction of |median|, so that near-identical
    /// values (a background of 34 in every job and 35 in one) are not outliers.
    public static let relativeFloor = 0.02

    /// The centre and scale of some values: median, and 1.4826 MAD (so that z = 0.6745 (x - median) / MAD);
    /// when MAD is 0, 1.2533 times the mean absolute deviation; at least `relativeFloor` |median|.
    /// Nil with fewer than `minCount` values or no spread at all.
    public static func centreAndScale(_ xs: [Double]) -> (median: Double, scale: Double)? {
        let v = xs.filter { $0.isFinite }
        guard v.count >= minCount else { return nil }
        let med = median(v)
        let dev = v.map { abs($0 - med) }
        let mad = median(dev)
        var scale = 1.4826 * mad
        if scale == 0 { scale = 1.2533 * dev.reduce(0, +) / Double(dev.count) }
        scale = max(scale, relativeFloor * abs(med))
        return scale > 0 ? (med, scale) : nil
    }

    /// The z of each value (nil where the value is nil, or for all when there is no scale).
    public static func scores(_ xs: [Double?]) -> [Double?] {
        guard let (med, scale) = centreAndScale(xs.compactMap { $0 }) else { return xs.map { _ in nil } }
        return xs.map { $0.flatMap { $0.isFinite ? ($0 - med) / scale : nil } }
    }

    public static func median(_ xs: [Double]) -> Double {
        precondition(!xs.isEmpty)
        let s = xs.sorted(), n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }
}
