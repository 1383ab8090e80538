import XCTest
import Foundation
import EpipeSynth
@testable import EpipeSegment

/// A generated slide with truth nuclei/cells, its segmented nuclei and the normalised sum of its membrane markers.
struct CellCase {
    let w: Int, h: Int, d: Double
    let truthNuclei: [UInt32], truthCells: [UInt32], membrane: [Float], dapi: [Float]
    let names: [String]
    let types: [UInt32: Int]
    init(size: Int = 512, seed: UInt64, density: Double, channels: Int = 16, diameter: Double = 12) {
        var cfg = SynthConfig(width: size, height: size, channels: channels, seed: seed, nucleusDiameter: diameter, cellDensity: density)
        cfg.fieldSize = 1024
        let slide = SyntheticSlide(cfg)
        let b = slide.renderBand(y0: 0, count: size)
        w = size; h = size; d = diameter
        types = Dictionary(uniqueKeysWithValues: slide.cells().map { ($0.id, $0.type) })
        truthNuclei = b.nuclei; truthCells = b.cells
        let mem = (0..<channels).filter { slide.compartments[$0] == .membrane }
        names = mem.map { slide.channelNames[$0] }
        membrane = Segmenter.membraneSum(mem.map { b.channels[$0] }, levels: mem.map { MembraneLevels.of(b.channels[$0], lowPercentile: Double(ProcessInfo.processInfo.environment["EVAL_LOWP"] ?? "") ?? MembraneLevels.lowPercentile) })
        dapi = b.channels[0]
    }
    /// Nuclei segmented by `Segmenter.nuclei` (the stage's recipe).
    var nuclei: [UInt32] { Segmenter.nuclei(dapi, width: w, height: h, params: NucleiParams(nucleusDiameter: d)).labels }
}

/// `Segmenter.cells` band by band as the stage runs it: each band of `band` rows computed on a window
/// with `context` rows of nuclei and membrane above and below (clamped at the image edges).
func bandedCells(_ nuc: [UInt32], _ mem: [Float], _ w: Int, _ h: Int, _ p: CellParams, band: Int, context: Int) -> [UInt32] {
    var out = [UInt32](repeating: 0, count: w * h)
    var y0 = 0
    while y0 < h {
        let rows = min(band, h - y0)
        let a = max(0, y0 - context), b = min(h, y0 + rows + context)
        let g = Segmenter.cells(nuclei: Array(nuc[(a * w)..<(b * w)]), membrane: Array(mem[(a * w)..<(b * w)]), width: w, height: b - a, params: p)
        for i in 0..<(rows * w) { out[y0 * w + i] = g[(y0 - a) * w + i] }
        y0 += rows
    }
    return out
}

