import XCTest
import EpipeTestSupport
import Foundation
@testable import EpipeSegment

/// Streaming quantification: rows of closed cells (retain: false) equal the whole-image table,
/// whatever the band split; state bounded by the open cells; rows joined in id order.
final class StreamRowsTests: XCTestCase {
    /// Random labels: disks of a Voronoi partition with sparse ids (not in raster order), tall
    /// strips spanning many bands, labels in two parts (far apart; one empty row between), gaps
    /// of a few rows, a single pixel.
    func labels(_ w: Int, _ h: Int, seed: UInt64) -> [UInt32] {
        var rng = TestRNG(s: seed)
        var seeds: [(x: Double, y: Double, r: Double, id: UInt32)] = []
        var id: UInt32 = 0
        for _ in 0..<120 {
            id += UInt32.random(in: 1...9, using: &rng)
            seeds.append((Double.random(in: 0..<Double(w), using: &rng), Double.random(in: 0..<Double(h), using: &rng),
                          Double.random(in: 2...20, using: &rng), id))
        }
        seeds.shuffle(using: &rng)
        var lab = voronoiLabels(seeds, width: w, height: h)
        for (k, x0) in [13, 90, 151].enumerated() {
            let sid = UInt32(3000 + 17 * k)
            for y in (4 + k)..<(h - 2 - k) { for x in x0..<(x0 + 1 + k) { lab[y * w + x] = sid } }
        }
        for y in 20..<24 { for x in 0..<5 { lab[y * w + x] = 7777 } }
        for y in 120..<123 { for x in (w - 12)..<(w - 2) { lab[y * w + x] = 7777 } }
        for y in 59..<66 { for x in 38..<52 { lab[y * w + x] = 0 } }
        for x in 40..<46 { lab[60 * w + x] = 8888; lab[62 * w + x + 2] = 8888; lab[65 * w + x + 4] = 8888 }
        lab[(h - 1) * w + w - 1] = 9001
        return lab
    }

    func feed(_ lab: [UInt32], _ chans: [[Float]], _ w: Int, rows range: Range<Int>, bands: [Int],
              _ body: (UnsafeBufferPointer<UInt32>, Int, Int, [UnsafeBufferPointer<Float>]) -> [CellRow]) -> [CellRow] {
        var y = range.lowerBound, k = 0, out: [CellRow] = []
        while y < range.upperBound {
            let rows = min(bands[k % bands.count], range.upperBound - y)
            k += 1
            let r = (y * w)..<((y + rows) * w)
            let lb = Array(lab[r]), cb = chans.map { Array($0[r]) }
            lb.withUnsafeBufferPointer { L in
                var bufs: [UnsafeBufferPointer<Float>] = []
                func go(_ i: Int) { if i == cb.count { out += body(L, y, rows, bufs); return }; cb[i].withUnsafeBufferPointer { bufs.append($0); go(i + 1) } }
                go(0)
            }
            y += rows
        }
        return out
    }

