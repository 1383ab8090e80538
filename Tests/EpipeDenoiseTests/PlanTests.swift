import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeDenoise
@testable import EpipeKernels

// MARK: - Direct (naive) reference implementations of the documented op semantics.
// The whole image is padded by P >= plan.halo (P a multiple of 8, so absolute shrink-block
// alignment is kept) with edge replication; every op is then applied naively on the padded
// array (clamping at the padded border, which only affects pixels within the halo of the
// border) and the centre is cropped. This is the "infinite edge-replicated plane" semantics.

struct Img {
    var w: Int, h: Int, v: [Float]
    subscript(_ x: Int, _ y: Int) -> Float { v[min(max(y, 0), h - 1) * w + min(max(x, 0), w - 1)] }
}

func refPad(_ a: [Float], _ w: Int, _ h: Int, _ P: Int) -> Img {
    let src = Img(w: w, h: h, v: a)
    var o = Img(w: w + 2 * P, h: h + 2 * P, v: [])
    o.v.reserveCapacity(o.w * o.h)
    for y in 0..<o.h { for x in 0..<o.w { o.v.append(src[x - P, y - P]) } }
    return o
}

func refCrop(_ a: Img, _ P: Int, _ w: Int, _ h: Int) -> [Float] {
    var o: [Float] = []
    for y in 0..<h { for x in 0..<w { o.append(a.v[(y + P) * a.w + x + P]) } }
    return o
}

func refMap(_ a: Img, _ f: (Int, Int) -> Float) -> Img {
    var o = Img(w: a.w, h: a.h, v: [Float](repeating: 0, count: a.v.count))
    for y in 0..<a.h { for x in 0..<a.w { o.v[y * a.w + x] = f(x, y) } }
    return o
}

func refMedian(_ a: Img) -> Img {
    refMap(a) { x, y in
        var n: [Float] = []
        for dy in -1...1 { for dx in -1...1 { n.append(a[x + dx, y + dy]) } }
        return n.sorted()[4]
    }
}

func refHot(_ a: Img, _ t: Float, count: inout Int, P: Int, w: Int, h: Int) -> Img {
    let m = refMedian(a)
    var c = 0
    let o = refMap(a) { x, y in
        let v = a[x, y], md = m[x, y]
        if v - md > t {
            if x >= P && x < P + w && y >= P && y < P + h { c += 1 }
            return md
        }
        return v
    }
    count += c
    return o
}

func refDiskMorph(_ a: Img, _ r: Int, erode: Bool) -> Img {
    refMap(a) { x, y in
        var m: Float = erode ? .infinity : -.infinity
        for dy in -r...r { for dx in -r...r where dx * dx + dy * dy <= r * r {
            let v = a[x + dx, y + dy]
            m = erode ? min(m, v) : max(m, v)
        } }
        return m
    }
}

func refTophat(_ a: Img, _ r: Int) -> Img {
    let open = refDiskMorph(refDiskMorph(a, r, erode: true), r, erode: false)
    return refMap(a) { x, y in max(0, a[x, y] - open[x, y]) }
}

/// Padded-array rolling ball; `P` = padding (absolute coordinate = padded - P), P % s == 0.
func refRollingBall(_ a: Img, _ radius: Double, light: Bool, P: Int) -> Img {
    let ball = RollingBall(radius: radius)
    let s = ball.shrinkFactor, hw = ball.halfWidth, n = 2 * hw + 1
    let sign: Float = light ? -1 : 1
    let sw = (a.w + s - 1) / s, sh = (a.h + s - 1) / s
    var S = Img(w: sw, h: sh, v: [Float](repeating: 0, count: sw * sh))
    for i in 0..<sh { for j in 0..<sw {
        var m = Float.greatestFiniteMagnitude
        for y in (i * s)..<(i * s + s) { for x in (j * s)..<(j * s + s) { m = min(m, sign * a[x, y]) } }
        S.v[i * sw + j] = m
    } }
    let E = refMap(S) { x, y in
        var m = Float.infinity
        for dy in 0..<n { for dx in 0..<n { m = min(m, S[x + dx - hw, y + dy - hw] - ball.z[dy * n + dx]) } }
        return m
    }
    let B = refMap(E) { x, y in
        var m = -Float.infinity
        for dy in 0..<n { for dx in 0..<n { m = max(m, E[x + dx - hw, y + dy - hw] + ball.z[dy * n + dx]) } }
        return m
    }
    let bg: Img
    if s == 1 { bg = B } else {
        func wk(_ i: Int) -> (Int, Float) {   // padded coordinate -> padded small index, weight
            let c = i - P
            let k = floorDiv(c - s / 2, s)
            let d = (Float(c) + 0.5) / Float(s) - (Float(k) + 0.5)
            return (k + P / s, 1 - d)
        }
        bg = refMap(a) { x, y in
            let (kx, wx) = wk(x), (ky, wy) = wk(y)
            let l0 = B[kx, ky] * wx + B[kx + 1, ky] * (1 - wx)
            let l1 = B[kx, ky + 1] * wx + B[kx + 1, ky + 1] * (1 - wx)
            return l0 * wy + l1 * (1 - wy)
        }
    }
    return refMap(a) { x, y in max(0, sign * a[x, y] - bg[x, y]) }
}

