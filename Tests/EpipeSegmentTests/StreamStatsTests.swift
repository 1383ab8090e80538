import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeSegment

/// CellAccumulator's optional statistics (median, std, sum) against a brute-force computation
/// per cell, for several band splits.
final class StreamStatsTests: XCTestCase {
    /// Random label image: disks of a Voronoi partition with sparse ids, tall strips spanning
    /// many bands, labels in two parts (one with a single empty row between), a single pixel.
    func randomLabels(_ w: Int, _ h: Int, seed: UInt64) -> (labels: [UInt32], tallest: Int) {
        var rng = TestRNG(s: seed)
        var seeds: [(x: Double, y: Double, r: Double, id: UInt32)] = []
        var id: UInt32 = 0
        for _ in 0..<90 {
            id += UInt32.random(in: 1...9, using: &rng)   // sparse ids
            seeds.append((Double.random(in: 0..<Double(w), using: &rng), Double.random(in: 0..<Double(h), using: &rng),
                          Double.random(in: 3...22, using: &rng), id))
        }
        var lab = voronoiLabels(seeds, width: w, height: h)
        // tall strips (many bands), overriding
        for (k, x0) in [11, 97, 150].enumerated() {
            let sid = UInt32(2000 + 31 * k)
            for y in (5 + k)..<(h - 3) { for x in x0..<(x0 + 2 + k) { lab[y * w + x] = sid } }
        }
        // two parts, far apart
        for y in 20..<24 { for x in 0..<5 { lab[y * w + x] = 7777 } }
        for y in 100..<103 { for x in (w - 12)..<(w - 2) { lab[y * w + x] = 7777 } }
        // two parts with one empty row between
        for y in 59..<64 { for x in 38..<50 { lab[y * w + x] = 0 } }
        for x in 40..<46 { lab[60 * w + x] = 8888; lab[62 * w + x + 2] = 8888 }
        // one pixel in the last corner, largest id
        lab[(h - 1) * w + w - 1] = 9001
        // tallest label (rows from first to last)
        var first: [UInt32: Int] = [:], last: [UInt32: Int] = [:]
        for y in 0..<h { for x in 0..<w { let l = lab[y * w + x]; if l != 0 { if first[l] == nil { first[l] = y }; last[l] = y } } }
        var tallest = 0
        for (l, f) in first { tallest = max(tallest, last[l]! - f + 1) }
        return (lab, tallest)
    }

    /// Per label: values of each channel in raster order.
    func bruteForce(_ lab: [UInt32], _ chans: [[Float]], count: Int) -> (median: [[Double]], std: [[Double]], sum: [[Double]]) {
        var vals = [[[Float]]](repeating: [[Float]](repeating: [], count: count + 1), count: chans.count)
        for i in 0..<lab.count where lab[i] != 0 { for c in 0..<chans.count { vals[c][Int(lab[i])].append(chans[c][i]) } }
        let z = [[Double]](repeating: [Double](repeating: 0, count: count), count: chans.count)
        var med = z, sd = z, sm = z
        for c in 0..<chans.count {
            for l in 1...count where !vals[c][l].isEmpty {
                let v = vals[c][l]
                var s = 0.0
                for x in v { s += Double(x) }
                sm[c][l - 1] = s
                let mean = s / Double(v.count)
                var ss = 0.0
                for x in v { ss += (Double(x) - mean) * (Double(x) - mean) }
                sd[c][l - 1] = (ss / Double(v.count)).squareRoot()
                let o = v.sorted(), k = o.count / 2
                med[c][l - 1] = o.count % 2 == 1 ? Double(o[k]) : (Double(o[k - 1]) + Double(o[k])) / 2
            }
        }
        return (med, sd, sm)
    }

