import XCTest
import EpipeTestSupport
@testable import EpipeSegment
import EpipeKernels


/// Reference 8-connected labelling by flood fill in raster order.
func floodLabel(_ m: [Bool], _ w: Int, _ h: Int) -> ([UInt32], Int) {
    var lab = [UInt32](repeating: 0, count: w * h)
    var n: UInt32 = 0
    for s in 0..<(w * h) where m[s] && lab[s] == 0 {
        n += 1
        var stack = [s]; lab[s] = n
        while let p = stack.popLast() {
            let x = p % w, y = p / w
            for dy in -1...1 { for dx in -1...1 {
                let xx = x + dx, yy = y + dy
                if xx < 0 || yy < 0 || xx >= w || yy >= h { continue }
                let q = yy * w + xx
                if m[q] && lab[q] == 0 { lab[q] = n; stack.append(q) }
            } }
        }
    }
    return (lab, Int(n))
}

func disc(_ w: Int, _ h: Int, cx: Double, cy: Double, r: Double) -> [Bool] {
    var m = [Bool](repeating: false, count: w * h)
    for y in 0..<h { for x in 0..<w where (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy) <= r * r { m[y * w + x] = true } }
    return m
}

func iou(_ a: [Bool], _ b: [Bool]) -> Double {
    var i = 0, u = 0
    for k in 0..<a.count { if a[k] && b[k] { i += 1 }; if a[k] || b[k] { u += 1 } }
    return u == 0 ? 1 : Double(i) / Double(u)
}

final class SegmentTests: XCTestCase {
    func testOtsuBimodal() {
        // two integer modes: 100 +- 10 and 1000 +- 10 -> threshold between them
        var v: [Float] = []
        for i in 0..<5000 { v.append(Float(90 + i % 21)) }
        for i in 0..<3000 { v.append(Float(990 + i % 21)) }
        let t = Threshold.otsu(v)
        XCTAssertGreaterThanOrEqual(t, 110)
        XCTAssertLessThan(t, 990)
        // exact: with an empty gap every split in it has equal variance; lowest wins -> 110
        XCTAssertEqual(t, 110)
        // brute-force reference over all integer thresholds on a non-separable mixture
        var g = TestRNG(s: 5)
        var w: [Float] = (0..<4000).map { _ in Float(Int.random(in: 0..<300, using: &g)) }
        w += (0..<2000).map { _ in Float(Int.random(in: 200..<600, using: &g)) }
        var best = -1.0, bestT: Float = 0
        for t in 0..<600 {
            let lo = w.filter { $0 <= Float(t) }, hi = w.filter { $0 > Float(t) }
            if lo.isEmpty || hi.isEmpty { continue }
            let m0 = lo.reduce(0.0) { $0 + Double($1) } / Double(lo.count), m1 = hi.reduce(0.0) { $0 + Double($1) } / Double(hi.count)
            let s = Double(lo.count) * Double(hi.count) * (m0 - m1) * (m0 - m1)
            if s > best * (1 + 1e-12) { best = s; bestT = Float(t) }
        }
        XCTAssertEqual(Threshold.otsu(w), bestT)
        // float data path
        let f = v.map { $0 / 7 + 0.25 }
        let tf = Threshold.otsu(f)
        XCTAssertGreaterThan(tf, 110 / 7 + 0.25)
        XCTAssertLessThan(tf, 990 / 7 + 0.25)
    }

