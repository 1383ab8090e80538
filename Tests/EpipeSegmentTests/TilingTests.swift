import XCTest
import EpipeTestSupport
import Foundation
import EpipeKernels
@testable import EpipeSegment

/// Synthetic nuclear plane: filled ellipses (intensity ~1) on a dim background with noise,
/// including touching pairs/triples (clumps) and objects placed across the given seams.
func synthNuclei(_ w: Int, _ h: Int, seed: UInt64, seams: [Int] = []) -> [Float] {
    var rng = TestRNG(s: seed)
    var img = [Float](repeating: 0.1, count: w * h)
    func ellipse(_ cx: Double, _ cy: Double, _ a: Double, _ b: Double, _ th: Double, _ v: Float) {
        let c = cos(th), s = sin(th), r = max(a, b)
        for y in max(0, Int(cy - r) - 1)...min(h - 1, Int(cy + r) + 1) {
            for x in max(0, Int(cx - r) - 1)...min(w - 1, Int(cx + r) + 1) {
                let dx = Double(x) - cx, dy = Double(y) - cy
                let u = (dx * c + dy * s) / a, v2 = (-dx * s + dy * c) / b
                if u * u + v2 * v2 <= 1 { img[y * w + x] = max(img[y * w + x], v) }
            }
        }
    }
    var centres: [(Double, Double)] = []
    func free(_ x: Double, _ y: Double, _ d: Double) -> Bool { !centres.contains { ($0.0 - x) * ($0.0 - x) + ($0.1 - y) * ($0.1 - y) < d * d } }
    let n = w * h / 900
    var tries = 0
    while centres.count < n && tries < 20 * n {
        tries += 1
        var x = Double.random(in: 10...Double(w - 10), using: &rng), y = Double.random(in: 10...Double(h - 10), using: &rng)
        if !seams.isEmpty && tries % 4 == 0 {   // push some objects onto seams
            let s = Double(seams[Int.random(in: 0..<seams.count, using: &rng)])
            if Bool.random(using: &rng) { x = s + Double.random(in: -3...3, using: &rng) } else { y = s + Double.random(in: -3...3, using: &rng) }
            x = min(max(x, 10), Double(w - 10)); y = min(max(y, 10), Double(h - 10))
        }
        if !free(x, y, 26) { continue }
        centres.append((x, y))
        let a = Double.random(in: 4.5...8, using: &rng), b = a * Double.random(in: 0.6...1, using: &rng)
        let th = Double.random(in: 0..<Double.pi, using: &rng)
        let v = Float.random(in: 0.7...1, using: &rng)
        ellipse(x, y, a, b, th, v)
        if tries % 3 == 0 {   // clump: a touching neighbour
            let ang = Double.random(in: 0..<(2 * Double.pi), using: &rng), d = 1.6 * a
            ellipse(x + d * cos(ang), y + d * sin(ang), a * 0.9, a * 0.9, 0, v * 0.95)
        }
    }
    for i in 0..<(w * h) { img[i] += Float.random(in: -0.05...0.05, using: &rng) }
    return img
}

/// `Segmenter.nuclei` with a given (slide-wide) threshold instead of the per-image Otsu.
func nucleiFixed(_ plane: [Float], _ w: Int, _ h: Int, _ p: NucleiParams, threshold t: Float) -> [UInt32] {
    // The segmenter with a slide-wide threshold, as the tiled stage runs it.
    var q = p
    q.threshold = t
    return Segmenter.nuclei(plane, width: w, height: h, params: q).labels
}

/// Best-IoU matching of each object of `a` to an object of `b`. Returns per object of a:
/// (IoU, matched id in b, bbox of the object in a as (x0, y0, x1, y1)).
func matchIoU(_ a: [UInt32], _ na: Int, _ b: [UInt32], _ nb: Int, width w: Int) -> [(iou: Double, id: Int, box: (Int, Int, Int, Int))] {
    var areaA = [Int](repeating: 0, count: na + 1), areaB = [Int](repeating: 0, count: nb + 1)
    var inter: [Int: Int] = [:]
    var box = [(Int, Int, Int, Int)](repeating: (Int.max, Int.max, -1, -1), count: na + 1)
    for i in 0..<a.count {
        let la = Int(a[i]), lb = Int(b[i])
        areaA[la] += 1; areaB[lb] += 1
        if la != 0 {
            let x = i % w, y = i / w
            box[la] = (min(box[la].0, x), min(box[la].1, y), max(box[la].2, x), max(box[la].3, y))
            if lb != 0 { inter[la << 32 | lb, default: 0] += 1 }
        }
    }
    var best = [(iou: Double, id: Int, box: (Int, Int, Int, Int))](repeating: (0, 0, (0, 0, 0, 0)), count: na + 1)
    for (k, v) in inter {
        let la = k >> 32, lb = k & 0xffff_ffff
        let iou = Double(v) / Double(areaA[la] + areaB[lb] - v)
        if iou > best[la].iou { best[la] = (iou, lb, box[la]) }
    }
    for l in 1...max(na, 1) where l <= na && best[l].id == 0 { best[l].box = box[l] }
    return Array(best.dropFirst())
}

