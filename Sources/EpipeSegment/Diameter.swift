import Foundation
import Dispatch
import EpipeKernels

/// The typical nucleus diameter of a nuclear plane, found from the image alone (for when
/// `--nucleus-diameter` is not given: it is used when the pixel size is unknown, or when it is
/// confident and near the pixel size's prior, see `choose`).
///
/// Method (`estimate`):
/// 1. **Normalise.** x = (plane - p1) / (p99.5 - p1) (percentiles of the plane), so 8-bit,
///    16-bit and float data behave alike; t = Otsu of x clipped to [0, 1]. The blob image is
///    y = log(1 + max(x, 0) / (0.3 t)): contrast-relative, so dim nuclei count as much as bright
///    ones and chromatin texture inside bright nuclei is flattened.
/// 2. **Blob scale (LoG).** The scale-normalised Laplacian of Gaussian -sigma^2 LoG(y) at 21
///    sigmas 1.5 x 2^(i/4) px (up to 48 px, and 3 sigma <= half the smaller side), computed on a
///    2 x 2 mean pyramid (sigma / 2^octave in [2, 4) px), so large scales cost little. Local
///    maxima in (x, y, scale) at interior scales whose centre is foreground (x smoothed at 1 px
///    > 0.6 t), with the scale refined by a parabola in log sigma; strongest first, a maximum is
///    dropped when it lies within the radius of a stronger one kept (texture spots inside a
///    nucleus, several maxima of one elongated nucleus). The blobs at least half as strong as
///    the 90th percentile of those kept give D0 = 2.9 x their median sigma (a flat disk gives
///    2 sqrt 2 = 2.83; 2.9 measured on real nuclei and generated slides).
/// 3. **Object sizes (first mask).** Otsu mask of x smoothed at max(1, D0 / 10) (mirrored edges,
///    as the LoG); each connected object holding one or two blobs of scale 0.5..2 x D0 (blobs
///    joined by a straight path without a 10 % intensity dip count as one nucleus) gives
///    sqrt(4 area / (pi n)) for each of its n nuclei. Their median is the estimate (`log+mask`)
///    when there are >= 3 and it lies within 0.7..2 x D0; else D0 (`log`). The mask corrects what the blob scale misses: elongated
///    nuclei (LoG follows the short axis), flat-topped versus domed profiles.
///
/// Accuracy (median of the per-nucleus equivalent diameter sqrt(4 area / pi) of expert masks):
/// within +-20 % on 40/40 BBBC039 fields (median ratio 0.96, worst 0.93) and 25/26 DSB-2018
/// stage-1 images (median 0.98, worst 1.25: 7 small nuclei, most cut by the image edge); within
/// 5 % on generated slides of D = 8 ... 24 px.
/// Deterministic; pure over plain values; memory ~ 10 x the plane's floats (three scale levels at a time).
public enum NucleusDiameter {
    /// What `estimate` found.
    public struct Estimate: Codable, Sendable, Equatable {
        /// Typical (median) nucleus diameter in px, as sqrt(4 area / pi).
        public var diameter: Double
        /// "log+mask" (object sizes of the first mask, checked against the blob scale) or "log"
        /// (blob scale only).
        public var method: String
        /// D0: the diameter from the blob scale alone.
        public var blobDiameter: Double
        /// Number of nuclei (or blobs, for "log") the value was measured from.
        public var objects: Int
        /// Relative spread of those measurements: (q75 - q25) / median.
        public var spread: Double
        /// A heuristic in [0, 1]: objects / (objects + 10) x (1 - spread, clamped to [0, 1]).
        /// Below ~0.3 the value is a guess (few nuclei, or sizes all over the place).
        public var confidence: Double
    }

    /// Ratio of diameter to the blob's sigma (calibrated; a flat disk gives 2 sqrt 2).
    static let sigmaToDiameter = 2.9
    /// The object sizes are used when their median lies within this range x D0 (below: the mask
    /// holds fragments of nuclei, e.g. under a bright fold that raised Otsu's level; above: clumps).
    static let acceptRange = (0.7, 2.0)