    func testConnectedComponentsVsFlood() {
        var g = TestRNG(s: 1)
        for (w, h, p) in [(50, 40, 0.3), (1, 30, 0.5), (30, 1, 0.5), (64, 64, 0.55), (7, 9, 0.9)] {
            let m = (0..<(w * h)).map { _ in Double.random(in: 0..<1, using: &g) < p }
            let (lab, n) = Segmenter.connectedComponents(m, width: w, height: h)
            let (ref, rn) = floodLabel(m, w, h)
            XCTAssertEqual(n, rn)
            XCTAssertEqual(lab, ref)
        }
        // a U-shape merges late (union-find path) and an 8-connected diagonal
        let w = 5, h = 4
        let s = "x...x" + "x...x" + "x.x.x" + "xxx.x"
        let m = s.map { $0 == "x" }
        let (lab, n) = Segmenter.connectedComponents(m, width: w, height: h)
        XCTAssertEqual(n, 2)
        XCTAssertEqual(lab, floodLabel(m, w, h).0)
    }

    func testFillHoles() {
        let w = 9, h = 7
        let rows = [
            ".........",
            ".xxxx....",
            ".x..x.xxx",   // right shape is open to the border through (x=8? no) -> see below
            ".xxxx.x.x",
            "..x...x..",   // gap at bottom-right: the hole at (7,3) leaks out via (7,4)
            ".x.x.....",   // diagonal ring around (2,5)? open below -> stays
            "..x......",
        ]
        var m = rows.joined().map { $0 == "x" }
        Segmenter.fillHoles(&m, width: w, height: h)
        let exp = [
            ".........",
            ".xxxx....",
            ".xxxx.xxx",
            ".xxxx.x.x",
            "..x...x..",
            ".xxx.....",   // (2,5) is enclosed by an 8-connected diamond -> filled
            "..x......",
        ].joined().map { $0 == "x" }
        XCTAssertEqual(m, exp)
        // hole touching the border is not a hole
        var b = [true, true, true, false, true, true, true, true, true]
        Segmenter.fillHoles(&b, width: 3, height: 3)
        XCTAssertEqual(b, [true, true, true, false, true, true, true, true, true])
    }

    func testExpandVsBruteForce() {
        var g = TestRNG(s: 9)
        let w = 60, h = 45
        var labels = [UInt32](repeating: 0, count: w * h)
        for l in 1...12 {
            let cx = Int.random(in: 0..<w, using: &g), cy = Int.random(in: 0..<h, using: &g)
            for y in max(0, cy - 1)...min(h - 1, cy + 1) { for x in max(0, cx - 2)...min(w - 1, cx + 1) { labels[y * w + x] = UInt32(l) } }
        }
        let pts = (0..<(w * h)).filter { labels[$0] != 0 }
        for dist in [1, 2, 3, 6, 11] {
            let out = Segmenter.expand(labels, width: w, height: h, distance: dist)
            for r in [0..<h, 3..<17, 0..<1, (h - 5)..<h, 10..<10] {   // only some rows: the same rows
                XCTAssertEqual(Segmenter.expand(labels, width: w, height: h, distance: dist, rows: r), Array(out[(r.lowerBound * w)..<(r.upperBound * w)]), "\(r)")
            }
            for i in 0..<(w * h) {
                if labels[i] != 0 { XCTAssertEqual(out[i], labels[i]); continue }
                let x = i % w, y = i / w
                // nearest labelled pixel; ties: leftmost, then uppermost
                var best = Int.max, bp = -1
                for p in pts {
                    let dx = p % w - x, dy = p / w - y, d = dx * dx + dy * dy
                    if d < best || (d == best && (p % w < bp % w || (p % w == bp % w && p / w < bp / w))) { best = d; bp = p }
                }
                if best <= dist * dist {
                    XCTAssertEqual(out[i], labels[bp], "pixel \(x),\(y)")
                } else {
                    XCTAssertEqual(out[i], 0)
                }
            }
        }
    }

    func testEDTVsBruteForce() {
        var g = TestRNG(s: 4)
        let w = 40, h = 33
        let m = (0..<(w * h)).map { _ in Double.random(in: 0..<1, using: &g) < 0.9 }
        let d = DistanceTransform.edt(m, width: w, height: h)
        let bg = (0..<(w * h)).filter { !m[$0] }
        for i in 0..<(w * h) {
            var best = Double.infinity
            for p in bg { let dx = Double(p % w - i % w), dy = Double(p / w - i / w); best = min(best, dx * dx + dy * dy) }
            XCTAssertEqual(Double(d[i]), best.squareRoot(), accuracy: 1e-5)
        }
    }

