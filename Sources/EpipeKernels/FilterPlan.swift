import Foundation
import Dispatch

/// One filter of a `FilterPlan`.
///
/// Every op is defined on the *infinite* plane: the input image is extended beyond every edge by
/// edge replication (of the plan's input, once), and each op is evaluated on the whole extended
/// plane, the next op reading the previous op's (unreplicated) extended result. The plan's
/// output is the crop to the image. Because each op reads only a bounded neighbourhood
/// (`halo` pixels in x and y), a band of output rows depends only on input rows within
/// `FilterPlan.halo` of it, and band processing is bit-identical to whole-image processing.
public enum FilterOp: Codable, Sendable, Equatable {
    /// Hot-pixel removal: `m` = median of the 3x3 neighbourhood (centre included);
    /// if `x - m > threshold` then `x := m`. Halo 1. Replacements in the output rows/columns are counted.
    /// (steinbock's `filter_hot_pixels` compares with the *maximum of the 8 neighbours* instead;
    /// this op follows the epipe specification: median of the 3x3 window.)
    case hotPixels(threshold: Float)
    /// Exact 3x3 median. Halo 1.
    case median3
    /// White top-hat `x - opening(x)` with the flat disk `{(dx,dy): dx^2 + dy^2 <= r^2}`
    /// (exactly scikit-image's `disk(r)`). Halo `2r`.
    case tophat(radius: Int)
    /// ImageJ rolling-ball background subtraction (see `RollingBall`): result `max(0, x - bg)`,
    /// or with `lightBackground` `max(0, bg - x)` where `bg` is the background of the negated image,
    /// negated back. Halo `RollingBall.halo`.
    case rollingBall(radius: Double, lightBackground: Bool)
    /// Separable Gaussian, radius `ceil(3 sigma)` (see `Gaussian`). Halo = radius.
    case gaussian(sigma: Double)

    /// Rows (and columns) of context this op reads on each side.
    public var halo: Int {
        switch self {
        case .hotPixels, .median3: return 1
        case .tophat(let r): return 2 * Swift.max(0, r)
        case .rollingBall(let r, _): return RollingBall(radius: r).halo
        case .gaussian(let s): return Gaussian.radius(sigma: s)
        }
    }
}

/// An ordered list of filters applied to one channel plane (see `FilterOp` for the semantics):
/// denoise's per-channel preprocessing, segment's nuclear signal, `Gaussian.blur`.
public struct FilterPlan: Codable, Sendable, Equatable {
    public var ops: [FilterOp]

    public init(_ ops: [FilterOp]) { self.ops = ops }

    /// Rows of context needed above and below a band (and columns left/right, handled inside):
    /// the sum of the ops' halos.
    public var halo: Int { ops.reduce(0) { $0 + $1.halo } }

    /// Applies the plan to a band and returns `rows * width` output values (image rows
    /// `y0 ..< y0+rows`) and the number of hot pixels replaced in those output rows.
    ///
    /// `band` holds `haloTop + rows + haloBottom` rows of `width` values: image rows
    /// `y0-haloTop ..< y0+rows+haloBottom`. Rows of the band beyond the image (`< 0` or
    /// `>= imageHeight`) are ignored (edge replication is done internally from the image's true
    /// first/last row), so a caller may pass replicated rows or simply fewer halo rows at the
    /// image edges. Away from the edges the band must hold at least `halo` rows of context
    /// (precondition). `y0` is needed because the rolling ball's shrink blocks are aligned to
    /// absolute image coordinates (multiples of the shrink factor), `imageHeight` to know where
    /// the true top/bottom edges are. The result equals `apply(plane:)` on the whole image,
    /// bit for bit, for any band split.
    public func apply(band: UnsafeBufferPointer<Float>, width: Int, haloTop: Int, rows: Int, haloBottom: Int,
                      y0: Int, imageHeight: Int) -> (values: [Float], hotPixels: Int) {
        let n = rows > 0 && width > 0 ? rows * width : 0
        var hot = 0
        let out = [Float](unsafeUninitializedCapacity: n) { buf, count in
            hot = apply(band: band, width: width, haloTop: haloTop, rows: rows, haloBottom: haloBottom, y0: y0, imageHeight: imageHeight, into: buf)
            count = n
        }
        return (out, hot)
    }

