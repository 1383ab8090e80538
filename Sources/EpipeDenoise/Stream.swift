import Foundation
import EpipeKernels
import Dispatch

/// What to do to one channel, resolved from defaults, job.json params and flags.
public struct ChannelRecipe: Equatable, Sendable, Codable {
    public var hotPixels: Float?        // threshold, nil = off
    public var median = false
    public var rollingBall: Double?     // radius
    public var lightBackground = false
    public var tophat: Int?
    public var gaussian = 0.0
    public var flatfield = false
    public var blanks = false

    public init() {}

    public var pre: FilterPlan { FilterPlan(hotPixels.map { [.hotPixels(threshold: $0)] } ?? []) }
    public var post: FilterPlan {
        var ops: [FilterOp] = []
        if median { ops.append(.median3) }
        if let r = rollingBall { ops.append(.rollingBall(radius: r, lightBackground: lightBackground)) }
        if let r = tophat { ops.append(.tophat(radius: r)) }
        if gaussian > 0 { ops.append(.gaussian(sigma: gaussian)) }
        return FilterPlan(ops)
    }
    public var halo: Int { pre.halo + post.halo }
    public var isIdentity: Bool { hotPixels == nil && !median && rollingBall == nil && tophat == nil && gaussian == 0 && !flatfield && !blanks }
}

/// Denoises a whole image in row bands with a halo, per channel in this order: hot pixels, dark/flat field,
/// blank subtraction, then the post filters (median, background, Gaussian). Results do not depend on the
/// band size. Memory ~ band x width x (channels in flight); the image is reached only through closures.
public struct DenoiseStream: Sendable {
    public let width: Int, height: Int
    public let recipes: [ChannelRecipe]
    public let illumination: [Illumination]
    /// Per channel, the blank channels and weights subtracted from it (`Blanks.weights`), empty = none.
    public let blankWeights: [[(channel: Int, weight: Float)]]
    /// The blank channels (read first in every band: every marker subtracts them).
    public let blankChannels: [Int]
    public let bandRows: Int
    public var channels: Int { recipes.count }
    public var halo: Int { recipes.map { $0.halo }.max() ?? 0 }
    public var bands: Int { (height + bandRows - 1) / bandRows }

    public init(width: Int, height: Int, recipes: [ChannelRecipe], illumination: [Illumination],
                blankWeights: [[(channel: Int, weight: Float)]], blankChannels: [Int], bandRows: Int) {
        precondition(illumination.count == recipes.count && blankWeights.count == recipes.count && bandRows > 0)
        self.width = width; self.height = height; self.recipes = recipes; self.illumination = illumination
        self.blankWeights = blankWeights; self.blankChannels = blankChannels; self.bandRows = bandRows
    }

    /// Rows per band when none is given: two channels are in flight at a time (input, hot-pixel copy,
    /// output, filter scratch: ~6 float rows each) and the writer holds up to a tile row per channel:
    /// ~400 MiB, whole tile rows.
    public static func autoBandRows(width: Int, channels: Int) -> Int {
        let perRow = 2 * 6 * 4 * width + channels * 2 * width
        return Swift.max(256, Swift.min(4096, ((400 << 20) / Swift.max(1, perRow)) / 256 * 256))
    }

    /// Flat-field models estimated from the image (a first pass over `read`): per-block 10th percentiles on
    /// blocks of 1/16 of the shorter side (16...256 px), a grid fine enough for vignetting.
    public static func estimateFlatFields(width w: Int, height h: Int, channels: [Int], bandRows: Int,
                                          read: (Int, Int, Int) throws -> [Float], bandDone: () -> Void = {}) throws -> [Int: FlatField] {
        let block = Swift.max(16, Swift.min(256, Swift.min(w, h) / 16))
        var acc = [Int: BlockPercentiles]()
        for c in channels { acc[c] = BlockPercentiles(width: w, height: h, block: block, percentile: 10) }
        for b in 0..<((h + bandRows - 1) / bandRows) {
            let y0 = b * bandRows, n = Swift.min(bandRows, h - y0)
            for c in channels {
                let rows = try read(c, y0, n)
                rows.withUnsafeBufferPointer { acc[c]!.add(rows: $0, y0: y0, count: n) }
            }
            bandDone()
        }
        var out = [Int: FlatField]()
        for c in channels {
            let g = acc[c]!.grid()
            out[c] = FlatField.estimate(lowPercentileGrid: g.values, gridWidth: g.width, gridHeight: g.height, imageWidth: w, imageHeight: h, smoothSigmaCells: 1.5, block: block)
        }
        return out
    }

    /// What the stream measured: hot pixels replaced and the focus score, per channel.
    public struct Result: Sendable { public var hot: [Int]; public var focus: [FocusAccumulator] }