    /// Synthetic nuclear plane: background 100 with noise, discs at 1000.
    func synth(_ w: Int, _ h: Int, discs: [(Double, Double, Double)], seed: UInt64) -> [Float] {
        var g = TestRNG(s: seed)
        var img = (0..<(w * h)).map { _ in Float(100 + Int.random(in: 0..<40, using: &g)) }
        for (cx, cy, r) in discs {
            let m = disc(w, h, cx: cx, cy: cy, r: r)
            for i in 0..<(w * h) where m[i] { img[i] = Float(1000 + Int.random(in: 0..<100, using: &g)) }
        }
        return img
    }

    func testNucleiOnSyntheticDiscs() {
        let w = 220, h = 160, r = 8.0
        let singles: [(Double, Double)] = [(20, 20), (60, 25), (100, 20), (30, 130), (190, 140)]
        let pairs: [((Double, Double), (Double, Double))] = [((40, 70), (54, 70)), ((120, 80), (130, 92)), ((170, 40), (170, 54))]
        var discs = singles.map { ($0.0, $0.1, r) }
        for (a, b) in pairs { discs.append((a.0, a.1, r)); discs.append((b.0, b.1, r)) }
        let img = synth(w, h, discs: discs, seed: 2)
        let params = NucleiParams(smoothSigma: 1.0, minArea: 20, fillHoles: true, splitTouching: true, nucleusDiameter: 16)
        let (labels, count, t) = Segmenter.nuclei(img, width: w, height: h, params: params)
        XCTAssertGreaterThan(t, 140); XCTAssertLessThan(t, 1000)
        XCTAssertEqual(count, singles.count + 2 * pairs.count)
        XCTAssertEqual(Set(labels).count, count + 1)
        func labelMask(_ l: UInt32) -> [Bool] { labels.map { $0 == l } }
        for (cx, cy) in singles {
            let l = labels[Int(cy) * w + Int(cx)]
            XCTAssertNotEqual(l, 0)
            XCTAssertGreaterThan(iou(labelMask(l), disc(w, h, cx: cx, cy: cy, r: r)), 0.85)
        }
        for (a, b) in pairs {
            let la = labels[Int(a.1) * w + Int(a.0)], lb = labels[Int(b.1) * w + Int(b.0)]
            XCTAssertNotEqual(la, 0); XCTAssertNotEqual(lb, 0)
            XCTAssertNotEqual(la, lb, "touching pair \(a) \(b) must split")
            // truth: union of the two discs split by the perpendicular bisector
            let da = disc(w, h, cx: a.0, cy: a.1, r: r), db = disc(w, h, cx: b.0, cy: b.1, r: r)
            var ta = [Bool](repeating: false, count: w * h), tb = ta
            for i in 0..<(w * h) where da[i] || db[i] {
                let x = Double(i % w), y = Double(i / w)
                let dA = (x - a.0) * (x - a.0) + (y - a.1) * (y - a.1), dB = (x - b.0) * (x - b.0) + (y - b.1) * (y - b.1)
                if dA <= dB { ta[i] = true } else { tb[i] = true }
            }
            XCTAssertGreaterThan(iou(labelMask(la), ta), 0.75)
            XCTAssertGreaterThan(iou(labelMask(lb), tb), 0.75)
        }
        // without splitting, each pair is one object
        var p2 = params; p2.splitTouching = false
        let (l2, c2, _) = Segmenter.nuclei(img, width: w, height: h, params: p2)
        XCTAssertEqual(c2, singles.count + pairs.count)
        for (a, b) in pairs {
            let la = l2[Int(a.1) * w + Int(a.0)]
            XCTAssertNotEqual(la, 0)
            XCTAssertEqual(la, l2[Int(b.1) * w + Int(b.0)])
        }
        // a chain of three touching discs splits into three; so does a pair of unequal discs with
        // the intensity recipe (the blend recipe keeps a 6 px disc overlapping a 9 px one by 2 px
        // merged: the small disc's blurred centre is dimmer than the neck, and its intensity term
        // outweighs the distance dip)
        // (note: a compact triangle of three discs has a single distance maximum and cannot be
        // split by the distance transform recipe; it is intentionally not tested here)
        for (k, group) in [[(30.0, 30.0, 8.5), (44.0, 30.0, 8.5), (58.0, 30.0, 8.5)], [(30.0, 40.0, 9.0), (43.0, 40.0, 6.0)]].enumerated() {
            let im = synth(90, 80, discs: group, seed: 8)
            var pg = params; if k == 1 { pg.split = .intensity }
            let (lab, c, _) = Segmenter.nuclei(im, width: 90, height: 80, params: pg)
            XCTAssertEqual(c, group.count)
            XCTAssertEqual(Set(group.map { lab[Int($0.1) * 90 + Int($0.0)] }).count, group.count)
            XCTAssertFalse(group.contains { lab[Int($0.1) * 90 + Int($0.0)] == 0 })
        }
        // a single elongated nucleus (ellipse) is not over-split
        var e = [Float](repeating: 100, count: 80 * 60)
        for y in 0..<60 { for x in 0..<80 where pow((Double(x) - 40) / 14, 2) + pow((Double(y) - 30) / 7, 2) <= 1 { e[y * 80 + x] = 1000 } }
        XCTAssertEqual(Segmenter.nuclei(e, width: 80, height: 60, params: NucleiParams(nucleusDiameter: 14)).count, 1)
        // minArea removes small specks; empty image gives no nuclei
        var s = [Float](repeating: 100, count: 50 * 50)
        for y in 10..<13 { for x in 10..<13 { s[y * 50 + x] = 1000 } }
        for (cx, cy) in [(30.0, 30.0)] { let m = disc(50, 50, cx: cx, cy: cy, r: 6); for i in 0..<2500 where m[i] { s[i] = 1000 } }
        XCTAssertEqual(Segmenter.nuclei(s, width: 50, height: 50, params: NucleiParams(smoothSigma: 0, minArea: 20)).count, 1)
        XCTAssertEqual(Segmenter.nuclei([Float](repeating: 5, count: 100), width: 10, height: 10, params: NucleiParams()).count, 0)
    }

