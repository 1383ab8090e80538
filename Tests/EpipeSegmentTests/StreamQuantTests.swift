import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeSegment

final class StreamQuantTests: XCTestCase {
    /// Labelled shapes: ellipses of many sizes (some > 64 rows, to exercise hull compression),
    /// rectangles, rings (non-convex), a label split in two parts, sparse ids.
    func labelledShapes(_ w: Int, _ h: Int, seed: UInt64) -> ([UInt32], Int) {
        var rng = TestRNG(s: seed)
        var lab = [UInt32](repeating: 0, count: w * h)
        var id: UInt32 = 0
        for k in 0..<60 {
            id += (k % 7 == 0) ? 3 : 1   // some ids absent
            let cx = Double.random(in: 0..<Double(w), using: &rng), cy = Double.random(in: 0..<Double(h), using: &rng)
            let big = k % 10 == 0
            let a = big ? Double.random(in: 40...90, using: &rng) : Double.random(in: 1...12, using: &rng)
            let b = a * Double.random(in: 0.2...1, using: &rng), th = Double.random(in: 0..<Double.pi, using: &rng)
            let ring = k % 5 == 1, rect = k % 5 == 2
            let c = cos(th), s = sin(th)
            for y in 0..<h {
                for x in 0..<w {
                    let dx = Double(x) - cx, dy = Double(y) - cy
                    if rect { if abs(dx) <= a && abs(dy) <= b { lab[y * w + x] = id }; continue }
                    let u = (dx * c + dy * s) / a, v = (-dx * s + dy * c) / b
                    let r2 = u * u + v * v
                    if r2 <= 1 && (!ring || r2 >= 0.4) { lab[y * w + x] = id }
                }
            }
        }
        // a two-part label and a single pixel
        id += 1
        for y in 5..<9 { for x in 5..<9 { lab[y * w + x] = id; lab[(y + 30) * w + x + 20] = id } }
        id += 1
        lab[(h - 1) * w + w - 1] = id
        return (lab, Int(id))
    }

    func compare(_ a: CellTable, _ b: CellTable, tol: Double = 1e-9, file: StaticString = #filePath, line: UInt = #line) -> Double {
        XCTAssertEqual(a.ids, b.ids, file: file, line: line)
        XCTAssertEqual(a.area, b.area, file: file, line: line)
        var worst = 0.0
        func cmp(_ x: [Double], _ y: [Double], _ name: String, _ t: Double) {
            XCTAssertEqual(x.count, y.count)
            for i in 0..<min(x.count, y.count) {
                let d = abs(x[i] - y[i])
                worst = max(worst, d)
                XCTAssertLessThanOrEqual(d, t, "\(name) cell \(i + 1): \(x[i]) vs \(y[i])", file: file, line: line)
            }
        }
        cmp(a.centroidX, b.centroidX, "cx", 0); cmp(a.centroidY, b.centroidY, "cy", 0)
        cmp(a.majorAxis, b.majorAxis, "major", tol); cmp(a.minorAxis, b.minorAxis, "minor", tol)
        cmp(a.solidity, b.solidity, "solidity", 0); cmp(a.extent, b.extent, "extent", 0)
        // eccentricity and orientation are ill-conditioned for isotropic cells (l1 ~ l2):
        // compare where the eigenvalue gap is not tiny
        var ea: [Double] = [], eb: [Double] = [], oa: [Double] = [], ob: [Double] = []
        for i in 0..<a.count where a.majorAxis[i] - a.minorAxis[i] > 1e-3 {
            ea.append(a.eccentricity[i]); eb.append(b.eccentricity[i])
            var d = a.orientation[i] - b.orientation[i]
            if abs(abs(d) - Double.pi) < 1e-6 { d = 0 }   // +-pi/2 are the same axis
            oa.append(d); ob.append(0)
        }
        cmp(ea, eb, "eccentricity", tol); cmp(oa, ob, "orientation", tol)
        XCTAssertEqual(a.means.count, b.means.count, file: file, line: line)
        for c in 0..<min(a.means.count, b.means.count) { cmp(a.means[c], b.means[c], "mean\(c)", 0) }
        return worst
    }

    func streamed(_ lab: [UInt32], _ w: Int, _ h: Int, channels: [[Float]], bands: [Int], count: Int) -> CellTable {
        let acc = CellAccumulator(channels: channels.count)
        var y = 0, k = 0
        while y < h {
            let rows = min(bands[k % bands.count], h - y)
            k += 1
            let r = (y * w)..<((y + rows) * w)
            let lb = Array(lab[r])
            let cb = channels.map { c -> UnsafeMutableBufferPointer<Float> in
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: r.count)
                _ = b.initialize(from: c[r]); return b
            }
            lb.withUnsafeBufferPointer { L in
                acc.add(labels: L, y0: y, rows: rows, width: w, channels: cb.map { UnsafeBufferPointer($0) })
            }
            cb.forEach { $0.deallocate() }
            y += rows
        }
        return acc.table(count: count)
    }

    func testStreamEqualsQuantify() {
        let w = 257, h = 231
        let (lab, n) = labelledShapes(w, h, seed: 11)
        var rng = TestRNG(s: 5)
        let chans = (0..<3).map { _ in (0..<(w * h)).map { _ in Float.random(in: 0...1000, using: &rng) } }
        let ref = Quantify.cells(labels: lab, count: n, width: w, height: h, channels: chans)
        var worst = 0.0
        for bands in [[h], [1], [7], [64], [3, 50, 1, 17]] {
            let t = streamed(lab, w, h, channels: chans, bands: bands, count: n)
            worst = max(worst, compare(t, ref))
        }
        print("StreamQuant vs Quantify.cells: worst abs difference \(worst)")
    }

    func testStreamOnSegmentedNuclei() {
        let w = 400, h = 330
        let img = synthNuclei(w, h, seed: 21)
        let seg = Segmenter.nuclei(img, width: w, height: h, params: NucleiParams())
        let ref = Quantify.cells(labels: seg.labels, count: seg.count, width: w, height: h, channels: [img])
        for bands in [[h], [13], [128]] {
            _ = compare(streamed(seg.labels, w, h, channels: [img], bands: bands, count: seg.count), ref)
        }
        // default count = largest id seen
        XCTAssertEqual(streamed(seg.labels, w, h, channels: [img], bands: [50], count: seg.count).count, seg.count)
    }
}
