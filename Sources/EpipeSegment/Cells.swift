import Foundation
import Dispatch
import EpipeKernels

/// Parameters of whole-cell segmentation from nuclei and a membrane image (`Segmenter.cells`).
///
/// Defaults were chosen on generated slides (EpipeSynth, 16 channels, nucleus diameter 12 px,
/// membrane = normalised sum of the membrane markers, see `MembraneLevels`); see CellsTests.
public struct CellParams: Sendable, Equatable, Codable {
    /// A pixel may take the label of a nucleus only if it lies within this Euclidean distance (px)
    /// of one of that nucleus's pixels.
    public var maxDistance: Double
    /// Gaussian sigma (px) applied to the membrane image before flooding (0 = off).
    public var smoothSigma: Double = 0.5
    /// Flooding priority = smoothed membrane + distanceWeight x (distance to the nearest nucleus /
    /// maxDistance): where the membrane is flat (cells without a membrane marker) boundaries fall
    /// half-way between nuclei as with `expand`; 0 = pure membrane watershed.
    public var distanceWeight: Double = 2
    /// Background level of the smoothed membrane image (normalised units, see `MembraneLevels`):
    /// pixels below it and farther than `minGrowth` from every nucleus are background (nil = no
    /// background test: cells fill everything within `maxDistance`).
    public var foreground: Float? = 0.3
    /// Pixels within this distance (px) of a nucleus are never background (cells without a
    /// membrane marker still get this much cytoplasm).
    public var minGrowth: Double
    /// With `foreground`: background pixels seed a background label that competes in the flood
    /// (so a cell stops on the crest of its bright rim, not on the rim's blurred outer flank);
    /// false = they are merely excluded.
    public var backgroundSeeds: Bool = true

    /// `minGrowth` defaults to 2/3 of `maxDistance`.
    public init(maxDistance: Double, smoothSigma: Double = 0.5, distanceWeight: Double = 2, foreground: Float? = 0.3,
                minGrowth: Double? = nil, backgroundSeeds: Bool = true) {
        self.maxDistance = maxDistance
        self.smoothSigma = smoothSigma
        self.distanceWeight = distanceWeight
        self.foreground = foreground
        self.minGrowth = minGrowth ?? maxDistance * 2 / 3
        self.backgroundSeeds = backgroundSeeds
    }
}

/// Per-channel normalisation of a membrane marker: `(v - low) / (high - low)`, with `low` the
/// median (background and marker-negative tissue) and `high` the 99.5th percentile (bright rims),
/// so each marker contributes ~0 off its cells and ~1 on its brightest membranes.
public struct MembraneLevels: Sendable, Equatable, Codable {
    public var low: Float
    public var high: Float
    public init(low: Float, high: Float) { self.low = low; self.high = high }
    /// Percentiles used for `low` and `high` (nearest rank, in percent).
    public static let lowPercentile = 50.0, highPercentile = 99.5

    /// Levels from a histogram of integer levels 0...65535 (a channel streamed band by band), same
    /// nearest-rank rule as `of(_:)`.
    public static func of(counts: [Int], lowPercentile: Double = lowPercentile, highPercentile: Double = highPercentile) -> MembraneLevels {
        let n = counts.reduce(0, +)
        guard n > 0 else { return MembraneLevels(low: 0, high: 1) }
        func pct(_ p: Double) -> Float {
            let rank = Swift.max(1, Int((p / 100 * Double(n)).rounded(.up)))
            var acc = 0
            for (i, c) in counts.enumerated() { acc += c; if acc >= rank { return Float(i) } }
            return Float(counts.count - 1)
        }
        return MembraneLevels(low: pct(lowPercentile), high: pct(highPercentile))
    }