    func testNucleiNoOverSplitOfEllipses() {
        // isolated noisy ellipses with axis ratios up to 2.8 and random orientations: one nucleus each
        var g = TestRNG(s: 21)
        let w = 300, h = 300
        var img = (0..<(w * h)).map { _ in Float(100 + Int.random(in: 0..<60, using: &g)) }
        var centres: [(Int, Int)] = []
        for gy in 0..<6 { for gx in 0..<6 {
            let cx = 25.0 + Double(gx) * 50, cy = 25.0 + Double(gy) * 50
            let a = Double.random(in: 7..<15, using: &g), b = a / Double.random(in: 1..<2.8, using: &g)
            let th = Double.random(in: 0..<Double.pi, using: &g)
            for y in 0..<h { for x in 0..<w {
                let dx = Double(x) - cx, dy = Double(y) - cy
                let u = dx * cos(th) + dy * sin(th), v = -dx * sin(th) + dy * cos(th)
                if (u / a) * (u / a) + (v / b) * (v / b) <= 1 { img[y * w + x] = Float(900 + Int.random(in: 0..<300, using: &g)) }
            } }
            centres.append((Int(cx), Int(cy)))
        } }
        let (lab, c, _) = Segmenter.nuclei(img, width: w, height: h, params: NucleiParams(nucleusDiameter: 16))
        XCTAssertEqual(c, 36)
        XCTAssertEqual(Set(centres.map { lab[$0.1 * w + $0.0] }).count, 36)
    }

