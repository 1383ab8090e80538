import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeSegment

/// Separable Gaussian blur (test-local; clamp-to-edge).
func testBlur(_ v: [Float], _ w: Int, _ h: Int, sigma: Double) -> [Float] {
    let r = Int((3 * sigma).rounded(.up))
    var k = (-r...r).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
    let s = k.reduce(0, +); k = k.map { $0 / s }
    var tmp = [Float](repeating: 0, count: w * h), out = tmp
    for y in 0..<h { for x in 0..<w {
        var a: Float = 0
        for j in -r...r { a += k[j + r] * v[y * w + Swift.min(w - 1, Swift.max(0, x + j))] }
        tmp[y * w + x] = a
    } }
    for y in 0..<h { for x in 0..<w {
        var a: Float = 0
        for j in -r...r { a += k[j + r] * tmp[Swift.min(h - 1, Swift.max(0, y + j)) * w + x] }
        out[y * w + x] = a
    } }
    return out
}

/// A generated fluorescence-like nuclear plane with truth: ellipses (diameter ~d, aspect up to
/// 1.8) packed so that many touch, brightness varied (`dimFraction` at 0.35x), chromatin
/// texture, PSF blur 1.2 px, background with a gradient, noise.
struct GeneratedNuclei {
    var plane: [Float]
    var truth: [UInt32]
    var count: Int
    var dimLabels: Set<UInt32>

    init(width w: Int, height h: Int, diameter d: Double, density: Double, dimFraction: Double = 0.1, texture: Float = 0.25, seed: UInt64) {
        var g = TestRNG(s: seed)
        var truth = [UInt32](repeating: 0, count: w * h)
        var sharp = [Float](repeating: 0, count: w * h)
        var centres: [(Double, Double, Double)] = []
        var dim = Set<UInt32>()
        let target = Int(density * Double(w * h) / (Double.pi * d * d / 4))
        var tries = 0
        while centres.count < target && tries < target * 50 {
            tries += 1
            let r = d / 2 * exp(Double.random(in: -0.2...0.2, using: &g))
            let cx = Double.random(in: 0..<Double(w), using: &g), cy = Double.random(in: 0..<Double(h), using: &g)
            // touching allowed, overlap limited: centre distance >= 0.8 (r1 + r2)
            if centres.contains(where: { let dx = $0.0 - cx, dy = $0.1 - cy; return dx * dx + dy * dy < pow(0.8 * ($0.2 + r), 2) }) { continue }
            centres.append((cx, cy, r))
            let lab = UInt32(centres.count)
            let aspect = Double.random(in: 1...1.8, using: &g), th = Double.random(in: 0..<Double.pi, using: &g)
            let a = r * aspect.squareRoot(), b = r / aspect.squareRoot()
            var amp = Float(exp(Double.random(in: -0.3...0.3, using: &g))) * 1000
            if Double.random(in: 0..<1, using: &g) < dimFraction { amp *= 0.35; dim.insert(lab) }
            let R = Int(a) + 2
            for y in Swift.max(0, Int(cy) - R)...Swift.min(h - 1, Int(cy) + R) {
                for x in Swift.max(0, Int(cx) - R)...Swift.min(w - 1, Int(cx) + R) {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    let u = dx * cos(th) + dy * sin(th), v = -dx * sin(th) + dy * cos(th)
                    // later nuclei lie under earlier ones (painted only where free)
                    if (u / a) * (u / a) + (v / b) * (v / b) <= 1 && truth[y * w + x] == 0 {
                        truth[y * w + x] = lab
                        sharp[y * w + x] = amp * (1 + texture * Float.random(in: -1...1, using: &g))
                    }
                }
            }
        }
        var img = testBlur(sharp, w, h, sigma: 1.2)
        for y in 0..<h { for x in 0..<w {
            let bg: Float = 60 + 80 * Float(x) / Float(w)
            let i = y * w + x
            img[i] = ((img[i] + bg) * (1 + 0.05 * Float.random(in: -1...1, using: &g))).rounded()
        } }
        plane = img; self.truth = truth; count = centres.count; dimLabels = dim
    }
}