final class CellsTests: XCTestCase {
    /// Prints cell F1 / mean IoU for expansion and membrane-watershed variants (only with EPIPE_CELLS_EVAL=1).
    func testEvaluateCellMethods() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_CELLS_EVAL"] != nil else { throw XCTSkip("EPIPE_CELLS_EVAL not set") }
        let env = ProcessInfo.processInfo.environment
        let seeds = (env["EVAL_SEEDS"] ?? "1,2,3").split(separator: ",").compactMap { UInt64($0) }
        let dens = (env["EVAL_DENS"] ?? "0.4,0.55,0.7").split(separator: ",").compactMap { Double($0) }
        let variants = (env["EVAL_VARIANTS"] ?? "e6;w6,0;w9,0;w9,1").split(separator: ";").map(String.init)
        let useTruth = (env["EVAL_TRUTH_NUCLEI"] ?? "") == "1"
        for dn in dens { for s in seeds {
            let c = CellCase(seed: s, density: dn)
            let nuc = useTruth ? c.truthNuclei : c.nuclei
            if env["EVAL_BANDS"] != nil {
                let p = CellParams(maxDistance: 6, minGrowth: 4)
                let whole = Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p)
                for ctx in [6, 12, 18, 24, 36] {
                    let banded = bandedCells(nuc, c.membrane, c.w, c.h, p, band: 100, context: ctx)
                    let diff = zip(whole, banded).filter { $0 != $1 }.count
                    print(String(format: "BANDS dens=%.2f seed=%d ctx=%d differing=%d (%.5f)", dn, s, ctx, diff, Double(diff) / Double(c.w * c.h)))
                }
            }
            if env["EVAL_STATS"] != nil {
                var a = 0.0, na = 0, b = 0.0, nb = 0, cn = 0.0, ncn = 0
                let sm = testBlur(c.membrane, c.w, c.h, sigma: 1)
                for i in 0..<(c.w * c.h) {
                    if c.truthCells[i] == 0 { b += Double(sm[i]); nb += 1 } else if c.truthNuclei[i] == 0 { a += Double(sm[i]); na += 1 } else { cn += Double(sm[i]); ncn += 1 }
                }
                print(String(format: "STATS d=%.2f s=%d cyto %.3f bg %.3f nuc %.3f  cellsfrac %.2f markers %@", dn, s, a / Double(na), b / Double(nb), cn / Double(ncn),
                             Double(na + ncn) / Double(c.w * c.h), c.names.joined(separator: ",")))
            }
            let n = Accuracy.match(truth: c.truthNuclei, predicted: nuc, width: c.w, height: c.h)
            var line = String(format: "EVAL dens=%.2f seed=%d cells=%d nucF1=%.3f", dn, s, n.truePositives + n.falseNegatives, n.f1)
            for v in variants {
                let t0 = Date()
                let kind = v.first!
                let a = v.dropFirst().split(separator: ",").map { Double($0)! }
                var out: [UInt32]
                switch kind {
                case "e": out = Segmenter.expand(nuc, width: c.w, height: c.h, distance: Int(a[0]))
                default:
                    var p = CellParams(maxDistance: a[0], distanceWeight: a.count > 1 ? a[1] : 0)
                    p.foreground = a.count > 2 && a[2] > -100 ? Float(a[2]) : nil
                    if a.count > 3 { p.minGrowth = a[3] }
                    if a.count > 4 { p.smoothSigma = a[4] }
                    p.backgroundSeeds = kind == "b"
                    out = Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p)
                }
                let dt = Date().timeIntervalSince(t0)
                let r = Accuracy.match(truth: c.truthCells, predicted: out, width: c.w, height: c.h)
                line += String(format: " | %@ F1=%.3f mIoU=%.3f (%.2fs)", v, r.f1, r.meanIoU, dt)
                if env["EVAL_TYPES"] != nil {
                    // per truth type: mean best IoU, mean predicted/truth area
                    var inter: [UInt64: Int] = [:], aT: [UInt32: Int] = [:], aP: [UInt32: Int] = [:]
                    for i in 0..<(c.w * c.h) {
                        let t = c.truthCells[i], q = out[i]
                        if t != 0 { aT[t, default: 0] += 1 }
                        if q != 0 { aP[q, default: 0] += 1 }
                        if t != 0 && q != 0 { inter[UInt64(t) << 32 | UInt64(q), default: 0] += 1 }
                    }
                    var best: [UInt32: (Double, Double)] = [:]
                    for (k, v) in inter {
                        let t = UInt32(k >> 32), q = UInt32(k & 0xffffffff)
                        let iou = Double(v) / Double(aT[t]! + aP[q]! - v)
                        if iou > (best[t]?.0 ?? -1) { best[t] = (iou, Double(aP[q]!) / Double(aT[t]!)) }
                    }
                    var sums = [Double](repeating: 0, count: 6), ratio = sums, cnt = [Int](repeating: 0, count: 6)
                    for (t, b) in best { let ty = c.types[t] ?? 0; sums[ty] += b.0; ratio[ty] += b.1; cnt[ty] += 1 }
                    print("  TYPES \(v): " + (0..<6).map { String(format: "%d:n=%d iou=%.2f area=%.2f", $0, cnt[$0], sums[$0] / Double(max(1, cnt[$0])), ratio[$0] / Double(max(1, cnt[$0]))) }.joined(separator: "  "))
                }
            }
            print(line)
        } }
    }
}

/// Floors and properties of `Segmenter.cells` (membrane watershed) against expansion.
final class CellsFloorTests: XCTestCase {
    static let cases: [(seed: UInt64, density: Double)] = [(1, 0.4), (2, 0.55), (2, 0.7)]

