import XCTest
import Foundation
import EpipeSynth

/// FNV-1a over a band's channels (as uint16 values), nuclei and cells.
func bandChecksum(_ b: SynthBand) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) func eat(_ v: UInt32) { for k in 0..<4 { h = (h ^ UInt64((v >> (8 * UInt32(k))) & 0xff)) &* 0x100_0000_01b3 } }
    for ch in b.channels { for v in ch { eat(UInt32(v)) } }
    for v in b.nuclei { eat(v) }
    for v in b.cells { eat(v) }
    return h
}

final class RealismTests: XCTestCase {
    /// The realism options are off by default and leave today's output byte-identical.
    func testDefaultOutputUnchanged() {
        let a = SyntheticSlide(SynthConfig(width: 192, height: 160, channels: 3, seed: 5))
        var cfg = SynthConfig(width: 160, height: 144, channels: 2, seed: 9, nucleusDiameter: 9)
        cfg.fieldSize = 64; cfg.defocusedFieldFraction = 0.5; cfg.hotPixelRate = 1e-3
        let b = SyntheticSlide(cfg)
        let ca = bandChecksum(a.renderBand(y0: 0, count: 160)), cb = bandChecksum(b.renderBand(y0: 0, count: 144))
        print("CHECKSUM default \(String(ca, radix: 16)) \(String(cb, radix: 16))")
        XCTAssertEqual(ca, 0x829d_2f56_ee23_3fbe, "default output changed")
        XCTAssertEqual(cb, 0x7f79_24dc_a89e_c0fd, "default output changed (fields, defocus, hot pixels)")
    }

    // MARK: - Helpers

    static func config(_ change: (inout SynthConfig) -> Void, size: Int = 256, seed: UInt64 = 8, diameter: Double = 12) -> SynthConfig {
        var cfg = SynthConfig(width: size, height: size, channels: 1, seed: seed, nucleusDiameter: diameter)
        change(&cfg)
        return cfg
    }

    static func render(_ cfg: SynthConfig) -> (SyntheticSlide, SynthBand) {
        let slide = SyntheticSlide(cfg)
        return (slide, slide.renderBand(y0: 0, count: cfg.height))
    }

    /// Separable Gaussian blur, clamp to edge.
    static func blur(_ v: [Float], _ w: Int, _ h: Int, sigma: Double) -> [Float] {
        let r = max(1, Int((3 * sigma).rounded(.up)))
        var k = (-r...r).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
        let s = k.reduce(0, +); k = k.map { $0 / s }
        var tmp = [Float](repeating: 0, count: w * h), out = tmp
        for y in 0..<h { for x in 0..<w {
            var a: Float = 0
            for j in -r...r { a += k[j + r] * v[y * w + min(w - 1, max(0, x + j))] }
            tmp[y * w + x] = a
        } }
        for y in 0..<h { for x in 0..<w {
            var a: Float = 0
            for j in -r...r { a += k[j + r] * tmp[min(h - 1, max(0, y + j)) * w + x] }
            out[y * w + x] = a
        } }
        return out
    }

    /// Mean number of local maxima (strict within a (2r+1)^2 window) of `plane` per nucleus, and the
    /// fraction of nuclei with more than one; nuclei of at least 60 px.
    static func maximaPerNucleus(_ plane: [Float], _ nuclei: [UInt32], _ w: Int, _ h: Int, r: Int) -> (mean: Double, multi: Double) {
        var count: [UInt32: Int] = [:], area: [UInt32: Int] = [:]
        for v in nuclei where v != 0 { area[v, default: 0] += 1 }
        for y in r..<(h - r) { for x in r..<(w - r) {
            let o = y * w + x, id = nuclei[o]
            guard id != 0 else { continue }
            let c = plane[o]
            var isMax = true
            outer: for dy in -r...r { for dx in -r...r where dx != 0 || dy != 0 {
                if plane[o + dy * w + dx] >= c { isMax = false; break outer }
            } }
            if isMax { count[id, default: 0] += 1 }
        } }
        let big = area.filter { $0.value >= 60 }.map(\.key)
        let counts = big.map { count[$0] ?? 0 }
        return (Double(counts.reduce(0, +)) / Double(max(1, counts.count)), Double(counts.filter { $0 > 1 }.count) / Double(max(1, counts.count)))
    }

