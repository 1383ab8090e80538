// Synthetic multiplexed tissue slide: global, deterministic cell placement plus band-wise rendering.

import Foundation
import EpipeKernels

/// Ground-truth synthetic multiplexed-immunofluorescence slide (CODEX/CyCIF-like).
///
/// Model, all derived from `config.seed` by hashing (never from a sequential random stream):
/// - Tissue layout from smooth random fields: tumour nests (quantile `tumourFraction`) cut by stromal septa,
///   a tumour margin enriched in T cells/macrophages, stroma of variable density with aligned fibroblasts,
///   B-cell follicles with a T-cell mantle, vessels (lumen with autofluorescent red blood cells, endothelial
///   cells elongated along the wall) and sparse/empty regions (holes, glass).
/// - Cells are placed at init by hard-core dart throwing per 3x-nucleus-diameter block (even block rows,
///   then odd rows; parallel and deterministic), with local target coverage scaled so that the mean
///   coverage is `cellDensity`. Nuclei: lognormal size per type, ellipses with 2nd-5th harmonic contour
///   perturbations, may touch/overlap slightly. Cells: nucleus plus cytoplasm grown outward and competing by
///   distance from the nuclear contour (a Voronoi tessellation capped at a per-cell extent).
/// - Signal: nuclear markers (DAPI with chromatin texture and dark nucleoli; granular Ki67), cytoplasmic
///   markers (textured, faint over the nucleus), membrane markers (patchy bright rim plus diffuse level);
///   per-cell lognormal expression, positive fractions and T-cell subsets, regional staining gradients,
///   spectral spillover from the previous channel.
/// - Imaging: Gaussian PSF (per channel, wider in defocused fields), autofluorescence (smooth, brighter in
///   stroma, collagen fibres, dim on glass), per-field vignetting and gain plus a global gradient, camera
///   offset, shot + read noise, hot pixels repeated per field, rounding and clamping to 0...65535.
/// - Failure modes of real nucleus images, off by default (`SynthConfig.apply(.hard)` turns them all on):
///   textured chromatin (chromocentres on a diameter/4 lattice, darker nucleoli), an 8-bit low-signal
///   nuclear channel, nuclear brightness spread over decades, smooth out-of-focus regions (a wide blur
///   blended in), clumps (denser patches whose nuclei overlap and add their stain) and uneven illumination
///   with background haze. Labels stay the exact geometry.
///
/// `renderBand` output is bit-identical however the image is split into bands, and costs time proportional
/// to the band. Labels are the noise-free geometry; every nucleus pixel carries its cell's id in `cells`.
public final class SyntheticSlide: @unchecked Sendable {
    public let config: SynthConfig
    public let channelNames: [String]
    public let cellTypeNames: [String]
    /// Expected relative expression per type and channel (positive level x positive fraction), 0...1.
    public let profiles: [[Double]]
    /// Expression level of positive cells per type and channel.
    public let positiveLevels: [[Double]]
    /// Fraction of cells of each type that are positive for each channel.
    public let positiveFractions: [[Double]]
    /// Compartment of each channel.
    public let compartments: [SynthCompartment]
    /// Intensity (uint16 scale, before illumination) of expression 1.0 per channel.
    public let channelScales: [Double]

    public var cellCount: Int { listedCount }

    // Derived constants.
    let panel: [MarkerDef]
    var tissue: Tissue
    let meanRadius: Double          // mean nucleus radius (px)
    let maxSemiAxis: Double         // bound on nucleus ellipse semi-axes
    let reach: Double               // bound on the distance from a centre to any pixel of its cell
    let block: Int                  // placement block size (px)
    let blockRowOrigin: Int         // block row index of rowStart[0]
    let densityScale: Double        // global coverage scale k
    static let coverageCap = 0.95
    // Realism options (see SynthConfig): out-of-focus field and its threshold, clump field, illumination fields.
    let focusField: FractalNoise
    let focusThreshold: Double
    let clumpField: ValueNoise
    let illumField: FractalNoise
    let hazeField: FractalNoise
    static let hardCore = 0.86       // nuclei may overlap up to 14 % of their radii (touching/clumped)
    static let harmonicCap = 0.2
    static let extHarmonic = 0.15