    /// `apply(band:...)` writing the `rows * width` output values into `out` (which must not
    /// overlap `band`); returns the number of hot pixels replaced in the output rows.
    public func apply(band: UnsafeBufferPointer<Float>, width: Int, haloTop: Int, rows: Int, haloBottom: Int,
                      y0: Int, imageHeight: Int, into out: UnsafeMutableBufferPointer<Float>) -> Int {
        precondition(width >= 0 && rows >= 0 && haloTop >= 0 && haloBottom >= 0)
        precondition(band.count >= (haloTop + rows + haloBottom) * width, "band too small")
        precondition(y0 >= 0 && y0 + rows <= imageHeight, "band outside the image")
        guard rows > 0, width > 0 else { return 0 }
        precondition(out.count >= rows * width, "output too small")
        let H = halo
        let bandTop = y0 - haloTop, bandRows = haloTop + rows + haloBottom
        // Stage 0: the edge-replicated input on rows y0-H ..< y0+rows+H, columns -H ..< width+H.
        var cur = Grid.allocate(y0: y0 - H, x0: -H, h: rows + 2 * H, w: width + 2 * H)
        do {
            let g = cur, src = UnsafeShared(band.baseAddress!)
            parallelChunks(g.h, minChunk: 32, cost: g.w) { a, b in
                for r in a..<b {
                    let Y = Swift.min(Swift.max(g.y0 + r, 0), imageHeight - 1)
                    let br = Y - bandTop
                    precondition(br >= 0 && br < bandRows, "band lacks halo rows (needs \(H) above/below)")
                    let s = src.value + br * width, d = g.row(r)
                    let first = s[0], last = s[width - 1]
                    for j in 0..<H { d[j] = first; d[H + width + j] = last }
                    (d + H).update(from: s, count: width)
                }
            }
        }
        var hot = 0
        // the last op writes straight into `out`
        for (n, op) in ops.enumerated() {
            let h = op.halo
            let next = n == ops.count - 1
                ? Grid.borrowing(out.baseAddress!, y0: cur.y0 + h, x0: cur.x0 + h, h: cur.h - 2 * h, w: cur.w - 2 * h)
                : Grid.allocate(y0: cur.y0 + h, x0: cur.x0 + h, h: cur.h - 2 * h, w: cur.w - 2 * h)
            switch op {
            case .hotPixels(let t):
                hot += Filters.median3(cur, next, hotThreshold: t, countRows: y0..<(y0 + rows), countCols: 0..<width)
            case .median3:
                _ = Filters.median3(cur, next, hotThreshold: nil, countRows: 0..<0, countCols: 0..<0)
            case .tophat(let r):
                Filters.tophat(cur, next, radius: Swift.max(0, r))
            case .rollingBall(let r, let light):
                RollingBall(radius: r).subtract(cur, next, lightBackground: light)
            case .gaussian(let s):
                Filters.gaussian(cur, next, kernel: Gaussian.kernel(sigma: s))
            }
            cur.deallocate()
            cur = next
        }
        precondition(cur.h == rows && cur.w == width && cur.y0 == y0 && cur.x0 == 0)
        if ops.isEmpty { out.baseAddress!.update(from: cur.p, count: rows * width) }
        cur.deallocate()
        return hot
    }

    /// Frees the scratch buffers the plans keep for reuse between calls (at most 1 GiB).
    public static func releaseScratch() { ScratchPool.shared.releaseAll() }

    /// Whole image (edge replicated): identical to `apply(band:)` with `y0 = 0`, `rows = height`.
    public func apply(plane: [Float], width: Int, height: Int) -> (values: [Float], hotPixels: Int) {
        precondition(plane.count >= width * height)
        return plane.withUnsafeBufferPointer {
            apply(band: $0, width: width, haloTop: 0, rows: height, haloBottom: 0, y0: 0, imageHeight: height)
        }
    }
}

