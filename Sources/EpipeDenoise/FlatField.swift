import Foundation
import Dispatch
import EpipeKernels

/// Multiplicative illumination model: values on a coarse grid of cell centres, bilinearly
/// interpolated to full resolution (linearly extrapolated beyond the outermost centres), normalised so that
/// the mean of the full-resolution model over the image is exactly 1 (computed analytically
/// from the separable interpolation weights). Model values are floored at 1e-3 (after
/// normalisation) so that empty cells cannot blow up the correction.
public struct FlatField: Sendable, Codable, Equatable {
    public var grid: [Float]
    public var gridWidth: Int
    public var gridHeight: Int
    public var imageWidth: Int
    public var imageHeight: Int
    /// Cell centres in pixel coordinates (pixel x has centre x).
    public var xCenters: [Double]
    public var yCenters: [Double]

    /// Centres of cells of `block` pixels (the last one partial), or of a uniform tiling when `block` is nil.
    static func centers(cells: Int, length: Int, block: Int?) -> [Double] {
        (0..<cells).map { j in
            let a: Double, b: Double
            if let bl = block { a = Double(j * bl); b = Double(Swift.min(length, (j + 1) * bl)) }
            else { a = Double(j) * Double(length) / Double(cells); b = Double(j + 1) * Double(length) / Double(cells) }
            return (a + b) / 2 - 0.5
        }
    }

    /// Model from per-cell low percentiles of a channel (e.g. `BlockPercentiles.grid()`):
    /// the grid is smoothed with a Gaussian of `smoothSigmaCells` cells (edge replicated) and
    /// normalised to mean 1. `block` = cell size in pixels when the cells are blocks of that
    /// size with a partial last one (as `BlockPercentiles` makes); nil = uniform tiling.
    public static func estimate(lowPercentileGrid: [Float], gridWidth: Int, gridHeight: Int, imageWidth: Int, imageHeight: Int,
                                smoothSigmaCells: Double, block: Int? = nil) -> FlatField {
        precondition(gridWidth > 0 && gridHeight > 0 && lowPercentileGrid.count >= gridWidth * gridHeight)
        var g = Array(lowPercentileGrid.prefix(gridWidth * gridHeight))
        if smoothSigmaCells > 0 { g = smoothPreservingTrends(g, gridWidth, gridHeight, smoothSigmaCells) }
        var f = FlatField(grid: g, gridWidth: gridWidth, gridHeight: gridHeight, imageWidth: imageWidth, imageHeight: imageHeight,
                          xCenters: centers(cells: gridWidth, length: imageWidth, block: block),
                          yCenters: centers(cells: gridHeight, length: imageHeight, block: block))
        let mean = f.exactMean()
        let inv = mean > 0 ? 1 / mean : 1
        f.grid = f.grid.map { Float(Double($0) * inv) }
        return f
    }

    /// Gaussian smoothing of the grid, padded by point reflection (`g[-k] = 2 g[0] - g[k]`) so
    /// that linear trends (vignetting slopes) are not flattened at the edges.
    static func smoothPreservingTrends(_ g: [Float], _ w: Int, _ h: Int, _ sigma: Double) -> [Float] {
        let p = Gaussian.radius(sigma: sigma)
        let pw = w + 2 * p, ph = h + 2 * p
        func ext(_ i: Int, _ n: Int) -> (Int, Int, Float) {   // (edge index, mirrored index, 0/1 use reflection)
            if i < 0 { return (0, Swift.min(n - 1, -i), 1) }
            if i >= n { return (n - 1, Swift.max(0, 2 * (n - 1) - i), 1) }
            return (i, i, 0)
        }
        var pad = [Float](repeating: 0, count: pw * ph)
        // rows first (x reflection), then columns (y reflection) on the x-padded rows
        var xp = [Float](repeating: 0, count: pw * h)
        for y in 0..<h { for x in 0..<pw {
            let (e, m, r) = ext(x - p, w)
            xp[y * pw + x] = r == 0 ? g[y * w + e] : 2 * g[y * w + e] - g[y * w + m]
        } }
        for y in 0..<ph { for x in 0..<pw {
            let (e, m, r) = ext(y - p, h)
            pad[y * pw + x] = r == 0 ? xp[e * pw + x] : 2 * xp[e * pw + x] - xp[m * pw + x]
        } }
        let sm = Gaussian.blur(pad, width: pw, height: ph, sigma: sigma)
        var out = [Float](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { out[y * w + x] = sm[(y + p) * pw + x + p] } }
        return out
    }

