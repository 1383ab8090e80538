import Foundation
import Dispatch
import EpipeDenoise

/// The default nucleus recipe (`SplitMethod.blend`), measured on real nuclei (BBBC039, DSB-2018)
/// and generated slides; every scale follows the nucleus diameter D, every level the image itself:
///
/// 1. Signal: Gaussian (sigma max(`smoothSigma`, D/12)) then white top-hat with a flat disk of
///    radius `backgroundRadius` (default D): the local background under each nucleus is removed,
///    so uneven illumination, stroma and autofluorescent tissue do not move the threshold.
///    (`blendSignalPlan`: the slide-wide histogram runs the same plan band by band.)
/// 2. Permissive mask: signal > `blendMaskFraction` x T (T = Otsu of the signal, or the slide's
///    value; with `ThresholdMethod.adaptive` also > the signal's mean over 8 D), holes filled, so
///    dim nuclei beside bright ones are kept.
/// 3. Seeds and flooding on g = min(edt / (D/2), 1) + `blendIntensityWeight` x (signal smoothed at
///    D/8) / (its maximum within D): shape (the distance term) splits touching nuclei of flat
///    intensity; the intensity term, smoothed past the chromatin texture and normalised by its
///    own neighbourhood (so dim and bright nuclei weigh alike), splits nuclei whose union is
///    convex. Seeds are the maxima of g with dynamic >= `blendSeedH`, thinned to 0.3 D apart.
/// 4. Seeded watershed of g in the mask; each object keeps the pixels whose signal exceeds
///    `blendRelativeCut` x its own peak (each nucleus gets its own boundary level).
extension Segmenter {
    static func splitByBlend(signal t: [Float], threshold T: Float, width w: Int, height h: Int, params p: NucleiParams) -> [UInt32] {
        let n = w * h
        let d = Swift.max(1, p.nucleusDiameter)
        // 2. permissive mask
        let low = Float(p.blendMaskFraction) * T
        var mask = [Bool](repeating: false, count: n)
        let local: [Float]? = p.thresholdMethod == .adaptive ? Threshold.boxMean(t, width: w, height: h, window: p.adaptiveWindow) : nil
        t.withUnsafeBufferPointer { S in mask.withUnsafeMutableBufferPointer { M in
            if let local { for i in 0..<n { M[i] = S[i] > low && S[i] > local[i] } } else { for i in 0..<n { M[i] = S[i] > low } }
        } }
        if p.fillHoles { fillHoles(&mask, width: w, height: h) }
        let (cc, ncc) = connectedComponents(mask, width: w, height: h)
        if ncc == 0 { return [UInt32](repeating: 0, count: n) }
        // 3. g = shape + intensity
        let dist = DistanceTransform.edt(mask, width: w, height: h)
        let ti = Denoise.gaussian(t, width: w, height: h, sigma: Swift.max(1, d / 8))
        let lm = squareMax(ti, width: w, height: h, radius: Swift.max(1, Int(d.rounded())))
        var g = [Float](repeating: 0, count: n)
        let half = Float(d / 2), wI = Float(p.blendIntensityWeight)
        g.withUnsafeMutableBufferPointer { G in
            mask.withUnsafeBufferPointer { M in dist.withUnsafeBufferPointer { D in
                ti.withUnsafeBufferPointer { TI in lm.withUnsafeBufferPointer { LM in
                    for i in 0..<n where M[i] {
                        G[i] = Swift.min(D[i] / half, 1) + wI * (LM[i] > 0 ? TI[i] / LM[i] : 0)
                    }
                } }
            } }
        }
        let seeds = seedPixels(g, mask: mask, width: w, height: h, h: Float(p.seedHOverride ?? p.blendSeedH),
                               minDistance: p.seedMinDistanceOverride ?? Swift.max(1, 0.3 * d), components: cc, componentCount: ncc)
        var markers = [UInt32](repeating: 0, count: n)
        for (k, s) in seeds.enumerated() { markers[s] = UInt32(k + 1) }
        var lab = watershed(g, markers: markers, mask: mask, width: w, height: h, highFirst: true, components: cc, componentCount: ncc)
        // 4. per-object boundary at blendRelativeCut x its own peak of the signal
        let m = seeds.count
        if m > 0 && p.blendRelativeCut > 0 {
            var peak = [Float](repeating: -.infinity, count: m + 1)
            let r = Float(p.blendRelativeCut)
            lab.withUnsafeMutableBufferPointer { L in t.withUnsafeBufferPointer { S in peak.withUnsafeMutableBufferPointer { PK in
                for i in 0..<n { let l = Int(L[i]); if l != 0 && S[i] > PK[l] { PK[l] = S[i] } }
                for i in 0..<n { let l = Int(L[i]); if l != 0 && S[i] <= r * PK[l] { L[i] = 0 } }
            } } }
        }
        return lab
    }
}