    // Cells (global index = placement order, sorted by block row).
    var xs: [Float] = [], ys: [Float] = [], semiA: [Float] = [], semiB: [Float] = [], angles: [Float] = []
    var types: [UInt8] = []
    var rowStart: [Int] = []        // per block row, index of its first cell; last = count
    var idOf: [UInt32] = []         // global index -> id (0 = not visible in the image)
    var listedCount = 0
    var regionArea: [Double] = []   // mean cell area per region (px^2)
    /// One block kept between bands (the largest; a band reuses it when it is not more than twice its need).
    let scratch = ScratchPool(retainBytes: .max, maxBuffers: 1)

    /// Frees the cached per-band working memory (about 40 bytes per band pixel; kept between renderBand calls).
    public func purgeScratch() { scratch.releaseAll() }

    public init(_ config: SynthConfig) {
        precondition(config.width > 0 && config.height > 0 && config.channels >= 1, "invalid SynthConfig")
        self.config = config
        let panel = Panel.make(channels: config.channels, seed: config.seed)
        self.panel = panel
        channelNames = panel.map(\.name)
        cellTypeNames = CellType.names
        compartments = panel.map(\.compartment)
        positiveLevels = (0..<CellType.count).map { t in panel.map { $0.level[t] } }
        positiveFractions = (0..<CellType.count).map { t in panel.map { $0.fraction[t] } }
        profiles = (0..<CellType.count).map { t in panel.map { $0.level[t] * $0.fraction[t] } }
        channelScales = (0..<config.channels).map { c in
            c == 0 ? 30000 : 9000 + 16000 * unit(hash3(config.seed, 0x5CA1E, UInt64(c)))
        }

        meanRadius = max(config.nucleusDiameter, 2) / 2
        maxSemiAxis = 1.8 * meanRadius
        let maxExt = (CellType.shapes.map { $0.ext.upperBound }.max() ?? 1) * meanRadius
        reach = (maxSemiAxis * (1 + Self.harmonicCap) + maxExt * (1 + Self.extHarmonic)).rounded(.up) + 1
        block = max(16, Int((3 * config.nucleusDiameter).rounded(.up)))

        // Tissue fields; tumour threshold from the quantile of the tumour field over the image.
        var tissue = Tissue(seed: config.seed, pixelSizeMicrons: config.pixelSizeMicrons)
        let W = Double(config.width), H = Double(config.height)
        let ns = 80
        var samples: [Double] = []
        samples.reserveCapacity(ns * ns)
        for j in 0..<ns { for i in 0..<ns {
            samples.append(tissue.tumourField((Double(i) + 0.5) * W / Double(ns), (Double(j) + 0.5) * H / Double(ns)))
        } }
        samples.sort()
        let q = min(max(1 - config.tumourFraction, 0), 1)
        tissue.tumourThreshold = config.tumourFraction <= 0 ? .infinity : samples[min(samples.count - 1, Int(q * Double(samples.count)))]
        tissue.buildFollicles(x0: -reach, y0: -reach, x1: W + reach, y1: H + reach)
        self.tissue = tissue

        // Realism fields (used only when their option is on; pure functions of seed and position).
        let D = max(config.nucleusDiameter, 2)
        focusField = FractalNoise(seed: hash2(config.seed, 0x00F0C), scale: 14 * D, octaves: 2)
        if config.outOfFocusFraction > 0 {
            var fs: [Double] = []
            fs.reserveCapacity(ns * ns)
            for j in 0..<ns { for i in 0..<ns { fs.append(focusField((Double(i) + 0.5) * W / Double(ns), (Double(j) + 0.5) * H / Double(ns))) } }
            fs.sort()
            let q = 1 - min(max(config.outOfFocusFraction, 0), 1)
            focusThreshold = q <= 0 ? -.infinity : fs[min(fs.count - 1, Int(q * Double(fs.count)))]
        } else {
            focusThreshold = .infinity
        }
        clumpField = ValueNoise(seed: hash2(config.seed, 0xC1A5), scale: 2.5 * D)
        illumField = FractalNoise(seed: hash2(config.seed, 0x111F), scale: max(W, H, 40 * D) / 2, octaves: 2)
        hazeField = FractalNoise(seed: hash2(config.seed, 0x4A2E), scale: 20 * D, octaves: 2)

        // Mean cell area per region, from the type mix and type shapes.
        var area: [Double] = []
        for mix in Tissue.typeMix {
            var a = 0.0, s = 0.0
            for t in 0..<CellType.count where mix[t] > 0 {
                let sh = CellType.shapes[t]
                let r = sh.radius * meanRadius, e = (sh.ext.lowerBound + sh.ext.upperBound) / 2 * meanRadius
                a += mix[t] * Double.pi * (r + e) * (r + e); s += mix[t]
            }
            area.append(s > 0 ? a / s : 1)
        }
        regionArea = area

        // Global density scale so that the mean target coverage equals cellDensity.
        var rels: [Double] = []
        rels.reserveCapacity(ns * ns)
        for j in 0..<ns { for i in 0..<ns {
            rels.append(tissue.classify((Double(i) + 0.5) * W / Double(ns), (Double(j) + 0.5) * H / Double(ns)).rel)
        } }
        let target = min(max(config.cellDensity, 0), Self.coverageCap)
        var lo = 0.0, hi = 50.0
        for _ in 0..<60 {
            let k = (lo + hi) / 2
            let m = rels.reduce(0) { $0 + min(Self.coverageCap, k * $1) } / Double(rels.count)
            if m < target { lo = k } else { hi = k }
        }
        densityScale = (lo + hi) / 2
        blockRowOrigin = Int((-reach / Double(block)).rounded(.down))

        place()
        assignIds()
    }