    /// Estimate from one plane (row-major, `width` x `height`); nil when no blob is found (an
    /// empty or flat plane).
    public static func estimate(_ plane: [Float], width: Int, height: Int) -> Estimate? {
        estimate(tiles: [(plane, width, height)])
    }

    /// Estimate pooled over several windows of one slide (e.g. the tiles densest in nuclear
    /// signal): the per-nucleus measurements of all windows make one median.
    public static func estimate(tiles: [(plane: [Float], width: Int, height: Int)]) -> Estimate? {
        var d0s: [Double] = [], blobDs: [Double] = [], objectDs: [Double] = []
        // windows measured in parallel, pooled in their order
        let found = UnsafeMutablePointer<(d0: Double, blobs: [Double], objects: [Double])?>.allocate(capacity: Swift.max(tiles.count, 1))
        found.initialize(repeating: nil, count: Swift.max(tiles.count, 1))
        defer { found.deinitialize(count: Swift.max(tiles.count, 1)); found.deallocate() }
        let F = UnsafeShared(found)
        DispatchQueue.concurrentPerform(iterations: tiles.count) { k in
            F.value[k] = measure(tiles[k].plane, width: tiles[k].width, height: tiles[k].height)
        }
        for k in 0..<tiles.count {
            guard let m = found[k] else { continue }
            d0s.append(m.d0); blobDs += m.blobs; objectDs += m.objects
        }
        guard !d0s.isEmpty else { return nil }
        let d0 = blobDs.isEmpty ? median(d0s) : median(blobDs)
        func conf(_ n: Int, _ s: Double) -> Double { Double(n) / Double(n + 10) * Swift.min(1, Swift.max(0, 1 - s)) }
        if objectDs.count >= 3 {
            let d1 = median(objectDs)
            if d1 >= acceptRange.0 * d0 && d1 <= acceptRange.1 * d0 {
                let s = spread(objectDs)
                return Estimate(diameter: d1, method: "log+mask", blobDiameter: d0, objects: objectDs.count, spread: s, confidence: conf(objectDs.count, s))
            }
        }
        let s = spread(blobDs)
        return Estimate(diameter: d0, method: "log", blobDiameter: d0, objects: blobDs.count, spread: s, confidence: conf(blobDs.count, s))
    }

    // MARK: - Which diameter a run uses

    /// The diameter assumed when only the pixel size is known, in µm. Tissue nuclei run from ~5 µm
    /// (lymphocytes) to 10+ µm (tumour, epithelium); inForm's nuclei on the Vectra field measure
    /// 7.75 µm (median). Erring large is the cheaper mistake: on the real sets the blend recipe
    /// holds its F1 with the diameter over-stated 1.3x (BBBC039 0.908, DSB 0.716) and loses with it
    /// under-stated 0.77x (0.895, 0.640).
    public static let priorMicrons = 8.0
    /// An estimate replaces the pixel-size prior when its confidence reaches this (many nuclei of
    /// similar sizes: generated slides 0.57-0.67; a tissue field of mixed cell types 0.32) and it
    /// lies within `priorRange` x the prior (a wrong pixel size by a factor of 2 or more, or a
    /// wrong estimate, leaves the prior).
    public static let trustConfidence = 0.5
    public static let priorRange = (0.5, 2.0)

    /// The diameter of a run without `--nucleus-diameter`: from the pixel size (`prior`, px) and
    /// the image's own estimate. Source "estimated" (the estimate), "pixel-size" (the prior) or
    /// "default" (12 px: neither).
    public static func choose(prior: Double?, estimate: Estimate?) -> (diameter: Double, source: String) {
        if let e = estimate {
            guard let p = prior else { return (e.diameter, "estimated") }
            if e.confidence >= trustConfidence && e.diameter >= priorRange.0 * p && e.diameter <= priorRange.1 * p {
                return (e.diameter, "estimated")
            }
        }
        if let p = prior { return (p, "pixel-size") }
        return (12, "default")
    }

    // MARK: - One window