    /// Mean signal of each nucleus minus the median background (pixels outside every cell).
    static func nucleusMeans(_ b: SynthBand) -> [UInt32: Double] {
        let ch = b.channels[0]
        let bgVals = (0..<ch.count).filter { b.cells[$0] == 0 }.map { ch[$0] }.sorted()
        let bg = bgVals.isEmpty ? 0 : Double(bgVals[bgVals.count / 2])
        var sum: [UInt32: Double] = [:], n: [UInt32: Int] = [:]
        for i in 0..<ch.count where b.nuclei[i] != 0 { sum[b.nuclei[i], default: 0] += Double(ch[i]); n[b.nuclei[i], default: 0] += 1 }
        var out: [UInt32: Double] = [:]
        for (k, s) in sum where n[k]! >= 20 { out[k] = s / Double(n[k]!) - bg }
        return out
    }

    static func percentile(_ v: [Double], _ q: Double) -> Double {
        let s = v.sorted()
        return s[min(s.count - 1, max(0, Int(q * Double(s.count))))]
    }

    // MARK: - Determinism

    func testRealismDeterministicAndBandInvariant() {
        let cfg = Self.config({ $0.apply(.hard); $0.channels = 3 }, size: 200)
        let (a, whole) = Self.render(cfg)
        let again = SyntheticSlide(cfg).renderBand(y0: 0, count: 200)
        XCTAssertEqual(bandChecksum(whole), bandChecksum(again), "same seed, same bytes")
        // Band by band (halo of the wide out-of-focus blur) gives the same bytes.
        var parts = SynthBand(y0: 0, count: 0, width: 200, channels: [[], [], []], nuclei: [], cells: [])
        var y = 0
        for h in [7, 64, 1, 90, 38] {
            let b = a.renderBand(y0: y, count: h)
            for c in 0..<3 { parts.channels[c] += b.channels[c] }
            parts.nuclei += b.nuclei; parts.cells += b.cells
            y += h
        }
        XCTAssertEqual(y, 200)
        XCTAssertEqual(bandChecksum(parts), bandChecksum(whole), "band invariance")
        var other = cfg; other.seed = 9
        XCTAssertNotEqual(bandChecksum(SyntheticSlide(other).renderBand(y0: 0, count: 200)), bandChecksum(whole))
        // Each option changes the image; the labels change only with clumps (placement).
        let (_, plain) = Self.render(Self.config({ $0.channels = 3 }, size: 200))
        for (name, change) in [("texture", { (c: inout SynthConfig) in c.chromatinTexture = 1 }),
                               ("8-bit", { $0.eightBit = true }), ("dim", { $0.brightnessDecades = 1.5 }),
                               ("out-of-focus", { $0.outOfFocusFraction = 0.25 }), ("uneven", { $0.unevenIllumination = 1 })] as [(String, (inout SynthConfig) -> Void)] {
            let (_, b) = Self.render(Self.config({ $0.channels = 3; change(&$0) }, size: 200))
            XCTAssertNotEqual(b.channels[0], plain.channels[0], name)
            XCTAssertEqual(b.nuclei, plain.nuclei, "\(name): ground truth unchanged")
        }
        // The preset: hard turns every option on, none turns them off again.
        var h = SynthConfig(width: 8, height: 8)
        h.apply(.hard)
        XCTAssert(h.chromatinTexture > 0 && h.eightBit && h.brightnessDecades > 0 && h.outOfFocusFraction > 0 && h.clumping > 0 && h.unevenIllumination > 0)
        h.apply(.none)
        XCTAssertEqual(h, SynthConfig(width: 8, height: 8))
    }

