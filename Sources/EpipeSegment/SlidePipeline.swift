import Foundation
import EpipeKernels

/// The whole slide, streamed: nuclei tile by tile (or an imported mask's rows), cells by growing
/// the nuclei band by band, both masks written band by band, every channel quantified per cell
/// and nucleus in sub-bands, and the per-cell rows released in increasing CellID as soon as the
/// bands are past them. Memory goes with tile x width (and the open cells), never with the
/// slide's height or its number of cells. Files stay with the caller: it passes readers and
/// writers as closures.
public enum SlidePipeline {
    public struct Config: Sendable {
        public var width: Int, height: Int, channels: Int
        /// The nuclear channel is the mean of these.
        public var nuclearChannels: [Int]
        /// The nucleus recipe with the slide's threshold set.
        public var nuclei: NucleiParams
        public var growth: CellGrowth
        /// Membrane channels and their slide levels (`.membrane` growth).
        public var membraneChannels: [Int] = [], membraneLevels: [MembraneLevels] = []
        public var tile: Int, overlap: Int
        public var stats: CellStats = []
        /// A label closes this many rows after its last row (default: one nucleus diameter), so
        /// labels with a few empty rows inside stay open instead of going through the repair pass.
        public var grace: Int
        /// Rows per quantification sub-band (all channels of one sub-band are in memory).
        public var subRows: Int

        public init(width: Int, height: Int, channels: Int, nuclearChannels: [Int], nuclei: NucleiParams, growth: CellGrowth,
                    tile: Int, overlap: Int, grace: Int? = nil, subRows: Int? = nil) {
            self.width = width; self.height = height; self.channels = channels
            self.nuclearChannels = nuclearChannels; self.nuclei = nuclei; self.growth = growth
            self.tile = tile; self.overlap = overlap
            self.grace = grace ?? Int(nuclei.nucleusDiameter.rounded(.up))
            self.subRows = max(1, subRows ?? QuantPlan.subBandRows(width: width, channels: channels))
        }
    }

    /// The caller's side: its readers and writers. `open` gives a reader of the image for one
    /// thread (it is called once per thread). Imported masks give rows [y0, y0 + count) of
    /// labels; `readBack` reads rows of the masks already written (cells when its first argument
    /// is true), for the repair pass.
    public struct IO {
        public var open: () throws -> PlaneReader
        public var nucleiMask: ((Int, Int) throws -> [UInt32])? = nil
        public var cellsMask: ((Int, Int) throws -> [UInt32])? = nil
        /// Nuclei labelled elsewhere (the parts of a slide, `SegmentParts`): rows [y0, y0 + count) of
        /// each band (tile row), exactly as the labeller would emit them; instead of labelling here.
        /// Unlike an imported mask, everything else runs as in the whole run (rows streamed by CellID).
        public var nucleiBands: ((Int, Int) throws -> [UInt32])? = nil
        public var writeMasks: (_ y0: Int, _ rows: Int, _ nuclei: [UInt32], _ cells: [UInt32]) throws -> Void
        /// Per-cell rows in increasing CellID (imported masks: all at the end).
        public var writeRows: ([CellRowJoiner.Joined]) throws -> Void
        /// Called once both masks are complete (before the repair pass reads them back).
        public var finishMasks: () throws -> Void
        public var readBack: (_ cells: Bool, _ y0: Int, _ count: Int) throws -> [UInt32]
        /// After each band of tile rows.
        public var bandDone: () -> Void = {}
        public var log: (String) -> Void = { _ in }

        public init(open: @escaping () throws -> PlaneReader, writeMasks: @escaping (Int, Int, [UInt32], [UInt32]) throws -> Void,
                    writeRows: @escaping ([CellRowJoiner.Joined]) throws -> Void, finishMasks: @escaping () throws -> Void,
                    readBack: @escaping (Bool, Int, Int) throws -> [UInt32]) {
            self.open = open; self.writeMasks = writeMasks; self.writeRows = writeRows
            self.finishMasks = finishMasks; self.readBack = readBack
        }
    }

    public struct Summary {
        /// The largest label written.
        public var maxId: UInt32
        /// Pixels inside a cell.
        public var segmented: Int
        /// Rows written before their final values (ids increasing): the caller rewrites them
        /// (and calls `joiner.forgetArea` with each replaced row's old area).
        public var corrections: [CellRowJoiner.Joined]
        public var joiner: CellRowJoiner
        public var qc: SegmentQC
        public var peakOpenCells: Int, peakOpenNuclei: Int
        /// Labels (cells + nuclei) quantified again from rows read back (split or out-of-order labels).
        public var repaired: Int
    }

    /// Labels above this are refused (an imported mask to relabel).
    public static let maxLabel: UInt32 = 200_000_000

    public struct LabelTooLarge: Error, CustomStringConvertible {
        public let id: UInt32
        public var description: String { "label mask has id \(id); relabel it to 1...N (at most 200 million cells)" }
    }

