import Foundation
import Dispatch
import EpipeKernels

/// One thread's view of the slide's planes. Each thread opens its own (a TIFF handle is not
/// shared between threads), so the scans below take `open` and call it once per worker.
public protocol PlaneReader: AnyObject {
    /// Full-width rows [y0, y0 + count) of one channel, row-major.
    func readRows(channel: Int, y0: Int, count: Int) throws -> [Float]
    /// A window of one channel, row-major.
    func readWindow(channel: Int, x0: Int, y0: Int, width: Int, height: Int) throws -> [Float]
}

/// The passes over the whole slide that come before segmentation: the diameter sample, the
/// value range of float images, the histograms behind the thresholds. Memory goes with a band
/// of rows, never with the slide.
public enum SlideScan {
    /// Windows of the nuclear channel (the mean of `channels`) for `NucleusDiameter.estimate`: the
    /// whole plane up to 2048 x 2048 px; else up to 4 tiles of 1024 x 1024 px with the most nuclear
    /// signal, ranked by the mean of the middle 256 rows of each tile row (one sparse pass in bands,
    /// memory ~ 256 rows x width) and read in chunks of 256 rows. Deterministic.
    public static func diameterSample(open: @escaping @Sendable () throws -> PlaneReader, channels: [Int], width w: Int, height h: Int) throws -> [(plane: [Float], w: Int, h: Int)] {
        if w * h <= 2048 * 2048 { return [(try readMean(open(), channels: channels, y0: 0, count: h), w, h)] }
        let side = 1024
        let nx = max(1, w / side), ny = max(1, h / side)
        let tw = min(side, w), th = min(side, h)
        let offX = (w - nx * tw) / 2, offY = (h - ny * th) / 2
        // two readers (a libtiff handle is not shared between threads) decode in parallel
        let workers = 2
        func parallel<T>(_ count: Int, _ body: @escaping @Sendable (PlaneReader, Int) throws -> T) throws -> [T] {
            let slots = max(count, 1)
            let out = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: slots)
            out.initialize(repeating: nil, count: slots)
            defer { out.deinitialize(count: slots); out.deallocate() }
            let O = UnsafeShared(out)
            DispatchQueue.concurrentPerform(iterations: min(workers, count)) { k in
                let reader: PlaneReader
                do { reader = try open() } catch {
                    for i in stride(from: k, to: count, by: workers) { O.value[i] = .failure(error) }
                    return
                }
                for i in stride(from: k, to: count, by: workers) { O.value[i] = Result { try body(reader, i) } }
            }
            return try (0..<count).map { try out[$0]!.get() }
        }
        // the 4 windows with the most nuclear signal, scored on 256 rows through the middle of each
        // (starting at a multiple of 256: the rows of whole 256 px TIFF tiles)
        let scores: [[Double]] = try parallel(ny) { reader, ty in
            let rows = min(256, th), top = offY + ty * th
            let y0 = min(top + th - rows, max(top, (top + th / 2) / 256 * 256))
            let band = try readMean(reader, channels: channels, y0: y0, count: rows)
            return band.withUnsafeBufferPointer { b in
                (0..<nx).map { tx in
                    var s = 0.0
                    for r in 0..<rows { for x in (offX + tx * tw)..<(offX + (tx + 1) * tw) { let v = b[r * w + x]; if v.isFinite { s += Double(v) } } }
                    return s
                }
            }
        }
        let score = scores.flatMap { $0 }
        let best = Array((0..<score.count).sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }.prefix(4))
        return try parallel(best.count) { reader, i in
            let k = best[i]
            let x0 = offX + (k % nx) * tw, y0 = offY + (k / nx) * th
            let planes = try channels.map { try reader.readWindow(channel: $0, x0: x0, y0: y0, width: tw, height: th) }
            return (meanOf(planes, channels: Array(0..<channels.count)), tw, th)
        }
    }

    /// Rows [y0, y0 + count) of the mean of `channels` (one channel: that channel).
    public static func readMean(_ r: PlaneReader, channels: [Int], y0: Int, count n: Int) throws -> [Float] {
        if channels.count == 1 { return try r.readRows(channel: channels[0], y0: y0, count: n) }
        return meanOf(try channels.map { try r.readRows(channel: $0, y0: y0, count: n) }, channels: Array(0..<channels.count))
    }

    /// The mean of `planes[c]` for c in `channels` (one channel: that plane).
    public static func meanOf(_ planes: [[Float]], channels: [Int]) -> [Float] {
        var out = planes[channels[0]]
        guard channels.count > 1 else { return out }
        for c in channels.dropFirst() {
            out.withUnsafeMutableBufferPointer { o in planes[c].withUnsafeBufferPointer { m in for i in 0..<o.count { o[i] += m[i] } } }
        }
        let k = 1 / Float(channels.count)
        out.withUnsafeMutableBufferPointer { o in for i in 0..<o.count { o[i] *= k } }
        return out
    }

    /// Smallest and largest value of the mean of `channels` over the slide (bands of 512 rows).
    public static func range(open: () throws -> PlaneReader, channels: [Int], width w: Int, height h: Int) throws -> (min: Float, max: Float) {
        let reader = try open()
        var lo = Float.infinity, hi = -Float.infinity
        var y0 = 0
        while y0 < h {
            let n = min(512, h - y0)
            for v in try readMean(reader, channels: channels, y0: y0, count: n) where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
            y0 += n
        }
        return lo <= hi ? (lo, hi) : (0, 1)
    }

    /// Histogram of the mean of `channels` (usually one) after `plan` (e.g. the segmentation's smoothing) over the whole
    /// slide, streamed in bands of 512 rows; the slide's halves run on two threads, each with its own
    /// reader (counts do not depend on the split). With `map`, values are mapped to (v - offset) x scale
    /// before counting (float images onto the 65536 levels).
    public static func histogram(open: @escaping @Sendable () throws -> PlaneReader, channels: [Int], plan: FilterPlan, width w: Int, height h: Int,
                        map: (offset: Float, scale: Float)? = nil) throws -> Histogram16 {
        let bandRows = 512
        let nb = (h + bandRows - 1) / bandRows
        let parts = nb >= 4 ? 2 : 1
        final class Part: @unchecked Sendable { var hist = Histogram16(); var error: Error? }
        let results = (0..<parts).map { _ in Part() }
        DispatchQueue.concurrentPerform(iterations: parts) { k in
            let out = results[k]
            do {
                let reader = try open()
                for b in (nb * k / parts)..<(nb * (k + 1) / parts) {
                    let y0 = b * bandRows, rows = min(bandRows, h - y0)
                    let lo = max(0, y0 - plan.halo), hi = min(h, y0 + rows + plan.halo)
                    var raw = try readMean(reader, channels: channels, y0: lo, count: hi - lo)
                    if let m = map { raw.withUnsafeMutableBufferPointer { r in for i in 0..<r.count { r[i] = (r[i] - m.offset) * m.scale } } }
                    if plan.ops.isEmpty {
                        raw.withUnsafeBufferPointer { out.hist.add(UnsafeBufferPointer(rebasing: $0[((y0 - lo) * w)..<((y0 - lo + rows) * w)])) }
                    } else {
                        let top = y0 - lo, bottom = hi - y0 - rows
                        let sm = raw.withUnsafeBufferPointer { plan.apply(band: $0, width: w, haloTop: top, rows: rows, haloBottom: bottom, y0: y0, imageHeight: h).values }
                        sm.withUnsafeBufferPointer { out.hist.add($0) }
                    }
                }
            } catch { out.error = error }
        }
        var hist = Histogram16()
        for r in results {
            if let e = r.error { throw e }
            hist.merge(r.hist)
        }
        return hist
    }

    /// Calls `body` with unsafe views of several arrays at once.
    public static func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        var bufs: [UnsafeBufferPointer<Float>] = []
        func go(_ i: Int) throws -> R {
            if i == arrays.count { return try body(bufs) }
            return try arrays[i].withUnsafeBufferPointer { b in bufs.append(b); return try go(i + 1) }
        }
        return try go(0)
    }

    // MARK: - Slide levels

    /// Histograms have 65536 integer levels: float (and uint32) images are mapped onto them from
    /// their range on the slide (one more pass), so a float32 image in [0, 1] thresholds like its
    /// uint16 twin. nil for 8- and 16-bit images (`integral`).
    public static func levelsMap(open: () throws -> PlaneReader, channels: [Int], width w: Int, height h: Int, integral: Bool) throws -> (offset: Float, scale: Float)? {
        if integral { return nil }
        let r = try range(open: open, channels: channels, width: w, height: h)
        return (r.min, r.max > r.min ? 65535 / (r.max - r.min) : 1)
    }

    /// One threshold for the slide: Otsu of the mean of `channels` after `plan` (the
    /// segmentation's smoothing and background removal), streamed in bands.
    public static func threshold(open: @escaping @Sendable () throws -> PlaneReader, channels: [Int], plan: FilterPlan,
                                 width w: Int, height h: Int, integral: Bool) throws -> Float {
        let map = try levelsMap(open: open, channels: channels, width: w, height: h, integral: integral)
        let hist = try histogram(open: open, channels: channels, plan: plan, width: w, height: h, map: map)
        let bin = SlideThreshold.otsu(counts: hist.bins)
        return map.map { bin / $0.scale + $0.offset } ?? bin
    }

    /// A membrane channel's levels (median, 99.5th percentile) on the slide, streamed in bands,
    /// so every band normalises alike.
    public static func membraneLevels(open: @escaping @Sendable () throws -> PlaneReader, channel c: Int, width w: Int, height h: Int,
                                      integral: Bool) throws -> MembraneLevels {
        let map = try levelsMap(open: open, channels: [c], width: w, height: h, integral: integral)
        let hist = try histogram(open: open, channels: [c], plan: FilterPlan([]), width: w, height: h, map: map)
        let lv = MembraneLevels.of(counts: hist.bins)
        guard let m = map else { return lv }
        return MembraneLevels(low: lv.low / m.scale + m.offset, high: lv.high / m.scale + m.offset)
    }
}
