import XCTest
import Foundation
import EpipeSynth
import EpipeKernels
@testable import EpipeSegment

/// The slide in memory, as the stage's readers give it.
final class MemoryPlanes: PlaneReader {
    let planes: [[Float]], w: Int
    init(_ planes: [[Float]], width: Int) { self.planes = planes; w = width }
    func readRows(channel c: Int, y0: Int, count n: Int) throws -> [Float] { Array(planes[c][(y0 * w)..<((y0 + n) * w)]) }
    func readWindow(channel c: Int, x0: Int, y0: Int, width ww: Int, height hh: Int) throws -> [Float] {
        var out: [Float] = []
        for r in 0..<hh { let a = (y0 + r) * w + x0; out += planes[c][a..<(a + ww)] }
        return out
    }
}

/// What `SlidePipeline.run` wrote: both masks whole, the rows in the order written.
final class Written {
    var nuclei: [UInt32], cells: [UInt32]
    var rows: [CellRowJoiner.Joined] = []
    var finished = false, bands = 0
    let w: Int
    init(_ w: Int, _ h: Int) { self.w = w; nuclei = [UInt32](repeating: 0, count: w * h); cells = nuclei }
    func io(_ open: @escaping @Sendable () throws -> PlaneReader) -> SlidePipeline.IO {
        var io = SlidePipeline.IO(open: open, writeMasks: { y0, n, nuc, cel in
            for i in 0..<(n * self.w) { self.nuclei[y0 * self.w + i] = nuc[i]; self.cells[y0 * self.w + i] = cel[i] }
        }, writeRows: { self.rows += $0 }, finishMasks: { self.finished = true }, readBack: { cells, y0, n in
            XCTAssertTrue(self.finished, "masks are read back only once complete")
            return Array((cells ? self.cells : self.nuclei)[(y0 * self.w)..<((y0 + n) * self.w)])
        })
        io.bandDone = { self.bands += 1 }
        return io
    }
}

final class SlidePipelineTests: XCTestCase {
    static let side = 640, channels = 3
    /// A generated slide (D = 12 px) with its truth.
    static let slide: (planes: [[Float]], nuclei: [UInt32], cells: [UInt32]) = {
        var cfg = SynthConfig(width: side, height: side, channels: channels, seed: 21, nucleusDiameter: 12, cellDensity: 0.5)
        cfg.fieldSize = 1024
        let b = SyntheticSlide(cfg).renderBand(y0: 0, count: side)
        return (b.channels, b.nuclei, b.cells)
    }()

    func config(tile: Int, grace: Int? = nil, subRows: Int? = nil) throws -> (SlidePipeline.Config, @Sendable () throws -> PlaneReader) {
        let s = Self.slide, n = Self.side
        var p = SegmentParams()
        p.nucleusDiameter = 12; p.tile = tile; p.stats = "median,sum"
        let plan = p.plan(diameter: 12, width: n, membrane: false)
        let open: @Sendable () throws -> PlaneReader = { MemoryPlanes(s.planes, width: n) }
        var cfg = SlidePipeline.Config(width: n, height: n, channels: Self.channels, nuclearChannels: [0], nuclei: plan.nuclei, growth: plan.growth,
                                       tile: plan.tile, overlap: plan.overlap, grace: grace, subRows: subRows)
        cfg.nuclei.threshold = try SlideScan.threshold(open: open, channels: [0], plan: plan.nuclei.signalPlan, width: n, height: n, integral: true)
        cfg.stats = p.cellStats
        return (cfg, open)
    }

    func run(tile: Int, grace: Int? = nil, subRows: Int? = nil) throws -> (Written, SlidePipeline.Summary) {
        let (cfg, open) = try config(tile: tile, grace: grace, subRows: subRows)
        let out = Written(Self.side, Self.side)
        let summary = try SlidePipeline.run(cfg, io: out.io(open))
        return (out, summary)
    }

