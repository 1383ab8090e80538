import Foundation
import Dispatch

/// ImageJ's rolling ball (ij/plugin/filter/BackgroundSubtracter.java, "legacy" ball, no
/// presmoothing, no paraboloid), on the infinite edge-replicated plane of `FilterOp`:
///
/// 1. Shrink factor `s` = 1 (radius <= 10), 2 (<= 30), 4 (<= 100), else 8; trim percentage 24,
///    24, 32, 40. Small radius `rs = max(1, radius / s)`, `xtrim = Int(trim * rs) / 100`,
///    patch half-width `hw = Int((rs - xtrim + 0.5).rounded(.down))` (Java `Math.round`).
///    Ball patch: a (2hw+1)^2 square with `z(dx,dy) = Float(sqrt(rs^2 - dx^2 - dy^2))` where positive,
///    else 0 (the square's corners are part of the patch with height 0, as in ImageJ).
/// 2. Shrink (s > 1): small pixel (i, j) = min of the full-resolution block rows `i*s ..< i*s+s`,
///    columns `j*s ..< j*s+s` — blocks aligned to absolute image coordinates; blocks beyond the
///    image see edge-replicated pixels (so a partial edge block is the min over its in-image part).
/// 3. Roll = grayscale opening with the non-flat patch: `e = min_q (S(p+q) - z(q))`,
///    `bg = max_q (e(p+q) + z(q))` (Float arithmetic).
/// 4. Enlarge (s > 1): ImageJ's separable linear interpolation: for coordinate `i`,
///    `k = floor((i - s/2) / s)`, `d = (Float(i) + 0.5) / Float(s) - (Float(k) + 0.5)`, `w = 1 - d`;
///    along x `line = B[k] * w + B[k+1] * (1 - w)`, then along y the same between the two lines.
///    Unlike ImageJ, `k` is not clamped to the small image (ImageJ extrapolates linearly within
///    s/2 of the far edges; here the small grid exists beyond the edges, from replicated pixels).
/// 5. Result `max(0, x - bg)`. `lightBackground` runs 1-4 on `-x` and returns `max(0, bg' - x)`
///    with `bg' = -bg(-x)` (the signal measured downwards from a light background).
///
/// Halo (rows/columns of context): `2*hw` when s = 1, else `2*hw*s + s + s/2`.
public struct RollingBall: Sendable {
    public let radius: Double
    public let shrinkFactor: Int
    public let halfWidth: Int
    /// Patch heights, row-major (2hw+1)^2.
    public let z: [Float]

    public init(radius: Double) {
        self.radius = radius
        let trim: Int
        if radius <= 10 { shrinkFactor = 1; trim = 24 }
        else if radius <= 30 { shrinkFactor = 2; trim = 24 }
        else if radius <= 100 { shrinkFactor = 4; trim = 32 }
        else { shrinkFactor = 8; trim = 40 }
        let rs = Swift.max(1, radius / Double(shrinkFactor))
        let rsq = rs * rs
        let xtrim = Int(Double(trim) * rs) / 100
        let hw = Int((rs - Double(xtrim) + 0.5).rounded(.down))
        halfWidth = hw
        let n = 2 * hw + 1
        var zz = [Float](repeating: 0, count: n * n)
        for y in 0..<n { for x in 0..<n {
            let dx = Double(x - hw), dy = Double(y - hw)
            let t = rsq - dx * dx - dy * dy
            zz[y * n + x] = t > 0 ? Float(t.squareRoot()) : 0
        } }
        z = zz
    }

    public var halo: Int {
        let s = shrinkFactor
        return s == 1 ? 2 * halfWidth : 2 * halfWidth * s + s + s / 2
    }

    /// dst (src shrunk by `halo`) = max(0, sign*x - background).
    func subtract(_ src: Grid, _ dst: Grid, lightBackground: Bool) {
        let s = shrinkFactor, hw = halfWidth
        let sign: Float = lightBackground ? -1 : 1
        let bg: Grid
        if s == 1 {
            // small grid = full resolution (signed) on dst region +- 2hw
            let S = Grid.allocate(y0: dst.y0 - 2 * hw, x0: dst.x0 - 2 * hw, h: dst.h + 4 * hw, w: dst.w + 4 * hw)
            let oy = S.y0 - src.y0, ox = S.x0 - src.x0
            parallelChunks(S.h, minChunk: 32, cost: S.w) { a, b in
                for r in a..<b {
                    let sr = src.row(r + oy) + ox, d = S.row(r)
                    for x in 0..<S.w { d[x] = sign * sr[x] }
                }
            }
            bg = opening(S)
            S.deallocate()
        } else {
            let sy0 = floorDiv(dst.y0 - s / 2, s), sy1 = floorDiv(dst.y0 + dst.h - 1 - s / 2, s) + 2
            let sx0 = floorDiv(dst.x0 - s / 2, s), sx1 = floorDiv(dst.x0 + dst.w - 1 - s / 2, s) + 2
            let S = Grid.allocate(y0: sy0 - 2 * hw, x0: sx0 - 2 * hw, h: sy1 - sy0 + 4 * hw, w: sx1 - sx0 + 4 * hw)
            precondition(S.y0 * s >= src.y0 && (S.y0 + S.h) * s <= src.y0 + src.h)
            precondition(S.x0 * s >= src.x0 && (S.x0 + S.w) * s <= src.x0 + src.w)
            parallelChunks(S.h, minChunk: 8, cost: S.w * s * s) { a, b in
                for i in a..<b {
                    let d = S.row(i)
                    let r0 = (S.y0 + i) * s - src.y0
                    let c0 = S.x0 * s - src.x0
                    for j in 0..<S.w { d[j] = Float.greatestFiniteMagnitude }
                    for k in 0..<s {
                        let sr = src.row(r0 + k) + c0
                        for j in 0..<S.w {
                            var m = d[j]
                            let q = sr + j * s
                            for t in 0..<s { let v = sign * q[t]; if v < m { m = v } }
                            d[j] = m
                        }
                    }
                }
            }
            let B = opening(S)
            S.deallocate()
            bg = enlarge(B, to: dst)
            B.deallocate()
        }
        // result
        let oy = dst.y0 - src.y0, ox = dst.x0 - src.x0
        let by = dst.y0 - bg.y0, bx = dst.x0 - bg.x0
        parallelChunks(dst.h, minChunk: 32, cost: dst.w) { a, b in
            for r in a..<b {
                let sr = src.row(r + oy) + ox, br = bg.row(r + by) + bx, o = dst.row(r)
                for x in 0..<dst.w { o[x] = Swift.max(0, sign * sr[x] - br[x]) }
            }
        }
        bg.deallocate()
    }