    /// Levels of a plane from its percentiles (computed on a strided sample of at most ~1M values).
    public static func of(_ plane: [Float], lowPercentile: Double = lowPercentile, highPercentile: Double = highPercentile) -> MembraneLevels {
        guard !plane.isEmpty else { return MembraneLevels(low: 0, high: 1) }
        let step = Swift.max(1, plane.count / (1 << 20))
        var s = [Float](); s.reserveCapacity(plane.count / step + 1)
        var i = 0
        while i < plane.count { s.append(plane[i]); i += step }
        s.sort()
        func pct(_ p: Double) -> Float {
            let rank = Swift.max(1, Int((p / 100 * Double(s.count)).rounded(.up)))
            return s[Swift.min(s.count, rank) - 1]
        }
        return MembraneLevels(low: pct(lowPercentile), high: pct(highPercentile))
    }
}

extension Segmenter {
    /// Rows of context above and below a band for `cells` to match the whole-image result (up to a
    /// tiny fraction of pixels): 2 x maxDistance plus the smoothing radius. A pixel's label comes
    /// from nuclei within maxDistance, whose own reach (and competition) extends another
    /// maxDistance. Measured on generated slides (CellsTests.testBandsMatchWholeImage): with
    /// 1 x maxDistance ~3e-4 of the pixels differ, with 2 x maxDistance none.
    public static func cellContextRows(_ p: CellParams) -> Int {
        Int((2 * p.maxDistance).rounded(.up)) + Int((3 * p.smoothSigma).rounded(.up))
    }

    /// Sum of membrane planes, each normalised by its `MembraneLevels` (so one bright marker does
    /// not dominate). `planes` are `width x height` each.
    public static func membraneSum(_ planes: [[Float]], levels: [MembraneLevels]) -> [Float] {
        precondition(planes.count == levels.count && !planes.isEmpty)
        var out = [Float](repeating: 0, count: planes[0].count)
        for (p, l) in zip(planes, levels) { addMembrane(p, levels: l, into: &out) }
        return out
    }

    /// Adds one membrane plane, normalised by `levels`, to a running sum (one plane in memory at a time).
    public static func addMembrane(_ plane: [Float], levels l: MembraneLevels, into sum: inout [Float]) {
        precondition(plane.count == sum.count)
        let s = 1 / Swift.max(l.high - l.low, 1e-6), lo = l.low
        sum.withUnsafeMutableBufferPointer { o in
            plane.withUnsafeBufferPointer { src in
                for i in 0..<o.count { o[i] += (src[i] - lo) * s }
            }
        }
    }

