import Foundation
import Dispatch
import EpipeKernels

/// Denoising recipe for one channel plane.
///
/// Semantics (what `Denoise.apply` computes): the input image is conceptually extended
/// infinitely by edge replication (in x and y); the median 3x3 (if on) is evaluated on that
/// extended image, and the separable Gaussian is evaluated on the median result (again on the
/// extended domain); the output is the crop to the image. Because every stage works on the
/// extended domain, the result of a row band depends only on input rows within `halo` of it,
/// and band processing is bit-identical to whole-plane processing for any band split.
///
/// Gaussian: kernel radius `r = ceil(3 * sigma)`, weights `exp(-i^2 / (2 sigma^2))` normalised
/// to sum 1, separable (vertical pass, then horizontal pass), Float accumulation.
public struct DenoiseRecipe: Codable, Sendable, Equatable {
    public var median3: Bool
    public var gaussianSigma: Double

    public init(median3: Bool = true, gaussianSigma: Double = 1.0) {
        self.median3 = median3
        self.gaussianSigma = gaussianSigma
    }

    /// Gaussian kernel radius: `ceil(3 * sigma)`, 0 when the Gaussian is off.
    public var gaussianRadius: Int { Gaussian.radius(sigma: gaussianSigma) }

    /// The same filters as a plan: the 3x3 median, then the Gaussian.
    public var plan: FilterPlan {
        FilterPlan((median3 ? [.median3] : []) + (gaussianRadius > 0 ? [.gaussian(sigma: gaussianSigma)] : []))
    }

    /// Rows of context needed above and below a band (1 for the median + Gaussian radius).
    public var halo: Int { (median3 ? 1 : 0) + gaussianRadius }
}

/// Per-channel quality-control statistics. Percentiles are nearest-rank on a histogram with
/// unit bins over [0, 65535] (exact for integer uint16-range data; other values are clamped
/// and rounded to the nearest integer for the percentiles only).
public struct ChannelStats: Sendable, Equatable, Codable {
    public var count: Int
    public var mean: Double
    public var std: Double
    public var min: Float
    public var max: Float
    public var p1: Float
    public var p50: Float
    public var p99: Float
    /// Fraction of pixels with value >= 65535.
    public var saturatedFraction: Double
    /// Fraction of pixels with value <= 0.
    public var zeroFraction: Double
}

public enum Denoise {
    // MARK: - Band processing

    /// Applies `recipe` to a band of `haloTop + rows + haloBottom` rows of `width` values and
    /// returns the `rows * width` output values. Halo rows beyond the image edge should be
    /// filled by edge replication; passing fewer halo rows than `recipe.halo` is also allowed
    /// and is treated as "the band edge is the image edge" (the same result as replication).
    public static func apply(_ recipe: DenoiseRecipe, band: UnsafeBufferPointer<Float>, width: Int,
                             haloTop: Int, rows: Int, haloBottom: Int) -> [Float] {
        let total = haloTop + rows + haloBottom
        precondition(width >= 0 && rows >= 0 && haloTop >= 0 && haloBottom >= 0)
        precondition(band.count >= total * width, "band too small")
        guard rows > 0, width > 0 else { return [] }
        // the band is the image: its first and last rows are replicated beyond it
        return recipe.plan.apply(band: band, width: width, haloTop: haloTop, rows: rows, haloBottom: haloBottom,
                                 y0: haloTop, imageHeight: total).values
    }

    /// Whole-plane convenience: identical to `apply` on the plane with edge-replicated halos.
    public static func apply(_ recipe: DenoiseRecipe, plane: UnsafeBufferPointer<Float>, width: Int, height: Int) -> [Float] {
        apply(recipe, band: plane, width: width, haloTop: 0, rows: height, haloBottom: 0)
    }

    // MARK: - Whole-plane single filters (each with its own edge replication)