    /// Model from a given flat-field image (e.g. a reference TIFF): block means over cells of
    /// `ceil(max(w,h)/256)` pixels, smoothed with sigma 1 cell, normalised to mean 1.
    public static func fromImage(_ plane: [Float], width: Int, height: Int) -> FlatField {
        precondition(plane.count >= width * height && width > 0 && height > 0)
        let block = Swift.max(1, (Swift.max(width, height) + 255) / 256)
        let gw = (width + block - 1) / block, gh = (height + block - 1) / block
        var sum = [Double](repeating: 0, count: gw * gh), cnt = [Int](repeating: 0, count: gw * gh)
        for y in 0..<height { for x in 0..<width {
            let c = (y / block) * gw + x / block
            sum[c] += Double(plane[y * width + x]); cnt[c] += 1
        } }
        let grid = (0..<(gw * gh)).map { Float(sum[$0] / Double(cnt[$0])) }
        return estimate(lowPercentileGrid: grid, gridWidth: gw, gridHeight: gh, imageWidth: width, imageHeight: height,
                        smoothSigmaCells: block > 1 ? 1 : 0, block: block)
    }

    /// Interpolation of coordinate `c` between centres: (segment index k, weight of k+1);
    /// linear extrapolation beyond the outer centres (t < 0 or t > 1).
    @inline(__always) static func locate(_ c: Double, _ centers: [Double]) -> (Int, Double) {
        let n = centers.count
        if n == 1 { return (0, 0) }
        var lo = 0, hi = n - 1
        if c <= centers[1] { lo = 0 } else if c >= centers[n - 2] { lo = n - 2 } else {
            while hi - lo > 1 { let m = (lo + hi) / 2; if centers[m] <= c { lo = m } else { hi = m } }
        }
        return (lo, (c - centers[lo]) / (centers[lo + 1] - centers[lo]))
    }

    /// Per-cell sums of interpolation weights along one axis (sum over pixels).
    static func weightSums(_ length: Int, _ centers: [Double]) -> [Double] {
        var s = [Double](repeating: 0, count: centers.count)
        for i in 0..<length {
            let (k, t) = locate(Double(i), centers)
            s[k] += 1 - t
            if t != 0 { s[k + 1] += t }
        }
        return s
    }

    func exactMean() -> Double {
        let sx = FlatField.weightSums(imageWidth, xCenters), sy = FlatField.weightSums(imageHeight, yCenters)
        var m = 0.0
        for i in 0..<gridHeight { for j in 0..<gridWidth { m += Double(grid[i * gridWidth + j]) * sy[i] * sx[j] } }
        return m / Double(imageWidth) / Double(imageHeight)
    }

    /// Model values of image row `y` (imageWidth values), floored at 1e-3.
    public func modelRow(y: Int) -> [Float] {
        let (ky, ty) = FlatField.locate(Double(y), yCenters)
        let ky1 = gridHeight > 1 ? ky + 1 : ky
        var line = [Double](repeating: 0, count: gridWidth)
        for j in 0..<gridWidth {
            line[j] = Double(grid[ky * gridWidth + j]) * (1 - ty) + Double(grid[ky1 * gridWidth + j]) * ty
        }
        var out = [Float](repeating: 0, count: imageWidth)
        for x in 0..<imageWidth {
            let (k, t) = FlatField.locate(Double(x), xCenters)
            let v = gridWidth > 1 ? line[k] * (1 - t) + line[k + 1] * t : line[0]
            out[x] = Swift.max(1e-3, Float(v))
        }
        return out
    }

