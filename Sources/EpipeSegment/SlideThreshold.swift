import Foundation

/// Otsu's threshold from a histogram of integer levels (e.g. a uint16 channel streamed band by
/// band), so a tiled run uses one slide-wide threshold. Foreground is `value > threshold`.
/// Same rule as `Threshold.otsu` on integer data: the largest level of the lower class.
public enum SlideThreshold {
    public static func otsu(counts: [Int]) -> Float {
        guard let lo = counts.firstIndex(where: { $0 > 0 }), let hi = counts.lastIndex(where: { $0 > 0 }), lo < hi else {
            return Float(counts.firstIndex(where: { $0 > 0 }) ?? 0)
        }
        var total = 0.0, sumAll = 0.0
        for i in lo...hi { total += Double(counts[i]); sumAll += Double(counts[i]) * Double(i - lo) }
        var w0 = 0.0, s0 = 0.0, best = -1.0, bestIdx = lo
        for i in lo..<hi {
            w0 += Double(counts[i]); s0 += Double(counts[i]) * Double(i - lo)
            let w1 = total - w0
            if w0 == 0 || w1 == 0 { continue }
            let m0 = s0 / w0, m1 = (sumAll - s0) / w1
            let v = w0 * w1 * (m0 - m1) * (m0 - m1)
            if v > best * (1 + 1e-12) { best = v; bestIdx = i }
        }
        return Float(bestIdx)
    }
}