    /// Every row written once, in increasing CellID, holding exactly what the written masks say:
    /// the area and every channel's mean, median and sum over the cell's and the nucleus's pixels.
    func checkRows(_ out: Written, _ summary: SlidePipeline.Summary) {
        let n = Self.side, C = Self.channels, planes = Self.slide.planes
        var rows: [UInt32: CellRowJoiner.Joined] = [:]
        for r in out.rows where r.cell.map({ $0.area > 0 }) ?? false { rows[r.id] = r }
        for c in summary.corrections { rows[c.id] = c }
        let ids = out.rows.map(\.id)
        XCTAssertEqual(ids, ids.sorted(), "rows come in increasing CellID")
        var pix: [UInt32: [Int]] = [:], npix: [UInt32: [Int]] = [:]
        for i in 0..<(n * n) {
            if out.cells[i] != 0 { pix[out.cells[i], default: []].append(i) }
            if out.nuclei[i] != 0 { npix[out.nuclei[i], default: []].append(i) }
        }
        XCTAssertEqual(Set(rows.keys), Set(pix.keys), "one row per cell in the mask")
        XCTAssertEqual(summary.maxId, pix.keys.max())
        XCTAssertEqual(summary.segmented, out.cells.filter { $0 != 0 }.count)
        for (id, p) in pix {
            guard let r = rows[id], let cell = r.cell else { continue }
            XCTAssertEqual(cell.area, p.count, "cell \(id) area")
            for c in 0..<C {
                let v = p.map { Double(planes[c][$0]) }
                XCTAssertEqual(cell.means[c], v.reduce(0, +) / Double(v.count), accuracy: 1e-3 * max(1, abs(cell.means[c])), "cell \(id) channel \(c) mean")
                XCTAssertEqual(cell.sums[c], v.reduce(0, +), accuracy: 1e-3 * max(1, abs(cell.sums[c])))
                let s = v.sorted(), m = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
                XCTAssertEqual(cell.medians[c], m, accuracy: 1e-3 * max(1, abs(m)), "cell \(id) channel \(c) median")
            }
            if let q = npix[id], let nuc = r.nucleus {
                XCTAssertEqual(nuc.area, q.count, "nucleus \(id) area")
                let v = q.map { Double(planes[0][$0]) }
                XCTAssertEqual(nuc.means[0], v.reduce(0, +) / Double(v.count), accuracy: 1e-3 * max(1, abs(nuc.means[0])))
            }
        }
    }

    /// The library run on an in-memory slide: masks and rows agree with each other, the nuclei
    /// match the truth, and neither the tile size nor the sub-band size nor the repair pass
    /// (labels closed after 0 empty rows, so split nuclei are quantified again) changes a label or a value.
    func testStreamsMasksAndRowsThatAgreeWhateverTheTilesAndBands() throws {
        let (a, sa) = try run(tile: 256)
        XCTAssertTrue(a.finished)
        XCTAssertEqual(a.bands, 3, "one call per band of tile rows")
        checkRows(a, sa)
        let f1 = Accuracy.match(truth: Self.slide.nuclei, predicted: a.nuclei, width: Self.side, height: Self.side).f1
        XCTAssertGreaterThan(f1, 0.7, "nuclei F1 against the generator's truth")
        XCTAssertGreaterThan(sa.joiner.areas.count, 500)
        XCTAssertEqual(sa.qc.counts.reduce(0, +) > 0, true, "QC counted nuclei in the crop grid")

        let (b, sb) = try run(tile: 512, grace: 0, subRows: 7)
        XCTAssertEqual(b.nuclei, a.nuclei, "nuclei do not depend on the tile size")
        XCTAssertEqual(b.cells, a.cells)
        checkRows(b, sb)
        XCTAssertEqual(sb.joiner.areas.count, sa.joiner.areas.count)
    }

    /// Imported masks replace the segmentation; ids are kept and every truth cell gets its row,
    /// also for a label in two parts far apart (closed, then back: the repair pass reads its rows again).
    func testImportedMasksKeepTheirIds() throws {
        let (cfg, open) = try config(tile: 256, grace: 0, subRows: 16)
        let out = Written(Self.side, Self.side)
        var io = out.io(open)
        let w = Self.side
        var nuclei = Self.slide.nuclei, cells = Self.slide.cells
        let split = cells[(40 * w + 40)...].first { $0 != 0 }!
        for y in 600..<606 { for x in 600..<606 { cells[y * w + x] = split; nuclei[y * w + x] = split } }
        let (n0, c0) = (nuclei, cells)
        io.nucleiMask = { y0, n in Array(n0[(y0 * w)..<((y0 + n) * w)]) }
        io.cellsMask = { y0, n in Array(c0[(y0 * w)..<((y0 + n) * w)]) }
        let summary = try SlidePipeline.run(cfg, io: io)
        XCTAssertEqual(out.cells, cells)
        XCTAssertEqual(out.nuclei, nuclei)
        XCTAssertGreaterThan(summary.repaired, 0, "the label in two parts is quantified again")
        checkRows(out, summary)
        XCTAssertEqual(Set(out.rows.map(\.id)), Set(cells.filter { $0 != 0 }))
    }

    /// A label above 200 million is refused (an imported mask to relabel), before anything is written.
    func testRefusesHugeLabels() throws {
        let (cfg, open) = try config(tile: 256)
        let out = Written(Self.side, Self.side)
        var io = out.io(open)
        let w = Self.side
        io.cellsMask = { _, n in [UInt32](repeating: 300_000_000, count: n * w) }
        XCTAssertThrowsError(try SlidePipeline.run(cfg, io: io)) { XCTAssertTrue($0 is SlidePipeline.LabelTooLarge) }
        XCTAssertTrue(out.rows.isEmpty)
    }