    public static func run(_ cfg: Config, io: IO) throws -> Summary {
        let w = cfg.width, C = cfg.channels
        let importedIds = io.nucleiMask != nil || io.cellsMask != nil
        let reader = try io.open()
        let cellAcc = CellAccumulator(channels: C, stats: cfg.stats, retain: false, grace: cfg.grace)
        let nucAcc = CellAccumulator(channels: C, stats: cfg.stats, retain: false, grace: cfg.grace)
        var match = NucleusCellMatch()
        let joiner = CellRowJoiner()
        let qc = SegmentQC(width: w, height: cfg.height)
        var seenReopened = (0, 0)
        /// After a sub-band: the rows the joiner can release, written.
        func releaseRows() throws {
            joiner.reopened(Array(cellAcc.reopened[seenReopened.0...]) + Array(nucAcc.reopened[seenReopened.1...]))
            seenReopened = (cellAcc.reopened.count, nucAcc.reopened.count)
            guard !importedIds else { return }
            let m = match
            try io.writeRows(joiner.release(upTo: UInt32(nucAcc.maxId), isOpen: { cellAcc.status($0) == .open || nucAcc.status($0) == .open },
                                            isReopened: { cellAcc.status($0) == .reopened || nucAcc.status($0) == .reopened }, covered: { m.isCovered($0) }))
        }
        typealias Band = (y0: Int, rows: Int, labels: [UInt32])
        var pending: [Band] = []
        var segmented = 0
        var maxId: UInt32 = 0
        /// Finishes the oldest pending band: grow its nuclei into cells with context rows from its
        /// neighbours (`expand` rows for expansion, the membrane context for the watershed; pending
        /// bands are whole tile rows, >= 256 rows), write both masks, quantify every channel in sub-bands.
        func finish(_ k: Int) throws {
            var band = pending[k]
            var cells = band.labels
            if let cm = io.cellsMask {
                cells = try cm(band.y0, band.rows)
                // Our nuclei take the id of the imported cell they lie in (pixels outside any cell are dropped).
                if io.nucleiMask == nil { for i in 0..<cells.count { band.labels[i] = band.labels[i] != 0 ? cells[i] : 0 } }
            } else {
                cells = try BandCells.grow(band.labels, rows: band.rows, y0: band.y0, width: w, above: k > 0 ? pending[k - 1].labels : nil,
                                           below: k + 1 < pending.count ? pending[k + 1].labels : nil, growth: cfg.growth) { y0, n in
                    var membrane = [Float](repeating: 0, count: n * w)   // one marker plane read at a time
                    for (c, lv) in zip(cfg.membraneChannels, cfg.membraneLevels) { Segmenter.addMembrane(try reader.readRows(channel: c, y0: y0, count: n), levels: lv, into: &membrane) }
                    return membrane
                }
            }
            for l in cells where l > maxId { maxId = l }
            for l in band.labels where l > maxId { maxId = l }
            guard maxId < maxLabel else { throw LabelTooLarge(id: maxId) }
            try io.writeMasks(band.y0, band.rows, band.labels, cells)
            for l in cells where l != 0 { segmented += 1 }
            var sy = 0
            while sy < band.rows {
                let n = min(cfg.subRows, band.rows - sy)
                let planes = try (0..<C).map { try reader.readRows(channel: $0, y0: band.y0 + sy, count: n) }
                let lo = sy * w, hi = (sy + n) * w
                SlideScan.withBuffers(planes) { bufs in
                    let cr = cells[lo..<hi].withUnsafeBufferPointer { cellAcc.add(labels: $0, y0: band.y0 + sy, rows: n, width: w, channels: bufs) }
                    band.labels[lo..<hi].withUnsafeBufferPointer { nb in
                        joiner.add(cells: cr, nuclei: nucAcc.add(labels: nb, y0: band.y0 + sy, rows: n, width: w, channels: bufs))
                        cells[lo..<hi].withUnsafeBufferPointer { match.add(nuclei: nb, cells: $0) }
                    }
                }
                try releaseRows()
                qc.add(nuclear: SlideScan.meanOf(planes, channels: cfg.nuclearChannels), nuclei: Array(band.labels[lo..<hi]),
                       cells: Array(cells[lo..<hi]), y0: band.y0 + sy, rows: n)
                sy += n
            }
        }
        func emitBand(_ b: Band) throws {
            pending.append(b)
            if pending.count >= 2 { try finish(pending.count - 2) }
            if pending.count > 2 { pending.removeFirst() }
            io.bandDone()
        }
        // Nuclei (or the imported mask) are produced band by band on their own thread, with their
        // own reader, while this thread grows, writes and quantifies the bands already done.
        let params = cfg.nuclei
        let labeller = TiledLabeller(width: w, height: cfg.height, tile: cfg.tile, overlap: cfg.overlap) { plane, tw, th in
            Segmenter.nuclei(plane, width: tw, height: th, params: params).labels
        }
        let grid = TileGrid(width: w, height: cfg.height, tile: cfg.tile, overlap: cfg.overlap)
        let given = io.nucleiMask ?? io.nucleiBands
        let nucReader = given == nil ? try io.open() : reader
        let shared = UnsafeShared((labeller: labeller, nucReader: nucReader, nucMask: given, grid: grid, nucs: cfg.nuclearChannels))
        try Handoff<Band>(capacity: 1).run(produce: { out in
            let s = shared.value
            if let nm = s.nucMask {
                for r in 0..<s.grid.rows {
                    let b = s.grid.band(r)
                    try out.put((b.y0, b.rows, try nm(b.y0, b.rows)))
                }
                return
            }
            var cache: (y0: Int, h: Int, rows: [Float])? = nil
            _ = try s.labeller.run(read: { x0, y0, ww, hh in
                if cache == nil || cache!.y0 != y0 || cache!.h != hh { cache = (y0, hh, try SlideScan.readMean(s.nucReader, channels: s.nucs, y0: y0, count: hh)) }
                var out = [Float](repeating: 0, count: ww * hh)
                cache!.rows.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        for r in 0..<hh { for x in 0..<ww { dst[r * ww + x] = src[r * w + x0 + x] } }
                    }
                }
                return out
            }, emit: { y0, rows, labels in try out.put((y0, rows, labels)) })
        }, consume: emitBand)
        if !pending.isEmpty { try finish(pending.count - 1) }
        try io.finishMasks()
        joiner.add(cells: cellAcc.finish(), nuclei: nucAcc.finish())
        try releaseRows()
        let repaired = try repair(cellAcc: cellAcc, nucAcc: nucAcc, joiner: joiner, reader: reader, cfg: cfg, io: io)
        let m = match
        try io.writeRows(joiner.releaseAll(covered: { m.isCovered($0) }))
        return Summary(maxId: maxId, segmented: segmented, corrections: joiner.corrections(covered: { m.isCovered($0) }), joiner: joiner,
                       qc: qc, peakOpenCells: cellAcc.peakOpenCells, peakOpenNuclei: nucAcc.peakOpenCells, repaired: repaired)
    }

    /// Labels whose rows are not contiguous (closed, then back): that compartment recomputed from
    /// the rows read once more; rows released too early (the joiner's redo): both compartments.
    /// Returns the number of labels (cells + nuclei) repaired.
    static func repair(cellAcc: CellAccumulator, nucAcc: CellAccumulator, joiner: CellRowJoiner, reader: PlaneReader, cfg: Config, io: IO) throws -> Int {
        let w = cfg.width, C = cfg.channels
        let redo = joiner.redo
        let cellSet = Set(cellAcc.reopened).union(redo), nucSet = Set(nucAcc.reopened).union(redo)
        guard !cellSet.isEmpty || !nucSet.isEmpty else { return 0 }
        let r1 = cellAcc.beginRepair(extra: Array(redo), firstRow: { joiner.heldMinY($0, cells: true) })
        let r2 = nucAcc.beginRepair(extra: Array(redo), firstRow: { joiner.heldMinY($0, cells: false) })
        joiner.beginRepair(cells: cellSet, nuclei: nucSet)
        let lo = min(r1?.lowerBound ?? Int.max, r2?.lowerBound ?? Int.max), hi = max(r1?.upperBound ?? 0, r2?.upperBound ?? 0)
        io.log("quantification: \(cellSet.count) cells and \(nucSet.count) nuclei in labels in separate parts or out of order (\(redo.count)); reading rows \(lo)..<\(hi) again")
        var y = lo
        while y < hi {
            let n = min(cfg.subRows, hi - y)
            // the part of [y, y + n) inside each compartment's range
            func part(_ r: Range<Int>?, _ acc: CellAccumulator) -> Range<Int>? {
                guard let r, acc.repairRows.contains(where: { $0.overlaps(y..<(y + n)) }) else { return nil }
                let c = r.clamped(to: y..<(y + n)); return c.isEmpty ? nil : c
            }
            let p1 = part(r1, cellAcc), p2 = part(r2, nucAcc)
            if p1 != nil || p2 != nil {
                let cl = p1 == nil ? [] : try io.readBack(true, y, n)
                let nl = p2 == nil ? [] : try io.readBack(false, y, n)
                let planes = try (0..<C).map { try reader.readRows(channel: $0, y0: y, count: n) }
                func feed(_ acc: CellAccumulator, _ lab: [UInt32], _ p: Range<Int>?) -> [CellRow] {
                    guard let p else { return [] }
                    let a = (p.lowerBound - y) * w, b = (p.upperBound - y) * w
                    return SlideScan.withBuffers(planes) { bufs in
                        lab[a..<b].withUnsafeBufferPointer {
                            acc.repair(labels: $0, y0: p.lowerBound, rows: p.count, width: w, channels: bufs.map { UnsafeBufferPointer(rebasing: $0[a..<b]) })
                        }
                    }
                }
                joiner.repaired(cells: feed(cellAcc, cl, p1), nuclei: feed(nucAcc, nl, p2))
            }
            y += n
        }
        joiner.repaired(cells: cellAcc.endRepair(), nuclei: nucAcc.endRepair())
        return cellSet.count + nucSet.count
    }
}