    // MARK: - Ground truth

    public func cells() -> [SynthCell] {
        var out: [SynthCell] = []
        out.reserveCapacity(listedCount)
        for i in 0..<types.count where idOf[i] != 0 {
            out.append(SynthCell(id: idOf[i], type: Int(types[i]), x: Double(xs[i]), y: Double(ys[i])))
        }
        return out
    }

    /// Tissue region at a point (ground truth of the spatial layout).
    public func region(x: Double, y: Double) -> SynthRegion { tissue.classify(x, y).region }

    /// Ground-truth relative expression (level x per-cell variation, before channel scaling) of cell `id` per channel.
    public func expression(id: UInt32) -> [Double]? {
        guard let g = globalIndex(ofId: id) else { return nil }
        return (0..<config.channels).map { Double(cellExpression(g, $0)) }
    }

    func globalIndex(ofId id: UInt32) -> Int? {
        guard id >= 1 && Int(id) <= listedCount else { return nil }
        // ids increase with global index: binary search.
        var lo = 0, hi = idOf.count - 1
        while lo <= hi {
            let m = (lo + hi) / 2
            var k = m
            while k <= hi && idOf[k] == 0 { k += 1 }
            if k > hi { hi = m - 1; continue }
            if idOf[k] == id { return k }
            if idOf[k] < id { lo = k + 1 } else { hi = m - 1 }
        }
        return nil
    }

    // MARK: - Placement

    @inline(__always) func lambda(_ p: TissuePoint, _ x: Double, _ y: Double) -> Double {
        if p.rel <= 0 { return 0 }
        let phi = min(Self.coverageCap, densityScale * p.rel)
        var l = phi * (1 + 1.2 * phi * phi * phi) / regionArea[p.region.rawValue]
        if p.region == .stroma || p.region == .tumourMargin {
            l *= max(0.15, 1 + 1.5 * tissue.clump(x, y))   // clumped stromal cells
        }
        if config.clumping > 0 { l *= 1 + 4 * clumpWeight(x: x, y: y) }   // clumps: a dense patch
        return l
    }

    struct Placed: Sendable { var x: Float, y: Float, a: Float, b: Float, angle: Float, type: UInt8 }
    struct RowCells: Sendable { var cells: [Placed] = []; var blockStart: [Int] = [] }

    @inline(__always) static func ellipseRadius(_ a: Float, _ b: Float, _ ang: Float, _ ux: Float, _ uy: Float) -> Float {
        let c = cos(ang), s = sin(ang)
        let u = ux * c + uy * s, v = -ux * s + uy * c
        return 1 / (u * u / (a * a) + v * v / (b * b)).squareRoot()
    }

    func drawShape(type t: Int, x: Double, y: Double, rng r: inout SplitMix64) -> (Float, Float, Float) {
        let sh = CellType.shapes[t]
        var rad = meanRadius * sh.radius * r.lognormal(sh.radiusSD)
        if t == CellType.tumour && r.chance(0.06) { rad *= 1.35 }          // occasional giant pleomorphic nuclei
        rad = min(max(rad, 0.45 * meanRadius), 1.5 * meanRadius)
        let asp = r.uniform(sh.aspect.lowerBound, sh.aspect.upperBound)
        var a = rad * asp.squareRoot(), b = rad / asp.squareRoot()
        a = min(a, maxSemiAxis); b = max(b, 0.42 * meanRadius, 1.5); a = max(a, b)
        var ang: Double
        switch t {
        case CellType.stroma:
            ang = tissue.fibreAngle(x, y) * 1.6 + 0.25 * r.gauss()
        case CellType.endothelial:
            let gx = tissue.vessel(x + 1, y) - tissue.vessel(x - 1, y)
            let gy = tissue.vessel(x, y + 1) - tissue.vessel(x, y - 1)
            ang = atan2(gy, gx) + Double.pi / 2 + 0.12 * r.gauss()
        default:
            ang = r.uniform(0, Double.pi)
        }
        return (Float(a), Float(b), Float(ang))
    }

