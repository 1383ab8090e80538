import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeDenoise
@testable import EpipeKernels

final class HelpersTests: XCTestCase {
    func vignette(_ x: Int, _ y: Int, _ w: Int, _ h: Int) -> Double {
        let dx = (Double(x) - Double(w) / 2) / Double(w), dy = (Double(y) - Double(h) / 2) / Double(h)
        return 1 - 0.6 * (dx * dx + dy * dy)   // 1 at the centre, 0.7 at the corners
    }

    func testBlockPercentilesExact() {
        let w = 300, h = 170
        let img = randomImage(w, h, seed: 21, levels: 5000)
        var bp = BlockPercentiles(width: w, height: h, block: 64, percentile: 10)
        // bands of odd sizes, out of order
        let bands = [(100, 70), (0, 37), (37, 63)]
        for (y0, n) in bands {
            img.withUnsafeBufferPointer { bp.add(rows: UnsafeBufferPointer(rebasing: $0[(y0 * w)..<((y0 + n) * w)]), y0: y0, count: n) }
        }
        let g = bp.grid()
        XCTAssertEqual(g.width, 5); XCTAssertEqual(g.height, 3)
        for by in 0..<3 { for bx in 0..<5 {
            var v: [Float] = []
            for y in (by * 64)..<min(h, by * 64 + 64) { for x in (bx * 64)..<min(w, bx * 64 + 64) { v.append(img[y * w + x]) } }
            v.sort()
            let rank = max(1, Int((0.1 * Double(v.count)).rounded(.up)))
            XCTAssertEqual(g.values[by * 5 + bx], v[rank - 1])
        } }
        // quickselect vs sort on duplicates
        var a: [Float] = (0..<1000).map { Float($0 % 7) }
        let s = a.sorted()
        for k in [0, 1, 500, 999] { var b = a; XCTAssertEqual(BlockPercentiles.select(&b, k), s[k]) }
        a = [5]; XCTAssertEqual(BlockPercentiles.select(&a, 0), 5)
    }