    /// Streams the image. `read(c, y0, n)` = n rows of channel c from y0 (row-major floats); `readDark(c, y0, n)`
    /// the same rows of the dark-field image (needed when an `Illumination` has `darkImage`); `input(c, y0, rows, band)`
    /// sees each band's raw rows; `emit(c, y0, rows, values)` receives the result. Called for several channels at
    /// once, one channel by one thread at a time; `bandDone` after each band. `bands` = the bands to run
    /// (default all): a part of the slide (`--tiles N --tile I`) runs its range of bands, reading their
    /// context rows itself, and emits exactly the rows the whole run emits for them.
    public func run(bands: Range<Int>? = nil,
                    read: @escaping @Sendable (Int, Int, Int) throws -> [Float],
                    readDark: (@Sendable (Int, Int, Int) throws -> [Float])? = nil,
                    input: @escaping @Sendable (Int, Int, Int, UnsafeBufferPointer<Float>) -> Void,
                    emit: @escaping @Sendable (Int, Int, Int, [Float]) throws -> Void,
                    bandDone: () -> Void = {}) throws -> Result {
        let w = width, h = height, C = channels, halo = self.halo, recs = recipes, illum = illumination, blankW = blankWeights
        let state = (0..<C).map { _ in StreamState(width: w, height: h) }
        let anyBlanks = recs.contains { $0.blanks }
        let range = bands ?? 0..<self.bands
        precondition(range.lowerBound >= 0 && range.upperBound <= self.bands, "bands out of range")
        for b in range {
            let y0 = b * bandRows, rows = Swift.min(bandRows, h - y0)
            // Channel c needs rows lo..<hi of its hot-pixel-corrected input: the band and its later
            // filters' context (fewer rows at the image edges; the filters replicate the true edge rows).
            @Sendable func range(_ c: Int) -> (Int, Int) { let k = halo - recs[c].pre.halo; return (Swift.max(0, y0 - k), Swift.min(h, y0 + rows + k)) }
            /// Reads channel c's rows, records input statistics, removes hot pixels, corrects dark/flat field.
            @Sendable func stage1(_ c: Int) throws -> [Float] {
                let st = state[c]
                let pre = recs[c].pre
                let (lo, hi) = range(c)
                let inLo = Swift.max(0, lo - pre.halo), inHi = Swift.min(h, hi + pre.halo)
                let fLo = Swift.max(0, y0 - 1), fHi = Swift.min(h, y0 + rows + 1)   // the focus score needs one row of context
                let rLo = Swift.min(inLo, fLo), rHi = Swift.max(inHi, fHi)
                let raw = try read(c, rLo, rHi - rLo)
                var out: [Float] = []
                raw.withUnsafeBufferPointer { band in
                    input(c, y0, rows, UnsafeBufferPointer(rebasing: band[((y0 - rLo) * w)..<((y0 - rLo + rows) * w)]))
                    st.focus.add(band: UnsafeBufferPointer(rebasing: band[((fLo - rLo) * w)..<((fHi - rLo) * w)]), haloTop: y0 - fLo, rows: rows, haloBottom: fHi - y0 - rows, y0: y0)
                    if pre.ops.isEmpty { out = Array(band[((lo - rLo) * w)..<((hi - rLo) * w)]); return }
                    let sub = UnsafeBufferPointer(rebasing: band[((inLo - rLo) * w)..<((inHi - rLo) * w)])
                    out = pre.apply(band: sub, width: w, haloTop: lo - inLo, rows: hi - lo, haloBottom: inHi - hi, y0: lo, imageHeight: h).values
                    // replacements in this band's own rows only
                    var n = 0
                    out.withUnsafeBufferPointer { o in
                        let off = (y0 - lo) * w, ioff = (y0 - rLo) * w
                        for i in 0..<(rows * w) where o[off + i] != band[ioff + i] { n += 1 }
                    }
                    st.hot += n
                }
                if !illum[c].isIdentity {
                    let darkRows = try illum[c].darkImage ? readDark.map { try $0(c, lo, hi - lo) } : nil
                    out.withUnsafeMutableBufferPointer { buf in
                        if let d = darkRows { d.withUnsafeBufferPointer { illum[c].correct(band: buf, y0: lo, rows: hi - lo, darkRows: $0) } }
                        else { illum[c].correct(band: buf, y0: lo, rows: hi - lo) }
                    }
                }
                return out
            }
            // Blank channels first (every marker of the band subtracts them), then the markers two at a time:
            // one reads and decodes while the other filters.
            var blankRows = [Int: [Float]]()
            for j in blankChannels where anyBlanks { blankRows[j] = try stage1(j) }
            let blanksDone = blankRows
            let errors = StreamErrors()
            DispatchQueue.concurrentPerform(iterations: C) { c in
                do {
                    var v = try blanksDone[c] ?? stage1(c)
                    let (lo, hi) = range(c)
                    if recs[c].blanks && !blankW[c].isEmpty {
                        let src = blankW[c].map { (values: blanksDone[$0.channel]!, offset: (lo - range($0.channel).0) * w) }
                        v.withUnsafeMutableBufferPointer { Blanks.subtract(row: $0, blanks: src, weights: blankW[c].map { $0.weight }) }
                    }
                    let post = recs[c].post
                    let out: [Float] = v.withUnsafeBufferPointer { band in
                        if post.ops.isEmpty { return Array(band[((y0 - lo) * w)..<((y0 - lo + rows) * w)]) }
                        let blo = Swift.max(lo, y0 - post.halo), bhi = Swift.min(hi, y0 + rows + post.halo)
                        let sub = UnsafeBufferPointer(rebasing: band[((blo - lo) * w)..<((bhi - lo) * w)])
                        return post.apply(band: sub, width: w, haloTop: y0 - blo, rows: rows, haloBottom: bhi - y0 - rows, y0: y0, imageHeight: h).values
                    }
                    try emit(c, y0, rows, out)
                } catch { errors.set(error) }
            }
            if let e = errors.error { throw e }
            bandDone()
        }
        return Result(hot: state.map { $0.hot }, focus: state.map { $0.focus })
    }
}

/// What one channel accumulates while the bands stream by; touched by one thread at a time.
final class StreamState: @unchecked Sendable {
    var hot = 0
    var focus: FocusAccumulator
    init(width: Int, height: Int) { focus = FocusAccumulator(width: width, height: height) }
}

final class StreamErrors: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
}