    func feed(_ lab: [UInt32], _ chans: [[Float]], _ w: Int, rows range: Range<Int>, bands: [Int], _ body: (UnsafeBufferPointer<UInt32>, Int, Int, [UnsafeBufferPointer<Float>]) -> Void) {
        var y = range.lowerBound, k = 0
        while y < range.upperBound {
            let rows = min(bands[k % bands.count], range.upperBound - y)
            k += 1
            let r = (y * w)..<((y + rows) * w)
            let lb = Array(lab[r])
            let cb = chans.map { Array($0[r]) }
            lb.withUnsafeBufferPointer { L in
                withArrays(cb) { body(L, y, rows, $0) }
            }
            y += rows
        }
    }

    func withArrays(_ a: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) -> Void) {
        var bufs: [UnsafeBufferPointer<Float>] = []
        func go(_ i: Int) { if i == a.count { body(bufs); return }; a[i].withUnsafeBufferPointer { bufs.append($0); go(i + 1) } }
        go(0)
    }

    func testStatsEqualBruteForce() {
        let w = 203, h = 187
        let (lab, tallest) = randomLabels(w, h, seed: 17)
        let count = Int(lab.max()!)
        var rng = TestRNG(s: 3)
        let chans: [[Float]] = [
            (0..<(w * h)).map { _ in Float.random(in: 0...1000, using: &rng) },
            (0..<(w * h)).map { _ in Float(Int.random(in: 0..<6, using: &rng)) },             // many ties, even counts
            (0..<(w * h)).map { _ in 60000 + Float(Int.random(in: 0...3, using: &rng)) * 0.25 }, // large mean, tiny spread
            [Float](repeating: 42, count: w * h),                                              // constant: std 0
        ]
        let ref = bruteForce(lab, chans, count: count)
        let quant = Quantify.cells(labels: lab, count: count, width: w, height: h, channels: chans)
        var repaired = 0
        for bands in [[h], [1], [7], [3, 50, 1, 17], [64], [2, 1]] {
            let acc = CellAccumulator(channels: chans.count, stats: [.median, .std, .sum])
            feed(lab, chans, w, rows: 0..<h, bands: bands) { acc.add(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
            if let rr = acc.beginRepair() {
                repaired += 1
                XCTAssertGreaterThan(acc.repairCount, 0)
                feed(lab, chans, w, rows: rr, bands: bands) { acc.repair(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
            }
            XCTAssertEqual(acc.repairCount, 0)
            let t = acc.table(count: count)
            let maxBand = min(h, bands.max()!)
            XCTAssertLessThanOrEqual(acc.peakOpenValues, (maxBand + tallest) * w * chans.count, "open values bounded by the band, \(bands)")
            XCTAssertEqual(t.ids.count, count)
            XCTAssertEqual(t.means, quant.means, "means unchanged, \(bands)")
            for c in 0..<chans.count {
                for i in 0..<count {
                    XCTAssertEqual(t.sums[c][i], ref.sum[c][i], "sum ch \(c) cell \(i + 1) bands \(bands)")
                    XCTAssertEqual(t.medians[c][i], ref.median[c][i], "median ch \(c) cell \(i + 1) bands \(bands)")
                    let d = abs(t.stds[c][i] - ref.std[c][i])
                    XCTAssertLessThanOrEqual(d, 1e-9 * max(1, ref.std[c][i]), "std ch \(c) cell \(i + 1) bands \(bands): \(t.stds[c][i]) vs \(ref.std[c][i])")
                }
            }
            // constant channel: std exactly 0, median and mean 42
            for i in 0..<count where t.area[i] > 0 { XCTAssertEqual(t.stds[3][i], 0); XCTAssertEqual(t.medians[3][i], 42) }
        }
        XCTAssertGreaterThan(repaired, 0, "the labels in two parts go through the repair pass")
    }

    func testOptionalStatsAreOptional() {
        let w = 203, h = 187
        let (lab, _) = randomLabels(w, h, seed: 2)
        let chans: [[Float]] = [(0..<(w * h)).map { Float($0 % 17) }]
        for s: CellStats in [[], [.sum], [.std], [.median]] {
            let acc = CellAccumulator(channels: 1, stats: s)
            feed(lab, chans, w, rows: 0..<h, bands: [9]) { acc.add(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
            if let rr = acc.beginRepair() { feed(lab, chans, w, rows: rr, bands: [9]) { acc.repair(labels: $0, y0: $1, rows: $2, width: w, channels: $3) } }
            let t = acc.table()
            XCTAssertEqual(t.sums.isEmpty, !s.contains(.sum)); XCTAssertEqual(t.stds.isEmpty, !s.contains(.std))
            XCTAssertEqual(t.medians.isEmpty, !s.contains(.median))
            if s.isEmpty || !s.contains(.median) { XCTAssertEqual(acc.peakOpenValues, 0) }
        }
    }

    func testParseAndSelect() {
        XCTAssertEqual(CellStats.parse("median,std,sum").stats, [.median, .std, .sum])
        XCTAssertEqual(CellStats.parse(" sum , intensity_median").stats, [.median, .sum])
        XCTAssertEqual(CellStats.parse("none").stats, [])
        XCTAssertEqual(CellStats.parse("median,bogus").unknown, ["bogus"])
        XCTAssertEqual(CellStats([.sum, .median]).list, "median,sum")
        XCTAssertEqual(CellStats([]).list, "none")
        var rng = TestRNG(s: 9)
        for n in [1, 2, 3, 4, 5, 10, 101, 1000] {
            for _ in 0..<20 {
                var v = (0..<n).map { _ in Float(Int.random(in: 0..<max(1, n / 3), using: &rng)) }
                let o = v.sorted(), k = n / 2
                let want = n % 2 == 1 ? Double(o[k]) : (Double(o[k - 1]) + Double(o[k])) / 2
                let got = v.withUnsafeMutableBufferPointer { Select.median($0.baseAddress!, n) }
                XCTAssertEqual(got, want)
            }
        }
    }

    func testNucleusCellMatch() {
        // nuclei 1, 2, 3, 5; cells cover nucleus 1 (id 1) and 2 (but cell 2 absent: id 7 there); 3 outside cells
        let nuc: [UInt32] = [1, 1, 2, 2, 3, 0, 5, 5]
        let cel: [UInt32] = [1, 0, 7, 7, 0, 0, 5, 0]
        var m = NucleusCellMatch()
        nuc.withUnsafeBufferPointer { n in cel.withUnsafeBufferPointer { c in m.add(nuclei: n, cells: c) } }
        let nucArea = [2, 2, 1, 0, 2], cellArea = [1, 0, 0, 0, 1, 0, 2]
        XCTAssertEqual(m.withoutCellFraction(nucleusArea: nucArea, cellArea: cellArea), 2.0 / 4.0)
        XCTAssertEqual(NucleusCellMatch().withoutCellFraction(nucleusArea: [], cellArea: []), 0)
    }

    func testSubBandRows() {
        XCTAssertEqual(QuantPlan.subBandRows(width: 640, channels: 3), 256)
        let r = QuantPlan.subBandRows(width: 50_000, channels: 60)
        XCTAssertEqual(r, 11)
        XCTAssertLessThanOrEqual(r * 50_000 * 60 * 4, 128 << 20)
        XCTAssertEqual(QuantPlan.subBandRows(width: 200_000, channels: 200), 8)
    }
}

/// Label image of discs clipped to their Voronoi cells: each pixel takes the nearest seed's id if
/// it lies within that seed's radius (touching cells of varied size, ids as given).
func voronoiLabels(_ seeds: [(x: Double, y: Double, r: Double, id: UInt32)], width w: Int, height h: Int) -> [UInt32] {
    var lab = [UInt32](repeating: 0, count: w * h)
    for y in 0..<h {
        for x in 0..<w {
            var best = Double.infinity, bi = -1
            for (k, s) in seeds.enumerated() {
                let d = ((Double(x) - s.x) * (Double(x) - s.x) + (Double(y) - s.y) * (Double(y) - s.y)).squareRoot()
                if d < best { best = d; bi = k }
            }
            if bi >= 0 && best <= seeds[bi].r { lab[y * w + x] = seeds[bi].id }
        }
    }
    return lab
}