    /// Opening of S with the ball patch; returns S shrunk by 2hw.
    func opening(_ S: Grid) -> Grid {
        let hw = halfWidth
        let E = Grid.allocate(y0: S.y0 + hw, x0: S.x0 + hw, h: S.h - 2 * hw, w: S.w - 2 * hw)
        let B = Grid.allocate(y0: S.y0 + 2 * hw, x0: S.x0 + 2 * hw, h: S.h - 4 * hw, w: S.w - 4 * hw)
        ballPass(S, E, erode: true)
        ballPass(E, B, erode: false)
        E.deallocate()
        return B
    }

    /// One non-flat pass: erode `dst = min_q (src(p+q) - z(q))` or dilate `dst = max_q (src(p+q) + z(q))`.
    func ballPass(_ src: Grid, _ dst: Grid, erode: Bool) {
        let hw = halfWidth, n = 2 * hw + 1
        let zp = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { zp.deallocate() }
        for i in 0..<(n * n) { zp[i] = z[i] }
        let Z = UnsafeShared(zp)
        parallelChunks(dst.h, minChunk: 4, cost: dst.w * n * n) { a, b in
            let zp = Z.value
            for y in a..<b {
                let o = dst.row(y)
                if erode {
                    for x in 0..<dst.w { o[x] = Float.infinity }
                    for dy in 0..<n {
                        let sr = src.row(y + dy)
                        for dx in 0..<n {
                            let zv = zp[dy * n + dx], q = sr + dx
                            for x in 0..<dst.w { let v = q[x] - zv; o[x] = v < o[x] ? v : o[x] }
                        }
                    }
                } else {
                    for x in 0..<dst.w { o[x] = -Float.infinity }
                    for dy in 0..<n {
                        let sr = src.row(y + dy)
                        for dx in 0..<n {
                            let zv = zp[dy * n + dx], q = sr + dx
                            for x in 0..<dst.w { let v = q[x] + zv; o[x] = v > o[x] ? v : o[x] }
                        }
                    }
                }
            }
        }
    }

    /// ImageJ-style interpolation weight arrays for absolute coordinates `c0 ..< c0+n`:
    /// small index k (absolute) and weight of k.
    static func interpolation(_ c0: Int, _ n: Int, _ s: Int) -> (idx: [Int], w: [Float]) {
        var idx = [Int](repeating: 0, count: n), w = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let c = c0 + i
            let k = floorDiv(c - s / 2, s)
            idx[i] = k
            let d = (Float(c) + 0.5) / Float(s) - (Float(k) + 0.5)
            w[i] = 1 - d
        }
        return (idx, w)
    }

    /// Background at full resolution on `region`'s rows/cols from the small opened grid B.
    func enlarge(_ B: Grid, to region: Grid) -> Grid {
        let s = shrinkFactor
        let out = Grid.allocate(y0: region.y0, x0: region.x0, h: region.h, w: region.w)
        let (xi, xw) = RollingBall.interpolation(region.x0, region.w, s)
        let (yi, yw) = RollingBall.interpolation(region.y0, region.h, s)
        // x-interpolated lines for every small row of B
        let lines = Grid.allocate(y0: B.y0, x0: region.x0, h: B.h, w: region.w)
        defer { lines.deallocate() }
        let XI = UnsafeShared(xi), XW = UnsafeShared(xw)
        parallelChunks(B.h, minChunk: 4, cost: region.w) { a, b in
            let xi = XI.value, xw = XW.value
            xi.withUnsafeBufferPointer { xi in xw.withUnsafeBufferPointer { xw in
                for i in a..<b {
                    let br = B.row(i), l = lines.row(i)
                    for x in 0..<region.w {
                        let k = xi[x] - B.x0, w = xw[x]
                        l[x] = br[k] * w + br[k + 1] * (1 - w)
                    }
                }
            } }
        }
        let YI = UnsafeShared(yi), YW = UnsafeShared(yw)
        parallelChunks(region.h, minChunk: 16, cost: region.w) { a, b in
            for r in a..<b {
                let k = YI.value[r] - lines.y0, w = YW.value[r], w1 = 1 - w
                let l0 = lines.row(k), l1 = lines.row(k + 1), o = out.row(r)
                for x in 0..<region.w { o[x] = l0[x] * w + l1[x] * w1 }
            }
        }
        return out
    }
}