    /// The streamed slide histogram (two halves on two threads, any band split) is the histogram
    /// of the whole plane; float images are mapped onto 65536 levels by their range, so a float
    /// image thresholds like its uint16 twin.
    func testSlideHistogramAndThreshold() throws {
        let n = Self.side, plane = Self.slide.planes[0]
        let open: @Sendable () throws -> PlaneReader = { MemoryPlanes([plane], width: n) }
        let h = try SlideScan.histogram(open: open, channels: [0], plan: FilterPlan([]), width: n, height: n)
        var direct = [Int](repeating: 0, count: 65536)
        for v in plane { direct[Int(min(65535, max(0, v)) + 0.5)] += 1 }
        XCTAssertEqual(h.bins, direct)
        let t16 = try SlideScan.threshold(open: open, channels: [0], plan: FilterPlan([]), width: n, height: n, integral: true)
        XCTAssertEqual(t16, SlideThreshold.otsu(counts: direct))
        let scaled = plane.map { $0 / 65535 }
        let tf = try SlideScan.threshold(open: { MemoryPlanes([scaled], width: n) }, channels: [0], plan: FilterPlan([]), width: n, height: n, integral: false)
        let lo = scaled.min()!, hi = scaled.max()!
        XCTAssertEqual(Double(tf), Double(t16) / 65535, accuracy: Double(hi - lo) / 65535 * 2, "the float twin's threshold")
    }

    /// The params struct: defaults recorded as "auto", numbers as strings, channel lists as
    /// lists, stats in canonical order; bad values and unknown keys refused with one line naming
    /// the key; the plan derives expand, min area, tile and overlap from the diameter.
    func testParamsDecodeValidateAndPlan() throws {
        func decode(_ json: String) throws -> SegmentParams { try JSONDecoder().decode(SegmentParams.self, from: Data(json.utf8)) }
        func message(_ json: String) -> String {
            do { _ = try decode(json); return "" } catch { return "\(error)" }
        }
        let d = try decode("{}")
        XCTAssertEqual(d, SegmentParams())
        let enc = try JSONSerialization.jsonObject(with: JSONEncoder().encode(d)) as! [String: Any]
        XCTAssertEqual(enc["nucleus-diameter"] as? String, "auto")
        XCTAssertEqual(enc["split"] as? Bool, true)
        XCTAssertEqual(Set(enc.keys), Set(SegmentParams.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(try decode(String(data: JSONEncoder().encode(d), encoding: .utf8)!), d, "the record decodes to the same params")
        let p = try decode(#"{"nucleus-diameter": "14", "expand": 3, "nuclear": ["DAPI", 2], "stats": "sum,median", "split": "false", "seeds": "distance", "threshold-method": "local"}"#)
        XCTAssertEqual(p.nucleusDiameter, 14); XCTAssertEqual(p.expand, 3); XCTAssertEqual(p.nuclear, "DAPI,2")
        XCTAssertEqual(p.stats, "median,sum"); XCTAssertFalse(p.split)
        XCTAssertEqual(message(#"{"expand": -1}"#), "expand: expected a number >= 0 or auto, got -1")
        XCTAssertEqual(message(#"{"expand": 2.5}"#), "expand: expected a whole number >= 0 or auto, got 2.5")
        XCTAssertEqual(message(#"{"seed-h": "big"}"#), "seed-h: expected a number >= 0 or auto, got \"big\"")
        XCTAssertTrue(message(#"{"diameter": 12}"#).hasPrefix("diameter: unknown parameter; known: nuclear, nucleus-diameter"))
        XCTAssertEqual(message(#"{"seeds": "watershed"}"#), SegmentParams.seedsMessage)
        XCTAssertEqual(message(#"{"threshold-method": "otsu"}"#), "threshold-method: expected global or adaptive")
        XCTAssertEqual(message(#"{"stats": "median,bogus"}"#), "stats: unknown bogus in \"median,bogus\"; expected a comma-separated list of median, std, sum (or none)")
        XCTAssertEqual(message(#"{"split": 3}"#), "split: expected true or false")

        let plan = d.plan(diameter: 10, width: 2000, membrane: false)
        XCTAssertEqual(plan.expand, 5); XCTAssertEqual(plan.nuclei.minArea, 7)
        XCTAssertEqual(plan.tile, 1024); XCTAssertEqual(plan.overlap, 50); XCTAssertEqual(plan.cellMethod, "expansion")
        XCTAssertEqual(d.plan(diameter: 10, width: 40_000, membrane: false).tile, 512, "wide slides get shorter tiles")
        XCTAssertEqual(d.plan(diameter: 10, width: 2000, membrane: true).cellMethod, "membrane-watershed")
        XCTAssertEqual(p.plan(diameter: 14, width: 2000, membrane: false).nuclei.split, .distance)
        XCTAssertEqual(p.plan(diameter: 14, width: 2000, membrane: false).nuclei.thresholdMethod, .adaptive)
        var zero = SegmentParams(); zero.expand = 0
        XCTAssertEqual(zero.plan(diameter: 10, width: 2000, membrane: false).cellMethod, "nuclei")
    }
}