    /// Streams with retain: false, then the repair pass as the stage does it; final row per id.
    func streamed(_ lab: [UInt32], _ chans: [[Float]], _ w: Int, _ h: Int, bands: [Int], stats: CellStats, grace: Int,
                  extra: [UInt32] = []) -> (rows: [UInt32: CellRow], acc: CellAccumulator, repaired: Int) {
        let acc = CellAccumulator(channels: chans.count, stats: stats, retain: false, grace: grace)
        var final: [UInt32: CellRow] = [:]
        var batches = feed(lab, chans, w, rows: 0..<h, bands: bands) { acc.add(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
        batches += acc.finish()
        for r in batches {
            XCTAssertNil(final[r.id], "id \(r.id) closed once in the main pass")
            final[r.id] = r
        }
        let reopened = acc.reopened
        for l in reopened { XCTAssertEqual(acc.status(l), .reopened) }
        var repaired = 0
        if let rr = acc.beginRepair(extra: extra, firstRow: { final[$0]?.minY }) {
            for l in Set(reopened).union(extra) { final[l] = nil }
            // only the rows holding labels to repair
            var again: [CellRow] = []
            XCTAssertFalse(acc.repairRows.isEmpty)
            for span in acc.repairRows {
                XCTAssertTrue(span.clamped(to: rr) == span, "\(span) inside \(rr)")
                again += feed(lab, chans, w, rows: span, bands: bands) { acc.repair(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
            }
            again += acc.endRepair()
            repaired = again.count
            for r in again { XCTAssertNil(final[r.id]); final[r.id] = r }
        }
        XCTAssertEqual(acc.repairCount, 0)
        XCTAssertEqual(acc.openCells, 0)
        return (final, acc, repaired)
    }

    func testStreamedRowsEqualTable() {
        let w = 211, h = 197
        let lab = labels(w, h, seed: 23)
        let count = Int(lab.max()!)
        var rng = TestRNG(s: 4)
        let chans: [[Float]] = [
            (0..<(w * h)).map { _ in Float.random(in: 0...1000, using: &rng) },
            (0..<(w * h)).map { _ in Float(Int.random(in: 0..<6, using: &rng)) },
            (0..<(w * h)).map { _ in 60000 + Float(Int.random(in: 0...3, using: &rng)) * 0.25 },
        ]
        let quant = Quantify.cells(labels: lab, count: count, width: w, height: h, channels: chans)
        let all: CellStats = [.median, .std, .sum]
        // reference: the whole-image table (retain mode, one band: no repair needed)
        let refAcc = CellAccumulator(channels: chans.count, stats: all)
        _ = feed(lab, chans, w, rows: 0..<h, bands: [h]) { refAcc.add(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
        XCTAssertNil(refAcc.beginRepair())
        let ref = refAcc.table(count: count)
        XCTAssertEqual(ref.means, quant.means); XCTAssertEqual(ref.area, quant.area)
        XCTAssertEqual(ref.centroidX, quant.centroidX); XCTAssertEqual(ref.solidity, quant.solidity)
        var sawRepair = false
        for stats: CellStats in [all, []] {
            for grace in [0, 2] {
                for bands in [[h], [1], [5], [3, 40, 1, 16], [64], [2, 1]] {
                    let (rows, acc, repaired) = streamed(lab, chans, w, h, bands: bands, stats: stats, grace: grace, extra: grace == 2 ? [1, 77, 3000] : [])
                    if repaired > 0 { sawRepair = true }
                    XCTAssertEqual(rows.count, (0..<count).filter { ref.area[$0] > 0 }.count, "\(bands)")
                    for i in 0..<count where ref.area[i] > 0 {
                        guard let r = rows[UInt32(i + 1)] else { XCTFail("id \(i + 1) missing, \(bands)"); continue }
                        let msg = "id \(i + 1) bands \(bands) grace \(grace) stats \(stats.list)"
                        XCTAssertEqual(r.area, ref.area[i], msg)
                        XCTAssertEqual(r.centroidX, ref.centroidX[i], msg); XCTAssertEqual(r.centroidY, ref.centroidY[i], msg)
                        XCTAssertEqual(r.majorAxis, ref.majorAxis[i], msg); XCTAssertEqual(r.minorAxis, ref.minorAxis[i], msg)
                        XCTAssertEqual(r.eccentricity, ref.eccentricity[i], msg); XCTAssertEqual(r.orientation, ref.orientation[i], msg)
                        XCTAssertEqual(r.solidity, ref.solidity[i], msg); XCTAssertEqual(r.extent, ref.extent[i], msg)
                        for c in 0..<chans.count {
                            XCTAssertEqual(r.means[c], ref.means[c][i], msg)
                            if stats.isEmpty { continue }
                            XCTAssertEqual(r.sums[c], ref.sums[c][i], msg); XCTAssertEqual(r.stds[c], ref.stds[c][i], msg)
                            XCTAssertEqual(r.medians[c], ref.medians[c][i], msg)
                        }
                    }
                    if stats.isEmpty { XCTAssertEqual(acc.peakOpenValues, 0) }
                }
            }
        }
        XCTAssertTrue(sawRepair, "labels in separate parts go through the repair pass")
    }

    /// Ids in raster order of first pixel, as our segmentation: cells and nuclei joined and
    /// released in increasing id while streaming, the rows held few; state bounded by the open
    /// cells, not growing with the number of bands (or cells).
    func testBoundedStateOnTallImage() {
        let w = 384, bandRows = 16, nBands = 1500, h = bandRows * nBands
        let step = 12, cols = w / step
        // cell (i, j): square of side 6...10 centred in its grid square, nucleus its middle 4x4
        // (ids in raster order of the nucleus's first pixel); every 97th cell a tall strip
        func side(_ i: Int, _ j: Int) -> Int { 6 + (i &* 7 &+ j &* 13) % 5 }
        func cellLabel(_ x: Int, _ y: Int, nucleus: Bool) -> UInt32 {
            let i = x / step, j = y / step
            let id = j * cols + i + 1
            let cx = i * step + step / 2, cy = j * step + step / 2
            if nucleus { return abs(x - cx) < 2 && abs(y - cy) < 2 ? UInt32(id) : 0 }
            if id % 97 == 0 && abs(x - cx) <= 1 && y >= cy - 2 && y < cy + 40 { return UInt32(id) }
            let s = side(i, j) / 2
            return abs(x - cx) <= s && abs(y - cy) <= s ? UInt32(id) : 0
        }
        let stats: CellStats = [.median, .std, .sum]
        let cellAcc = CellAccumulator(channels: 2, stats: stats, retain: false, grace: 4)
        let nucAcc = CellAccumulator(channels: 2, stats: stats, retain: false, grace: 4)
        let joiner = CellRowJoiner()
        var cl = [UInt32](repeating: 0, count: w * bandRows), nl = cl
        var c0 = [Float](repeating: 0, count: w * bandRows), c1 = c0
        var lastId: UInt32 = 0, written = 0
        var bytesAt: [Int] = [], openAt: [Int] = [], heldAt: [Int] = []
        for b in 0..<nBands {
            let y0 = b * bandRows
            for r in 0..<bandRows {
                for x in 0..<w {
                    let y = y0 + r, i = r * w + x
                    let n = cellLabel(x, y, nucleus: true), c = cellLabel(x, y, nucleus: false)
                    nl[i] = n; cl[i] = c != 0 ? c : n
                    c0[i] = Float((x * 31 + y * 17) % 101); c1[i] = Float(y % 7)
                }
            }
            let cr = cl.withUnsafeBufferPointer { L in c0.withUnsafeBufferPointer { A in c1.withUnsafeBufferPointer { B in
                cellAcc.add(labels: L, y0: y0, rows: bandRows, width: w, channels: [A, B]) } } }
            let nr = nl.withUnsafeBufferPointer { L in c0.withUnsafeBufferPointer { A in c1.withUnsafeBufferPointer { B in
                nucAcc.add(labels: L, y0: y0, rows: bandRows, width: w, channels: [A, B]) } } }
            joiner.add(cells: cr, nuclei: nr)
            let out = joiner.release(upTo: UInt32(nucAcc.maxId), isOpen: { cellAcc.status($0) == .open || nucAcc.status($0) == .open },
                                     isReopened: { cellAcc.status($0) == .reopened || nucAcc.status($0) == .reopened }, covered: { _ in true })
            for j in out {
                XCTAssertGreaterThan(j.id, lastId); lastId = j.id
                XCTAssertNotNil(j.cell); XCTAssertNotNil(j.nucleus)
                XCTAssertEqual(j.nucleus?.area, 9)
                written += 1
            }
            bytesAt.append(cellAcc.retainedBytes + nucAcc.retainedBytes)
            openAt.append(cellAcc.openCells + nucAcc.openCells)
            heldAt.append(joiner.held)
        }
        joiner.add(cells: cellAcc.finish(), nuclei: nucAcc.finish())
        written += joiner.releaseAll(covered: { _ in true }).count
        let cells = cols * (h / step)
        XCTAssertEqual(written, cells)
        XCTAssertTrue(joiner.redo.isEmpty && joiner.deferred.isEmpty && cellAcc.reopened.isEmpty)
        XCTAssertEqual(joiner.nuclei, cells); XCTAssertEqual(joiner.areas.count, cells)
        // bounded: after the first 100 bands, nothing grows (~ 2 x 32 cells per grid row x 5 rows open)
        let early = bytesAt[100], late = bytesAt[(nBands - 100)...].max()!
        print("stream state: \(cells) cells; open \(openAt.max()!) max, held rows \(heldAt.max()!) max; bytes at band 100 \(early), max over the last 100 bands \(late)")
        XCTAssertLessThanOrEqual(late, early * 3 / 2 + 65536, "retained bytes do not grow with the bands")
        XCTAssertLessThanOrEqual(openAt.max()!, 2 * 8 * cols, "open cells: a few grid rows")
        XCTAssertLessThanOrEqual(heldAt.max()!, 8 * cols, "rows held: a few grid rows")
        XCTAssertLessThanOrEqual(cellAcc.peakOpenValues, (bandRows + 48) * w * 2 * 2)
    }

    /// The joiner with ids in arbitrary order released optimistically (up to the largest id seen):
    /// late parts and labels reopened after their release are redone in both compartments,
    /// reopened ones deferred; after the repair and the corrections every id's joined row equals
    /// the whole-image tables, and the metric counts match.
    func testJoinerOutOfOrderAndCorrections() {
        let w = 173, h = 151
        let cellsL = labels(w, h, seed: 31)
        var nucL = labels(w, h, seed: 32)
        for i in 0..<nucL.count where nucL[i] % 3 == 0 { nucL[i] = cellsL[i] }   // overlap some ids
        var rng = TestRNG(s: 6)
        let chans: [[Float]] = (0..<2).map { _ in (0..<(w * h)).map { _ in Float.random(in: 0...100, using: &rng) } }
        let count = Int(max(cellsL.max()!, nucL.max()!))
        func table(_ lab: [UInt32]) -> CellTable {
            let a = CellAccumulator(channels: 2, stats: [.median, .sum])
            _ = feed(lab, chans, w, rows: 0..<h, bands: [h]) { a.add(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }
            return a.table(count: count)
        }
        let refC = table(cellsL), refN = table(nucL)
        var sawRedo = false, sawDeferred = false
        for bands in [[1], [4], [3, 9, 1]] {
            let ca = CellAccumulator(channels: 2, stats: [.median, .sum], retain: false), na = CellAccumulator(channels: 2, stats: [.median, .sum], retain: false)
            let j = CellRowJoiner()
            var out: [UInt32: CellRowJoiner.Joined] = [:]
            func rel() {
                j.reopened(ca.reopened + na.reopened)
                for r in j.release(upTo: UInt32(na.maxId), isOpen: { ca.status($0) == .open || na.status($0) == .open },
                                   isReopened: { ca.status($0) == .reopened || na.status($0) == .reopened }, covered: { _ in true }) {
                    XCTAssertNil(out[r.id]); out[r.id] = r
                }
            }
            var y = 0, k = 0
            while y < h {
                let n = min(bands[k % bands.count], h - y); k += 1
                let r = (y * w)..<((y + n) * w)
                let cl = Array(cellsL[r]), nl = Array(nucL[r]), c0 = Array(chans[0][r]), c1 = Array(chans[1][r])
                c0.withUnsafeBufferPointer { A in c1.withUnsafeBufferPointer { B in
                    let a = cl.withUnsafeBufferPointer { ca.add(labels: $0, y0: y, rows: n, width: w, channels: [A, B]) }
                    let b = nl.withUnsafeBufferPointer { na.add(labels: $0, y0: y, rows: n, width: w, channels: [A, B]) }
                    j.add(cells: a, nuclei: b)
                } }
                rel()
                y += n
            }
            j.add(cells: ca.finish(), nuclei: na.finish())
            rel()
            if !j.redo.isEmpty { sawRedo = true }
            if !j.deferred.isEmpty { sawDeferred = true }
            let redo = j.redo
            let cs = Set(ca.reopened).union(redo), ns = Set(na.reopened).union(redo)
            let r1 = ca.beginRepair(extra: Array(redo), firstRow: { j.heldMinY($0, cells: true) })
            let r2 = na.beginRepair(extra: Array(redo), firstRow: { j.heldMinY($0, cells: false) })
            j.beginRepair(cells: cs, nuclei: ns)
            if let r1 { j.repaired(cells: feed(cellsL, chans, w, rows: r1, bands: bands) { ca.repair(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }, nuclei: []) }
            if let r2 { j.repaired(cells: [], nuclei: feed(nucL, chans, w, rows: r2, bands: bands) { na.repair(labels: $0, y0: $1, rows: $2, width: w, channels: $3) }) }
            j.repaired(cells: ca.endRepair(), nuclei: na.endRepair())
            for r in j.releaseAll(covered: { _ in true }) { XCTAssertNil(out[r.id]); out[r.id] = r }
            for r in j.corrections(covered: { _ in true }) {
                if let old = out[r.id], let c = old.cell, c.area > 0 { j.forgetArea(c.area) }
                out[r.id] = r
            }
            var nuclei = 0, cells = 0
            for i in 0..<count {
                let id = UInt32(i + 1), got = out[id]
                if refC.area[i] > 0 { cells += 1 }
                if refN.area[i] > 0 { nuclei += 1 }
                XCTAssertEqual(got?.cell?.area ?? 0, refC.area[i], "cell \(id) \(bands)")
                XCTAssertEqual(got?.nucleus?.area ?? 0, refN.area[i], "nucleus \(id) \(bands)")
                if let c = got?.cell { XCTAssertEqual(c.means, [refC.means[0][i], refC.means[1][i]]); XCTAssertEqual(c.medians, [refC.medians[0][i], refC.medians[1][i]]); XCTAssertEqual(c.solidity, refC.solidity[i]) }
                if let n = got?.nucleus { XCTAssertEqual(n.sums, [refN.sums[0][i], refN.sums[1][i]]); XCTAssertEqual(n.centroidY, refN.centroidY[i]) }
            }
            XCTAssertEqual(j.nuclei, nuclei, "\(bands)"); XCTAssertEqual(j.areas.count, cells, "\(bands)")
        }
        XCTAssertTrue(sawRedo, "ids out of order are redone")
        XCTAssertTrue(sawDeferred, "reopened ids are deferred")
    }

    func testIdSlotMapAndAreaCounts() {
        var m = IdSlotMap(), ref: [UInt32: Int32] = [:]
        var rng = TestRNG(s: 8)
        for step in 0..<20000 {
            let k = UInt32.random(in: 1...3000, using: &rng)
            if Bool.random(using: &rng) { m.set(k, Int32(step)); ref[k] = Int32(step) } else { m.remove(k); ref[k] = nil }
            if step % 997 == 0 { for q in UInt32(1)...3000 { XCTAssertEqual(m.find(q), ref[q]) } }
        }
        XCTAssertEqual(m.count, ref.count)
        var a = AreaCounts(), list: [Int] = []
        for _ in 0..<5000 { let v = Int.random(in: 1...100_000, using: &rng) % (Bool.random(using: &rng) ? 300 : 100_000); a.add(v); list.append(v) }
        a.remove(list[7]); list.remove(at: 7)
        let s = list.sorted()
        for r in [0, 1, s.count / 2, s.count - 1, Int(Double(s.count) * 0.99)] { XCTAssertEqual(a.value(atRank: r), s[r]) }
        XCTAssertEqual(a.pairs.reduce(0) { $0 + $1.count }, s.count)
    }
}