func refGaussian(_ a: Img, _ sigma: Double) -> Img {
    Img(w: a.w, h: a.h, v: naiveGaussian(a.v, a.w, a.h, sigma))
}

/// Whole-image reference of a plan; second value = hot pixel count.
func refPlan(_ plan: FilterPlan, _ img: [Float], _ w: Int, _ h: Int) -> ([Float], Int) {
    let P = (plan.halo + 2 + 7) / 8 * 8
    var a = refPad(img, w, h, P)
    var hot = 0
    for op in plan.ops {
        switch op {
        case .hotPixels(let t): a = refHot(a, t, count: &hot, P: P, w: w, h: h)
        case .median3: a = refMedian(a)
        case .tophat(let r): a = refTophat(a, r)
        case .rollingBall(let r, let l): a = refRollingBall(a, r, light: l, P: P)
        case .gaussian(let s): a = refGaussian(a, s)
        }
    }
    return (refCrop(a, P, w, h), hot)
}

/// Smooth background + spots + hot pixels, integer valued.
func syntheticTissue(_ w: Int, _ h: Int, seed: UInt64, hot: Int = 10) -> [Float] {
    var g = TestRNG(s: seed)
    var v = [Float](repeating: 0, count: w * h)
    var spots: [(Double, Double, Double)] = []
    for _ in 0..<(w * h / 150) { spots.append((Double.random(in: 0..<Double(w), using: &g), Double.random(in: 0..<Double(h), using: &g), Double.random(in: 50...800, using: &g))) }
    for y in 0..<h { for x in 0..<w {
        var s = 100 + 0.3 * Double(x) + 0.2 * Double(y) + 20 * sin(Double(x) / 17) * cos(Double(y) / 23)
        for (sx, sy, amp) in spots {
            let d2 = (Double(x) - sx) * (Double(x) - sx) + (Double(y) - sy) * (Double(y) - sy)
            if d2 < 60 { s += amp * exp(-d2 / 4) }
        }
        s += Double.random(in: -5...5, using: &g)
        v[y * w + x] = Float(s.rounded())
    } }
    for _ in 0..<hot { v[Int.random(in: 0..<(w * h), using: &g)] = Float(Int.random(in: 3000...60000, using: &g)) }
    return v
}

final class PlanTests: XCTestCase {
    /// Band for image rows [y0, y0+rows) with `halo` edge-replicated rows each side.
    func band(_ img: [Float], _ w: Int, _ h: Int, _ y0: Int, _ rows: Int, _ halo: Int) -> [Float] {
        var b: [Float] = []
        for y in (y0 - halo)..<(y0 + rows + halo) { b += img[clampi(y, h) * w ..< clampi(y, h) * w + w] }
        return b
    }