    /// `x := max(0, (x - dark) / model(x, y))` for image row `y` (row.count == imageWidth).
    public func correct(row: UnsafeMutableBufferPointer<Float>, y: Int, dark: Float = 0) {
        precondition(row.count >= imageWidth)
        let m = modelRow(y: y)
        for x in 0..<imageWidth { row[x] = Swift.max(0, (row[x] - dark) / m[x]) }
    }

    /// `x := max(0, (x - dark[x]) / model(x, y))` for image row `y`, the dark-field a per-pixel row
    /// (row y of a dark-frame image).
    public func correct(row: UnsafeMutableBufferPointer<Float>, y: Int, darkRow: UnsafeBufferPointer<Float>) {
        precondition(row.count >= imageWidth && darkRow.count >= imageWidth)
        let m = modelRow(y: y)
        for x in 0..<imageWidth { row[x] = Swift.max(0, (row[x] - darkRow[x]) / m[x]) }
    }
}

/// Dark-field and flat-field correction, BaSiC's and MCMICRO's model: `corrected = max(0, (raw - dark) / flat)`,
/// the dark-field a constant or a per-pixel image (read row by row, so memory does not grow with the image),
/// the flat-field a `FlatField` model (none = 1).
public struct Illumination: Sendable {
    public var flat: FlatField?
    public var dark: Float
    /// Whether a per-pixel dark-field is given (then `correct` needs its rows).
    public var darkImage: Bool

    public init(flat: FlatField? = nil, dark: Float = 0, darkImage: Bool = false) {
        self.flat = flat; self.dark = dark; self.darkImage = darkImage
    }

    public var isIdentity: Bool { flat == nil && dark == 0 && !darkImage }

    /// Corrects `rows` image rows from `y0` (`band` holds rows x width values, width = band.count / rows);
    /// `darkRows` = the same rows of the dark-field image when `darkImage`, else ignored.
    public func correct(band: UnsafeMutableBufferPointer<Float>, y0: Int, rows: Int, darkRows: UnsafeBufferPointer<Float>? = nil) {
        guard rows > 0, !isIdentity else { return }
        let w = band.count / rows
        precondition(!darkImage || (darkRows?.count ?? 0) >= rows * w, "a per-pixel dark-field needs its rows")
        for i in 0..<rows {
            let row = UnsafeMutableBufferPointer(rebasing: band[(i * w)..<((i + 1) * w)])
            if darkImage, let d = darkRows {
                let dr = UnsafeBufferPointer(rebasing: d[(i * w)..<((i + 1) * w)])
                if let f = flat { f.correct(row: row, y: y0 + i, darkRow: dr) } else { for x in 0..<w { row[x] = Swift.max(0, row[x] - dr[x]) } }
            } else {
                if let f = flat { f.correct(row: row, y: y0 + i, dark: dark) } else { for x in 0..<w { row[x] = Swift.max(0, row[x] - dark) } }
            }
        }
    }
}

/// Streaming per-block low percentile of one channel: feed row bands (any order, each image
/// row exactly once); each block row (`block` image rows) is reduced as soon as it is complete
/// (its rows are buffered until then, so memory is about `block * width` floats per open block
/// row). Percentile = nearest rank: the value of rank `max(1, ceil(p/100 * n))` in the sorted
/// block (n = pixels of the block; edge blocks are partial).
public struct BlockPercentiles: Sendable {
    public let width: Int, height: Int, block: Int
    public let percentile: Double
    public let gridWidth: Int, gridHeight: Int
    var values: [Float]
    var pending: [Int: (rows: [Float], filled: Int)] = [:]

