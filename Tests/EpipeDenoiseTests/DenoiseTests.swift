import XCTest
import EpipeTestSupport
@testable import EpipeDenoise
@testable import EpipeKernels


func randomImage(_ w: Int, _ h: Int, seed: UInt64, levels: Int = 1000) -> [Float] {
    var g = TestRNG(s: seed)
    return (0..<(w * h)).map { _ in Float(Int.random(in: 0..<levels, using: &g)) }
}

@inline(__always) func clampi(_ v: Int, _ n: Int) -> Int { min(max(v, 0), n - 1) }

/// Naive 3x3 median with edge replication.
func naiveMedian(_ a: [Float], _ w: Int, _ h: Int) -> [Float] {
    var out = [Float](repeating: 0, count: w * h)
    for y in 0..<h { for x in 0..<w {
        var v: [Float] = []
        for dy in -1...1 { for dx in -1...1 { v.append(a[clampi(y + dy, h) * w + clampi(x + dx, w)]) } }
        v.sort(); out[y * w + x] = v[4]
    } }
    return out
}

/// Naive 2-D Gaussian convolution (double precision), radius ceil(3 sigma), edge replicate.
func naiveGaussian(_ a: [Float], _ w: Int, _ h: Int, _ sigma: Double) -> [Float] {
    let r = Int((3 * sigma).rounded(.up))
    var k2 = 0.0
    for dy in -r...r { for dx in -r...r { k2 += exp(-Double(dx * dx + dy * dy) / (2 * sigma * sigma)) } }
    var out = [Float](repeating: 0, count: w * h)
    for y in 0..<h { for x in 0..<w {
        var s = 0.0
        for dy in -r...r { for dx in -r...r {
            s += exp(-Double(dx * dx + dy * dy) / (2 * sigma * sigma)) * Double(a[clampi(y + dy, h) * w + clampi(x + dx, w)])
        } }
        out[y * w + x] = Float(s / k2)
    } }
    return out
}

final class DenoiseTests: XCTestCase {
    func testMedianExactVsNaive() {
        for (w, h) in [(37, 23), (1, 9), (9, 1), (1, 1), (2, 2), (3, 5), (64, 64), (700, 300)] {
            for levels in [3, 1000] {
                let img = randomImage(w, h, seed: UInt64(w * 100 + h + levels), levels: levels)
                XCTAssertEqual(Denoise.median3x3(img, width: w, height: h), naiveMedian(img, w, h), "\(w)x\(h)")
            }
        }
    }

    func testGaussianVsNaive() {
        for (w, h, sigma) in [(40, 31, 1.0), (17, 50, 2.3), (1, 12, 1.5), (12, 1, 0.7), (300, 260, 1.5)] {
            let img = randomImage(w, h, seed: UInt64(w + h))
            let fast = Gaussian.blur(img, width: w, height: h, sigma: sigma)
            let ref = naiveGaussian(img, w, h, sigma)
            var bad = 0
            for i in 0..<img.count where abs(fast[i] - ref[i]) > max(1e-3 * abs(ref[i]), 1e-3) { bad += 1 }
            XCTAssertEqual(bad, 0, "\(w)x\(h) sigma \(sigma)")
        }
        XCTAssertEqual(DenoiseRecipe(gaussianSigma: 1.5).gaussianRadius, 5)
        XCTAssertEqual(DenoiseRecipe(median3: true, gaussianSigma: 1.0).halo, 4)
        XCTAssertEqual(DenoiseRecipe(median3: false, gaussianSigma: 0).halo, 0)
    }

    /// Builds the band for rows [y0, y0+rows) with `halo` replicated rows, as a caller would.
    func band(_ img: [Float], _ w: Int, _ h: Int, _ y0: Int, _ rows: Int, _ halo: Int) -> [Float] {
        var b: [Float] = []
        for y in (y0 - halo)..<(y0 + rows + halo) { b += img[clampi(y, h) * w ..< clampi(y, h) * w + w] }
        return b
    }