final class AccuracyTests: XCTestCase {
    func testMatchHandMade() {
        // 6 x 4: truth 1 = left 3x4 block, truth 7 = right 3x4 block (non-contiguous labels)
        let w = 6, h = 4
        var t = [UInt32](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { t[y * w + x] = x < 3 ? 1 : 7 } }
        // identical
        var r = Accuracy.match(truth: t, predicted: t, width: w, height: h)
        XCTAssertEqual(r.truePositives, 2); XCTAssertEqual(r.falsePositives, 0); XCTAssertEqual(r.falseNegatives, 0)
        XCTAssertEqual(r.f1, 1); XCTAssertEqual(r.meanIoU, 1)
        // relabelled prediction, left object shrunk to 2 columns (IoU 8/12), right one missing
        var p = [UInt32](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<2 { p[y * w + x] = 42 } }
        r = Accuracy.match(truth: t, predicted: p, width: w, height: h)
        XCTAssertEqual(r.truePositives, 1); XCTAssertEqual(r.falsePositives, 0); XCTAssertEqual(r.falseNegatives, 1)
        XCTAssertEqual(r.precision, 1); XCTAssertEqual(r.recall, 0.5)
        XCTAssertEqual(r.f1, 2.0 / 3.0, accuracy: 1e-12); XCTAssertEqual(r.meanIoU, 8.0 / 12.0, accuracy: 1e-12)
        // one prediction covering both objects: IoU 0.5 each -> matched once at 0.5 (>=), no match above
        let all = [UInt32](repeating: 3, count: w * h)
        r = Accuracy.match(truth: t, predicted: all, width: w, height: h)
        XCTAssertEqual(r.truePositives, 1); XCTAssertEqual(r.falseNegatives, 1); XCTAssertEqual(r.falsePositives, 0)
        r = Accuracy.match(truth: t, predicted: all, width: w, height: h, iouThreshold: 0.51)
        XCTAssertEqual(r.truePositives, 0); XCTAssertEqual(r.falseNegatives, 2); XCTAssertEqual(r.falsePositives, 1)
        XCTAssertEqual(r.f1, 0); XCTAssertEqual(r.meanIoU, 0)
        // over-split: left block in two halves (IoU 0.5 and 0.5 < 0.6) -> two FPs at 0.6
        var s = t
        for y in 0..<2 { for x in 0..<3 { s[y * w + x] = 9 } }
        r = Accuracy.match(truth: t, predicted: s, width: w, height: h, iouThreshold: 0.6)
        XCTAssertEqual(r.truePositives, 1); XCTAssertEqual(r.falsePositives, 2); XCTAssertEqual(r.falseNegatives, 1)
        // greedy at a low threshold: the higher-IoU pair wins
        r = Accuracy.match(truth: t, predicted: s, width: w, height: h, iouThreshold: 0.1)
        XCTAssertEqual(r.truePositives, 2); XCTAssertEqual(r.falsePositives, 1); XCTAssertEqual(r.falseNegatives, 0)
        XCTAssertEqual(r.meanIoU, 0.75, accuracy: 1e-12)
        // empty cases
        let z = [UInt32](repeating: 0, count: w * h)
        XCTAssertEqual(Accuracy.match(truth: z, predicted: z, width: w, height: h).f1, 1)
        r = Accuracy.match(truth: z, predicted: t, width: w, height: h)
        XCTAssertEqual(r.falsePositives, 2); XCTAssertEqual(r.f1, 0); XCTAssertEqual(r.recall, 1)
    }

    func testMatchVsBruteForce() {
        var g = TestRNG(s: 77)
        let w = 40, h = 30
        for _ in 0..<5 {
            let t = (0..<(w * h)).map { i in UInt32((i % w) / 8 + 4 * ((i / w) / 10)) * (Double.random(in: 0..<1, using: &g) < 0.9 ? 1 : 0) }
            let p = (0..<(w * h)).map { i in UInt32(((i % w) + 3) / 7 + 10 * ((i / w + 2) / 9)) + 1 }
            let r = Accuracy.match(truth: t, predicted: p, width: w, height: h)
            var tp = 0, s = 0.0
            for a in Set(t) where a != 0 { for b in Set(p) where b != 0 {
                var i = 0, u = 0
                for k in 0..<(w * h) { if t[k] == a && p[k] == b { i += 1 }; if t[k] == a || p[k] == b { u += 1 } }
                let v = Double(i) / Double(u)
                if v > 0.5 { tp += 1; s += v }
            } }
            XCTAssertEqual(r.truePositives, tp)
            XCTAssertEqual(r.falsePositives, Set(p).subtracting([0]).count - tp)
            XCTAssertEqual(r.falseNegatives, Set(t).subtracting([0]).count - tp)
            if tp > 0 { XCTAssertEqual(r.meanIoU, s / Double(tp), accuracy: 1e-12) }
        }
    }