    func checkBandInvariance(_ plan: FilterPlan, _ img: [Float], _ w: Int, _ h: Int, file: StaticString = #filePath, line: UInt = #line) -> (values: [Float], hotPixels: Int) {
        let whole = plan.apply(plane: img, width: w, height: h)
        let H = plan.halo
        var g = TestRNG(s: UInt64(w * 7 + h))
        var splits: [[Int]] = [[1], [3], [7], [16], [max(1, h - 1)]]
        var rnd: [Int] = []
        var t = 0
        while t < h { let n = Int.random(in: 1...max(1, h / 3), using: &g); rnd.append(n); t += n }
        splits.append(rnd)
        for split in splits {
            var stitched: [Float] = [], hot = 0, y = 0, i = 0
            while y < h {
                let rows = min(split[i % split.count], h - y); i += 1
                let b = band(img, w, h, y, rows, H)
                let r = b.withUnsafeBufferPointer {
                    plan.apply(band: $0, width: w, haloTop: H, rows: rows, haloBottom: H, y0: y, imageHeight: h)
                }
                stitched += r.values; hot += r.hotPixels
                y += rows
            }
            XCTAssertEqual(stitched, whole.values, "\(plan.ops) split \(split.prefix(4))", file: file, line: line)
            XCTAssertEqual(hot, whole.hotPixels, file: file, line: line)
        }
        // truncated bands at the true edges (no replicated rows), and surplus halo
        for (y0, rows) in [(0, 5), (h - 6, 6), (h / 2, 3)] where y0 >= 0 && y0 + rows <= h {
            let top = min(H, y0), bottom = min(H, h - y0 - rows)
            let b = Array(img[(y0 - top) * w ..< (y0 + rows + bottom) * w])
            let r = b.withUnsafeBufferPointer { plan.apply(band: $0, width: w, haloTop: top, rows: rows, haloBottom: bottom, y0: y0, imageHeight: h) }
            XCTAssertEqual(r.values, Array(whole.values[y0 * w ..< (y0 + rows) * w]), "truncated band at \(y0)", file: file, line: line)
            let big = band(img, w, h, y0, rows, H + 5)
            let r2 = big.withUnsafeBufferPointer { plan.apply(band: $0, width: w, haloTop: H + 5, rows: rows, haloBottom: H + 5, y0: y0, imageHeight: h) }
            XCTAssertEqual(r2.values, r.values, file: file, line: line)
        }
        return whole
    }

    func testHalos() {
        XCTAssertEqual(FilterOp.median3.halo, 1)
        XCTAssertEqual(FilterOp.hotPixels(threshold: 50).halo, 1)
        XCTAssertEqual(FilterOp.tophat(radius: 7).halo, 14)
        XCTAssertEqual(FilterOp.gaussian(sigma: 1.5).halo, 5)
        // ImageJ balls: r=50 -> s=4, rs=12.5, xtrim=4, hw=9 -> 2*9*4+4+2
        let b50 = RollingBall(radius: 50)
        XCTAssertEqual(b50.shrinkFactor, 4); XCTAssertEqual(b50.halfWidth, 9); XCTAssertEqual(b50.halo, 78)
        let b5 = RollingBall(radius: 5)
        XCTAssertEqual(b5.shrinkFactor, 1); XCTAssertEqual(b5.halfWidth, 4); XCTAssertEqual(b5.halo, 8)
        XCTAssertEqual(RollingBall(radius: 20).shrinkFactor, 2)
        XCTAssertEqual(RollingBall(radius: 150).shrinkFactor, 8)
        XCTAssertEqual(FilterPlan([.hotPixels(threshold: 1), .rollingBall(radius: 50, lightBackground: false), .gaussian(sigma: 1)]).halo, 1 + 78 + 3)
        XCTAssertEqual(Filters.diskChords(3), [0, 2, 2, 3, 2, 2, 0])
        // Codable round trip
        let plan = FilterPlan([.hotPixels(threshold: 50), .median3, .tophat(radius: 4), .rollingBall(radius: 25, lightBackground: true), .gaussian(sigma: 0.8)])
        let data = try! JSONEncoder().encode(plan)
        XCTAssertEqual(try! JSONDecoder().decode(FilterPlan.self, from: data), plan)
    }

    func testSingleOpsExactVsReference() {
        let w = 61, h = 47
        let img = syntheticTissue(w, h, seed: 5, hot: 12)
        let ops: [FilterOp] = [.hotPixels(threshold: 200), .median3, .tophat(radius: 0), .tophat(radius: 1), .tophat(radius: 4),
                                .tophat(radius: 9), .rollingBall(radius: 3, lightBackground: false),
                                .rollingBall(radius: 8, lightBackground: true), .rollingBall(radius: 12, lightBackground: false),
                                .rollingBall(radius: 40, lightBackground: false), .rollingBall(radius: 25, lightBackground: true),
                                .rollingBall(radius: 120, lightBackground: false)]
        for op in ops {
            let plan = FilterPlan([op])
            let got = checkBandInvariance(plan, img, w, h)
            let ref = refPlan(plan, img, w, h)
            XCTAssertEqual(got.values, ref.0, "\(op)")
            XCTAssertEqual(got.hotPixels, ref.1, "\(op)")
            if case .hotPixels = op { XCTAssertGreaterThanOrEqual(got.hotPixels, 10) }
        }
    }