    func placeRow(_ by: Int, rows: SharedPointer<RowCells>, rowCount: Int, bxLo: Int, bxHi: Int) {
        let B = Double(block)
        let W = Double(config.width), H = Double(config.height)
        let lim = Float(reach)
        var row = RowCells()
        row.blockStart.reserveCapacity(bxHi - bxLo + 2)
        let ri = by - blockRowOrigin
        let s = Float(Self.hardCore)
        let maxA = Float(maxSemiAxis)
        for bx in bxLo...bxHi {
            row.blockStart.append(row.cells.count)
            let x0 = Double(bx) * B, y0 = Double(by) * B
            var lsum = 0.0, lmax = 0.0
            for (fx, fy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let px = x0 + fx * B, py = y0 + fy * B
                let l = lambda(tissue.classify(px, py), px, py)
                lsum += l; lmax = max(lmax, l)
            }
            var rng = SplitMix64(hash4(config.seed, 0x91ACE, u64(bx), u64(by)))
            let n = Int(lsum / 4 * B * B + rng.uniform())
            if n == 0 { continue }
            lmax *= 1.25
            var placed = 0, attempts = 0
            while placed < n && attempts < 12 * n + 8 {
                attempts += 1
                let x = x0 + rng.uniform() * B, y = y0 + rng.uniform() * B
                let u = rng.uniform(), ut = rng.uniform()
                var srng = SplitMix64(rng.next())
                if x < -reach || y < -reach || x >= W + reach || y >= H + reach { continue }
                let p = tissue.classify(x, y)
                if u * lmax > lambda(p, x, y) { continue }
                // Cell type from the region's mix.
                let mix = Tissue.typeMix[p.region.rawValue]
                var t = 0, acc = 0.0
                for k in 0..<mix.count { acc += mix[k]; if ut < acc { t = k; break }; t = k }
                let (a, b, ang) = drawShape(type: t, x: x, y: y, rng: &srng)
                let fx = Float(x), fy = Float(y)
                // Inside clumps nuclei may overlap up to 30 % of their radii.
                let sc = config.clumping > 0 ? Float(Self.hardCore - 0.16 * clumpWeight(x: x, y: y)) : s
                // Hard-core test against neighbouring cells (this row and completed adjacent rows).
                var ok = true
                func check(_ list: [Placed], _ lo: Int, _ hi: Int) -> Bool {
                    var k = lo
                    while k < hi {
                        let o = list[k]; k += 1
                        let dx = o.x - fx, dy = o.y - fy
                        let d2 = dx * dx + dy * dy
                        let far = sc * (a + o.a)
                        if d2 >= far * far { continue }
                        let d = d2.squareRoot()
                        if d < 1e-3 { return false }
                        let ux = dx / d, uy = dy / d
                        let need = sc * (Self.ellipseRadius(a, b, ang, ux, uy) + Self.ellipseRadius(o.a, o.b, o.angle, ux, uy))
                        if d < need { return false }
                    }
                    return true
                }
                _ = maxA; _ = lim
                let bi = bx - bxLo
                let startPrev = bi >= 1 ? row.blockStart[bi - 1] : row.blockStart[bi]
                ok = check(row.cells, startPrev, row.cells.count)
                if ok {
                    for nr in [ri - 1, ri + 1] where nr >= 0 && nr < rowCount && ok {
                        let other = rows[nr]
                        if other.blockStart.isEmpty { continue }
                        let lo = other.blockStart[max(bi - 1, 0)]
                        let hi = bi + 2 < other.blockStart.count ? other.blockStart[bi + 2] : other.cells.count
                        ok = check(other.cells, lo, hi)
                    }
                }
                if !ok { continue }
                row.cells.append(Placed(x: fx, y: fy, a: a, b: b, angle: ang, type: UInt8(t)))
                placed += 1
            }
        }
        rows[ri] = row
    }

