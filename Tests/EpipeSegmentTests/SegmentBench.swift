import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeSegment
import EpipeKernels

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`).
final class SegmentBench: XCTestCase {
    func testBenchNuclei2048() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let w = 2048, h = 2048
        var g = TestRNG(s: 3)
        var img = (0..<(w * h)).map { _ in Float(200 + Int.random(in: 0..<100, using: &g)) }
        var placed = 0
        // ~ 12k nuclei of radius 4.5..7, many touching
        for _ in 0..<12000 {
            let cx = Int.random(in: 0..<w, using: &g), cy = Int.random(in: 0..<h, using: &g)
            let r = Double.random(in: 4.5..<7, using: &g)
            let ri = Int(r) + 1
            for y in max(0, cy - ri)...min(h - 1, cy + ri) { for x in max(0, cx - ri)...min(w - 1, cx + ri) {
                let dx = Double(x - cx), dy = Double(y - cy)
                if dx * dx + dy * dy <= r * r { img[y * w + x] = Float(1500 + Int.random(in: 0..<500, using: &g)) }
            } }
            placed += 1
        }
        do {
            var ts: [(String, Double)] = []
            var t = Date()
            func lap(_ s: String) { ts.append((s, Date().timeIntervalSince(t))); t = Date() }
            let sm = Gaussian.blur(img, width: w, height: h, sigma: 1.5); lap("gauss")
            let th = Threshold.otsu(sm); lap("otsu")
            var mask = sm.map { $0 > th }; lap("mask")
            Segmenter.fillHoles(&mask, width: w, height: h); lap("fill")
            let d = DistanceTransform.edt(mask, width: w, height: h); lap("edt")
            let ds = Gaussian.blur(d, width: w, height: h, sigma: 1); lap("gauss2")
            let seeds = Segmenter.seedPixels(ds, mask: mask, width: w, height: h, h: 1.2, minDistance: 3); lap("seeds")
            var mk = [UInt32](repeating: 0, count: w * h)
            for (k, p) in seeds.enumerated() { mk[p] = UInt32(k + 1) }
            var ws = Segmenter.watershed(ds, markers: mk, mask: mask, width: w, height: h, highFirst: true); lap("watershed")
            _ = Segmenter.removeSmallAndRelabel(&ws, minArea: 20); lap("relabel")
            print("bench stages:", ts.map { "\($0.0) \(String(format: "%.3f", $0.1))" }.joined(separator: ", "))
        }
        for rep in 0..<2 {
            let t0 = Date()
            let (labels, count, thr) = Segmenter.nuclei(img, width: w, height: h, params: NucleiParams())
            let t1 = Date()
            let cells = Segmenter.expand(labels, width: w, height: h, distance: 3)
            let t2 = Date()
            let table = Quantify.cells(labels: cells, count: count, width: w, height: h, channels: [img, img, img, img])
            let t3 = Date()
            print(String(format: "bench 2048^2 rep %d: nuclei %.3fs (%d nuclei from %d discs, thr %.1f), expand(3) %.3fs, quantify(4 ch) %.3fs (%d)",
                         rep, t1.timeIntervalSince(t0), count, placed, thr, t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), table.count))
        }
    }
}
