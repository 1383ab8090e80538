import Foundation

/// 8-bit previews of float planes.
public enum Preview {
    /// Contrast-stretch to 8-bit at the low/high percentiles (default 0.5 / 99.5), downsampled
    /// (area average) so the longer side is at most maxSide (default 2048).
    /// Percentiles are taken over the finite values of the full-resolution plane (histogram with
    /// 65536 bins, linear interpolation inside a bin); NaN/inf map to 0.
    public static func stretch(_ plane: [Float], width: Int, height: Int, maxSide: Int = 2048,
                               lowPercentile: Double = 0.5, highPercentile: Double = 99.5) -> (pixels: [UInt8], width: Int, height: Int) {
        guard width > 0, height > 0, plane.count >= width * height else { return ([], 0, 0) }
        let (lo, hi) = percentiles(plane, count: width * height, low: lowPercentile, high: highPercentile)
        let (small, ow, oh) = downsample(plane, width: width, height: height, maxSide: max(1, maxSide))
        let scale: Float = hi > lo ? 255 / (hi - lo) : 0
        var out = [UInt8](repeating: 0, count: ow * oh)
        small.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for i in 0..<(ow * oh) {
                    let v = s[i]
                    if !v.isFinite { d[i] = 0; continue }
                    if hi > lo {
                        let t = (v - lo) * scale
                        d[i] = t <= 0 ? 0 : (t >= 255 ? 255 : UInt8(t + 0.5))
                    } else {
                        d[i] = v > lo ? 255 : 0
                    }
                }
            }
        }
        return (out, ow, oh)
    }

    /// Percentiles (numpy "linear" definition) over finite values. A 65536-bin histogram finds the
    /// bin of each needed order statistic; one more pass over that bin (65536 sub-bins, tracking the
    /// smallest value per sub-bin) recovers its value exactly, up to range / 2^32.
    static func percentiles(_ plane: [Float], count n: Int, low: Double, high: Double) -> (Float, Float) {
        var mn = Float.infinity, mx = -Float.infinity, finite = 0
        plane.withUnsafeBufferPointer { p in
            for i in 0..<n {
                let v = p[i]
                if v.isFinite { finite += 1; if v < mn { mn = v }; if v > mx { mx = v } }
            }
        }
        guard finite > 0 else { return (0, 0) }
        if mx == mn { return (mn, mx) }
        let bins = 65536
        let lo0 = Double(mn)
        let scale = Double(bins) / (Double(mx) - lo0)
        @inline(__always) func bin(_ v: Float) -> Int {
            let b = Int((Double(v) - lo0) * scale)
            return b >= bins ? bins - 1 : b
        }
        var hist = [Int](repeating: 0, count: bins)
        plane.withUnsafeBufferPointer { p in
            hist.withUnsafeMutableBufferPointer { h in
                for i in 0..<n where p[i].isFinite { h[bin(p[i])] += 1 }
            }
        }
        var memo: [Int: Float] = [:]
        /// value of the k-th smallest finite value (0-based)
        func orderStat(_ k: Int) -> Float {
            if let v = memo[k] { return v }
            var cum = 0, b = 0
            while b < bins && cum + hist[b] <= k { cum += hist[b]; b += 1 }
            if b >= bins { return mx }
            let rest = k - cum
            // refine inside bin b
            let bLo = lo0 + Double(b) / scale, bW = 1 / scale
            let sScale = Double(bins) / bW
            var sub = [Int](repeating: 0, count: bins)
            var subMin = [Float](repeating: .infinity, count: bins)
            plane.withUnsafeBufferPointer { p in
                for i in 0..<n {
                    let v = p[i]
                    guard v.isFinite, bin(v) == b else { continue }
                    var s = Int((Double(v) - bLo) * sScale)
                    s = s < 0 ? 0 : (s >= bins ? bins - 1 : s)
                    sub[s] += 1
                    if v < subMin[s] { subMin[s] = v }
                }
            }
            var c2 = 0
            var result = mx
            for s in 0..<bins where sub[s] > 0 {
                if c2 + sub[s] > rest { result = subMin[s]; break }
                c2 += sub[s]
            }
            memo[k] = result
            return result
        }
        func value(_ pct: Double) -> Float {
            let q = min(max(pct, 0), 100) / 100
            let rank = q * Double(finite - 1)
            let k = Int(rank.rounded(.down))
            let frac = rank - Double(k)
            let a = orderStat(k)
            if frac == 0 || k + 1 >= finite { return a }
            let b = orderStat(k + 1)
            return Float(Double(a) + frac * (Double(b) - Double(a)))
        }
        return (value(low), value(high))
    }

    /// Area-average (box with fractional coverage) so that max(w, h) <= maxSide.
    static func downsample(_ plane: [Float], width: Int, height: Int, maxSide: Int) -> ([Float], Int, Int) {
        let longer = max(width, height)
        if longer <= maxSide { return (Array(plane.prefix(width * height)), width, height) }
        let f = Double(longer) / Double(maxSide)
        let ow = max(1, min(maxSide, Int((Double(width) / f).rounded())))
        let oh = max(1, min(maxSide, Int((Double(height) / f).rounded())))
        let wx = weights(src: width, dst: ow)
        let wy = weights(src: height, dst: oh)
        // horizontal pass: height x ow
        var tmp = [Float](repeating: 0, count: height * ow)
        plane.withUnsafeBufferPointer { p in
            tmp.withUnsafeMutableBufferPointer { t in
                for y in 0..<height {
                    let row = p.baseAddress! + y * width
                    for (ox, (start, ws)) in wx.enumerated() {
                        var acc: Double = 0, wsum: Double = 0
                        for (k, w) in ws.enumerated() {
                            let v = row[start + k]
                            if v.isFinite { acc += Double(v) * w; wsum += w }
                        }
                        t[y * ow + ox] = wsum > 0 ? Float(acc / wsum) : .nan
                    }
                }
            }
        }
        var out = [Float](repeating: 0, count: oh * ow)
        tmp.withUnsafeBufferPointer { t in
            out.withUnsafeMutableBufferPointer { o in
                for (oy, (start, ws)) in wy.enumerated() {
                    for ox in 0..<ow {
                        var acc: Double = 0, wsum: Double = 0
                        for (k, w) in ws.enumerated() {
                            let v = t[(start + k) * ow + ox]
                            if v.isFinite { acc += Double(v) * w; wsum += w }
                        }
                        o[oy * ow + ox] = wsum > 0 ? Float(acc / wsum) : .nan
                    }
                }
            }
        }
        return (out, ow, oh)
    }

    /// For each output pixel, the first source index and the coverage weights of the source pixels.
    static func weights(src: Int, dst: Int) -> [(Int, [Double])] {
        let s = Double(src) / Double(dst)
        return (0..<dst).map { i in
            let a = Double(i) * s, b = min(Double(src), Double(i + 1) * s)
            let first = Int(a.rounded(.down))
            let last = min(src - 1, Int((b - 1e-9).rounded(.down)))
            var ws: [Double] = []
            ws.reserveCapacity(last - first + 1)
            for j in first...max(first, last) {
                let lo = max(a, Double(j)), hi = min(b, Double(j + 1))
                ws.append(max(0, hi - lo))
            }
            return (first, ws)
        }
    }
}