    /// Membrane watershed with the default parameters vs `expand` by the stage's default (d / 2 px),
    /// both from the truth nuclei (isolates the cell step) and from segmented nuclei, scored against
    /// the generator's truth cells. Floors sit just under the measured values (see the report table).
    func testMembraneBeatsExpansion() {
        var sumM = 0.0, sumE = 0.0, sumMI = 0.0, sumEI = 0.0
        for (s, dn) in Self.cases {
            let c = CellCase(seed: s, density: dn)
            let p = CellParams(maxDistance: 6, minGrowth: 4)
            for (what, nuc) in [("truth nuclei", c.truthNuclei), ("segmented nuclei", c.nuclei)] {
                let e = Accuracy.match(truth: c.truthCells, predicted: Segmenter.expand(nuc, width: c.w, height: c.h, distance: 6), width: c.w, height: c.h)
                let m = Accuracy.match(truth: c.truthCells, predicted: Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p),
                                       width: c.w, height: c.h)
                let tag = "seed \(s) density \(dn) \(what): membrane F1 \(m.f1) mIoU \(m.meanIoU), expansion F1 \(e.f1) mIoU \(e.meanIoU)"
                XCTAssertGreaterThanOrEqual(m.f1, e.f1 - 0.005, tag)
                XCTAssertGreaterThanOrEqual(m.meanIoU, e.meanIoU - 0.005, tag)
                if what == "truth nuclei" {
                    XCTAssertGreaterThan(m.f1, 0.96, tag); XCTAssertGreaterThan(m.meanIoU, 0.82, tag)
                } else {
                    // (nuclei by the blend recipe: 0.725 ... / mIoU 0.739 ... measured; the earlier
                    // intensity recipe, tuned on this generator, gave a little more)
                    XCTAssertGreaterThan(m.f1, 0.70, tag); XCTAssertGreaterThan(m.meanIoU, 0.72, tag)
                    sumM += m.f1; sumE += e.f1; sumMI += m.meanIoU; sumEI += e.meanIoU
                }
            }
        }
        XCTAssertGreaterThan(sumM, sumE + 0.03 * Double(Self.cases.count), "mean F1 gain of the membrane watershed on segmented nuclei")
        XCTAssertGreaterThan(sumMI, sumEI + 0.02 * Double(Self.cases.count), "mean IoU gain of the membrane watershed on segmented nuclei")
    }

    /// Every cell pixel lies within maxDistance of its own nucleus (brute force), nuclei are kept,
    /// arbitrary ids pass through, and the result is deterministic.
    func testDistanceLimitIdsAndDeterminism() {
        let c = CellCase(size: 256, seed: 4, density: 0.6)
        // sparse, large ids as a band of a big slide carries
        let nuc = c.truthNuclei.map { $0 == 0 ? 0 : $0 &* 7919 &+ 1_000_000 }
        let p = CellParams(maxDistance: 5, minGrowth: 3)
        let out = Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p)
        XCTAssertEqual(out, Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p))
        var pix: [UInt32: [(Int, Int)]] = [:]
        for i in 0..<nuc.count where nuc[i] != 0 { pix[nuc[i], default: []].append((i % c.w, i / c.w)) }
        var grown = 0
        for i in 0..<out.count where out[i] != 0 {
            if nuc[i] != 0 { XCTAssertEqual(out[i], nuc[i]); continue }
            guard let own = pix[out[i]] else { return XCTFail("label \(out[i]) is not a nucleus") }
            let x = i % c.w, y = i / c.w
            let d2 = own.map { ($0.0 - x) * ($0.0 - x) + ($0.1 - y) * ($0.1 - y) }.min()!
            XCTAssertLessThanOrEqual(d2, 25, "pixel (\(x), \(y)) of \(out[i])")
            grown += 1
        }
        XCTAssertGreaterThan(grown, nuc.filter { $0 != 0 }.count / 3, "cells grow beyond their nuclei")
        XCTAssertTrue(zip(nuc, out).allSatisfy { $0 == 0 || $0 == $1 })
    }

    /// Two nuclei, a bright membrane line closer to the left one: the boundary follows the membrane,
    /// not the midline; past the line on each side the cells stop at maxDistance.
    func testBoundaryFollowsMembrane() {
        let w = 60, h = 20
        var nuc = [UInt32](repeating: 0, count: w * h), mem = [Float](repeating: 0.5, count: w * h)
        for y in 7..<13 { for x in 14..<20 { nuc[y * w + x] = 3 }; for x in 40..<46 { nuc[y * w + x] = 9 } }
        for y in 0..<h { mem[y * w + 24] = 3; mem[y * w + 25] = 3 }   // midline would be x = 29.5
        let out = Segmenter.cells(nuclei: nuc, membrane: mem, width: w, height: h,
                                  params: CellParams(maxDistance: 15, smoothSigma: 0, distanceWeight: 0.2, foreground: nil))
        let row = 10 * w
        for x in 20...24 { XCTAssertEqual(out[row + x], 3, "x = \(x)") }
        for x in 25...39 { XCTAssertEqual(out[row + x], 9, "x = \(x)") }
        XCTAssertEqual(Segmenter.expand(nuc, width: w, height: h, distance: 15)[row + 28], 3, "expansion splits at the midline")
        XCTAssertEqual(out[row + 0], 3, "14 px from nucleus 3")
        XCTAssertEqual(out[0], 0, "corner (0, 0) is 15.7 px from nucleus 3")
        XCTAssertEqual(out[w - 1], 0, "corner (59, 0) is 15.7 px from nucleus 9")
    }

    /// Bands computed with `cellContextRows` of context match the whole image (the stage's way).
    func testBandsMatchWholeImage() {
        for (s, dn) in [(UInt64(1), 0.55), (UInt64(3), 0.7)] {
            let c = CellCase(size: 384, seed: s, density: dn)
            let nuc = c.nuclei
            let p = CellParams(maxDistance: 6, minGrowth: 4)
            let whole = Segmenter.cells(nuclei: nuc, membrane: c.membrane, width: c.w, height: c.h, params: p)
            let ctx = Segmenter.cellContextRows(p)
            XCTAssertEqual(ctx, 14)
            let banded = bandedCells(nuc, c.membrane, c.w, c.h, p, band: 90, context: ctx)
            let diff = zip(whole, banded).filter { $0 != $1 }.count
            XCTAssertLessThanOrEqual(Double(diff) / Double(c.w * c.h), 1e-4, "seed \(s): \(diff) pixels differ")
        }
    }
}