    func testGeneratedImageF1() {
        for (d, seed) in [(12.0, UInt64(3)), (9.0, UInt64(4))] {
            let gen = GeneratedNuclei(width: 256, height: 256, diameter: d, density: 0.45, seed: seed)
            let p = NucleiParams(minArea: Int(0.1 * d * d), nucleusDiameter: d)
            var pi = p; pi.split = .intensity
            var pc = p; pc.split = .distance; pc.smoothSigma = 2
            let classic = Segmenter.nuclei(gen.plane, width: 256, height: 256, params: pc)
            let rc = Accuracy.match(truth: gen.truth, predicted: classic.labels, width: 256, height: 256)
            for (name, params) in [("blend", p), ("intensity", pi)] {
                let ours = Segmenter.nuclei(gen.plane, width: 256, height: 256, params: params)
                let ro = Accuracy.match(truth: gen.truth, predicted: ours.labels, width: 256, height: 256)
                // dim nuclei (0.35x) found: best IoU >= 0.5
                let best = bestIoU(truth: gen.truth, predicted: ours.labels)
                let dimFound = gen.dimLabels.filter { (best[$0] ?? 0) >= 0.5 }.count
                print(String(format: "GEN d=%.0f truth=%d %@ n=%d F1=%.3f mIoU=%.3f dim %d/%d | distance n=%d F1=%.3f mIoU=%.3f", d, gen.count,
                             name, ours.count, ro.f1, ro.meanIoU, dimFound, gen.dimLabels.count, classic.count, rc.f1, rc.meanIoU))
                // floors set from measurements. intensity (tuned on this generator): d 12: F1 0.896,
                // mIoU 0.851; d 9: 0.834, 0.827; dim found 14/19 and 39/53. blend (the default, tuned
                // on real nuclei, whose expert outlines sit ~0.3 of the peak out, wider than these
                // truths): d 12: 0.825, 0.744, dim 14/19; d 9: 0.749, 0.730, 21/53. Distance recipe:
                // 0.590 and 0.394.
                if name == "intensity" {
                    XCTAssertGreaterThan(ro.f1, d == 12 ? 0.86 : 0.80)
                    XCTAssertGreaterThan(ro.meanIoU, 0.80)
                    XCTAssertGreaterThanOrEqual(Double(dimFound), 0.6 * Double(gen.dimLabels.count))
                } else {
                    XCTAssertGreaterThan(ro.f1, d == 12 ? 0.80 : 0.72)
                    XCTAssertGreaterThan(ro.meanIoU, 0.71)
                    XCTAssertGreaterThanOrEqual(Double(dimFound), (d == 12 ? 0.6 : 0.35) * Double(gen.dimLabels.count))
                }
                XCTAssertGreaterThan(ro.f1, rc.f1 + 0.2)
            }
        }
    }

    /// Best IoU of every truth label with any predicted label.
    func bestIoU(truth: [UInt32], predicted: [UInt32]) -> [UInt32: Double] {
        var at: [UInt32: Int] = [:], ap: [UInt32: Int] = [:], ov: [UInt64: Int] = [:]
        for i in 0..<truth.count {
            let t = truth[i], p = predicted[i]
            if t != 0 { at[t, default: 0] += 1 }
            if p != 0 { ap[p, default: 0] += 1 }
            if t != 0 && p != 0 { ov[UInt64(t) << 32 | UInt64(p), default: 0] += 1 }
        }
        var best: [UInt32: Double] = [:]
        for (k, c) in ov {
            let t = UInt32(k >> 32), p = UInt32(k & 0xffff_ffff)
            best[t] = Swift.max(best[t] ?? 0, Double(c) / Double(at[t]! + ap[p]! - c))
        }
        return best
    }

    /// Paints blurred discs (cx, cy, r, amplitude) on background 100 with 4 % noise; truth by disc (first wins).
    func blurredDiscs(_ w: Int, _ h: Int, _ discs: [(Double, Double, Double, Float)], texture: Float = 0, seed: UInt64) -> ([Float], [UInt32]) {
        var g = TestRNG(s: seed)
        var sharp = [Float](repeating: 0, count: w * h), truth = [UInt32](repeating: 0, count: w * h)
        for (k, dsc) in discs.enumerated() {
            let m = disc(w, h, cx: dsc.0, cy: dsc.1, r: dsc.2)
            for i in 0..<(w * h) where m[i] && truth[i] == 0 { truth[i] = UInt32(k + 1); sharp[i] = dsc.3 * (1 + texture * Float.random(in: -1...1, using: &g)) }
        }
        var img = testBlur(sharp, w, h, sigma: 1.2)
        for i in 0..<(w * h) { img[i] = ((img[i] + 100) * (1 + 0.04 * Float.random(in: -1...1, using: &g))).rounded() }
        return (img, truth)
    }

