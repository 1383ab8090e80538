import Foundation
import Dispatch
import EpipeKernels

/// The default nucleus recipe (`SplitMethod.blend`), measured on real nuclei (BBBC039, DSB-2018)
/// and generated slides; every scale follows the nucleus diameter D, every level the image itself:
///
/// 1. Signal: Gaussian (sigma max(`smoothSigma`, D/12)) then white top-hat with a flat disk of
///    radius `backgroundRadius` (default D): the local background under each nucleus is removed,
///    so uneven illumination, stroma and autofluorescent tissue do not move the threshold.
///    (`NucleiParams.signalPlan`: the slide-wide histogram runs the same plan band by band.)
/// 2. Permissive mask: signal > `blendMaskFraction` x T (T = Otsu of the signal, or the slide's
///    value; with `ThresholdMethod.adaptive` also > the signal's mean over 8 D), holes up to D
///    across filled, so dim nuclei beside bright ones are kept.
/// 3. Seeds and flooding on g = min(edt / (D/2), 1.5) + `blendIntensityWeight` x (signal smoothed at
///    D/8) / (its maximum within `blendNormalisationRadius` x D = D/2), edt measured in the threshold's own mask (signal > T, whose
///    necks the permissive mask's blur halo would fill): shape (the distance term) splits touching nuclei of flat
///    intensity; the intensity term, smoothed past the chromatin texture and normalised by its
///    own neighbourhood (so dim and bright nuclei weigh alike), splits nuclei whose union is
///    convex. Seeds are the maxima of g with dynamic >= `blendSeedH`, thinned to 0.3 D apart.
/// 4. Seeded watershed of g in the mask (`watershedLevels`); each object keeps the pixels whose
///    signal exceeds half its own peak; a second pass (`blendPasses`) seeds what that left (a dim
///    nucleus in a bright one's basin), keeping objects at least 0.2 D thick; then all objects grow
///    together (`regrow`: a flood of the signal, highest first) down to `blendRelativeCut` x their
///    own peak, so each nucleus gets its own boundary level and neighbours meet in the valley.
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
        if p.fillHoles { fillHoles(&mask, width: w, height: h, maxSpan: Int(d.rounded(.up))) }
        // 3. the intensity term, once: smoothed past the texture, over its maximum within D/2
        let ti = Gaussian.blur(t, width: w, height: h, sigma: Swift.max(1, d / 8))
        let lm = squareMax(ti, width: w, height: h, radius: Swift.max(1, Int((p.blendNormalisationRadius * d).rounded())))
        var inten = [Float](repeating: 0, count: n)
        let wI = Float(p.blendIntensityWeight)
        ti.withUnsafeBufferPointer { TI in lm.withUnsafeBufferPointer { LM in inten.withUnsafeMutableBufferPointer { I in
            for i in 0..<n { I[i] = LM[i] > 0 ? wI * TI[i] / LM[i] : 0 }
        } } }
        var lab = [UInt32](repeating: 0, count: n)
        var next: UInt32 = 0
        let passes = Swift.max(1, p.blendPasses)
        // With several passes the first one cuts at max(relative cut, 0.5) x peak, so a dim nucleus
        // (< half its bright neighbour) inside the bright one's basin is left for the next pass; at
        // the end every object grows into the mask down to the relative cut of its own peak, all
        // together by a flood of the signal, so neighbours meet in the valley between them.
        let relCut = Float(p.blendRelativeCut)
        let firstCut = passes > 1 ? Swift.max(relCut, 0.5) : relCut
        let regrowAtEnd = firstCut > relCut
        let permissive = regrowAtEnd ? mask : []
        var permissiveCC: (labels: [UInt32], count: Int) = ([], 0)
        for pass in 0..<passes {
            var (cc, ncc) = connectedComponents(mask, width: w, height: h)
            if ncc == 0 { break }
            if pass == 0 && regrowAtEnd { permissiveCC = (cc, ncc) }
            if pass > 0 {
                // a leftover piece without a pixel 0.2 D inside it cannot hold a kept object (any
                // object in it is as thin): drop such pieces, and stop when none is left
                let thick = cc.withUnsafeBufferPointer { thickLabels($0, count: ncc, width: w, height: h, minThick: Float(0.2 * d)) }
                if !thick.contains(true) { break }
                cc.withUnsafeMutableBufferPointer { C in mask.withUnsafeMutableBufferPointer { M in
                    for i in 0..<n where C[i] != 0 && !thick[Int(C[i])] { C[i] = 0; M[i] = false }
                } }
            }
            // pass 1 measures shape in the threshold's mask (the outline of the bright nuclei, whose
            // necks the permissive mask's blur halo would fill); later passes in what is left
            let shape: [Bool] = pass == 0 ? zip(mask, t).map { $0 && $1 > T } : mask
            let (basin, peak) = blendPass(mask: mask, shape: shape, components: cc, componentCount: ncc, intensity: inten, signal: t, width: w, height: h, params: p)
            let cut = pass == 0 ? firstCut : relCut
            var pl = basin
            if cut > 0 {
                pl.withUnsafeMutableBufferPointer { L in t.withUnsafeBufferPointer { S in
                    for i in 0..<n { let l = Int(L[i]); if l != 0 && S[i] <= cut * peak[l] { L[i] = 0 } }
                } }
            }
            // later passes segment what the cut of earlier ones left; thin leftovers (halo rings,
            // slivers) are not nuclei: an object must hold a pixel 0.2 D from every pixel outside it.
            let m = peak.count - 1
            var keep = [Bool](repeating: true, count: m + 1)
            if pass > 0 && m > 0 {
                let thick = pl.withUnsafeBufferPointer { thickLabels($0, count: m, width: w, height: h, minThick: Float(0.2 * d)) }
                for l in 1...m where !thick[l] { keep[l] = false }
            }
            var map = [UInt32](repeating: 0, count: m + 1)
            if m > 0 { for l in 1...m where keep[l] { next += 1; map[l] = next } }
            var added = false
            pl.withUnsafeMutableBufferPointer { P in lab.withUnsafeMutableBufferPointer { L in
                for i in 0..<n where P[i] != 0 { let v = map[Int(P[i])]; if v != 0 { L[i] = v; added = true } }
            } }
            if !added || pass == passes - 1 { break }
            // what is left: mask pixels not labelled and farther than 2 px from every object
            keepLeftover(&mask, labels: lab, width: w, height: h)
        }
        if regrowAtEnd { regrow(&lab, within: permissive, components: permissiveCC.labels, componentCount: permissiveCC.count, signal: t, threshold: T, cut: relCut, width: w, height: h) }
        return lab
    }

    /// Grows every object into the unlabelled pixels of `within` by a flood of the signal, highest
    /// first (hierarchical queue, log levels relative to the threshold): a pixel joins the labelled neighbour of highest
    /// signal whose object's cut it passes (signal > `cut` x the object's peak), so neighbours grow
    /// together and meet in the valley between them (a bright nucleus does not annex the rim of a
    /// dim one beside it). Pixels below every neighbour's cut stay background and pass nothing on.
    /// `cc`/`ncc`: the 8-connected components of `within`, flooded independently (in parallel, each
    /// in its own cache-sized neighbourhood; the order inside a component is the whole image's).
    static func regrow(_ lab: inout [UInt32], within: [Bool], components cc: [UInt32], componentCount ncc: Int, signal t: [Float],
                       threshold T: Float, cut: Float, width w: Int, height h: Int) {
        let n = w * h
        guard n > 0, ncc > 0 else { return }
        var maxLabel = 0
        for v in lab where Int(v) > maxLabel { maxLabel = Int(v) }
        guard maxLabel > 0 else { return }
        // each object's lowest kept level: cut x its peak
        var floor = [Float](repeating: -.infinity, count: maxLabel + 1)
        // the frontier: unlabelled pixels of `within` beside an object (raster order per component)
        var frontier = [UInt32](repeating: 0, count: n)
        lab.withUnsafeBufferPointer { Lb in t.withUnsafeBufferPointer { Sb in within.withUnsafeBufferPointer { Wb in
        floor.withUnsafeMutableBufferPointer { FL in frontier.withUnsafeMutableBufferPointer { FR in
            let L = Lb.baseAddress!, S = Sb.baseAddress!, W = Wb.baseAddress!
            for i in 0..<n { let l = Int(L[i]); if l != 0 && S[i] > FL[l] { FL[l] = S[i] } }
            for l in 1...maxLabel { FL[l] *= cut }
            for y in 0..<h {
                let ya = y > 0 ? y - 1 : y, yb = y + 1 < h ? y + 1 : y
                for x in 0..<w {
                    let p = y * w + x
                    if L[p] != 0 || !W[p] { continue }
                    let xa = x > 0 ? x - 1 : x, xb = x + 1 < w ? x + 1 : x
                    var yy = ya
                    outer: while yy <= yb {
                        let r = yy * w
                        for xx in xa...xb where L[r + xx] != 0 { FR[p] = 1; break outer }
                        yy += 1
                    }
                }
            }
        } } } } }
        let (_, fStart, fList, bounds) = componentMarkers(frontier, components: cc, componentCount: ncc)
        frontier = []
        // levels on a log scale relative to the slide's threshold (not the tile's maximum), so every
        // tile floods in the same order: 100 per octave from T/4 to 2^12 T
        let levels = 1400
        let invT = 1 / Swift.max(T, 1e-30)
        let NXp = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        let Qp = UnsafeMutablePointer<Bool>.allocate(capacity: n)
        Qp.initialize(repeating: false, count: n)
        defer { NXp.deallocate(); Qp.deallocate() }
        let NXs = UnsafeShared(NXp), Qs = UnsafeShared(Qp), FLs = UnsafeShared(floor), FS = UnsafeShared(fStart), FLi = UnsafeShared(fList)
        let Ss = UnsafeShared(t), Ws = UnsafeShared(within)
        lab.withUnsafeMutableBufferPointer { Lb in
            let Ls = UnsafeShared(Lb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: bounds.count - 1) { chunk in
                var queue = LevelQueue(levels: levels, next: NXs.value)
                defer { queue.free() }
                let L = Ls.value, Q = Qs.value
                Ss.value.withUnsafeBufferPointer { Sb in Ws.value.withUnsafeBufferPointer { Wb in FLs.value.withUnsafeBufferPointer { FL in
                    let S = Sb.baseAddress!, W = Wb.baseAddress!
                    @inline(__always) func level(_ v: Float) -> Int {
                        let r = v * invT
                        return r > 0.25 ? Swift.min(levels - 1, Int((log2(r) + 2) * 100)) : 0
                    }
                    for c in bounds[chunk]..<bounds[chunk + 1] {
                        let fa = FS.value[c], fb = FS.value[c + 1]
                        if fa == fb { continue }
                        for k in fa..<fb { let p = Int(FLi.value[k]); Q[p] = true; queue.push(p, level(S[p])) }
                        while let p = queue.pop() {
                            let cur = queue.current
                            let v = S[p]
                            var best: UInt32 = 0, bestS = -Float.infinity
                            window3x3(p, width: w, height: h) { q in
                                let l = L[q]
                                if l != 0 && v > FL[Int(l)] && S[q] > bestS { best = l; bestS = S[q] }
                            }
                            if best == 0 { continue }
                            L[p] = best
                            window3x3(p, width: w, height: h) { q in
                                if L[q] == 0 && W[q] && !Q[q] { Q[q] = true; queue.push(q, Swift.min(level(S[q]), cur)) }
                            }
                        }
                    }
                } } }
            }
        }
    }

    /// One seeding pass of `splitByBlend` in `mask`: g = min(edt / (D/2), 1.5) + intensity term,
    /// seeds, watershed of g. Returns the basins (labels 1...m) and each basin's peak of the signal.
    static func blendPass(mask: [Bool], shape: [Bool], components cc: [UInt32], componentCount ncc: Int, intensity: [Float], signal t: [Float],
                          width w: Int, height h: Int, params p: NucleiParams) -> (basins: [UInt32], peaks: [Float]) {
        let n = w * h
        let d = Swift.max(1, p.nucleusDiameter)
        let dist = DistanceTransform.edt(shape, width: w, height: h)
        var g = [Float](repeating: 0, count: n)
        let half = Float(d / 2)
        g.withUnsafeMutableBufferPointer { G in
            mask.withUnsafeBufferPointer { M in dist.withUnsafeBufferPointer { D in intensity.withUnsafeBufferPointer { I in
                for i in 0..<n where M[i] { G[i] = Swift.min(D[i] / half, 1.5) + I[i] }
            } } }
        }
        let seeds = seedPixels(g, mask: mask, width: w, height: h, h: Float(p.seedHOverride ?? p.blendSeedH),
                               minDistance: p.seedMinDistanceOverride ?? Swift.max(1, 0.3 * d), components: cc, componentCount: ncc)
        var markers = [UInt32](repeating: 0, count: n)
        for (k, s) in seeds.enumerated() { markers[s] = UInt32(k + 1) }
        let lab = watershedLevels(g, top: Float(1.5 + p.blendIntensityWeight), markers: markers, mask: mask, width: w, height: h,
                                  components: cc, componentCount: ncc)
        var peak = [Float](repeating: -.infinity, count: seeds.count + 1)
        lab.withUnsafeBufferPointer { L in t.withUnsafeBufferPointer { S in peak.withUnsafeMutableBufferPointer { PK in
            for i in 0..<n { let l = Int(L[i]); if l != 0 && S[i] > PK[l] { PK[l] = S[i] } }
        } } }
        return (lab, peak)
    }
}