    func testSeedsByLocalFloodEqualUnionFind() {
        // random smooth and noisy surfaces with plateaus (quantised values) and a patchy mask
        var g = TestRNG(s: 21)
        for trial in 0..<12 {
            let w = 70 + trial * 7, h = 50 + trial * 5, n = w * h
            var f = (0..<n).map { _ in Float.random(in: 0..<1, using: &g) }
            if trial % 3 != 0 { f = Gaussian.blur(f, width: w, height: h, sigma: Double(trial % 3) * 1.2) }
            if trial % 2 == 0 { f = f.map { ($0 * 40).rounded() / 40 } }   // plateaus and exact ties
            let mask = (0..<n).map { i in trial % 4 == 0 ? true : (sin(Double(i % w) / 5) + cos(Double(i / w) / 4)) > -0.6 }
            let (cc, ncc) = Segmenter.connectedComponents(mask, width: w, height: h)
            for hmin: Float in [0, 0.001, 0.01, 0.05, 0.2] {
                for md in [1.0, 3.0] {
                    let a = Segmenter.seedPixels(f, mask: mask, width: w, height: h, h: hmin, minDistance: md, components: cc, componentCount: ncc)
                    let b = Segmenter.seedPixelsUnionFind(f, mask: mask, width: w, height: h, h: hmin, minDistance: md, components: cc, componentCount: ncc)
                    XCTAssertEqual(a, b, "trial \(trial) h \(hmin) md \(md)")
                }
            }
        }
    }

    func testWatershedParallelEqualsGlobalQueue() {
        var g = TestRNG(s: 31)
        let w = 400, h = 300
        // blobs of quantised (tie-rich) random values; markers inside and a few outside the mask
        let mask = (0..<(w * h)).map { i in (i % w / 13 + i / w / 11) % 3 != 0 || Int.random(in: 0..<10, using: &g) == 0 }
        let f = (0..<(w * h)).map { _ in Float(Int.random(in: 0..<8, using: &g)) }
        var markers = [UInt32](repeating: 0, count: w * h)
        for l in 1...400 { markers[Int.random(in: 0..<(w * h), using: &g)] = UInt32(l) }
        for hf in [true, false] {
            let a = Segmenter.watershed(f, markers: markers, mask: mask, width: w, height: h, highFirst: hf)
            let b = Segmenter.watershedGlobal(f, markers: markers, mask: mask, width: w, height: h, highFirst: hf)
            XCTAssertEqual(a, b)
            // every mask pixel in a component containing a marker is labelled
            let (cc, _) = Segmenter.connectedComponents(mask, width: w, height: h)
            var seeded = Set<UInt32>()
            for i in 0..<(w * h) where markers[i] != 0 && mask[i] { seeded.insert(cc[i]) }
            for i in 0..<(w * h) where mask[i] && seeded.contains(cc[i]) { XCTAssertNotEqual(a[i], 0) }
        }
    }