    func testTouchingBlurredPairsSplit() {
        // pairs of discs at 0.9 ... 1.0 diameters apart, blurred (PSF 1.2 px). Measured limit:
        // at 0.85 diameters (15 % overlap) and below the pair stays merged.
        for (k, sep) in [0.9, 0.95, 1.0].enumerated() {
            let r = 6.0, w = 60, h = 40
            let (img, truth) = blurredDiscs(w, h, [(22, 20, r, 1000), (22 + sep * 2 * r, 20, r, 900)], seed: UInt64(10 + k))
            let seg = Segmenter.nuclei(img, width: w, height: h, params: NucleiParams(minArea: 10, nucleusDiameter: 12))
            let m = Accuracy.match(truth: truth, predicted: seg.labels, width: w, height: h)
            XCTAssertEqual(seg.count, 2, "separation \(sep)")
            XCTAssertEqual(m.truePositives, 2, "separation \(sep)")
            XCTAssertGreaterThan(m.meanIoU, 0.75)
        }
    }

    func testDimBesideBrightFound() {
        // a dim nucleus (30 % ... 50 % of its neighbour) touching a bright one, and a lone dim one.
        // Measured limits: at 25 % the dim one is lost; at 50 ... 70 % it forms no maximum of its own
        // (the blurred contact is brighter than its centre) and stays merged with the bright one.
        for (k, f) in [Float(0.3), 0.35, 0.4].enumerated() {
            let w = 80, h = 40
            let (img, truth) = blurredDiscs(w, h, [(20, 20, 7, 2000), (32, 20, 6, 2000 * f), (62, 20, 6, 2000 * f)], seed: UInt64(20 + k))
            let seg = Segmenter.nuclei(img, width: w, height: h, params: NucleiParams(minArea: 10, nucleusDiameter: 13))
            let m = Accuracy.match(truth: truth, predicted: seg.labels, width: w, height: h)
            XCTAssertEqual(m.truePositives, 3, "dim fraction \(f)")
            XCTAssertEqual(m.falsePositives, 0, "dim fraction \(f)")
            // at 30 % the dim nuclei are only just above the permissive mask (half the threshold Otsu
            // sets between the bright one and the background) and come out clipped: mean IoU 0.69
            XCTAssertGreaterThan(m.meanIoU, f < 0.35 ? 0.65 : 0.7, "dim fraction \(f)")
        }
    }

    func testTexturedNucleiNotOverSplit() {
        // isolated strongly textured (+-40 %) nuclei, diameter 10 ... 20, one object each
        var discs: [(Double, Double, Double, Float)] = []
        for gy in 0..<5 { for gx in 0..<5 { discs.append((20 + Double(gx) * 40, 20 + Double(gy) * 40, 5 + Double((gx + gy) % 6), 1000)) } }
        let (img, truth) = blurredDiscs(200, 200, discs, texture: 0.4, seed: 31)
        let seg = Segmenter.nuclei(img, width: 200, height: 200, params: NucleiParams(minArea: 10, nucleusDiameter: 14))
        let m = Accuracy.match(truth: truth, predicted: seg.labels, width: 200, height: 200)
        XCTAssertEqual(seg.count, 25)
        XCTAssertEqual(m.truePositives, 25)
        XCTAssertGreaterThan(m.meanIoU, 0.8)
    }

    func testFixedThresholdAndScaleInvariance() {
        let gen = GeneratedNuclei(width: 160, height: 160, diameter: 12, density: 0.4, seed: 9)
        let p = NucleiParams(nucleusDiameter: 12)
        let a = Segmenter.nuclei(gen.plane, width: 160, height: 160, params: p)
        // the given threshold reproduces the Otsu run exactly (what a tiled run relies on)
        var pf = p; pf.threshold = a.threshold
        let b = Segmenter.nuclei(gen.plane, width: 160, height: 160, params: pf)
        XCTAssertEqual(a.labels, b.labels); XCTAssertEqual(b.threshold, a.threshold)
        // intensity scale (uint16 counts vs 0...1 floats) does not change the result materially
        let scaled = gen.plane.map { $0 / 65535 }
        let c = Segmenter.nuclei(scaled, width: 160, height: 160, params: p)
        let m = Accuracy.match(truth: a.labels, predicted: c.labels, width: 160, height: 160)
        XCTAssertGreaterThan(m.f1, 0.97)
        // adaptive threshold runs and stays accurate on this evenly lit image
        var pa = p; pa.thresholdMethod = .adaptive
        let d = Segmenter.nuclei(gen.plane, width: 160, height: 160, params: pa)
        XCTAssertGreaterThan(Accuracy.match(truth: gen.truth, predicted: d.labels, width: 160, height: 160).f1, 0.7)
        // the classic recipe is still available
        var pd = p; pd.split = .distance
        XCTAssertGreaterThan(Segmenter.nuclei(gen.plane, width: 160, height: 160, params: pd).count, 0)
    }
}