final class TilingTests: XCTestCase {
    let params = NucleiParams(nucleusDiameter: 12)

    func testGridGeometry() {
        let g = TileGrid(width: 250, height: 130, tile: 100, overlap: 20)
        XCTAssertEqual(g.columns, 3); XCTAssertEqual(g.rows, 2)
        XCTAssertTrue(g.core(column: 2, row: 1) == (200, 100, 50, 30))
        XCTAssertTrue(g.window(column: 0, row: 0) == (0, 0, 120, 120))
        XCTAssertTrue(g.window(column: 1, row: 1) == (80, 80, 140, 50))
        XCTAssertTrue(g.band(1) == (100, 30))
    }

    /// Whole-image connected components of a threshold equal the tiled result exactly (the
    /// closure is local, objects are smaller than the overlap).
    func testConnectedComponentsExact() {
        let w = 301, h = 277
        let img = synthNuclei(w, h, seed: 7, seams: [64, 128, 192, 256])
        let mask = img.map { $0 > 0.5 }
        let whole = Segmenter.connectedComponents(mask, width: w, height: h)
        for (tile, ov) in [(64, 40), (100, 32), (37, 37), (512, 0)] {
            let tl = TiledLabeller(width: w, height: h, tile: tile, overlap: ov) { p, tw, th in
                Segmenter.connectedComponents(p.map { $0 > 0.5 }, width: tw, height: th).labels
            }
            let (lab, n) = tl.run(plane: img)
            XCTAssertEqual(n, whole.count, "tile \(tile)")
            XCTAssertEqual(lab, whole.labels, "tile \(tile)")
        }
    }

    func tiled(_ img: [Float], _ w: Int, _ h: Int, tile: Int, overlap: Int, t: Float) -> ([UInt32], Int) {
        let p = params
        let tl = TiledLabeller(width: w, height: h, tile: tile, overlap: overlap) { plane, tw, th in
            nucleiFixed(plane, tw, th, p, threshold: t)
        }
        return tl.run(plane: img)
    }

    func checkIds(_ lab: [UInt32], _ n: Int, width w: Int) {
        // ids 1...n all present, numbered in raster order of first pixel
        var next: UInt32 = 1
        var seen = [Bool](repeating: false, count: n + 1)
        for v in lab where v != 0 {
            XCTAssertLessThanOrEqual(Int(v), n)
            if Int(v) <= n && !seen[Int(v)] { seen[Int(v)] = true; XCTAssertEqual(v, next); next += 1 }
        }
        XCTAssertEqual(Int(next) - 1, n)
    }

    func testNucleiTiledVsWhole() {
        let w = 520, h = 410, tile = 128, ov = 40
        let seams = Array(stride(from: tile, to: max(w, h), by: tile))
        let img = synthNuclei(w, h, seed: 42, seams: seams)
        let whole = Segmenter.nuclei(img, width: w, height: h, params: params)
        XCTAssertEqual(nucleiFixed(img, w, h, params, threshold: whole.threshold), whole.labels)
        let (lab, n) = tiled(img, w, h, tile: tile, overlap: ov, t: whole.threshold)
        checkIds(lab, n, width: w)
        let m = matchIoU(whole.labels, whole.count, lab, n, width: w)
        var diff = 0
        for i in 0..<lab.count where lab[i] != whole.labels[i] { diff += 1 }
        let bad = m.filter { $0.iou < 0.999 }
        print("tiled vs whole: whole \(whole.count) tiled \(n) objects, \(diff) px differ, \(bad.count) objects IoU < 0.999, min IoU \(m.map(\.iou).min() ?? 1)")
        XCTAssertEqual(n, whole.count)
        // objects away from seams (bbox more than 3 px from a core boundary) are identical
        func nearSeam(_ b: (Int, Int, Int, Int)) -> Bool {
            seams.contains { s in (b.0 - 3...b.2 + 3).contains(s) || (b.1 - 3...b.3 + 3).contains(s) }
        }
        for o in m where !nearSeam(o.box) { XCTAssertGreaterThan(o.iou, 0.999) }
        XCTAssertGreaterThan(m.map(\.iou).reduce(0, +) / Double(max(1, m.count)), 0.99)
        XCTAssertLessThan(Double(diff), 0.002 * Double(w * h))
    }