    /// Whole cells from nuclei and a membrane image: a seeded watershed of the (lightly smoothed)
    /// membrane image from the nuclei, low values flooding first so that boundaries between cells
    /// settle on bright membrane; the priority adds `distanceWeight` x distance / maxDistance so
    /// that cells without membrane signal split like `expand`. A pixel may only take the label of
    /// a nucleus within `params.maxDistance` px (Euclidean, to the nearest pixel of that nucleus).
    /// With `params.foreground`, pixels below it (smoothed) and farther than `minGrowth` from every
    /// nucleus are background: they seed a competing background label (`backgroundSeeds`) or are
    /// excluded, and end as 0. Nuclei keep their pixels and labels (any UInt32 ids). 8-connected;
    /// ties flood in insertion order (seeds in raster order), so the result is deterministic.
    ///
    /// In bands: the result on a band computed with `contextRows(params)` rows of context above
    /// and below equals the whole-image result except on a tiny fraction of pixels (CellsTests).
    ///
    /// Implementation: the candidate region is the set of pixels within `maxDistance` of some
    /// nucleus (exact Euclidean distance transform); its 8-connected components (with the nuclei)
    /// never interact and are flooded in parallel with one heap each. Each labelled pixel keeps the
    /// nucleus pixel it was reached from; a neighbour within `maxDistance` of that pixel is accepted
    /// at once, else the nucleus's outline pixels are searched for one within reach (exact test).
    public static func cells(nuclei: [UInt32], membrane: [Float], width w: Int, height h: Int, params: CellParams) -> [UInt32] {
        let n = w * h
        precondition(nuclei.count == n && membrane.count == n && n < Int(Int32.max), "Int32 pixel indices")
        guard n > 0, params.maxDistance > 0 else { return nuclei }
        let D = params.maxDistance, D2 = D * D
        // Compact labels 1...K (any UInt32 ids in, the same ids out).
        var ids: [UInt32] = [0]
        var lab = [Int32](repeating: 0, count: n)
        do {
            var map: [UInt32: Int32] = [:]
            var last: UInt32 = 0, lastK: Int32 = 0
            for i in 0..<n {
                let v = nuclei[i]
                if v == 0 { continue }
                if v != last {
                    if let k = map[v] { lastK = k } else { lastK = Int32(ids.count); map[v] = lastK; ids.append(v) }
                    last = v
                }
                lab[i] = lastK
            }
        }
        let K = ids.count - 1
        guard K > 0 else { return nuclei }
        // Distance to the nearest nucleus pixel (exact) defines the candidate region.
        let (d2, nearest) = DistanceTransform.featureTransform(nuclei.map { $0 != 0 }, width: w, height: h)
        let sm = params.smoothSigma > 0 ? Gaussian.blur(membrane, width: w, height: h, sigma: params.smoothSigma) : membrane
        var f = sm
        var region = [Bool](repeating: false, count: n)
        let dw = Float(params.distanceWeight), invD = Float(1 / D)
        let fg = params.foreground
        let r02 = params.minGrowth * params.minGrowth, bgSeeds = params.backgroundSeeds
        for i in 0..<n {
            if lab[i] != 0 { region[i] = true; continue }
            if d2[i] > D2 { continue }
            if let fg, sm[i] < fg, d2[i] > r02 {
                if bgSeeds { lab[i] = Int32(K + 1) } else { continue }
            }
            region[i] = true
            if dw != 0 { f[i] += dw * Float(d2[i].squareRoot()) * invD }
        }
        // Outline pixels of each nucleus (a 4-neighbour outside the nucleus or the image), CSR by label.
        var oStart = [Int](repeating: 0, count: K + 2)
        @inline(__always) func isOutline(_ i: Int) -> Bool {
            let l = lab[i], x = i % w, y = i / w
            return x == 0 || x == w - 1 || y == 0 || y == h - 1 || lab[i - 1] != l || lab[i + 1] != l || lab[i - w] != l || lab[i + w] != l
        }
        for i in 0..<n where lab[i] != 0 && lab[i] <= K && isOutline(i) { oStart[Int(lab[i]) + 1] += 1 }
        for k in 0...K { oStart[k + 1] += oStart[k] }
        var outline = [Int32](repeating: 0, count: oStart[K + 1])
        var outXY = [Int32](repeating: 0, count: 2 * oStart[K + 1])   // (x, y) of each outline pixel
        do {
            var pos = oStart
            for i in 0..<n where lab[i] != 0 && lab[i] <= K && isOutline(i) {
                let k = Int(lab[i]); outline[pos[k]] = Int32(i); outXY[2 * pos[k]] = Int32(i % w); outXY[2 * pos[k] + 1] = Int32(i / w); pos[k] += 1
            }
        }
        // Components of the region; flood each with its own heap.
        let (cc, ncc) = connectedComponents(region, width: w, height: h)
        let bgK = Int32(K + 1)
        /// A seed floods only into an unlabelled region neighbour, and pixels never become unlabelled,
        /// so a seed without one can be left out (the others keep their relative order: same result).
        @inline(__always) func canFlood(_ i: Int) -> Bool {
            let x = i % w, y = i / w
            for dy in (y > 0 ? -1 : 0)...(y + 1 < h ? 1 : 0) {
                for dx in (x > 0 ? -1 : 0)...(x + 1 < w ? 1 : 0) {
                    let q = i + dy * w + dx
                    if lab[q] == 0 && region[q] { return true }
                }
            }
            return false
        }
        @inline(__always) func isSeed(_ i: Int) -> Bool { (lab[i] == bgK || (lab[i] != 0 && isOutline(i))) && canFlood(i) }
        var src = [Int32](repeating: -1, count: n)
        for i in 0..<n where lab[i] != 0 { src[i] = Int32(i) }
        if ncc > 0 {
            let seeds = componentSeeds(components: cc, componentCount: ncc, isSeed: isSeed)
            lab.withUnsafeMutableBufferPointer { Lb in src.withUnsafeMutableBufferPointer { Sb in
                f.withUnsafeBufferPointer { Fp in region.withUnsafeBufferPointer { Rp in
                    outline.withUnsafeBufferPointer { Op in outXY.withUnsafeBufferPointer { Oxy in
                        oStart.withUnsafeBufferPointer { OS in nearest.withUnsafeBufferPointer { NR in d2.withUnsafeBufferPointer { DD in
                            let step = MembraneStep(labels: Lb.baseAddress!, source: Sb.baseAddress!, region: Rp.baseAddress!,
                                                    outline: Op.baseAddress!, outlineXY: Oxy.baseAddress!, outlineStart: OS.baseAddress!,
                                                    nearest: NR.baseAddress!, nearestD2: DD.baseAddress!, width: w, height: h,
                                                    reach2: D2, background: bgK)
                            heapFlood(Fp, highFirst: false, seeds: seeds, step: step)
                        } } }
                    } }
                } }
            } }
        }
        var out = [UInt32](repeating: 0, count: n)
        for i in 0..<n where lab[i] != 0 && lab[i] != bgK { out[i] = ids[Int(lab[i])] }
        return out
    }