    func testFlatFieldRecoversVignetting() {
        let w = 640, h = 512
        var g = TestRNG(s: 3)
        var img = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w {
            // background 200 (+ noise) + sparse bright cells, all multiplied by the vignetting
            var s = 200 + Double.random(in: -10...10, using: &g)
            if Double.random(in: 0..<1, using: &g) < 0.05 { s += Double.random(in: 500...3000, using: &g) }
            img[y * w + x] = Float(s * vignette(x, y, w, h))
        } }
        var bp = BlockPercentiles(width: w, height: h, block: 64, percentile: 10)
        img.withUnsafeBufferPointer { bp.add(rows: $0, y0: 0, count: h) }
        let grid = bp.grid()
        let ff = FlatField.estimate(lowPercentileGrid: grid.values, gridWidth: grid.width, gridHeight: grid.height,
                                    imageWidth: w, imageHeight: h, smoothSigmaCells: 1, block: 64)
        // model mean is 1
        var mean = 0.0
        for y in 0..<h { mean += ff.modelRow(y: y).reduce(0.0) { $0 + Double($1) } }
        XCTAssertEqual(mean / Double(w * h), 1, accuracy: 1e-6)
        // recovers the normalised vignetting within a few %
        var vm = 0.0
        for y in 0..<h { for x in 0..<w { vm += vignette(x, y, w, h) } }
        vm /= Double(w * h)
        var worst = 0.0
        for y in stride(from: 0, to: h, by: 7) {
            let row = ff.modelRow(y: y)
            for x in stride(from: 0, to: w, by: 5) { worst = max(worst, abs(Double(row[x]) / (vignette(x, y, w, h) / vm) - 1)) }
        }
        print("flat-field: worst relative model error \(worst)")
        XCTAssertLessThan(worst, 0.04, "worst relative model error \(worst)")
        // correction flattens the background: 10th percentile of corner vs centre blocks
        var corrected = img
        corrected.withUnsafeMutableBufferPointer { p in
            for y in 0..<h { ff.correct(row: UnsafeMutableBufferPointer(rebasing: p[(y * w)..<((y + 1) * w)]), y: y) }
        }
        func p10(_ a: [Float], _ x0: Int, _ y0: Int) -> Float {
            var v: [Float] = []
            for y in y0..<(y0 + 64) { for x in x0..<(x0 + 64) { v.append(a[y * w + x]) } }
            return v.sorted()[v.count / 10]
        }
        let before = p10(img, 0, 0) / p10(img, w / 2 - 32, h / 2 - 32)
        let after = p10(corrected, 0, 0) / p10(corrected, w / 2 - 32, h / 2 - 32)
        XCTAssertLessThan(before, 0.8)
        XCTAssertEqual(after, 1, accuracy: 0.05, "corner/centre background ratio before \(before), after \(after)")
        // dark offset and clipping
        var row: [Float] = [0, 1000]
        let ff1 = FlatField.estimate(lowPercentileGrid: [2, 2], gridWidth: 2, gridHeight: 1, imageWidth: 2, imageHeight: 1, smoothSigmaCells: 0)
        row.withUnsafeMutableBufferPointer { ff1.correct(row: $0, y: 0, dark: 100) }
        XCTAssertEqual(row, [0, 900])
        // fromImage: a flat-field reference image itself
        var ref = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { ref[y * w + x] = Float(1000 * vignette(x, y, w, h)) } }
        let ff2 = FlatField.fromImage(ref, width: w, height: h)
        var worst2 = 0.0
        for y in stride(from: 0, to: h, by: 11) {
            let r = ff2.modelRow(y: y)
            for x in stride(from: 0, to: w, by: 13) { worst2 = max(worst2, abs(Double(r[x]) / (vignette(x, y, w, h) / vm) - 1)) }
        }
        XCTAssertLessThan(worst2, 0.01)
        // Codable
        let d = try! JSONEncoder().encode(ff2)
        XCTAssertEqual(try! JSONDecoder().decode(FlatField.self, from: d), ff2)
    }

    /// Illumination: (raw - dark) / flat with a constant or a per-pixel dark-field, band by band.
    func testIlluminationPerPixelDarkField() {
        let w = 6, h = 4
        let truth = (0..<(w * h)).map { Float(100 + 10 * $0) }
        let dark = (0..<(w * h)).map { Float(($0 * 7) % 5) * 20 }          // a fixed per-pixel pattern
        let flatRef = (0..<(w * h)).map { $0 % w < w / 2 ? Float(0.5) : Float(1.5) }   // mean 1
        let ff = FlatField.fromImage(flatRef, width: w, height: h)
        let raw = (0..<(w * h)).map { truth[$0] * flatRef[$0] + dark[$0] }
        // per-pixel dark, no flat; then with the flat: the truth back, two bands of two rows
        for flat in [nil, ff] {
            var img = flat == nil ? zip(truth, dark).map { $0 + $1 } : raw
            let il = Illumination(flat: flat, darkImage: true)
            for y0 in stride(from: 0, to: h, by: 2) {
                img.withUnsafeMutableBufferPointer { b in
                    dark.withUnsafeBufferPointer { d in
                        il.correct(band: UnsafeMutableBufferPointer(rebasing: b[(y0 * w)..<((y0 + 2) * w)]), y0: y0, rows: 2,
                                   darkRows: UnsafeBufferPointer(rebasing: d[(y0 * w)..<((y0 + 2) * w)]))
                    }
                }
            }
            for i in 0..<(w * h) { XCTAssertEqual(img[i], truth[i], accuracy: 1e-3, "flat \(flat != nil), pixel \(i)") }
        }
        // a constant dark is the old FlatField.correct(row:y:dark:); identity when nothing is given
        var a = raw, b = raw
        a.withUnsafeMutableBufferPointer { Illumination(flat: ff, dark: 30).correct(band: $0, y0: 0, rows: h) }
        b.withUnsafeMutableBufferPointer { buf in
            for y in 0..<h { ff.correct(row: UnsafeMutableBufferPointer(rebasing: buf[(y * w)..<((y + 1) * w)]), y: y, dark: 30) }
        }
        XCTAssertEqual(a, b)
        XCTAssertTrue(Illumination().isIdentity)
        var c: [Float] = [5, 50]
        c.withUnsafeMutableBufferPointer { Illumination(dark: 10).correct(band: $0, y0: 0, rows: 1) }
        XCTAssertEqual(c, [0, 40])
    }

    func testBlankWeights() {
        // cycles: 0 blank(ch0), 1 (ch1, ch2), 2 (ch3), 3 blank x2 (ch4, ch5), 4 (ch6)
        let cycles = [0, 1, 1, 2, 3, 3, 4]
        let blank = [true, false, false, false, true, true, false]
        let w = Blanks.weights(cycles: cycles, isBlank: blank)
        XCTAssertTrue(w[0].isEmpty && w[4].isEmpty && w[5].isEmpty)
        func dict(_ l: [(channel: Int, weight: Float)]) -> [Int: Float] { Dictionary(uniqueKeysWithValues: l.map { ($0.channel, $0.weight) }) }
        XCTAssertEqual(dict(w[1]), [0: 2.0 / 3, 4: 1.0 / 6, 5: 1.0 / 6])
        XCTAssertEqual(dict(w[3]), [0: 1.0 / 3, 4: 1.0 / 3, 5: 1.0 / 3])
        XCTAssertEqual(dict(w[6]), [4: 0.5, 5: 0.5])   // only a blank before
        XCTAssertTrue(Blanks.weights(cycles: [0, 1], isBlank: [false, false]).allSatisfy { $0.isEmpty })
        XCTAssertEqual(dict(Blanks.weights(cycles: [2, 2, 5], isBlank: [false, true, false])[0]), [1: 1])   // same cycle
        // subtraction with known truth: autofluorescence grows linearly with cycle
        let n = 50
        var g = TestRNG(s: 8)
        let af0 = (0..<n).map { _ in Float(Int.random(in: 0..<200, using: &g)) }
        let truth = (0..<n).map { _ in Float(Int.random(in: 0..<1000, using: &g)) }
        func af(_ c: Int) -> [Float] { af0.map { $0 * (1 + 0.25 * Float(c)) } }
        let blank0 = af(0), blank3 = af(3)
        var ch = zip(truth, af(1)).map { $0 + $1 }
        let wl = w[1]
        ch.withUnsafeMutableBufferPointer { row in
            blank0.withUnsafeBufferPointer { b0 in blank3.withUnsafeBufferPointer { b3 in
                let bufs = wl.map { $0.channel == 0 ? b0 : b3 }
                Blanks.subtract(row: row, blanks: bufs, weights: wl.map { $0.weight })
            } }
        }
        for i in 0..<n { XCTAssertEqual(ch[i], truth[i], accuracy: 1e-3) }
        var neg: [Float] = [5]
        neg.withUnsafeMutableBufferPointer { r in [Float(10)].withUnsafeBufferPointer { Blanks.subtract(row: r, blanks: [$0], weights: [1]) } }
        XCTAssertEqual(neg, [0])
    }

    func testFocusBlurLowersAndBandInvariant() {
        let w = 120, h = 90
        let img = syntheticTissue(w, h, seed: 13, hot: 0)
        let sharp = FocusAccumulator.score(img, width: w, height: h)
        var last = sharp.normalized
        for s in [1.0, 2.0, 4.0] {
            let b = FocusAccumulator.score(Gaussian.blur(img, width: w, height: h, sigma: s), width: w, height: h)
            XCTAssertLessThan(b.normalized, last, "sigma \(s)")
            last = b.normalized
        }
        // band invariant bit-exactly, any split and order (1 context row)
        var f = FocusAccumulator(width: w, height: h)
        for (y0, n) in [(50, 40), (0, 7), (7, 43)] {
            let top = min(1, y0), bottom = min(1, h - y0 - n)
            let band = Array(img[((y0 - top) * w)..<((y0 + n + bottom) * w)])
            band.withUnsafeBufferPointer { f.add(band: $0, haloTop: top, rows: n, haloBottom: bottom, y0: y0) }
        }
        XCTAssertTrue(f.complete)
        XCTAssertEqual(f.variance, sharp.variance)
        XCTAssertEqual(f.normalized, sharp.normalized)
        // constant image: 0
        XCTAssertEqual(FocusAccumulator.score([Float](repeating: 7, count: 100), width: 10, height: 10).variance, 0)
    }
}