    /// D0 of the window, the diameters of its selected blobs and of its measured nuclei.
    static func measure(_ plane: [Float], width w: Int, height h: Int) -> (d0: Double, blobs: [Double], objects: [Double])? {
        precondition(plane.count == w * h)
        guard w >= 8, h >= 8 else { return nil }
        let n = w * h
        // 1. normalise
        let (p1, p995) = percentiles(plane, 0.01, 0.995)
        guard p995 > p1, p1.isFinite, p995.isFinite else { return nil }
        let inv = 1 / (p995 - p1)
        var x = [Float](repeating: 0, count: n)
        plane.withUnsafeBufferPointer { P in x.withUnsafeMutableBufferPointer { X in
            for i in 0..<n { let v = (P[i] - p1) * inv; X[i] = v.isFinite ? v : 0 }
        } }
        let t = otsu01(x)
        guard t > 0 else { return nil }
        let k = 1 / (0.3 * t)
        var y = [Float](repeating: 0, count: n)
        x.withUnsafeBufferPointer { X in y.withUnsafeMutableBufferPointer { Y in
            for i in 0..<n { Y[i] = log1p(Swift.max(X[i], 0) * k) }
        } }
        let fg = gaussianMirror(x, width: w, height: h, sigma: 1)
        let fgLevel = 0.6 * t

        // 2. scale space on a mean pyramid
        var sigmas: [Double] = []
        for i in 0...20 { let s = 1.5 * pow(2, Double(i) / 4); if 3 * s <= Double(Swift.min(w, h)) / 2 { sigmas.append(s) } }
        guard sigmas.count >= 3 else { return nil }
        var pyramid: [(w: Int, h: Int, v: [Float])] = [(w, h, y)]
        y = []
        typealias Level = (octave: Int, w: Int, h: Int, r: [Float])
        /// -sigma^2 LoG at sigmas[i], on its pyramid octave.
        func level(_ i: Int) -> Level {
            let s = sigmas[i]
            var o = s < 4 ? 0 : Int(log2(s / 2))
            while o > 0 && (w >> o < 16 || h >> o < 16) { o -= 1 }
            while pyramid.count <= o {
                let p = pyramid[pyramid.count - 1]
                pyramid.append(halve(p.v, width: p.w, height: p.h))
            }
            let p = pyramid[o]
            let f = Double(1 << o)
            let sl = s / f
            let pre = (1 - 1 / (f * f)) / 12
            let g = gaussianMirror(p.v, width: p.w, height: p.h, sigma: (sl * sl - pre).squareRoot())
            return (o, p.w, p.h, negLaplacian(g, width: p.w, height: p.h, scale: Float(sl * sl)))
        }

        // local maxima in (x, y, scale) at interior scales, foreground centres; three levels in memory at a time
        struct Blob { var v: Float; var x: Double; var y: Double; var logSigma: Double }
        var blobs: [Blob] = []
        var A = level(0), L = level(1)
        for i in 1..<(sigmas.count - 1) {
            let C = level(i + 1)
            defer { A = L; L = C }
            let f = 1 << L.octave
            L.r.withUnsafeBufferPointer { R in A.r.withUnsafeBufferPointer { RA in C.r.withUnsafeBufferPointer { RC in
                fg.withUnsafeBufferPointer { FG in
                    for yy in 0..<L.h {
                        for xx in 0..<L.w {
                            let v = R[yy * L.w + xx]
                            guard v > 0 else { continue }
                            let ox = (Double(xx) + 0.5) * Double(f) - 0.5, oy = (Double(yy) + 0.5) * Double(f) - 0.5
                            let fx = Swift.min(w - 1, Swift.max(0, Int(ox.rounded()))), fy = Swift.min(h - 1, Swift.max(0, Int(oy.rounded())))
                            guard FG[fy * w + fx] > fgLevel else { continue }
                            guard isMax(v, R, L.w, L.h, xx, yy) else { continue }
                            let (ax, ay) = mapped(xx, yy, from: L.octave, to: A.octave, A.w, A.h)
                            guard isMax(v, RA, A.w, A.h, ax, ay) else { continue }
                            let (cx, cy) = mapped(xx, yy, from: L.octave, to: C.octave, C.w, C.h)
                            guard isMax(v, RC, C.w, C.h, cx, cy) else { continue }
                            let a = Double(RA[ay * A.w + ax]), b = Double(v), c = Double(RC[cy * C.w + cx])
                            let den = a - 2 * b + c
                            let off = den < 0 ? Swift.max(-0.5, Swift.min(0.5, 0.5 * (a - c) / den)) : 0
                            blobs.append(Blob(v: v, x: ox, y: oy, logSigma: log(sigmas[i]) + off * log(2) / 4))
                        }
                    }
                }
            } } }
        }
        pyramid = []
        guard !blobs.isEmpty else { return nil }
        // strongest first (ties: position), each dropped within the radius of a stronger one kept
        blobs.sort { $0.v != $1.v ? $0.v > $1.v : ($0.y != $1.y ? $0.y < $1.y : $0.x < $1.x) }
        if blobs.count > 50_000 { blobs.removeLast(blobs.count - 50_000) }
        let cell = 32.0
        let gw = Int(Double(w) / cell) + 1, gh = Int(Double(h) / cell) + 1
        var grid = [[Int32]](repeating: [], count: gw * gh)
        var kept: [Int] = []
        var rMax = 0.0
        func radius(_ b: Blob) -> Double { sigmaToDiameter * exp(b.logSigma) / 2 }
        for (j, b) in blobs.enumerated() {
            let rj = radius(b)
            let reach = Swift.max(rj, rMax)
            let gx0 = Swift.max(0, Int((b.x - reach) / cell)), gx1 = Swift.min(gw - 1, Int((b.x + reach) / cell))
            let gy0 = Swift.max(0, Int((b.y - reach) / cell)), gy1 = Swift.min(gh - 1, Int((b.y + reach) / cell))
            var hit = false
            search: for gy in gy0...gy1 { for gx in gx0...gx1 { for q in grid[gy * gw + gx] {
                let o = blobs[Int(q)]
                let r = Swift.max(rj, radius(o))
                let dx = o.x - b.x, dy = o.y - b.y
                if dx * dx + dy * dy < r * r { hit = true; break search }
            } } }
            if hit { continue }
            kept.append(j)
            rMax = Swift.max(rMax, rj)
            let gx = Swift.min(gw - 1, Swift.max(0, Int(b.x / cell))), gy = Swift.min(gh - 1, Swift.max(0, Int(b.y / cell)))
            grid[gy * gw + gx].append(Int32(j))
        }
        let keptV = kept.map { Double(blobs[$0].v) }
        let ref = keptV.count > 10 ? percentile(keptV, 0.9) : (keptV.max() ?? 0)
        let selected = kept.filter { Double(blobs[$0].v) >= 0.5 * ref }
        let blobDs = selected.map { sigmaToDiameter * exp(blobs[$0].logSigma) }
        guard !blobDs.isEmpty else { return nil }
        let d0 = sigmaToDiameter * exp(median(selected.map { blobs[$0].logSigma }))

        // 3. first mask: objects holding one or two nuclei
        let sm = gaussianMirror(x, width: w, height: h, sigma: Swift.max(1, d0 / 10))
        x = []
        let tm = otsu01(sm)
        let mask = sm.map { $0 > tm }
        let (lab, count) = Segmenter.connectedComponents(mask, width: w, height: h)
        var area = [Int](repeating: 0, count: count + 1)
        lab.withUnsafeBufferPointer { L in for i in 0..<n { area[Int(L[i])] += 1 } }
        var groups: [UInt32: [Blob]] = [:]
        for j in kept {
            let b = blobs[j]
            let d = sigmaToDiameter * exp(b.logSigma)
            guard d >= 0.5 * d0 && d <= 2 * d0 else { continue }
            let ix = Swift.min(w - 1, Swift.max(0, Int(b.x.rounded()))), iy = Swift.min(h - 1, Swift.max(0, Int(b.y.rounded())))
            let l = lab[iy * w + ix]
            if l != 0 { groups[l, default: []].append(b) }
        }
        var objectDs: [Double] = []
        for l in groups.keys.sorted() {
            let g = groups[l]!
            guard g.count <= 8 else { continue }
            var parent = Array(0..<g.count)
            func find(_ a: Int) -> Int { var a = a; while parent[a] != a { a = parent[a] }; return a }
            for p in 0..<g.count { for q in (p + 1)..<g.count where find(p) != find(q) {
                if !dipBetween(sm, w, h, g[p], g[q]) { parent[find(p)] = find(q) }
            } }
            let nn = Set((0..<g.count).map(find)).count
            guard nn <= 2 else { continue }
            let d = (4 * Double(area[Int(l)]) / (Double.pi * Double(nn))).squareRoot()
            for _ in 0..<nn { objectDs.append(d) }
        }
        return (d0, blobDs, objectDs)

        /// A dip of >= 10 % below the lower end on the straight path between two blob centres.
        func dipBetween(_ s: [Float], _ w: Int, _ h: Int, _ a: Blob, _ b: Blob) -> Bool {
            let ax = Int(a.x.rounded()), ay = Int(a.y.rounded()), bx = Int(b.x.rounded()), by = Int(b.y.rounded())
            let steps = Swift.max(abs(ax - bx), abs(ay - by)) + 1
            func at(_ k: Int) -> Float {
                let f = Double(k) / Double(steps)
                let px = Int((Double(ax) + f * Double(bx - ax)).rounded()), py = Int((Double(ay) + f * Double(by - ay)).rounded())
                return s[Swift.min(h - 1, Swift.max(0, py)) * w + Swift.min(w - 1, Swift.max(0, px))]
            }
            let ends = Swift.min(at(0), at(steps))
            for k in 1..<steps where at(k) < 0.9 * ends { return true }
            return false
        }
    }