    func testCombinationsExactVsReference() {
        let w = 45, h = 58
        let img = syntheticTissue(w, h, seed: 9, hot: 8)
        let plans: [FilterPlan] = [
            FilterPlan([.hotPixels(threshold: 300), .rollingBall(radius: 20, lightBackground: false)]),
            FilterPlan([.hotPixels(threshold: 300), .median3, .tophat(radius: 5)]),
            FilterPlan([.median3, .rollingBall(radius: 35, lightBackground: false), .tophat(radius: 2), .hotPixels(threshold: 10)]),
            FilterPlan([]),
        ]
        for plan in plans {
            let got = checkBandInvariance(plan, img, w, h)
            let ref = refPlan(plan, img, w, h)
            XCTAssertEqual(got.values, ref.0, "\(plan.ops)")
            XCTAssertEqual(got.hotPixels, ref.1, "\(plan.ops)")
        }
        XCTAssertEqual(FilterPlan([]).apply(plane: img, width: w, height: h).values, img)
        // with a Gaussian: band-invariant exactly, reference within float rounding
        let gp = FilterPlan([.hotPixels(threshold: 300), .rollingBall(radius: 15, lightBackground: false), .gaussian(sigma: 1.2)])
        let got = checkBandInvariance(gp, img, w, h)
        let ref = refPlan(gp, img, w, h)
        for i in 0..<img.count { XCTAssertEqual(got.values[i], ref.0[i], accuracy: max(1e-3, 1e-5 * abs(ref.0[i]))) }
    }

    func testRecipeEquivalence() {
        // the plan [median3, gaussian] is bit-identical to the legacy recipe
        let w = 83, h = 71
        let img = randomImage(w, h, seed: 4, levels: 65536)
        for (m, s) in [(true, 1.0), (false, 2.0), (true, 0.0), (true, 0.6)] {
            let recipe = DenoiseRecipe(median3: m, gaussianSigma: s)
            let legacy = img.withUnsafeBufferPointer { Denoise.apply(recipe, plane: $0, width: w, height: h) }
            var ops: [FilterOp] = m ? [.median3] : []
            if s > 0 { ops.append(.gaussian(sigma: s)) }
            let plan = FilterPlan(ops)
            XCTAssertEqual(plan.halo, recipe.halo)
            XCTAssertEqual(plan.apply(plane: img, width: w, height: h).values, legacy, "\(recipe)")
        }
    }

    func testEdgeCasesSmallImages() {
        for (w, h) in [(1, 1), (1, 7), (7, 1), (2, 3)] {
            let img = randomImage(w, h, seed: UInt64(w * 10 + h), levels: 1000)
            for plan in [FilterPlan([.hotPixels(threshold: 100), .tophat(radius: 3)]),
                         FilterPlan([.rollingBall(radius: 40, lightBackground: false)])] {
                let got = checkBandInvariance(plan, img, w, h)
                XCTAssertEqual(got.values, refPlan(plan, img, w, h).0)
            }
        }
    }

    func testRollingBallFlattensBackground() {
        // flat background + gradient, spots of known amplitude: spots recovered, background ~0
        let w = 160, h = 140
        var img = [Float](repeating: 0, count: w * h)
        var truth = img
        let spots = [(30, 30), (80, 40), (130, 30), (40, 100), (100, 110), (130, 90)]
        for y in 0..<h { for x in 0..<w {
            var s = 0.0
            for (sx, sy) in spots { let d2 = Double((x - sx) * (x - sx) + (y - sy) * (y - sy)); s += 400 * exp(-d2 / 8) }
            truth[y * w + x] = Float(s)
            img[y * w + x] = Float(200 + 0.5 * Double(x) + 0.3 * Double(y) + s)
        } }
        let out = FilterPlan([.rollingBall(radius: 25, lightBackground: false)]).apply(plane: img, width: w, height: h).values
        for (sx, sy) in spots { XCTAssertEqual(out[sy * w + sx], 400, accuracy: 8) }
        var maxBg: Float = 0
        for i in 0..<(w * h) where truth[i] < 1 { maxBg = max(maxBg, out[i]) }
        XCTAssertLessThan(maxBg, 3)
    }
}