    func place() {
        let B = Double(block)
        let byLo = blockRowOrigin
        let byHi = Int(((Double(config.height) + reach) / B).rounded(.down))
        let bxLo = Int((-reach / B).rounded(.down))
        let bxHi = Int(((Double(config.width) + reach) / B).rounded(.down))
        let rowCount = byHi - byLo + 1
        let buf = UnsafeMutablePointer<RowCells>.allocate(capacity: rowCount)
        buf.initialize(repeating: RowCells(), count: rowCount)
        defer { buf.deinitialize(count: rowCount); buf.deallocate() }
        let rows = SharedPointer(buf)
        // Even block rows are independent of each other; odd rows then fill in against both neighbours.
        for parity in 0..<2 {
            let list = stride(from: parity, to: rowCount, by: 2).map { $0 }
            parallelChunks(list.count) { lo, hi in
                for k in lo..<hi { self.placeRow(list[k] + byLo, rows: rows, rowCount: rowCount, bxLo: bxLo, bxHi: bxHi) }
            }
        }
        let total = (0..<rowCount).reduce(0) { $0 + buf[$1].cells.count }
        xs.reserveCapacity(total); ys.reserveCapacity(total); semiA.reserveCapacity(total)
        semiB.reserveCapacity(total); angles.reserveCapacity(total); types.reserveCapacity(total)
        rowStart = []
        for r in 0..<rowCount {
            rowStart.append(xs.count)
            for c in buf[r].cells {
                xs.append(c.x); ys.append(c.y); semiA.append(c.a); semiB.append(c.b); angles.append(c.angle); types.append(c.type)
            }
        }
        rowStart.append(xs.count)
    }

    /// Cells whose centre lies inside the image are always visible (they own their centre pixel);
    /// cells centred outside are listed only if they own at least one image pixel.
    func assignIds() {
        let n = xs.count
        var visible = [Bool](repeating: false, count: n)
        let W = config.width, H = config.height
        var anyOutside = false
        for i in 0..<n {
            let x = xs[i], y = ys[i]
            if x >= 0 && y >= 0 && x < Float(W) && y < Float(H) { visible[i] = true } else { anyOutside = true }
        }
        if anyOutside {
            let r = Int(reach) + 1
            // Border strips: top, bottom, left, right (clipped to the image).
            var rects: [(Int, Int, Int, Int)] = [(0, W, 0, min(H, r)), (0, W, max(0, H - r), H)]
            var y = 0
            while y < H {   // side strips in chunks to bound memory
                let y1 = min(H, y + 4096)
                rects.append((0, min(W, r), y, y1)); rects.append((max(0, W - r), W, y, y1))
                y = y1
            }
            for (x0, x1, y0, y1) in rects where x1 > x0 && y1 > y0 {
                let list = gatherCells(x0: x0, x1: x1, y0: y0, y1: y1)
                let shapes = list.map { shapeParams($0) }
                let w = x1 - x0, h = y1 - y0
                var idx = [Int32](repeating: 0, count: w * h)
                var key = [Float](repeating: .infinity, count: w * h)
                idx.withUnsafeMutableBufferPointer { ib in
                    key.withUnsafeMutableBufferPointer { kb in
                        rasterize(shapes, x0: x0, x1: x1, y0: y0, y1: y1, idx: SharedPointer(ib.baseAddress!), key: SharedPointer(kb.baseAddress!))
                    }
                }
                for v in idx where v > 0 { visible[list[Int(v) - 1]] = true }
            }
        }
        idOf = [UInt32](repeating: 0, count: n)
        var next: UInt32 = 1
        for i in 0..<n where visible[i] { idOf[i] = next; next += 1 }
        listedCount = Int(next - 1)
    }

    /// Global indices (ascending) of cells that may own a pixel in [x0,x1) x [y0,y1).
    func gatherCells(x0: Int, x1: Int, y0: Int, y1: Int) -> [Int] {
        let B = Double(block)
        let r0 = max(0, Int(((Double(y0) - reach) / B).rounded(.down)) - blockRowOrigin)
        let r1 = min(rowStart.count - 2, Int(((Double(y1) + reach) / B).rounded(.down)) - blockRowOrigin)
        if r1 < r0 { return [] }
        let fx0 = Float(x0) - Float(reach), fx1 = Float(x1) + Float(reach)
        let fy0 = Float(y0) - Float(reach), fy1 = Float(y1) + Float(reach)
        var out: [Int] = []
        for i in rowStart[r0]..<rowStart[r1 + 1] {
            let x = xs[i], y = ys[i]
            if x >= fx0 && x <= fx1 && y >= fy0 && y <= fy1 { out.append(i) }
        }
        return out
    }
}