    func testQuantifyVsDirect() {
        var g = TestRNG(s: 12)
        let w = 70, h = 50
        var seeds = [UInt32](repeating: 0, count: w * h)
        for l in 1...15 { seeds[Int.random(in: 0..<(w * h), using: &g)] = UInt32(l) }
        let labels = Segmenter.expand(seeds, width: w, height: h, distance: 9)
        let count = 15
        let ch = (0..<3).map { c in (0..<(w * h)).map { _ in Float(Int.random(in: 0..<(100 * (c + 1)), using: &g)) } }
        let t = Quantify.cells(labels: labels, count: count, width: w, height: h, channels: ch)
        XCTAssertEqual(t.ids, (1...15).map { UInt32($0) })
        for l in 1...count {
            let px = (0..<(w * h)).filter { labels[$0] == UInt32(l) }
            XCTAssertEqual(t.area[l - 1], px.count)
            guard !px.isEmpty else { continue }
            let cx = px.reduce(0.0) { $0 + Double($1 % w) } / Double(px.count)
            let cy = px.reduce(0.0) { $0 + Double($1 / w) } / Double(px.count)
            XCTAssertEqual(t.centroidX[l - 1], cx, accuracy: 1e-9)
            XCTAssertEqual(t.centroidY[l - 1], cy, accuracy: 1e-9)
            for c in 0..<3 {
                let m = px.reduce(0.0) { $0 + Double(ch[c][$1]) } / Double(px.count)
                XCTAssertEqual(t.means[c][l - 1], m, accuracy: 1e-9)
            }
            let bw = (px.map { $0 % w }.max()! - px.map { $0 % w }.min()! + 1), bh = (px.map { $0 / w }.max()! - px.map { $0 / w }.min()! + 1)
            XCTAssertEqual(t.extent[l - 1], Double(px.count) / Double(bw * bh), accuracy: 1e-12)
            XCTAssertLessThanOrEqual(t.solidity[l - 1], 1)
            XCTAssertGreaterThan(t.solidity[l - 1], 0.8)   // Voronoi-like cells are nearly convex
        }
        XCTAssertEqual(Quantify.means(labels: labels, count: count, channels: ch), t.means)
    }

    func testShapeDescriptors() {
        let w = 80, h = 60
        var labels = [UInt32](repeating: 0, count: w * h)
        // 1: axis-aligned ellipse, semi-axes 20 (x) and 10 (y)
        for y in 0..<h { for x in 0..<w where pow((Double(x) - 40) / 20, 2) + pow((Double(y) - 30) / 10, 2) <= 1 { labels[y * w + x] = 1 } }
        // 2: 8x8 square
        for y in 2..<10 { for x in 2..<10 { labels[y * w + x] = 2 } }
        // 3: L-shape: 20x20 square at (0..19, 40..59) minus the 10x10 quadrant x>=10, y>=50
        for y in 40..<60 { for x in 0..<20 where !(x >= 10 && y >= 50) { labels[y * w + x] = 3 } }
        // 4: diagonal line of 10 pixels going down-right (x = y)
        for i in 0..<10 { labels[(45 + i) * w + 60 + i] = 4 }
        let t = Quantify.cells(labels: labels, count: 4, width: w, height: h, channels: [])
        XCTAssertEqual(t.majorAxis[0], 40, accuracy: 0.8)
        XCTAssertEqual(t.minorAxis[0], 20, accuracy: 0.8)
        XCTAssertEqual(t.eccentricity[0], (1 - 0.25).squareRoot(), accuracy: 0.01)
        XCTAssertEqual(t.orientation[0], Double.pi / 2, accuracy: 1e-9)   // major axis along columns
        XCTAssertEqual(t.centroidX[0], 40, accuracy: 1e-9)
        XCTAssertEqual(t.centroidY[0], 30, accuracy: 1e-9)
        XCTAssertEqual(t.solidity[0], 1, accuracy: 0.02)
        XCTAssertEqual(t.solidity[1], 1)
        XCTAssertEqual(t.extent[1], 1)
        XCTAssertEqual(t.area[2], 300)
        // convex hull of L pixel centres: 200 px in the top rows + sum_{k=10}^{19} (29-k) = 145
        XCTAssertEqual(t.solidity[2], 300.0 / 345.0, accuracy: 1e-12)
        XCTAssertEqual(t.extent[2], 0.75, accuracy: 1e-12)
        XCTAssertEqual(t.orientation[3], Double.pi / 4, accuracy: 1e-9)
        XCTAssertEqual(t.eccentricity[3], 1, accuracy: 1e-9)
        XCTAssertEqual(t.solidity[3], 1)
        XCTAssertTrue(t.means.isEmpty)
    }
}