extension Segmenter {
    /// Seeded watershed of `f` (values in 0...top), highest first, 8-connected, restricted to
    /// `mask`, with a hierarchical queue: `f` quantised to 4096 levels, one FIFO per level (a
    /// pixel reached from a lower level than its own waits at the current one). O(1) per pixel,
    /// where `watershed`'s heap costs O(log n); ties go in the order pixels were reached.
    /// Components (8-connected, of the mask) are flooded independently, in parallel.
    static func watershedLevels(_ f: [Float], top: Float, markers: [UInt32], mask: [Bool], width w: Int, height h: Int,
                                components cc: [UInt32], componentCount ncc: Int) -> [UInt32] {
        let n = w * h
        precondition(f.count == n && markers.count == n && mask.count == n && n < Int(Int32.max), "Int32 pixel indices")
        var out = markers
        guard ncc > 0 else { return out }
        let (_, mStart, mList, bounds) = componentMarkers(markers, components: cc, componentCount: ncc)
        let levels = 4096
        let scale = Float(levels - 1) / Swift.max(top, 1e-6)
        var link = [Int32](repeating: -1, count: n)
        let F = UnsafeShared(f), M = UnsafeShared(mask), ML = UnsafeShared(mList), MS = UnsafeShared(mStart)
        out.withUnsafeMutableBufferPointer { Ob in link.withUnsafeMutableBufferPointer { Lb in
            let O = UnsafeShared(Ob.baseAddress!), NX = UnsafeShared(Lb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: bounds.count - 1) { chunk in
                var queue = LevelQueue(levels: levels, next: NX.value)
                defer { queue.free() }
                let O = O.value
                F.value.withUnsafeBufferPointer { Fp in M.value.withUnsafeBufferPointer { Mp in
                    @inline(__always) func level(_ v: Float) -> Int { Swift.min(levels - 1, Swift.max(0, Int(v * scale))) }
                    for c in bounds[chunk]..<bounds[chunk + 1] {
                        let ma = MS.value[c], mb = MS.value[c + 1]
                        if ma == mb { continue }
                        for k in ma..<mb { let i = Int(ML.value[k]); queue.push(i, level(Fp[i])) }
                        while let p = queue.pop() {
                            let cur = queue.current
                            let lab = O[p]
                            window3x3(p, width: w, height: h) { q in
                                if O[q] != 0 || !Mp[q] { return }
                                O[q] = lab
                                queue.push(q, Swift.min(level(Fp[q]), cur))
                            }
                        }
                    }
                } }
            }
        } }
        return out
    }

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

/// A hierarchical queue of pixel indices for priority floods (highest level first): one FIFO per
/// level, linked through `next` (one Int32 per pixel of the image, shared by the floods of
/// disjoint components). `push` raises `current` to a higher level; `pop` takes the oldest pixel
/// of the highest non-empty level (a flood pushes at most at `current`, so that level never rises
/// again) and returns nil when the queue is empty.
struct LevelQueue {
    let head: UnsafeMutablePointer<Int32>, tail: UnsafeMutablePointer<Int32>
    let next: UnsafeMutablePointer<Int32>
    private(set) var current = 0
    private var pending = 0

    init(levels: Int, next: UnsafeMutablePointer<Int32>) {
        head = .allocate(capacity: levels); tail = .allocate(capacity: levels)
        head.initialize(repeating: -1, count: levels); tail.initialize(repeating: -1, count: levels)
        self.next = next
    }

    func free() { head.deallocate(); tail.deallocate() }

    @inline(__always) mutating func push(_ p: Int, _ l: Int) {
        next[p] = -1
        if tail[l] < 0 { head[l] = Int32(p) } else { next[Int(tail[l])] = Int32(p) }
        tail[l] = Int32(p)
        pending += 1
        if l > current { current = l }
    }

    @inline(__always) mutating func pop() -> Int? {
        guard pending > 0 else { return nil }
        while head[current] < 0 { current -= 1 }
        let p = Int(head[current])
        pending -= 1
        head[current] = next[p]
        if head[current] < 0 { tail[current] = -1 }
        return p
    }
}