    /// The membrane watershed's step: a popped pixel's label goes to its unlabelled neighbours in
    /// the region while they are within `reach2` (squared) of that nucleus: measured from the
    /// pixel's source (the nucleus pixel it grew from) when that is near, else from the nearest
    /// nucleus pixel overall if it is this nucleus's, else from this nucleus's nearest outline pixel.
    struct MembraneStep: FloodStep {
        let labels: UnsafeMutablePointer<Int32>, source: UnsafeMutablePointer<Int32>
        let region: UnsafePointer<Bool>
        let outline: UnsafePointer<Int32>, outlineXY: UnsafePointer<Int32>, outlineStart: UnsafePointer<Int>
        let nearest: UnsafePointer<Int32>, nearestD2: UnsafePointer<Double>
        let width: Int, height: Int
        let reach2: Double
        let background: Int32
        @inline(__always) func expand(_ p: Int, _ queue: inout FloodQueue) {
            let w = width, h = height, D2 = reach2
            let lab = labels, src = source
            let l = lab[p], s = Int(src[p])
            let sx = s % w, sy = s / w
            Segmenter.window3x3(p, width: w, height: h) { q, qx, qy in
                if lab[q] != 0 || !region[q] { return }
                var best = s
                if l != background && Double((qx - sx) * (qx - sx) + (qy - sy) * (qy - sy)) > D2 {
                    // the nearest nucleus pixel overall, if it is this nucleus's and within reach
                    let nq = Int(nearest[q])
                    if nq >= 0 && nearestD2[q] <= D2 && lab[nq] == l {
                        lab[q] = l; src[q] = Int32(nq)
                        queue.push(q)
                        return
                    }
                    // exact: the nearest outline pixel of this nucleus
                    var bd = Int.max
                    best = -1
                    for k in outlineStart[Int(l)]..<outlineStart[Int(l) + 1] {
                        let ex = qx - Int(outlineXY[2 * k]), ey = qy - Int(outlineXY[2 * k + 1])
                        let dd = ex * ex + ey * ey
                        if dd < bd { bd = dd; best = Int(outline[k]) }
                    }
                    if Double(bd) > D2 { return }
                }
                lab[q] = l; src[q] = Int32(best)
                queue.push(q)
            }
        }
    }
}