    func testBandInvariance() {
        let w = 53, h = 97
        let img = randomImage(w, h, seed: 7, levels: 5000)
        for recipe in [DenoiseRecipe(), DenoiseRecipe(median3: true, gaussianSigma: 0), DenoiseRecipe(median3: false, gaussianSigma: 2.2),
                       DenoiseRecipe(median3: true, gaussianSigma: 0.5)] {
            let whole = img.withUnsafeBufferPointer { Denoise.apply(recipe, plane: $0, width: w, height: h) }
            // whole image with replicated halos gives the same as the plane convenience
            let full = band(img, w, h, 0, h, recipe.halo)
            let viaBand = full.withUnsafeBufferPointer { Denoise.apply(recipe, band: $0, width: w, haloTop: recipe.halo, rows: h, haloBottom: recipe.halo) }
            XCTAssertEqual(viaBand, whole)
            for bandRows in [1, 2, 5, 16, 33, 96] {
                var stitched: [Float] = []
                var y = 0
                while y < h {
                    let rows = min(bandRows, h - y)
                    let b = band(img, w, h, y, rows, recipe.halo)
                    stitched += b.withUnsafeBufferPointer {
                        Denoise.apply(recipe, band: $0, width: w, haloTop: recipe.halo, rows: rows, haloBottom: recipe.halo)
                    }
                    y += rows
                }
                XCTAssertEqual(stitched, whole, "recipe \(recipe) bands of \(bandRows)")
            }
            // bands truncated at the image edges (no replicated rows passed) give the same result
            for (y0, rows) in [(0, 7), (90, 7), (0, h), (3, 10)] {
                let top = min(recipe.halo, y0), bottom = min(recipe.halo, h - y0 - rows)
                let b = Array(img[(y0 - top) * w ..< (y0 + rows + bottom) * w])
                let r = b.withUnsafeBufferPointer { Denoise.apply(recipe, band: $0, width: w, haloTop: top, rows: rows, haloBottom: bottom) }
                XCTAssertEqual(r, Array(whole[y0 * w ..< (y0 + rows) * w]), "truncated band at \(y0)")
            }
            // larger halos than needed change nothing
            let big = band(img, w, h, 10, 20, recipe.halo + 3)
            let r = big.withUnsafeBufferPointer { Denoise.apply(recipe, band: $0, width: w, haloTop: recipe.halo + 3, rows: 20, haloBottom: recipe.halo + 3) }
            XCTAssertEqual(r, Array(whole[10 * w ..< 30 * w]))
        }
    }

    func testRecipeSemanticsInterior() {
        // away from the top/bottom edges, apply == gaussian(median(img)) as composed whole-plane filters
        let w = 40, h = 40
        let img = randomImage(w, h, seed: 3)
        let recipe = DenoiseRecipe(median3: true, gaussianSigma: 1.0)
        let composed = Gaussian.blur(Denoise.median3x3(img, width: w, height: h), width: w, height: h, sigma: 1.0)
        let applied = img.withUnsafeBufferPointer { Denoise.apply(recipe, plane: $0, width: w, height: h) }
        for y in recipe.halo..<(h - recipe.halo) { for x in recipe.halo..<(w - recipe.halo) {
            XCTAssertEqual(applied[y * w + x], composed[y * w + x], accuracy: 1e-3)
        } }
    }

    func testStats() {
        var v = [Float](repeating: 0, count: 1000)
        for i in 0..<1000 { v[i] = Float(i) }   // 0...999
        v[999] = 65535; v[998] = 70000
        let s = Denoise.stats(v)
        XCTAssertEqual(s.count, 1000)
        XCTAssertEqual(s.p50, 499)   // nearest rank 500 -> value 499
        XCTAssertEqual(s.p1, 9)      // rank 10 -> 9
        XCTAssertEqual(s.p99, 989)   // rank 990 -> 989
        XCTAssertEqual(s.saturatedFraction, 0.002, accuracy: 1e-12)
        XCTAssertEqual(s.zeroFraction, 0.001, accuracy: 1e-12)
        let mean = v.reduce(0.0) { $0 + Double($1) } / 1000
        XCTAssertEqual(s.mean, mean, accuracy: 1e-9)
        XCTAssertEqual(s.max, 70000)
        XCTAssertEqual(s.min, 0)
        // large plane (two-part path) agrees with direct computation
        let big = randomImage(1500, 1000, seed: 11, levels: 65536)
        let sb = Denoise.stats(big)
        let sorted = big.sorted()
        XCTAssertEqual(sb.p50, sorted[Int((0.5 * Double(big.count)).rounded(.up)) - 1])
        XCTAssertEqual(sb.p99, sorted[Int((0.99 * Double(big.count)).rounded(.up)) - 1])
        XCTAssertEqual(sb.mean, big.reduce(0.0) { $0 + Double($1) } / Double(big.count), accuracy: 1e-6)
    }
}