final class CellsBench: XCTestCase {
    /// Times `Segmenter.cells` against `expand` on a 2048 x 1024 band (EPIPE_BENCH=1 only).
    func testBenchCells() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] != nil else { throw XCTSkip("EPIPE_BENCH not set") }
        var cfg = SynthConfig(width: 2048, height: 1024, channels: 4, seed: 7)
        cfg.fieldSize = 1024
        let slide = SyntheticSlide(cfg)
        let b = slide.renderBand(y0: 0, count: 1024)
        let mem = Segmenter.membraneSum([b.channels[1], b.channels[3]], levels: [MembraneLevels.of(b.channels[1]), MembraneLevels.of(b.channels[3])])
        let p = CellParams(maxDistance: 6, minGrowth: 4)
        for _ in 0..<2 {
            var t0 = Date()
            _ = Segmenter.expand(b.nuclei, width: 2048, height: 1024, distance: 6)
            let te = Date().timeIntervalSince(t0)
            t0 = Date()
            _ = Segmenter.cells(nuclei: b.nuclei, membrane: mem, width: 2048, height: 1024, params: p)
            print(String(format: "BENCH expand %.3fs cells %.3fs", te, Date().timeIntervalSince(t0)))
        }
    }
}

/// `BandCells.grow`: a slide cut into bands, each grown with its neighbours' rows as context,
/// gives the whole image's cells: exactly for expansion, and for the membrane watershed on a
/// generated slide (the context covers its reach). Nuclei alone come back unchanged.
final class BandCellsTests: XCTestCase {
    func testBandsGrowAsTheWholeImage() {
        let w = 384, h = 384
        var cfg = SynthConfig(width: w, height: h, channels: 4, seed: 9)
        cfg.fieldSize = 384
        let b = SyntheticSlide(cfg).renderBand(y0: 0, count: h)
        let nuclei = b.nuclei
        let levels = [MembraneLevels.of(b.channels[1]), MembraneLevels.of(b.channels[3])]
        let mem = Segmenter.membraneSum([b.channels[1], b.channels[3]], levels: levels)
        let cp = CellParams(maxDistance: 6, minGrowth: 4)
        let cases: [(CellGrowth, [UInt32])] = [
            (.nuclei, nuclei),
            (.expansion(distance: 5), Segmenter.expand(nuclei, width: w, height: h, distance: 5)),
            (.membrane(cp, context: Segmenter.cellContextRows(cp)), Segmenter.cells(nuclei: nuclei, membrane: mem, width: w, height: h, params: cp)),
        ]
        let bandRows = [0, 100, 230, 384]   // uneven bands
        for (growth, whole) in cases {
            var out: [UInt32] = []
            for k in 0..<(bandRows.count - 1) {
                let y0 = bandRows[k], y1 = bandRows[k + 1]
                func rows(_ a: Int, _ b: Int) -> [UInt32] { Array(nuclei[(a * w)..<(b * w)]) }
                let above = k > 0 ? rows(bandRows[k - 1], y0) : nil
                let below = k + 2 < bandRows.count ? rows(y1, bandRows[k + 2]) : nil
                out += BandCells.grow(rows(y0, y1), rows: y1 - y0, y0: y0, width: w, above: above, below: below, growth: growth) { my0, n in
                    Array(mem[(my0 * w)..<((my0 + n) * w)])
                }
            }
            XCTAssertEqual(out, whole, "\(growth)")
        }
    }
}
