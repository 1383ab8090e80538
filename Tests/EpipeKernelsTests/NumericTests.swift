import XCTest
import EpipeTestSupport
import EpipeKernels

/// The numeric kernels: the generator, the float sort key, Otsu's split and the Gaussian.
final class NumericTests: XCTestCase {
    /// SplitMix64's published first outputs for seed 0; TestRNG is the same generator.
    func testSplitMix64ReferenceSequence() {
        var g = SplitMix64(seed: 0)
        XCTAssertEqual([g.next(), g.next(), g.next()], [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        var t = TestRNG(s: 0)
        XCTAssertEqual(t.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(SplitMix64.hash(0), 0xE220_A839_7B1D_CDAF, "hash(v) is the first output of seed v")
        var u = SplitMix64(seed: 42)
        for _ in 0..<1000 { let x = u.nextUnit(); XCTAssertTrue(x >= 0 && x < 1) }
    }

    /// The keys order floats as `<` does; -0 sits just below +0.
    func testSortKeyOrdersLikeFloatComparison() {
        var rng = TestRNG(s: 9)
        var values: [Float] = [-.infinity, -.greatestFiniteMagnitude, -1e30, -2, -1, -.leastNormalMagnitude,
                               -.leastNonzeroMagnitude, -0.0, 0.0, .leastNonzeroMagnitude, .leastNormalMagnitude,
                               1, 1.5, 1e30, .greatestFiniteMagnitude, .infinity]
        for _ in 0..<300 { values.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))) }
        values = values.filter { !$0.isNaN }
        for a in values {
            for b in values where a < b { XCTAssertLessThan(a.sortKey, b.sortKey, "\(a) < \(b)") }
        }
        XCTAssertEqual(Float(0).sortKey - Float(-0.0).sortKey, 1)
        let sortedByKey = values.sorted { $0.sortKey < $1.sortKey }
        XCTAssertTrue(zip(sortedByKey, sortedByKey.dropFirst()).allSatisfy { $0 <= $1 }, "sorting by key sorts the floats")
    }

    /// Two separated modes: the split falls at the last bin of the lower mode (ties over the empty
    /// bins between them go to the lowest split); the level form offsets by the first occupied level.
    func testOtsuOnBimodalHistogram() {
        let hist: [Double] = [0, 5, 5, 0, 0, 0, 5, 5, 0]
        XCTAssertEqual(Otsu.split(hist), 2)
        var counts = [Int](repeating: 0, count: 200)
        for v in 40...60 { counts[v] = 100 - abs(v - 50) * 4 }       // a mode at 50
        for v in 140...170 { counts[v] = 60 - abs(v - 155) * 2 }    // a wider one at 155
        let t = Otsu.level(counts: counts)
        XCTAssertEqual(t, 60, "the lower mode's last level")
        XCTAssertEqual(Otsu.level(counts: [0, 0, 3, 0]), 2, "one level: that level")
        XCTAssertEqual(Otsu.level(counts: [0, 0]), 0)
        // against a brute force of the between-class variance on random histograms
        var rng = TestRNG(s: 4)
        for _ in 0..<50 {
            let h = (0..<Int.random(in: 2...40, using: &rng)).map { _ in Double(Int.random(in: 0...20, using: &rng)) }
            let s = Otsu.split(h)
            func bcv(_ k: Int) -> Double {
                let w0 = h[0...k].reduce(0, +), w1 = h[(k + 1)...].reduce(0, +)
                guard w0 > 0, w1 > 0 else { return -1 }
                let m0 = zip(h[0...k], 0...).map { $0 * Double($1) }.reduce(0, +) / w0
                let m1 = zip(h[(k + 1)...], (k + 1)...).map { $0 * Double($1) }.reduce(0, +) / w1
                return w0 * w1 * (m0 - m1) * (m0 - m1)
            }
            let best = (0..<(h.count - 1)).map(bcv).max()!
            if best > 0 { XCTAssertEqual(bcv(s), best, accuracy: best * 1e-9, "\(h)") }
        }
    }

    /// Gaussian.blur is the direct convolution with the normalised kernel on the edge-replicated
    /// plane (to Float rounding), and bit for bit the filter plan's Gaussian, for any size
    /// (also narrower than the kernel).
    func testGaussianMatchesDirectConvolutionAndThePlan() {
        var rng = TestRNG(s: 12)
        for (w, h, sigma) in [(37, 23, 1.0), (64, 41, 2.5), (5, 3, 2.0), (1, 9, 1.3), (50, 1, 0.7), (16, 16, 0.0)] {
            let img = (0..<(w * h)).map { _ in Float(Int.random(in: 0...4000, using: &rng)) }
            let blurred = Gaussian.blur(img, width: w, height: h, sigma: sigma)
            XCTAssertEqual(blurred, FilterPlan([.gaussian(sigma: sigma)]).apply(plane: img, width: w, height: h).values, "\(w)x\(h) sigma \(sigma)")
            let r = Gaussian.radius(sigma: sigma)
            XCTAssertEqual(r, sigma > 0 ? Int((3 * sigma).rounded(.up)) : 0)
            var k = (-r...r).map { i in sigma > 0 ? exp(-Double(i * i) / (2 * sigma * sigma)) : 1 }
            let sum = k.reduce(0, +); k = k.map { $0 / sum }
            for y in 0..<h {
                for x in 0..<w {
                    var a = 0.0
                    for j in -r...r {
                        for i in -r...r {
                            let yy = Swift.min(Swift.max(y + j, 0), h - 1), xx = Swift.min(Swift.max(x + i, 0), w - 1)
                            a += k[j + r] * k[i + r] * Double(img[yy * w + xx])
                        }
                    }
                    XCTAssertEqual(Double(blurred[y * w + x]), a, accuracy: 1e-3 + 1e-5 * abs(a), "\(w)x\(h) sigma \(sigma) at \(x),\(y)")
                }
            }
        }
    }
}