    public init(width: Int, height: Int, block: Int = 128, percentile: Double = 10) {
        precondition(width > 0 && height > 0 && block > 0)
        self.width = width; self.height = height; self.block = block; self.percentile = percentile
        gridWidth = (width + block - 1) / block; gridHeight = (height + block - 1) / block
        values = [Float](repeating: .nan, count: gridWidth * gridHeight)
    }

    /// Adds `count` image rows starting at `y0` (`rows` holds count*width values).
    public mutating func add(rows: UnsafeBufferPointer<Float>, y0: Int, count: Int) {
        precondition(y0 >= 0 && y0 + count <= height && rows.count >= count * width)
        var y = y0
        while y < y0 + count {
            let br = y / block
            let bStart = br * block, bRows = Swift.min(block, height - bStart)
            let n = Swift.min(y0 + count, bStart + bRows) - y
            var entry = pending[br] ?? (rows: [Float](repeating: 0, count: bRows * width), filled: 0)
            entry.rows.withUnsafeMutableBufferPointer { d in
                (d.baseAddress! + (y - bStart) * width).update(from: rows.baseAddress! + (y - y0) * width, count: n * width)
            }
            entry.filled += n
            if entry.filled == bRows {
                pending[br] = nil
                reduce(blockRow: br, rows: entry.rows, bRows: bRows)
            } else {
                pending[br] = entry
            }
            y += n
        }
    }

    mutating func reduce(blockRow br: Int, rows: [Float], bRows: Int) {
        let gw = gridWidth, w = width, bl = block, p = percentile
        let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: gw)
        defer { out.deallocate() }
        let O = UnsafeShared(out)
        rows.withUnsafeBufferPointer { src in
            let S = UnsafeShared(src)
            DispatchQueue.concurrentPerform(iterations: Swift.min(gw, 2 * Swift.max(1, ProcessInfo.processInfo.activeProcessorCount))) { part in
                let parts = Swift.min(gw, 2 * Swift.max(1, ProcessInfo.processInfo.activeProcessorCount))
                var buf = [Float]()
                for bx in (gw * part / parts)..<(gw * (part + 1) / parts) {
                    let x0 = bx * bl, bw = Swift.min(bl, w - x0)
                    buf.removeAll(keepingCapacity: true)
                    for r in 0..<bRows { buf.append(contentsOf: UnsafeBufferPointer(rebasing: S.value[(r * w + x0)..<(r * w + x0 + bw)])) }
                    let n = buf.count
                    let rank = Swift.min(n, Swift.max(1, Int((p / 100 * Double(n)).rounded(.up))))
                    O.value[bx] = BlockPercentiles.select(&buf, rank - 1)
                }
            }
        }
        for bx in 0..<gw { values[br * gw + bx] = out[bx] }
    }

    /// k-th smallest (0-based), Hoare quickselect with median-of-three pivots.
    static func select(_ a: inout [Float], _ k: Int) -> Float {
        a.withUnsafeMutableBufferPointer { a in
            var lo = 0, hi = a.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                var x = a[lo], y = a[mid], z = a[hi]
                if x > y { swap(&x, &y) }; if y > z { swap(&y, &z) }; if x > y { swap(&x, &y) }
                let pivot = y
                var i = lo, j = hi
                while i <= j {
                    while a[i] < pivot { i += 1 }
                    while a[j] > pivot { j -= 1 }
                    if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
                }
                if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
            }
            return a[k]
        }
    }

    /// Per-block percentiles, row-major gridWidth x gridHeight (NaN for blocks not yet complete).
    public func grid() -> (values: [Float], width: Int, height: Int) { (values, gridWidth, gridHeight) }
}