// MARK: - Internals

/// A row-major float array covering absolute image rows `y0 ..< y0+h`, columns `x0 ..< x0+w`.
/// Storage comes from `ScratchPool` (large fresh allocations are mmapped and page-faulted in,
/// which used to cost about a third of the filter time); `deallocate` returns it to the pool.
struct Grid: @unchecked Sendable {
    var p: UnsafeMutablePointer<Float>
    var y0: Int, x0: Int, h: Int, w: Int
    /// Capacity in floats of the pooled storage; 0 for borrowed storage (never released).
    var cap: Int = 0
    static func allocate(y0: Int, x0: Int, h: Int, w: Int) -> Grid {
        precondition(h >= 0 && w >= 0)
        let (p, cap) = ScratchPool.shared.take(Swift.max(1, h * w))
        return Grid(p: p, y0: y0, x0: x0, h: h, w: w, cap: cap)
    }
    /// A grid over caller-owned storage (not released by `deallocate`).
    static func borrowing(_ p: UnsafeMutablePointer<Float>, y0: Int, x0: Int, h: Int, w: Int) -> Grid {
        Grid(p: p, y0: y0, x0: x0, h: h, w: w, cap: 0)
    }
    func deallocate() { if cap > 0 { ScratchPool.shared.give(p, cap) } }
    @inline(__always) func row(_ r: Int) -> UnsafeMutablePointer<Float> { p + r * w }
}

@inline(__always) func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

enum Filters {
    // MARK: 3x3 median / hot pixels

    /// `dst` = 3x3 median of `src` (dst is src shrunk by 1). With `hotThreshold`, hot-pixel
    /// replacement instead; returns the number of replacements inside countRows x countCols.
    static func median3(_ src: Grid, _ dst: Grid, hotThreshold: Float?, countRows: Range<Int>, countCols: Range<Int>) -> Int {
        let chunks = UnsafeMutableBufferPointer<Int>.allocate(capacity: Swift.max(1, dst.h))
        chunks.initialize(repeating: 0)
        defer { chunks.deallocate() }
        let counts = UnsafeShared(chunks)
        parallelChunks(dst.h, minChunk: 16, cost: dst.w) { a, b in
            let tw = src.w
            let L = UnsafeMutablePointer<Float>.allocate(capacity: 3 * tw)
            defer { L.deallocate() }
            let M = L + tw, Hh = M + tw
            for r in a..<b {
                let ra = src.row(r), rb = src.row(r + 1), rc = src.row(r + 2)
                for x in 0..<tw {
                    let p = ra[x], q = rb[x], s = rc[x]
                    let mn1 = Swift.min(p, q), mx1 = Swift.max(p, q)
                    L[x] = Swift.min(mn1, s)
                    Hh[x] = Swift.max(mx1, s)
                    M[x] = Swift.max(mn1, Swift.min(mx1, s))
                }
                let o = dst.row(r)
                for x in 0..<dst.w {
                    let maxLo = Swift.max(Swift.max(L[x], L[x + 1]), L[x + 2])
                    let minHi = Swift.min(Swift.min(Hh[x], Hh[x + 1]), Hh[x + 2])
                    let a0 = M[x], b0 = M[x + 1], c0 = M[x + 2]
                    let mn = Swift.min(a0, b0), mx = Swift.max(a0, b0)
                    let medMid = Swift.max(mn, Swift.min(mx, c0))
                    let u = Swift.min(maxLo, medMid), v = Swift.max(maxLo, medMid)
                    o[x] = Swift.max(u, Swift.min(v, minHi))
                }
                if let t = hotThreshold {
                    let centre = rb + 1
                    let Y = dst.y0 + r
                    let counting = countRows.contains(Y)
                    // branch-free select; replacements counted only in the counted columns
                    let lo = counting ? Swift.min(dst.w, Swift.max(0, countCols.lowerBound - dst.x0)) : dst.w
                    let hi = counting ? Swift.min(dst.w, Swift.max(lo, countCols.upperBound - dst.x0)) : dst.w
                    let tv = SIMD4<Float>(repeating: t), one = SIMD4<Int32>(repeating: 1)
                    var cnt = SIMD4<Int32>(repeating: 0), n = 0
                    @inline(__always) func seg(_ x0: Int, _ x1: Int, _ count: Bool) {
                        var x = x0
                        while x + 4 <= x1 {
                            let c = ld(centre + x), m = ld(o + x)
                            let mask = (c - m) .> tv
                            st(o + x, c.replacing(with: m, where: mask))
                            if count { cnt &+= SIMD4<Int32>(repeating: 0).replacing(with: one, where: SIMDMask(mask._storage)) }
                            x += 4
                        }
                        while x < x1 {
                            let c = centre[x], m = o[x]
                            let hotPx = c - m > t
                            o[x] = hotPx ? m : c
                            if count && hotPx { n += 1 }
                            x += 1
                        }
                    }
                    seg(0, lo, false); seg(lo, hi, true); seg(hi, dst.w, false)
                    counts.value[r] = n + Int(cnt.wrappedSum())
                }
            }
        }
        return chunks.reduce(0, +)
    }

