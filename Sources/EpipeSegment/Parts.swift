import Foundation
import EpipeKernels

/// One slide across many workers (`epipe-segment --tiles N --tile I`): part I labels the nuclei of a
/// contiguous range of the whole run's tile rows (`PartSplit` over `TileGrid.rows`), starting one
/// tile row early (the lead row, discarded) so that its own rows get exactly the whole run's labels
/// less a constant (see `TiledLabeller.run(tileRows:)`); the merge maps each part's ids back
/// (`globalId`) and feeds the bands to `SlidePipeline` (`IO.nucleiBands`), which grows, writes and
/// quantifies them as the whole run does. The labelling (the costly part: smoothing, seeds and
/// watershed per tile) is what the parts share out.
public enum SegmentParts {
    public struct Part: Sendable, Equatable {
        public let index: Int, count: Int
        /// The part's own tile rows, and the rows of the slide they cover.
        public let tileRows: Range<Int>, rows: Range<Int>
        /// The tile rows it labels: its own and the lead row before them (none for the first part).
        public let labelled: Range<Int>
    }

    /// Part `index` of `count` of a grid; nil when there are more parts than tile rows.
    public static func part(grid: TileGrid, index: Int, count: Int) -> Part? {
        guard let split = PartSplit(units: grid.rows, parts: count), index >= 0, index < count else { return nil }
        let r = split.range(index)
        return Part(index: index, count: count, tileRows: r, rows: split.rows(index, unitRows: grid.tile, height: grid.height),
                    labelled: Swift.max(0, r.lowerBound - 1)..<r.upperBound)
    }

    /// What a part's labelling found: `lead` objects in its lead row (ids 1...lead, not its own),
    /// `own` objects in its own rows (ids lead+1 ... lead+own in its bands), `last` of them in its
    /// last tile row (which the next part's lead row must find again).
    public struct Counts: Sendable, Equatable, Codable {
        public var lead: Int, own: Int, last: Int
        public init(lead: Int, own: Int, last: Int) { self.lead = lead; self.own = own; self.last = last }
    }

    /// Labels the part's nuclei (the mean of `cfg.nuclearChannels`, `cfg.nuclei` with the slide's
    /// threshold), emitting its own bands (y0, rows, labels with the part's ids) in order. Memory:
    /// the labeller's (tile + overlap rows x width), as in the whole run.
    public static func label(_ cfg: SlidePipeline.Config, part: Part, reader: PlaneReader,
                             emit: (Int, Int, [UInt32]) throws -> Void, bandDone: () -> Void = {}) throws -> Counts {
        let w = cfg.width, params = cfg.nuclei, nucs = cfg.nuclearChannels
        let labeller = TiledLabeller(width: w, height: cfg.height, tile: cfg.tile, overlap: cfg.overlap) { plane, tw, th in
            Segmenter.nuclei(plane, width: tw, height: th, params: params).labels
        }
        var cache: (y0: Int, h: Int, rows: [Float])? = nil
        var lead = 0, seen = 0, beforeLast = 0
        let total = try labeller.run(tileRows: part.labelled, read: { x0, y0, ww, hh in
            if cache == nil || cache!.y0 != y0 || cache!.h != hh { cache = (y0, hh, try SlideScan.readMean(reader, channels: nucs, y0: y0, count: hh)) }
            var out = [Float](repeating: 0, count: ww * hh)
            cache!.rows.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    for r in 0..<hh { for x in 0..<ww { dst[r * ww + x] = src[r * w + x0 + x] } }
                }
            }
            return out
        }, emit: { y0, rows, labels in
            if y0 < part.rows.lowerBound {
                // the lead row: every object it keeps has its anchor (its first pixel) in this band
                for v in labels where Int(v) > lead { lead = Int(v) }
                return
            }
            beforeLast = Swift.max(seen, lead)
            for v in labels where Int(v) > seen { seen = Int(v) }
            try emit(y0, rows, labels)
            bandDone()
        })
        return Counts(lead: lead, own: total - lead, last: total - beforeLast)
    }

    /// The whole run's id of a part's local id (0 stays 0), given the objects of the parts before it
    /// (`offset`: the sum of their `own`).
    @inline(__always) public static func globalId(_ local: UInt32, counts: Counts, offset: Int) -> UInt32 {
        local == 0 ? 0 : UInt32(Int(local) - counts.lead + offset)
    }

    /// Every part's offset (the objects of the parts before it), checking that each part's lead
    /// row holds as many objects as the last tile row of the part before it: nil when they
    /// disagree (parts run with other params or versions).
    public static func offsets(_ counts: [Counts]) -> [Int]? {
        var out: [Int] = [], acc = 0
        for (i, c) in counts.enumerated() {
            if i == 0 ? c.lead != 0 : c.lead != counts[i - 1].last { return nil }
            out.append(acc); acc += c.own
        }
        return out
    }
}