    func testRealismConfigCodable() throws {
        var cfg = SynthConfig(width: 100, height: 50, channels: 3, seed: 77)
        cfg.apply(.hard); cfg.outOfFocusSigma = 2.5
        XCTAssertEqual(try JSONDecoder().decode(SynthConfig.self, from: try JSONEncoder().encode(cfg)), cfg)
        let partial = try JSONDecoder().decode(SynthConfig.self, from: Data(#"{"width": 10, "height": 20, "eightBit": true, "clumping": 0.5}"#.utf8))
        var want = SynthConfig(width: 10, height: 20); want.eightBit = true; want.clumping = 0.5
        XCTAssertEqual(partial, want)
    }

    // MARK: - Each option measurably present

    func testChromatinTextureMakesSeveralMaximaPerNucleus() {
        // Noise-free, so the maxima are the stain's own: smoothed at D/16, strict maxima in a 3x3 window
        // (BBBC039 measured the same way, with its noise: 1.7-2.0 maxima per nucleus, 50-68 % with several).
        let quiet: (inout SynthConfig) -> Void = { $0.noiseScale = 0; $0.hotPixelRate = 0 }
        let (_, plain) = Self.render(Self.config(quiet))
        let (_, tex) = Self.render(Self.config({ quiet(&$0); $0.chromatinTexture = 1 }))
        let (_, half) = Self.render(Self.config({ quiet(&$0); $0.chromatinTexture = 0.5 }))
        func maxima(_ b: SynthBand) -> (mean: Double, multi: Double) {
            Self.maximaPerNucleus(Self.blur(b.channels[0], 256, 256, sigma: 0.75), b.nuclei, 256, 256, r: 1)
        }
        let m0 = maxima(plain), m1 = maxima(tex), mh = maxima(half)
        // Within-nucleus contrast: coefficient of variation of the pixels, median over nuclei.
        func cv(_ b: SynthBand) -> Double {
            var s: [UInt32: (Double, Double, Int)] = [:]
            for i in 0..<b.nuclei.count where b.nuclei[i] != 0 {
                let v = Double(b.channels[0][i]); var e = s[b.nuclei[i]] ?? (0, 0, 0)
                e.0 += v; e.1 += v * v; e.2 += 1; s[b.nuclei[i]] = e
            }
            let cvs = s.values.filter { $0.2 >= 60 }.map { e -> Double in let m = e.0 / Double(e.2); return (max(0, e.1 / Double(e.2) - m * m)).squareRoot() / m }
            return Self.percentile(cvs, 0.5)
        }
        print(String(format: "TEXTURE maxima per nucleus %.2f (>1: %.2f) | 0.5: %.2f (%.2f) | 1: %.2f (%.2f); CV %.3f -> %.3f",
                     m0.mean, m0.multi, mh.mean, mh.multi, m1.mean, m1.multi, cv(plain), cv(tex)))
        XCTAssertGreaterThan(m1.mean, 1.25 * m0.mean, "texture adds intensity maxima")
        XCTAssertGreaterThan(m1.multi, m0.multi + 0.15, "more nuclei with several maxima")
        XCTAssertGreaterThan(m1.multi, 0.45, "about half the nuclei with several maxima")
        XCTAssertGreaterThan(mh.mean, m0.mean); XCTAssertLessThan(mh.mean, m1.mean, "strength scales the effect")
        XCTAssertGreaterThan(cv(tex), 1.3 * cv(plain))
        XCTAssertEqual(tex.nuclei, plain.nuclei)
    }

    func testEightBitNuclearChannel() {
        let (_, b) = Self.render(Self.config({ $0.eightBit = true; $0.channels = 2 }))
        let ch = b.channels[0]
        XCTAssert(ch.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() }, "integer levels 0...255")
        let levels = Set(ch).count
        XCTAssertGreaterThan(levels, 100); XCTAssertLessThanOrEqual(levels, 256)
        let means = Self.nucleusMeans(b).values.map { $0 }
        let median = Self.percentile(means, 0.5)
        let bg = Self.percentile((0..<ch.count).filter { b.cells[$0] == 0 }.map { Double(ch[$0]) }, 0.5)
        print(String(format: "8-BIT levels %d, background %.0f, median nucleus %.1f above it", levels, bg, median))
        XCTAssert(median > 25 && median < 90, "low signal: median nucleus \(median) levels above background")
        XCTAssert(bg >= 3 && bg <= 25, "background \(bg)")
        XCTAssertGreaterThan(b.channels[1].max() ?? 0, 1000, "other channels stay 16-bit")
    }

    func testBrightnessDecadesDimBesideBright() {
        let (_, plain) = Self.render(Self.config({ _ in }))
        let (slide, dim) = Self.render(Self.config({ $0.brightnessDecades = 1.5 }))
        func decades(_ b: SynthBand) -> Double {
            let m = Self.nucleusMeans(b).values.filter { $0 > 0 }
            return log10(Self.percentile(Array(m), 0.95) / Self.percentile(Array(m), 0.05))
        }
        // Ground-truth expression of the nuclear stain: p95 / p5 over the slide's cells.
        let expr = slide.cells().compactMap { slide.expression(id: $0.id)?[0] }
        let truthDecades = log10(Self.percentile(expr, 0.95) / Self.percentile(expr, 0.05))
        // Dim beside bright: touching pairs (4-neighbour contact) whose mean brightness differs >= 5x.
        let means = Self.nucleusMeans(dim)
        var pairs = Set<UInt64>()
        for y in 0..<256 { for x in 1..<256 {
            let a = dim.nuclei[y * 256 + x - 1], c = dim.nuclei[y * 256 + x]
            if a != 0 && c != 0 && a != c { pairs.insert(UInt64(min(a, c)) << 32 | UInt64(max(a, c))) }
        } }
        let contrasted = pairs.filter { p in
            guard let u = means[UInt32(p >> 32)], let v = means[UInt32(p & 0xffff_ffff)], u > 0, v > 0 else { return false }
            return max(u, v) / min(u, v) >= 5
        }.count
        print(String(format: "DIM decades (p95/p5 of nucleus means) %.2f -> %.2f, truth %.2f; touching pairs >= 5x apart %d of %d",
                     decades(plain), decades(dim), truthDecades, contrasted, pairs.count))
        XCTAssertLessThan(decades(plain), 0.8)
        XCTAssertGreaterThan(decades(dim), 1.1)
        XCTAssertEqual(truthDecades, 1.5, accuracy: 0.35)
        XCTAssertGreaterThan(contrasted, 10)
    }

    func testOutOfFocusRegionsVaryTheBlur() {
        let quiet: (inout SynthConfig) -> Void = { $0.noiseScale = 0; $0.hotPixelRate = 0; $0.defocusedFieldFraction = 0 }
        let cfg = Self.config({ quiet(&$0); $0.outOfFocusFraction = 0.3 }, size: 320)
        let (slide, b) = Self.render(cfg)
        let (_, sharp) = Self.render(Self.config({ quiet(&$0) }, size: 320))
        XCTAssertEqual(SyntheticSlide(Self.config({ _ in })).outOfFocus(x: 10, y: 10), 0, "off by default")
        // Sharpness: mean |Laplacian| / mean intensity over nucleus pixels, in and out of focus.
        var stats = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0)]   // out of focus (w > 0.9), in focus (w < 0.1), reference in focus
        var blurred = 0, n = 0
        let W = 320
        for y in 1..<(W - 1) { for x in 1..<(W - 1) {
            let w = slide.outOfFocus(x: Double(x) + 0.5, y: Double(y) + 0.5)
            n += 1; if w > 0.5 { blurred += 1 }
            let o = y * W + x
            guard b.nuclei[o] != 0 else { continue }
            func lap(_ c: [Float]) -> Double { Double(abs(4 * c[o] - c[o - 1] - c[o + 1] - c[o - W] - c[o + W])) }
            if w > 0.9 { stats[0].0 += lap(b.channels[0]); stats[0].1 += Double(b.channels[0][o]); stats[2].0 += lap(sharp.channels[0]); stats[2].1 += Double(sharp.channels[0][o]) }
            else if w < 0.1 { stats[1].0 += lap(b.channels[0]); stats[1].1 += Double(b.channels[0][o]) }
        } }
        let outS = stats[0].0 / stats[0].1, inS = stats[1].0 / stats[1].1, refS = stats[2].0 / stats[2].1
        let frac = Double(blurred) / Double(n)
        print(String(format: "OUT-OF-FOCUS area %.2f (asked 0.30); sharpness in focus %.4f, out of focus %.4f (same nuclei sharp: %.4f)", frac, inS, outS, refS))
        XCTAssertEqual(frac, 0.3, accuracy: 0.1)
        XCTAssertLessThan(outS, 0.5 * inS, "out-of-focus regions are much blurrier")
        XCTAssertLessThan(outS, 0.5 * refS)
        XCTAssertEqual(b.nuclei, sharp.nuclei, "masks stay exact")
    }

    func testClumpsOfTouchingNuclei() {
        let (_, plain) = Self.render(Self.config({ _ in }, size: 320))
        let (slide, clumped) = Self.render(Self.config({ $0.clumping = 1 }, size: 320))
        let W = 320
        // Contact: distinct nucleus pairs that share a 4-neighbour edge, per nucleus; in clumps vs elsewhere.
        func contacts(_ b: SynthBand, inClump: ((Int, Int) -> Bool)?) -> Double {
            var pairs = Set<UInt64>(), ids = Set<UInt32>()
            for y in 0..<W { for x in 0..<W {
                let c = b.nuclei[y * W + x]
                guard c != 0 else { continue }
                if let f = inClump, !f(x, y) { continue }
                ids.insert(c)
                for (nx, ny) in [(x + 1, y), (x, y + 1)] where nx < W && ny < W {
                    let a = b.nuclei[ny * W + nx]
                    if a != 0 && a != c { pairs.insert(UInt64(min(a, c)) << 32 | UInt64(max(a, c))) }
                }
            } }
            return Double(pairs.count) / Double(max(1, ids.count))
        }
        let inside: (Int, Int) -> Bool = { slide.clumpWeight(x: Double($0) + 0.5, y: Double($1) + 0.5) > 0.7 }
        let outside: (Int, Int) -> Bool = { slide.clumpWeight(x: Double($0) + 0.5, y: Double($1) + 0.5) < 0.05 }
        let nPlain = Set(plain.nuclei).count - 1, nClumped = Set(clumped.nuclei).count - 1
        let cIn = contacts(clumped, inClump: inside), cOut = contacts(clumped, inClump: outside)
        print(String(format: "CLUMPS nuclei %d -> %d; contacts per nucleus: slide %.2f -> %.2f, in clumps %.2f, outside %.2f",
                     nPlain, nClumped, contacts(plain, inClump: nil), contacts(clumped, inClump: nil), cIn, cOut))
        // Overlaps: where a nucleus hides part of another, both stains add up, so contact pixels (4-neighbour
        // of another nucleus) are brighter relative to their nucleus than where nuclei merely touch.
        func contactBrightness(_ b: SynthBand) -> Double {
            let means = Self.nucleusMeans(b)
            var s = 0.0, k = 0
            for y in 1..<(W - 1) { for x in 1..<(W - 1) {
                let o = y * W + x, c = b.nuclei[o]
                guard c != 0, let m = means[c], m > 0 else { continue }
                if [o - 1, o + 1, o - W, o + W].contains(where: { b.nuclei[$0] != 0 && b.nuclei[$0] != c }) { s += Double(b.channels[0][o]) / m; k += 1 }
            } }
            return s / Double(max(k, 1))
        }
        print(String(format: "CLUMPS contact pixel / nucleus mean %.3f -> %.3f", contactBrightness(plain), contactBrightness(clumped)))
        XCTAssertGreaterThan(contactBrightness(clumped), 1.05 * contactBrightness(plain))
        XCTAssertGreaterThan(Double(nClumped), 1.1 * Double(nPlain))
        XCTAssertGreaterThan(contacts(clumped, inClump: nil), 1.15 * contacts(plain, inClump: nil))
        XCTAssertGreaterThan(cIn, 1.3 * cOut, "touching nuclei concentrate in clumps")
    }

    func testUnevenIlluminationAndBackground() {
        let quiet: (inout SynthConfig) -> Void = { $0.noiseScale = 0; $0.hotPixelRate = 0 }
        let (_, plain) = Self.render(Self.config(quiet, size: 320))
        let (_, uneven) = Self.render(Self.config({ quiet(&$0); $0.unevenIllumination = 1 }, size: 320))
        let W = 320
        // Background (pixels outside cells) per 40-px block: spread of block medians (p90 / p10).
        func spread(_ b: SynthBand) -> Double {
            var med: [Double] = []
            for by in 0..<(W / 40) { for bx in 0..<(W / 40) {
                var v: [Float] = []
                for y in (by * 40)..<(by * 40 + 40) { for x in (bx * 40)..<(bx * 40 + 40) where b.cells[y * W + x] == 0 { v.append(b.channels[0][y * W + x]) } }
                if v.count > 100 { v.sort(); med.append(Double(v[v.count / 2])) }
            } }
            return Self.percentile(med, 0.9) / Self.percentile(med, 0.1)
        }
        // Nuclear brightness over the slide: ratio of the nucleus means of the brightest and dimmest quadrant.
        func quadrants(_ b: SynthBand) -> Double {
            let means = Self.nucleusMeans(b)
            var q = [(0.0, 0), (0.0, 0), (0.0, 0), (0.0, 0)]
            for i in 0..<b.nuclei.count where b.nuclei[i] != 0 {
                guard let m = means[b.nuclei[i]] else { continue }
                let k = (i % W < W / 2 ? 0 : 1) + (i / W < W / 2 ? 0 : 2)
                q[k].0 += m; q[k].1 += 1
            }
            let r = q.filter { $0.1 > 0 }.map { $0.0 / Double($0.1) }
            return (r.max() ?? 1) / (r.min() ?? 1)
        }
        print(String(format: "UNEVEN background spread (p90/p10 of block medians) %.2f -> %.2f; quadrant brightness ratio %.2f -> %.2f",
                     spread(plain), spread(uneven), quadrants(plain), quadrants(uneven)))
        XCTAssertGreaterThan(spread(uneven), 1.3 * spread(plain))
        XCTAssertEqual(uneven.nuclei, plain.nuclei)
    }
}