    // MARK: Gaussian

    /// Separable Gaussian, vertical pass then horizontal, symmetric pairs.
    static func gaussian(_ src: Grid, _ dst: Grid, kernel: [Float]) {
        let r = kernel.count / 2
        let kp = UnsafeMutablePointer<Float>.allocate(capacity: kernel.count)
        defer { kp.deallocate() }
        for i in 0..<kernel.count { kp[i] = kernel[i] }
        let K = UnsafeShared(kp)
        parallelChunks(dst.h, minChunk: 16, cost: dst.w * (r + 1)) { a, b in
            let kp = K.value
            let ew = src.w
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: ew)
            defer { tmp.deallocate() }
            for y in a..<b {
                // output row y (relative to dst) = src row y + r; window src rows y ... y+2r
                let center = src.row(y + r)
                if r == 0 {
                    dst.row(y).update(from: center, count: dst.w)
                    continue
                }
                gaussVertical(tmp, src.row(y), src.w, ew, r, kp)
                gaussHorizontal(dst.row(y), tmp, dst.w, r, kp)
            }
        }
    }

    /// Vertical pass of one row: `t[x] = kc*c[x]`, then `t[x] += kp[k]*(row_k[x] + row_{2r-k}[x])`
    /// for k = 0..<r in order (rows `top + j*stride`, centre j = r), 16 columns in registers.
    /// Same operations in the same order per element as the scalar loops it replaced.
    /// With stride 1 it is the horizontal pass (`gaussHorizontal`).
    @inline(__always)
    static func gaussVertical(_ t: UnsafeMutablePointer<Float>, _ top: UnsafePointer<Float>, _ stride: Int, _ n: Int,
                              _ r: Int, _ kp: UnsafePointer<Float>) {
        let kc = kp[r], kcv = SIMD4<Float>(repeating: kc)
        let c = top + r * stride
        var x = 0
        while x + 16 <= n {
            var a0 = kcv * ld(c + x), a1 = kcv * ld(c + x + 4), a2 = kcv * ld(c + x + 8), a3 = kcv * ld(c + x + 12)
            for k in 0..<r {
                let w = SIMD4<Float>(repeating: kp[k])
                let u = top + k * stride + x, d = top + (2 * r - k) * stride + x
                a0 += w * (ld(u) + ld(d)); a1 += w * (ld(u + 4) + ld(d + 4))
                a2 += w * (ld(u + 8) + ld(d + 8)); a3 += w * (ld(u + 12) + ld(d + 12))
            }
            st(t + x, a0); st(t + x + 4, a1); st(t + x + 8, a2); st(t + x + 12, a3)
            x += 16
        }
        while x < n {
            var a = kc * c[x]
            for k in 0..<r { a += kp[k] * (top[k * stride + x] + top[(2 * r - k) * stride + x]) }
            t[x] = a
            x += 1
        }
    }

    /// Horizontal pass: `o[x] = kc*t[x+r]`, then `o[x] += kp[k]*(t[x+k] + t[x+2r-k])`, k = 0..<r in
    /// order: the vertical pass over the row's neighbours (stride 1).
    @inline(__always)
    static func gaussHorizontal(_ o: UnsafeMutablePointer<Float>, _ t: UnsafePointer<Float>, _ n: Int,
                                _ r: Int, _ kp: UnsafePointer<Float>) {
        gaussVertical(o, t, 1, n, r, kp)
    }

    // MARK: Flat disk morphology

    /// Half-widths of the chords of the digital disk `dx^2 + dy^2 <= r^2`, for dy = -r...r.
    static func diskChords(_ r: Int) -> [Int] {
        (-r...r).map { dy in
            var k = Int(Double(r * r - dy * dy).squareRoot())
            while k * k + dy * dy > r * r { k -= 1 }
            while (k + 1) * (k + 1) + dy * dy <= r * r { k += 1 }
            return k
        }
    }

    /// White top-hat with the flat disk of radius r: dst = src - dilate(erode(src)). dst is src shrunk by 2r.
    static func tophat(_ src: Grid, _ dst: Grid, radius r: Int) {
        let er = Grid.allocate(y0: src.y0 + r, x0: src.x0 + r, h: src.h - 2 * r, w: src.w - 2 * r)
        defer { er.deallocate() }
        chordMorph(src, er, radius: r, MinPick.self, minuend: nil)
        // the dilation's store computes max(0, src - opening) directly
        chordMorph(er, dst, radius: r, MaxPick.self, minuend: src)
    }

    /// Flat-disk erosion (MinPick) or dilation (MaxPick): dst (src shrunk by r) = extremum over
    /// the disk. The disk is the union of its horizontal chords; a chord of length n = 2k+1 is
    /// covered by two (overlapping) windows of length 2^p <= n, whose extrema come from
    /// per-row doubling tables T_p[i] = ext(src[i ..< i+2^p]) (Urbach & Wilkinson style).
    /// Exact (only min/max of input values). Work: O(r) per pixel, vectorisable.
    /// With `minuend` (a grid containing dst shrunk by a further r on every side... i.e. the
    /// top-hat's source, whose region contains dst), dst = max(0, minuend - extremum) instead.
    static func chordMorph<Op: Pick>(_ src: Grid, _ dst: Grid, radius r: Int, _: Op.Type, minuend: Grid?) {
        let subOff: (Int, Int)? = minuend.map { (dst.y0 - $0.y0, dst.x0 - $0.x0) }
        if r == 0 {
            for y in 0..<dst.h {
                let s = src.row(y), o = dst.row(y)
                if let m = minuend, let (oy, ox) = subOff {
                    let mr = m.row(y + oy) + ox
                    for x in 0..<dst.w { o[x] = Swift.max(0, mr[x] - s[x]) }
                } else {
                    o.update(from: s, count: dst.w)
                }
            }
            return
        }
        let chords = diskChords(r)
        let nd = 2 * r + 1
        var lev = [Int](repeating: 0, count: nd)
        var maxLev = 0
        for i in 0..<nd {
            let n = 2 * chords[i] + 1
            var p = 0
            while (2 << p) <= n { p += 1 }
            lev[i] = p; maxLev = Swift.max(maxLev, p)
        }
        let levels = lev, chordsC = chords, nLev = maxLev
        // column strips bound the tables (measured: 1024 beats narrower L2-sized strips at r = 50)
        let strip = Swift.min(dst.w, 1024)
        let nStrips = (dst.w + strip - 1) / strip
        let M = minuend ?? dst, MO = subOff ?? (0, 0), hasM = minuend != nil
        parallelChunks(dst.h, minChunk: Swift.max(16, 2 * r), cost: dst.w * nd) { a, b in
            let sw = strip + 2 * r               // input columns per strip
            // ring of nd rows x nLev levels (level 0 is the source row itself)
            let ring = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(1, nd * nLev * sw))
            defer { ring.deallocate() }
            let pA = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: nd)
            let pB = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: nd)
            defer { pA.deallocate(); pB.deallocate() }
            let offA = UnsafeMutablePointer<Int>.allocate(capacity: nd), offB = UnsafeMutablePointer<Int>.allocate(capacity: nd)
            defer { offA.deallocate(); offB.deallocate() }
            for i in 0..<nd {
                let k = chordsC[i], L = 1 << levels[i]
                offA[i] = r - k; offB[i] = r + k - L + 1
            }
            for s in 0..<nStrips {
                let c0 = s * strip, c1 = Swift.min(dst.w, c0 + strip)
                let ow = c1 - c0, iw = ow + 2 * r
                // tables of input row `ir` into ring slot ir % nd
                func build(_ ir: Int) {
                    let slot = ring + (ir % nd) * nLev * sw
                    var prev = UnsafePointer(src.row(ir) + c0)
                    var p = 1
                    while p <= nLev {
                        let cur = slot + (p - 1) * sw
                        let half = 1 << (p - 1), n = iw - (1 << p) + 1
                        if n > 0 { pickRows(Op.self, cur, prev, prev + half, n) }
                        prev = UnsafePointer(cur)
                        p += 1
                    }
                }
                for ir in a..<(a + 2 * r) { build(ir) }
                for y in a..<b {
                    build(y + 2 * r)
                    for i in 0..<nd {
                        let ir = y + i
                        let p = levels[i]
                        let t = p == 0 ? UnsafePointer(src.row(ir) + c0)
                                       : UnsafePointer(ring + (ir % nd) * nLev * sw + (p - 1) * sw)
                        pA[i] = t + offA[i]; pB[i] = t + offB[i]
                    }
                    let o = dst.row(y) + c0
                    let mrow = UnsafePointer(M.row(y + MO.0) + MO.1 + c0)
                    chordRow(Op.self, o, ow, pA, pB, nd, hasM ? mrow : nil)
                }
            }
        }
    }

    /// `dst[i] = pick(a[i], b[i])`, i < n.
    @inline(__always)
    static func pickRows<Op: Pick>(_: Op.Type, _ dst: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            let x0 = Op.pick(ld(a + i), ld(b + i)), x1 = Op.pick(ld(a + i + 4), ld(b + i + 4))
            let x2 = Op.pick(ld(a + i + 8), ld(b + i + 8)), x3 = Op.pick(ld(a + i + 12), ld(b + i + 12))
            st(dst + i, x0); st(dst + i + 4, x1); st(dst + i + 8, x2); st(dst + i + 12, x3)
            i += 16
        }
        while i + 4 <= n { st(dst + i, Op.pick(ld(a + i), ld(b + i))); i += 4 }
        while i < n { dst[i] = Op.pick(a[i], b[i]); i += 1 }
    }

    /// One output row of a strip: o[x] = ext_i pick(pA[i][x], pB[i][x]) over the nd chords,
    /// 32 columns at a time held in registers; with `m`, o[x] = max(0, m[x] - ext).
    @inline(__always)
    static func chordRow<Op: Pick>(_: Op.Type, _ o: UnsafeMutablePointer<Float>, _ ow: Int,
                                   _ pA: UnsafeMutablePointer<UnsafePointer<Float>>, _ pB: UnsafeMutablePointer<UnsafePointer<Float>>,
                                   _ nd: Int, _ m: UnsafePointer<Float>?) {
        let zero = SIMD4<Float>(repeating: 0)
        var x = 0
        while x + 32 <= ow {
            var a0 = Op.pick(ld(pA[0] + x), ld(pB[0] + x)), a1 = Op.pick(ld(pA[0] + x + 4), ld(pB[0] + x + 4))
            var a2 = Op.pick(ld(pA[0] + x + 8), ld(pB[0] + x + 8)), a3 = Op.pick(ld(pA[0] + x + 12), ld(pB[0] + x + 12))
            var a4 = Op.pick(ld(pA[0] + x + 16), ld(pB[0] + x + 16)), a5 = Op.pick(ld(pA[0] + x + 20), ld(pB[0] + x + 20))
            var a6 = Op.pick(ld(pA[0] + x + 24), ld(pB[0] + x + 24)), a7 = Op.pick(ld(pA[0] + x + 28), ld(pB[0] + x + 28))
            var i = 1
            while i < nd {
                let p = pA[i] + x, q = pB[i] + x
                a0 = Op.pick(a0, Op.pick(ld(p), ld(q)))
                a1 = Op.pick(a1, Op.pick(ld(p + 4), ld(q + 4)))
                a2 = Op.pick(a2, Op.pick(ld(p + 8), ld(q + 8)))
                a3 = Op.pick(a3, Op.pick(ld(p + 12), ld(q + 12)))
                a4 = Op.pick(a4, Op.pick(ld(p + 16), ld(q + 16)))
                a5 = Op.pick(a5, Op.pick(ld(p + 20), ld(q + 20)))
                a6 = Op.pick(a6, Op.pick(ld(p + 24), ld(q + 24)))
                a7 = Op.pick(a7, Op.pick(ld(p + 28), ld(q + 28)))
                i += 1
            }
            if let m = m {
                let mx = m + x
                a0 = MaxPick.pick(zero, ld(mx) - a0); a1 = MaxPick.pick(zero, ld(mx + 4) - a1)
                a2 = MaxPick.pick(zero, ld(mx + 8) - a2); a3 = MaxPick.pick(zero, ld(mx + 12) - a3)
                a4 = MaxPick.pick(zero, ld(mx + 16) - a4); a5 = MaxPick.pick(zero, ld(mx + 20) - a5)
                a6 = MaxPick.pick(zero, ld(mx + 24) - a6); a7 = MaxPick.pick(zero, ld(mx + 28) - a7)
            }
            st(o + x, a0); st(o + x + 4, a1); st(o + x + 8, a2); st(o + x + 12, a3)
            st(o + x + 16, a4); st(o + x + 20, a5); st(o + x + 24, a6); st(o + x + 28, a7)
            x += 32
        }
        while x + 4 <= ow {
            var a0 = Op.pick(ld(pA[0] + x), ld(pB[0] + x))
            for i in 1..<nd { a0 = Op.pick(a0, Op.pick(ld(pA[i] + x), ld(pB[i] + x))) }
            if let m = m { a0 = MaxPick.pick(zero, ld(m + x) - a0) }
            st(o + x, a0)
            x += 4
        }
        while x < ow {
            var a0 = Op.pick(pA[0][x], pB[0][x])
            for i in 1..<nd { a0 = Op.pick(a0, Op.pick(pA[i][x], pB[i][x])) }
            if let m = m { a0 = Swift.max(0, m[x] - a0) }
            o[x] = a0
            x += 1
        }
    }
}

@inline(__always) func ld(_ p: UnsafePointer<Float>) -> SIMD4<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }
@inline(__always) func ld(_ p: UnsafeMutablePointer<Float>) -> SIMD4<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }
@inline(__always) func st(_ p: UnsafeMutablePointer<Float>, _ v: SIMD4<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self) }

/// Exact min / max (no NaNs in images; same choice as `b < a ? b : a`), scalar and SIMD
/// (`replacing(with:where:)` on a strict comparison compiles to minps/maxps).
protocol Pick {
    static func pick(_ a: Float, _ b: Float) -> Float
    static func pick(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float>
}
enum MinPick: Pick {
    @inline(__always) static func pick(_ a: Float, _ b: Float) -> Float { b < a ? b : a }
    @inline(__always) static func pick(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .< a) }
}
enum MaxPick: Pick {
    @inline(__always) static func pick(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
    @inline(__always) static func pick(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }
}