    /// Exact 3x3 median of a whole plane, edge replicate.
    public static func median3x3(_ src: UnsafeBufferPointer<Float>, width: Int, height: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= width * height && dst.count >= width * height)
        guard width > 0, height > 0 else { return }
        _ = FilterPlan([.median3]).apply(band: src, width: width, haloTop: 0, rows: height, haloBottom: 0,
                                         y0: 0, imageHeight: height, into: dst)
    }

    /// Array convenience for `median3x3`.
    public static func median3x3(_ src: [Float], width: Int, height: Int) -> [Float] {
        var out = [Float](repeating: 0, count: width * height)
        src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
            median3x3(s, width: width, height: height, into: d) } }
        return out
    }

    // MARK: - QC statistics

    /// Histogram-based channel statistics (see `ChannelStats`). Uses both cores on large planes.
    public static func stats(_ plane: UnsafeBufferPointer<Float>) -> ChannelStats {
        let n = plane.count
        guard n > 0 else {
            return ChannelStats(count: 0, mean: 0, std: 0, min: 0, max: 0, p1: 0, p50: 0, p99: 0, saturatedFraction: 0, zeroFraction: 0)
        }
        let parts = n >= 1 << 20 ? 2 : 1
        let bins = 65536
        let hist = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: bins * parts)
        hist.initialize(repeating: 0)
        defer { hist.deallocate() }
        struct Partial { var sum = 0.0, sum2 = 0.0, mn = Float.infinity, mx = -Float.infinity, sat = 0, zero = 0 }
        let partials = UnsafeMutableBufferPointer<Partial>.allocate(capacity: parts)
        partials.initialize(repeating: Partial())
        defer { partials.deallocate() }
        let P = UnsafeShared(plane), H = UnsafeShared(hist), PA = UnsafeShared(partials)
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let a = n * p / parts, b = n * (p + 1) / parts
            let h = H.value.baseAddress! + p * bins
            var s = 0.0, s2 = 0.0, mn = Float.infinity, mx = -Float.infinity, sat = 0, zero = 0
            // chunked Float partial sums are exact for integer data up to 2^24 per chunk
            var i = a
            while i < b {
                let e = Swift.min(b, i + 256)
                var cs = 0.0, cs2 = 0.0
                while i < e {
                    let v = P.value[i]
                    let dv = Double(v)
                    cs += dv; cs2 += dv * dv
                    mn = Swift.min(mn, v); mx = Swift.max(mx, v)
                    if v >= 65535 { sat += 1 }
                    if v <= 0 { zero += 1 }
                    let c = v.isNaN ? 0 : Swift.min(Swift.max(v, 0), 65535)
                    h[Int(c.rounded())] &+= 1
                    i += 1
                }
                s += cs; s2 += cs2
            }
            PA.value[p] = Partial(sum: s, sum2: s2, mn: mn, mx: mx, sat: sat, zero: zero)
        }
        var tot = Partial()
        for p in 0..<parts {
            let q = partials[p]
            tot.sum += q.sum; tot.sum2 += q.sum2; tot.mn = Swift.min(tot.mn, q.mn); tot.mx = Swift.max(tot.mx, q.mx)
            tot.sat += q.sat; tot.zero += q.zero
        }
        func percentile(_ q: Double) -> Float {
            let rank = Swift.max(1, Int((q * Double(n)).rounded(.up)))  // nearest rank
            var cum = 0
            for v in 0..<bins {
                var c = 0
                for p in 0..<parts { c += Int(hist[p * bins + v]) }
                cum += c
                if cum >= rank { return Float(v) }
            }
            return Float(bins - 1)
        }
        let mean = tot.sum / Double(n)
        let variance = Swift.max(0, tot.sum2 / Double(n) - mean * mean)
        return ChannelStats(count: n, mean: mean, std: variance.squareRoot(), min: tot.mn, max: tot.mx,
                            p1: percentile(0.01), p50: percentile(0.5), p99: percentile(0.99),
                            saturatedFraction: Double(tot.sat) / Double(n), zeroFraction: Double(tot.zero) / Double(n))
    }

    public static func stats(_ plane: [Float]) -> ChannelStats {
        plane.withUnsafeBufferPointer { stats($0) }
    }
}