/// Blank (autofluorescence) subtraction by cycle.
public enum Blanks {
    /// For each channel: the blank channels and weights whose weighted sum estimates its
    /// autofluorescence. Blank channels (and channels when there is no blank) get an empty list.
    /// Let lo/hi be the nearest blank cycles <= / >= the channel's cycle: if lo == hi (a blank
    /// in the same cycle) or only one exists, it gets weight 1; otherwise linear interpolation
    /// by cycle, lo weight (hi - c)/(hi - lo), hi weight (c - lo)/(hi - lo). Several blank
    /// channels in one cycle share that cycle's weight equally (their mean).
    public static func weights(cycles: [Int], isBlank: [Bool]) -> [[(channel: Int, weight: Float)]] {
        precondition(cycles.count == isBlank.count)
        var byCycle: [Int: [Int]] = [:]
        for (c, b) in isBlank.enumerated() where b { byCycle[cycles[c], default: []].append(c) }
        let blankCycles = byCycle.keys.sorted()
        return cycles.indices.map { c -> [(channel: Int, weight: Float)] in
            if isBlank[c] || blankCycles.isEmpty { return [] }
            let k = cycles[c]
            let lo = blankCycles.last { $0 <= k }, hi = blankCycles.first { $0 >= k }
            var parts: [(Int, Double)] = []
            switch (lo, hi) {
            case let (l?, h?) where l == h: parts = [(l, 1)]
            case let (l?, h?): parts = [(l, Double(h - k) / Double(h - l)), (h, Double(k - l) / Double(h - l))]
            case let (l?, nil): parts = [(l, 1)]
            case let (nil, h?): parts = [(h, 1)]
            default: parts = []
            }
            var out: [(channel: Int, weight: Float)] = []
            for (cyc, wgt) in parts where wgt > 0 {
                let chans = byCycle[cyc]!
                for ch in chans { out.append((channel: ch, weight: Float(wgt / Double(chans.count)))) }
            }
            return out
        }
    }

    /// For each channel whose recipe subtracts blanks: MCMICRO's background channel when one is named
    /// (`background[c]`, weight 1), else the blanks interpolated by cycle (`weights(cycles:isBlank:)`;
    /// no cycles = channel order). Others get an empty list.
    public static func weights(recipes: [ChannelRecipe], cycles: [Int]?, isBlank: [Bool], background: [Int?]) -> [[(channel: Int, weight: Float)]] {
        let n = recipes.count
        var out = [[(channel: Int, weight: Float)]](repeating: [], count: n)
        guard recipes.contains(where: { $0.blanks }) else { return out }
        let byCycle = weights(cycles: cycles ?? Array(0..<n), isBlank: isBlank)
        for c in 0..<n where recipes[c].blanks { out[c] = background[c].map { [(channel: $0, weight: Float(1))] } ?? byCycle[c] }
        return out
    }

    /// `row[i] := max(0, row[i] - scale * sum_j weights[j] * blanks[j][i])`, subtracting one blank after
    /// the other (`row[i] -= (scale * weights[j]) * blanks[j][i]` for j in order), then clamping at 0.
    public static func subtract(row: UnsafeMutableBufferPointer<Float>, blanks: [UnsafeBufferPointer<Float>], weights: [Float], scale: Float = 1) {
        precondition(blanks.count == weights.count)
        for b in blanks { precondition(b.count >= row.count) }
        for j in 0..<blanks.count {
            let wj = scale * weights[j], b = blanks[j]
            for i in 0..<row.count { row[i] -= wj * b[i] }
        }
        for i in 0..<row.count where row[i] < 0 { row[i] = 0 }
    }

    /// The same, the blanks given as arrays and the offset in each where `row` begins.
    public static func subtract(row: UnsafeMutableBufferPointer<Float>, blanks: [(values: [Float], offset: Int)], weights: [Float], scale: Float = 1) {
        func with(_ k: Int, _ acc: [UnsafeBufferPointer<Float>]) {
            if k == blanks.count { subtract(row: row, blanks: acc, weights: weights, scale: scale); return }
            blanks[k].values.withUnsafeBufferPointer { b in
                with(k + 1, acc + [UnsafeBufferPointer(rebasing: b[blanks[k].offset...])])
            }
        }
        with(0, [])
    }
}