extension Segmenter {
    /// Maximum over the (2 radius + 1)^2 square around each pixel (clipped at the image edge),
    /// separable, O(1) per pixel (van Herk / Gil-Werman blocks), rows in parallel.
    public static func squareMax(_ v: [Float], width w: Int, height h: Int, radius r: Int) -> [Float] {
        precondition(v.count == w * h)
        guard r > 0, w > 0, h > 0 else { return v }
        var tmp = [Float](repeating: 0, count: w * h)
        var out = [Float](repeating: 0, count: w * h)
        v.withUnsafeBufferPointer { V in tmp.withUnsafeMutableBufferPointer { T in out.withUnsafeMutableBufferPointer { O in
            let src = UnsafeShared(V.baseAddress!), mid = UnsafeShared(T.baseAddress!), dst = UnsafeShared(O.baseAddress!)
            // rows: x direction
            let parts = Swift.min(8, Swift.max(1, h / 16))
            DispatchQueue.concurrentPerform(iterations: parts) { k in
                let buf = Scan(count: w, radius: r)
                for y in (h * k / parts)..<(h * (k + 1) / parts) {
                    buf.run(src.value + y * w, stride: 1, count: w, into: mid.value + y * w, outStride: 1)
                }
                buf.free()
            }
            // columns: y direction
            let cparts = Swift.min(8, Swift.max(1, w / 16))
            DispatchQueue.concurrentPerform(iterations: cparts) { k in
                let buf = Scan(count: h, radius: r)
                for x in (w * k / cparts)..<(w * (k + 1) / cparts) {
                    buf.run(mid.value + x, stride: w, count: h, into: dst.value + x, outStride: w)
                }
                buf.free()
            }
        } } }
        return out
    }

    /// 1-D running maximum over [i - r, i + r] ∩ [0, n) with prefix/suffix maxima over blocks of 2r + 1.
    struct Scan {
        let g: UnsafeMutablePointer<Float>, hbuf: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>
        let r: Int
        init(count n: Int, radius: Int) {
            r = radius
            g = .allocate(capacity: n + 2 * radius); hbuf = .allocate(capacity: n + 2 * radius); x = .allocate(capacity: n + 2 * radius)
        }
        func free() { g.deallocate(); hbuf.deallocate(); x.deallocate() }
        func run(_ s: UnsafePointer<Float>, stride: Int, count n: Int, into o: UnsafeMutablePointer<Float>, outStride: Int) {
            let m = n + 2 * r, k = 2 * r + 1
            for i in 0..<m {
                let j = i - r
                x[i] = (j >= 0 && j < n) ? s[j * stride] : -.infinity
            }
            var i = 0
            while i < m {
                let e = Swift.min(i + k, m)
                g[i] = x[i]
                if i + 1 < e { for j in (i + 1)..<e { g[j] = Swift.max(g[j - 1], x[j]) } }
                hbuf[e - 1] = x[e - 1]
                var j = e - 2
                while j >= i { hbuf[j] = Swift.max(hbuf[j + 1], x[j]); j -= 1 }
                i = e
            }
            // window of out[j] in padded coordinates: [j, j + 2r]
            for j in 0..<n { o[j * outStride] = Swift.max(hbuf[j], g[j + 2 * r]) }
        }
    }
}
