import Foundation
import EpipeKernels

public enum Threshold {
    /// Otsu threshold. Foreground is `value > threshold`.
    ///
    /// If all values are integers spanning at most 65536 distinct levels (uint16-range data),
    /// the histogram has one bin per integer level and the result is exact: the returned
    /// threshold is the largest level of the lower class. Otherwise 65536 equal bins over
    /// [min, max] are used and the upper edge of the last lower-class bin is returned.
    /// Ties in between-class variance resolve to the lowest threshold. NaNs are ignored.
    public static func otsu(_ values: UnsafeBufferPointer<Float>) -> Float {
        var mn = Float.infinity, mx = -Float.infinity
        var integral = true
        for v in values where !v.isNaN {
            if v < mn { mn = v }
            if v > mx { mx = v }
            if integral && v.rounded() != v { integral = false }
        }
        guard mn < mx else { return mn.isFinite ? mn : 0 }
        let unit = integral && Double(mx) - Double(mn) < 65536
        let bins = unit ? Int(mx - mn) + 1 : 65536
        let scale = unit ? 1.0 : Double(bins) / (Double(mx) - Double(mn))
        var hist = [Double](repeating: 0, count: bins)
        let lo = Double(mn)
        for v in values where !v.isNaN {
            var b = Int((Double(v) - lo) * scale)
            if b >= bins { b = bins - 1 }
            hist[b] += 1
        }
        let bestIdx = Otsu.split(hist)
        if unit { return Float(lo + Double(bestIdx)) }
        return Float(lo + Double(bestIdx + 1) / scale)
    }

    public static func otsu(_ values: [Float]) -> Float { values.withUnsafeBufferPointer { otsu($0) } }
}

extension Threshold {
    /// Mean over a `window` x `window` box (clipped at the borders: mean of the pixels inside),
    /// via an integral image in Double. Used by `ThresholdMethod.adaptive`.
    public static func boxMean(_ v: [Float], width w: Int, height h: Int, window: Int) -> [Float] {
        precondition(v.count == w * h)
        let r = Swift.max(0, window / 2)
        var ii = [Double](repeating: 0, count: (w + 1) * (h + 1))
        for y in 0..<h {
            var row = 0.0
            for x in 0..<w {
                row += Double(v[y * w + x])
                ii[(y + 1) * (w + 1) + x + 1] = ii[y * (w + 1) + x + 1] + row
            }
        }
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            let y0 = Swift.max(0, y - r), y1 = Swift.min(h, y + r + 1)
            for x in 0..<w {
                let x0 = Swift.max(0, x - r), x1 = Swift.min(w, x + r + 1)
                let s = ii[y1 * (w + 1) + x1] - ii[y0 * (w + 1) + x1] - ii[y1 * (w + 1) + x0] + ii[y0 * (w + 1) + x0]
                out[y * w + x] = Float(s / Double((y1 - y0) * (x1 - x0)))
            }
        }
        return out
    }
}
