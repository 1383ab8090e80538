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
    public var gaussianRadius: Int { Denoise.kernelRadius(sigma: gaussianSigma) }

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
    /// `ceil(3 * sigma)` (0 for sigma <= 0).
    public static func kernelRadius(sigma: Double) -> Int {
        sigma > 0 ? Int((3 * sigma).rounded(.up)) : 0
    }

    /// Normalised 1-D Gaussian kernel of length 2r+1.
    public static func gaussianKernel(sigma: Double) -> [Float] {
        let r = kernelRadius(sigma: sigma)
        guard r > 0 else { return [1] }
        var k = [Double](repeating: 0, count: 2 * r + 1)
        var s = 0.0
        for i in -r...r { let v = exp(-Double(i * i) / (2 * sigma * sigma)); k[i + r] = v; s += v }
        return k.map { Float($0 / s) }
    }

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
        var out = [Float](repeating: 0, count: rows * width)
        out.withUnsafeMutableBufferPointer { o in
            process(recipe, src: band, width: width, srcRows: total, firstRow: haloTop, rows: rows, into: o)
        }
        return out
    }

    /// Whole-plane convenience: identical to `apply` on the plane with edge-replicated halos.
    public static func apply(_ recipe: DenoiseRecipe, plane: UnsafeBufferPointer<Float>, width: Int, height: Int) -> [Float] {
        apply(recipe, band: plane, width: width, haloTop: 0, rows: height, haloBottom: 0)
    }

    /// Core: output rows `firstRow ..< firstRow+rows` of `src` (srcRows rows). Row indices
    /// outside `0..<srcRows` are clamped (edge replication of the band/image).
    static func process(_ recipe: DenoiseRecipe, src: UnsafeBufferPointer<Float>, width w: Int, srcRows: Int,
                        firstRow: Int, rows: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        let kernel = gaussianKernel(sigma: recipe.gaussianSigma)
        let r = kernel.count / 2
        let doMedian = recipe.median3
        // output rows per work item: enough items for both cores, scratch (chunk+2r) x (w+2r)
        // floats kept around a few MB for very wide planes
        let chunk = Swift.max(16, Swift.min(128, (rows + 7) / 8, (1 << 20) / (w + 2 * r)))
        let nChunks = (rows + chunk - 1) / chunk
        let S = UnsafeShared(src), D = UnsafeShared(dst)
        let work: @Sendable (Int) -> Void = { c in
            let a = c * chunk, b = Swift.min(rows, a + chunk)
            processChunk(src: S.value, w: w, srcRows: srcRows, outA: firstRow + a, outB: firstRow + b,
                         dst: D.value, dstRowOffset: a, kernel: kernel, r: r, median: doMedian)
        }
        if nChunks > 1 && rows * w >= 1 << 16 {
            DispatchQueue.concurrentPerform(iterations: nChunks, execute: work)
        } else {
            for c in 0..<nChunks { work(c) }
        }
    }

    @inline(__always) static func clampi(_ v: Int, _ lo: Int, _ hi: Int) -> Int { v < lo ? lo : (v > hi ? hi : v) }

    /// Computes stage-1 rows (median or copy) on extended width w+2r for extended rows
    /// outA-r ..< outB+r, then the separable Gaussian for rows outA ..< outB.
    static func processChunk(src: UnsafeBufferPointer<Float>, w: Int, srcRows: Int, outA: Int, outB: Int,
                             dst: UnsafeMutableBufferPointer<Float>, dstRowOffset: Int,
                             kernel: [Float], r: Int, median: Bool) {
        let ew = w + 2 * r                    // extended width: columns -r ..< w+r
        let nMid = outB - outA + 2 * r       // stage-1 rows
        let mid = UnsafeMutableBufferPointer<Float>.allocate(capacity: nMid * ew)
        defer { mid.deallocate() }
        // column-sorted triples for extended columns -r-1 ..< w+r+1
        let tw = ew + 2
        let lo = UnsafeMutableBufferPointer<Float>.allocate(capacity: tw * 3)
        defer { lo.deallocate() }
        let base = src.baseAddress!
        for m in 0..<nMid {
            let e = outA - r + m
            let out = mid.baseAddress! + m * ew
            if median {
                let ra = base + clampi(e - 1, 0, srcRows - 1) * w
                let rb = base + clampi(e, 0, srcRows - 1) * w
                let rc = base + clampi(e + 1, 0, srcRows - 1) * w
                let L = lo.baseAddress!, M = L + tw, H = M + tw
                // interior columns
                for x in 0..<w {
                    let p = ra[x], q = rb[x], s = rc[x]
                    let mn1 = Swift.min(p, q), mx1 = Swift.max(p, q)
                    let l = Swift.min(mn1, s)
                    let h = Swift.max(mx1, s)
                    let md = Swift.max(mn1, Swift.min(mx1, s))
                    L[x + r + 1] = l; M[x + r + 1] = md; H[x + r + 1] = h
                }
                for j in 0..<(r + 1) {
                    L[j] = L[r + 1]; M[j] = M[r + 1]; H[j] = H[r + 1]
                    let t = r + 1 + w + j
                    L[t] = L[r + w]; M[t] = M[r + w]; H[t] = H[r + w]
                }
                for x in 0..<ew {
                    // extended column x-r uses triples at indices x, x+1, x+2
                    let maxLo = Swift.max(Swift.max(L[x], L[x + 1]), L[x + 2])
                    let minHi = Swift.min(Swift.min(H[x], H[x + 1]), H[x + 2])
                    let a = M[x], b = M[x + 1], c = M[x + 2]
                    let mn = Swift.min(a, b), mx = Swift.max(a, b)
                    let medMid = Swift.max(mn, Swift.min(mx, c))
                    let u = Swift.min(maxLo, medMid), v = Swift.max(maxLo, medMid)
                    out[x] = Swift.max(u, Swift.min(v, minHi))
                }
            } else {
                let rb = base + clampi(e, 0, srcRows - 1) * w
                let first = rb[0], last = rb[w - 1]
                for j in 0..<r { out[j] = first; out[r + w + j] = last }
                (out + r).update(from: rb, count: w)
            }
        }
        let dbase = dst.baseAddress!
        if r == 0 {
            for y in outA..<outB {
                (dbase + (y - outA + dstRowOffset) * w).update(from: mid.baseAddress! + (y - outA) * ew, count: w)
            }
            return
        }
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: ew)
        defer { tmp.deallocate() }
        let kp = UnsafeMutablePointer<Float>.allocate(capacity: kernel.count)
        defer { kp.deallocate() }
        for i in 0..<kernel.count { kp[i] = kernel[i] }
        for y in outA..<outB {
            let m0 = mid.baseAddress! + (y - outA) * ew   // stage-1 row y-r
            // vertical then horizontal, symmetric pairs (see Filters.gaussVertical/gaussHorizontal)
            Filters.gaussVertical(tmp, m0, ew, ew, r, kp)
            Filters.gaussHorizontal(dbase + (y - outA + dstRowOffset) * w, tmp, w, r, kp)
        }
    }

    // MARK: - Whole-plane single filters (each with its own edge replication)

    /// Exact 3x3 median of a whole plane, edge replicate.
    public static func median3x3(_ src: UnsafeBufferPointer<Float>, width: Int, height: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= width * height && dst.count >= width * height)
        guard width > 0, height > 0 else { return }
        process(DenoiseRecipe(median3: true, gaussianSigma: 0), src: src, width: width, srcRows: height,
                firstRow: 0, rows: height, into: dst)
    }

    /// Separable Gaussian of a whole plane (radius ceil(3 sigma)), edge replicate. sigma <= 0 copies.
    public static func gaussian(_ src: UnsafeBufferPointer<Float>, width: Int, height: Int, sigma: Double, into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= width * height && dst.count >= width * height)
        guard width > 0, height > 0 else { return }
        process(DenoiseRecipe(median3: false, gaussianSigma: sigma), src: src, width: width, srcRows: height,
                firstRow: 0, rows: height, into: dst)
    }

    /// Array convenience for `gaussian`.
    public static func gaussian(_ src: [Float], width: Int, height: Int, sigma: Double) -> [Float] {
        var out = [Float](repeating: 0, count: width * height)
        src.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
            gaussian(s, width: width, height: height, sigma: sigma, into: d) } }
        return out
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