    // MARK: - Helpers

    /// Gaussian with mirrored (reflect) edges: a nucleus cut by the image edge looks like a whole
    /// blob of about its size, not like a bar running out of the image (edge replication).
    static func gaussianMirror(_ v: [Float], width w: Int, height h: Int, sigma: Double) -> [Float] {
        let r = Swift.min(Gaussian.radius(sigma: sigma), w - 1, h - 1)
        guard r > 0 else { return Gaussian.blur(v, width: w, height: h, sigma: sigma) }
        let pw = w + 2 * r, ph = h + 2 * r
        var pad = [Float](repeating: 0, count: pw * ph)
        @inline(__always) func refl(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * n - 2 - i : i) }
        v.withUnsafeBufferPointer { V in pad.withUnsafeMutableBufferPointer { P in
            for y in 0..<ph {
                let sy = refl(y - r, h) * w
                for x in 0..<pw { P[y * pw + x] = V[sy + refl(x - r, w)] }
            }
        } }
        let g = Gaussian.blur(pad, width: pw, height: ph, sigma: sigma)
        var out = [Float](repeating: 0, count: w * h)
        g.withUnsafeBufferPointer { G in out.withUnsafeMutableBufferPointer { O in
            for y in 0..<h { for x in 0..<w { O[y * w + x] = G[(y + r) * pw + x + r] } }
        } }
        return out
    }

    /// v >= the 3 x 3 neighbourhood of (x, y) in r (clamped).
    @inline(__always) static func isMax(_ v: Float, _ r: UnsafeBufferPointer<Float>, _ w: Int, _ h: Int, _ x: Int, _ y: Int) -> Bool {
        for yy in Swift.max(0, y - 1)...Swift.min(h - 1, y + 1) {
            for xx in Swift.max(0, x - 1)...Swift.min(w - 1, x + 1) where r[yy * w + xx] > v { return false }
        }
        return true
    }

    /// Pixel (x, y) of pyramid octave `a` in the grid of octave `b` (nearest, clamped).
    @inline(__always) static func mapped(_ x: Int, _ y: Int, from a: Int, to b: Int, _ w: Int, _ h: Int) -> (Int, Int) {
        if a == b { return (x, y) }
        let f = pow(2, Double(a - b))
        let mx = Int(((Double(x) + 0.5) * f - 0.5).rounded()), my = Int(((Double(y) + 0.5) * f - 0.5).rounded())
        return (Swift.min(w - 1, Swift.max(0, mx)), Swift.min(h - 1, Swift.max(0, my)))
    }

    /// 2 x 2 block means (an odd last row or column is dropped).
    static func halve(_ v: [Float], width w: Int, height h: Int) -> (w: Int, h: Int, v: [Float]) {
        let w2 = w / 2, h2 = h / 2
        var out = [Float](repeating: 0, count: w2 * h2)
        v.withUnsafeBufferPointer { S in out.withUnsafeMutableBufferPointer { D in
            for y in 0..<h2 {
                let r0 = 2 * y * w, r1 = r0 + w
                for x in 0..<w2 { D[y * w2 + x] = 0.25 * (S[r0 + 2 * x] + S[r0 + 2 * x + 1] + S[r1 + 2 * x] + S[r1 + 2 * x + 1]) }
            }
        } }
        return (w2, h2, out)
    }

    /// scale x -(5-point Laplacian), edge replicate.
    static func negLaplacian(_ g: [Float], width w: Int, height h: Int, scale: Float) -> [Float] {
        var out = [Float](repeating: 0, count: w * h)
        g.withUnsafeBufferPointer { G in out.withUnsafeMutableBufferPointer { O in
            for y in 0..<h {
                let up = y > 0 ? -w : 0, dn = y + 1 < h ? w : 0
                for x in 0..<w {
                    let i = y * w + x
                    let l = x > 0 ? G[i - 1] : G[i], r = x + 1 < w ? G[i + 1] : G[i]
                    O[i] = scale * (4 * G[i] - l - r - G[i + up] - G[i + dn])
                }
            }
        } }
        return out
    }

    /// Two quantiles (0...1) of the finite values, from a deterministic subsample of <= 2^18 values.
    static func percentiles(_ v: [Float], _ a: Double, _ b: Double) -> (Float, Float) {
        let step = Swift.max(1, v.count / (1 << 18))
        var s: [Float] = []
        s.reserveCapacity(v.count / step + 1)
        var i = 0
        while i < v.count { if v[i].isFinite { s.append(v[i]) }; i += step }
        guard !s.isEmpty else { return (0, 0) }
        s.sort()
        func q(_ p: Double) -> Float {
            let f = p * Double(s.count - 1), lo = Int(f), hi = Swift.min(s.count - 1, lo + 1)
            return s[lo] + Float(f - Double(lo)) * (s[hi] - s[lo])
        }
        return (q(a), q(b))
    }

    /// Otsu over 1024 bins of the values clipped to [0, 1] (bin centre of the last lower-class bin).
    static func otsu01(_ v: [Float]) -> Float {
        var lo = Float.infinity, hi = -Float.infinity
        for x in v { let c = Swift.min(1, Swift.max(0, x)); lo = Swift.min(lo, c); hi = Swift.max(hi, c) }
        guard hi > lo else { return lo.isFinite ? lo : 0 }
        let bins = 1024
        var hist = [Double](repeating: 0, count: bins)
        let sc = Float(bins) / (hi - lo)
        v.withUnsafeBufferPointer { V in
            for x in V { let c = Swift.min(1, Swift.max(0, x)); hist[Swift.min(bins - 1, Int((c - lo) * sc))] += 1 }
        }
        let width = Double(hi - lo) / Double(bins)
        var total = 0.0, sumAll = 0.0
        for i in 0..<bins { let c = Double(lo) + (Double(i) + 0.5) * width; total += hist[i]; sumAll += hist[i] * c }
        var w0 = 0.0, s0 = 0.0, best = -1.0, bestI = 0
        for i in 0..<bins {
            let c = Double(lo) + (Double(i) + 0.5) * width
            w0 += hist[i]; s0 += hist[i] * c
            let w1 = total - w0
            guard w0 > 0, w1 > 0 else { continue }
            let d = s0 / w0 - (sumAll - s0) / w1
            let b = w0 * w1 * d * d
            if b > best { best = b; bestI = i }
        }
        return Float(Double(lo) + (Double(bestI) + 0.5) * width)
    }

    static func median(_ v: [Double]) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted(), m = s.count / 2
        return s.count % 2 == 1 ? s[m] : 0.5 * (s[m - 1] + s[m])
    }

    static func percentile(_ v: [Double], _ p: Double) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        let f = p * Double(s.count - 1), lo = Int(f), hi = Swift.min(s.count - 1, lo + 1)
        return s[lo] + (f - Double(lo)) * (s[hi] - s[lo])
    }

    static func spread(_ v: [Double]) -> Double {
        let m = median(v)
        return m > 0 ? (percentile(v, 0.75) - percentile(v, 0.25)) / m : 1
    }
}