    func testTwoTileSizesAgree() {
        let w = 600, h = 480
        let img = synthNuclei(w, h, seed: 9, seams: [96, 160, 192, 288, 320, 384, 480])
        let t = Segmenter.nuclei(img, width: w, height: h, params: params).threshold
        let (a, na) = tiled(img, w, h, tile: 96, overlap: 36, t: t)
        let (b, nb) = tiled(img, w, h, tile: 160, overlap: 48, t: t)
        checkIds(a, na, width: w); checkIds(b, nb, width: w)
        let m = matchIoU(a, na, b, nb, width: w)
        let mean = m.map(\.iou).reduce(0, +) / Double(max(1, m.count))
        print("tile 96 vs 160: \(na) vs \(nb) objects, mean IoU \(mean)")
        XCTAssertLessThanOrEqual(abs(na - nb), max(1, na / 100))
        XCTAssertGreaterThan(mean, 0.95)
    }

    /// Overlap below the object size (outside the supported range): seams degrade, but the
    /// output stays a valid labelling (ids 1...N in raster order, every id present).
    func testTooSmallOverlapStillValid() {
        let w = 300, h = 260
        let img = synthNuclei(w, h, seed: 5, seams: [32, 64, 96, 128, 160, 192, 224, 256])
        let whole = Segmenter.nuclei(img, width: w, height: h, params: params)
        let (lab, n) = tiled(img, w, h, tile: 32, overlap: 4, t: whole.threshold)
        checkIds(lab, n, width: w)
        let m = matchIoU(whole.labels, whole.count, lab, n, width: w)
        print("overlap 4 (too small): whole \(whole.count) tiled \(n), mean IoU \(m.map(\.iou).reduce(0, +) / Double(max(1, m.count)))")
        XCTAssertGreaterThan(n, whole.count / 2)
    }

    func testDeterministic() {
        let w = 400, h = 300
        let img = synthNuclei(w, h, seed: 3, seams: [64, 128, 192, 256])
        let t = Segmenter.nuclei(img, width: w, height: h, params: params).threshold
        let (a, na) = tiled(img, w, h, tile: 64, overlap: 36, t: t)
        for _ in 0..<3 {
            let (b, nb) = tiled(img, w, h, tile: 64, overlap: 36, t: t)
            XCTAssertEqual(na, nb); XCTAssertEqual(a, b)
        }
    }

    /// Conflict rule: the tile owning a pixel wins it; the loser keeps the rest.
    func testConflictOwnerWins() {
        // tile 10 / overlap 5 over a 10x20 image: tile row 0 reads rows 0..<15, row 1 rows 5..<20.
        // The closure sees the global row in the data; row 0's tile finds a bar on rows 8...12,
        // row 1's tile a bar on rows 10...12 (anchored in its core): rows 10...12 go to the latter.
        let w = 10, h = 20
        let tl = TiledLabeller(width: w, height: h, tile: 10, overlap: 5) { p, tw, th in
            var l = [UInt32](repeating: 0, count: tw * th)
            let top = Int(p[0])
            for y in 0..<th {
                let gy = top + y
                let on = top == 0 ? (8...12).contains(gy) : (10...12).contains(gy)
                if on { for x in 0..<tw { l[y * tw + x] = 7 } }
            }
            return l
        }
        var img = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { img[y * w + x] = Float(y) } }
        let (lab, n) = tl.run(plane: img)
        XCTAssertEqual(n, 2)
        XCTAssertEqual((0..<h).map { lab[$0 * w + 3] }, [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0])
    }

    func testReadErrorPropagates() {
        struct E: Error {}
        let tl = TiledLabeller(width: 48, height: 48, tile: 16, overlap: 2) { _, tw, th in [UInt32](repeating: 0, count: tw * th) }
        XCTAssertThrowsError(try tl.run(read: { x0, y0, ww, hh in if x0 > 0 && y0 > 0 { throw E() }; return [Float](repeating: 0, count: ww * hh) },
                                        emit: { _, _, _ in }))
    }
}
