import Foundation
import EpipeKernels

/// What one part of a slide (`--tiles N --tile I`: a contiguous range of the stream's bands)
/// measured, for the merge: per channel the hot pixels replaced, the focus score's per-row sums of
/// its rows, and the histograms of its input and result with the sum of each band. Merged in part
/// order, they give the whole run's metrics bit for bit (counts add; sums are re-added band by band
/// in the whole run's order).
public struct DenoisePartState: Sendable, Equatable {
    public var rows: Range<Int>
    public var hot: [Int]
    public var focusSum: [[Double]], focusSum2: [[Double]], focusVal: [[Double]]
    public var before: [Histogram16Counts], after: [Histogram16Counts]

    /// A histogram's counts and the sum of each band added.
    public struct Histogram16Counts: Sendable, Equatable {
        public var bins: [Int]
        public var n: Int
        public var bandSums: [Double]
    }

    /// The bands of a part of the stream, as `PartSplit` cuts them.
    public static func bands(_ stream: DenoiseStream, part i: Int, of n: Int) -> Range<Int>? {
        PartSplit(units: stream.bands, parts: n).map { $0.range(i) }
    }

    /// From what `stream.run(bands:)` measured on `rows` and the histograms its `input`/`emit` filled.
    public init(rows: Range<Int>, result: DenoiseStream.Result, histograms: [ChannelHistograms]) {
        self.rows = rows
        hot = result.hot
        let f = result.focus.map { $0.rows(rows) }
        focusSum = f.map { $0.sum }; focusSum2 = f.map { $0.sum2 }; focusVal = f.map { $0.val }
        before = histograms.map { Histogram16Counts(bins: $0.before.bins, n: $0.before.n, bandSums: $0.beforeSums) }
        after = histograms.map { Histogram16Counts(bins: $0.after.bins, n: $0.after.n, bandSums: $0.afterSums) }
    }

    /// Merges the parts' states (in part order, covering rows 0..<height) into what the whole run's
    /// `stream.run` returns and the histograms its callbacks fill.
    public static func merge(_ parts: [DenoisePartState], width: Int, height: Int) -> (result: DenoiseStream.Result, histograms: [ChannelHistograms]) {
        let C = parts.first?.hot.count ?? 0
        var focus = (0..<C).map { _ in FocusAccumulator(width: width, height: height) }
        var hot = [Int](repeating: 0, count: C)
        var hb = (0..<C).map { _ in Histogram16() }, ha = hb
        func add(_ h: inout Histogram16, _ c: Histogram16Counts) {
            h.bins.withUnsafeMutableBufferPointer { b in for i in 0..<65536 { b[i] += c.bins[i] } }
            h.n += c.n
            for s in c.bandSums { h.sum += s }
        }
        for p in parts {
            for c in 0..<C {
                hot[c] += p.hot[c]
                focus[c].setRows(p.rows.lowerBound, sum: p.focusSum[c], sum2: p.focusSum2[c], val: p.focusVal[c])
                add(&hb[c], p.before[c]); add(&ha[c], p.after[c])
            }
        }
        return (DenoiseStream.Result(hot: hot, focus: focus), (0..<C).map { ChannelHistograms(before: hb[$0], after: ha[$0]) })
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.int(1)   // format version
        w.int(rows.lowerBound); w.int(rows.upperBound)
        w.ints(hot)
        for c in hot.indices {
            w.doubles(focusSum[c]); w.doubles(focusSum2[c]); w.doubles(focusVal[c])
            for h in [before[c], after[c]] {
                var pairs: [Int] = []
                for (i, k) in h.bins.enumerated() where k != 0 { pairs.append(i); pairs.append(k) }
                w.ints(pairs); w.int(h.n); w.doubles(h.bandSums)
            }
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        guard try r.int() == 1 else { throw ByteReader.Truncated() }
        let lo = try r.int(), hi = try r.int()
        guard lo >= 0 && hi >= lo else { throw ByteReader.Truncated() }
        rows = lo..<hi
        hot = try r.ints()
        focusSum = []; focusSum2 = []; focusVal = []; before = []; after = []
        for _ in hot.indices {
            focusSum.append(try r.doubles()); focusSum2.append(try r.doubles()); focusVal.append(try r.doubles())
            guard focusSum.last!.count == rows.count && focusSum2.last!.count == rows.count && focusVal.last!.count == rows.count else { throw ByteReader.Truncated() }
            for k in 0..<2 {
                let pairs = try r.ints()
                guard pairs.count % 2 == 0 else { throw ByteReader.Truncated() }
                var bins = [Int](repeating: 0, count: 65536)
                for j in stride(from: 0, to: pairs.count, by: 2) {
                    guard pairs[j] >= 0 && pairs[j] < 65536 else { throw ByteReader.Truncated() }
                    bins[pairs[j]] = pairs[j + 1]
                }
                let h = Histogram16Counts(bins: bins, n: try r.int(), bandSums: try r.doubles())
                if k == 0 { before.append(h) } else { after.append(h) }
            }
        }
        guard r.atEnd else { throw ByteReader.Truncated() }
    }
}
