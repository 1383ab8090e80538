// Band rendering: label rasterisation (noise-free geometry), per-compartment marker signal,
// spillover, PSF blur with a halo, autofluorescence, illumination, shot/read noise and hot pixels.

import Foundation
import EpipeKernels

/// Geometry of one cell in Float for the rasteriser.
struct ShapeParams: Sendable {
    var cx: Float, cy: Float, cosA: Float, sinA: Float, invA2: Float, invB2: Float
    var h2c: Float, h2s: Float, h3c: Float, h3s: Float, h4c: Float, h4s: Float, h5c: Float, h5s: Float
    var ext: Float, e2c: Float, e2s: Float, e3c: Float, e3s: Float
    var reach: Float
}

/// Per-cell appearance used by the signal pass.
struct CellLook: Sendable {
    var tex: Float                 // chromatin texture strength
    var n1x: Float, n1y: Float, n1r2: Float, n2x: Float, n2y: Float, n2r2: Float   // nucleoli (r2 = 0: none)
}

extension SyntheticSlide {
    // MARK: - Per-cell parameters (pure functions of seed and global index)

    func shapeParams(_ g: Int) -> ShapeParams {
        let t = Int(types[g])
        let sh = CellType.shapes[t]
        var r = SplitMix64(hash3(config.seed, 0x5BA9E, UInt64(g)))
        let a = semiA[g], b = semiB[g], ang = angles[g]
        var amps: [Double] = [], phases: [Double] = []
        for k in 2...5 {
            let w: Double = k == 2 ? 0.6 : (k == 5 ? 0.5 : 1)
            amps.append(sh.harmonics * w * abs(r.gauss())); phases.append(r.uniform(0, 2 * Double.pi))
        }
        let sum = amps.reduce(0, +)
        if sum > Self.harmonicCap { amps = amps.map { $0 * Self.harmonicCap / sum } }
        let ext = meanRadius * r.uniform(sh.ext.lowerBound, sh.ext.upperBound)
        let e2 = Self.extHarmonic * 0.6 * r.uniform(), e3 = Self.extHarmonic * 0.4 * r.uniform()
        let p2 = r.uniform(0, 2 * Double.pi), p3 = r.uniform(0, 2 * Double.pi)
        let hs = amps.reduce(0, +)
        let reach = Double(a) * (1 + hs) + ext * (1 + e2 + e3) + 0.01
        return ShapeParams(
            cx: xs[g], cy: ys[g], cosA: cos(ang), sinA: sin(ang), invA2: 1 / (a * a), invB2: 1 / (b * b),
            h2c: Float(amps[0] * cos(phases[0])), h2s: Float(amps[0] * sin(phases[0])),
            h3c: Float(amps[1] * cos(phases[1])), h3s: Float(amps[1] * sin(phases[1])),
            h4c: Float(amps[2] * cos(phases[2])), h4s: Float(amps[2] * sin(phases[2])),
            h5c: Float(amps[3] * cos(phases[3])), h5s: Float(amps[3] * sin(phases[3])),
            ext: Float(ext), e2c: Float(e2 * cos(p2)), e2s: Float(e2 * sin(p2)), e3c: Float(e3 * cos(p3)), e3s: Float(e3 * sin(p3)),
            reach: Float(min(reach, self.reach)))
    }

    /// A nucleolus of nucleus g: centre at up to `spread` x its semi-axes from the centre, radius
    /// `radius` x its minor semi-axis (x, y, radius^2).
    func nucleolus(_ g: Int, _ r: inout SplitMix64, spread: Double, radius: ClosedRange<Double>) -> (Float, Float, Float) {
        let a = Double(semiA[g]), b = Double(semiB[g]), ang = Double(angles[g])
        let c = cos(ang), s = sin(ang)
        let u = a * r.uniform(-spread, spread), v = b * r.uniform(-spread, spread)
        let rad = b * r.uniform(radius.lowerBound, radius.upperBound)
        return (xs[g] + Float(u * c - v * s), ys[g] + Float(u * s + v * c), Float(rad * rad))
    }

    func cellLook(_ g: Int) -> CellLook {
        let t = Int(types[g])
        var r = SplitMix64(hash3(config.seed, 0x100C, UInt64(g)))
        let lymph = t == CellType.tCell || t == CellType.bCell
        let tex = Float(lymph ? r.uniform(0.3, 0.55) : r.uniform(0.15, 0.45))
        var look = CellLook(tex: tex, n1x: 0, n1y: 0, n1r2: 0, n2x: 0, n2y: 0, n2r2: 0)
        if r.chance(CellType.shapes[t].nucleoli) {
            (look.n1x, look.n1y, look.n1r2) = nucleolus(g, &r, spread: 0.4, radius: 0.14...0.26)
            if r.chance(0.4) { (look.n2x, look.n2y, look.n2r2) = nucleolus(g, &r, spread: 0.4, radius: 0.14...0.26) }
        }
        // Textured chromatin: most nuclei show one or two dark nucleoli (own draws: the default look is unchanged).
        let ct = min(max(config.chromatinTexture, 0), 1)
        if ct > 0 && look.n1r2 == 0 {
            var q = SplitMix64(hash3(config.seed, 0x100D, UInt64(g)))
            if q.chance(0.75 * ct) {
                (look.n1x, look.n1y, look.n1r2) = nucleolus(g, &q, spread: 0.45, radius: 0.16...0.3)
                if q.chance(0.5) { (look.n2x, look.n2y, look.n2r2) = nucleolus(g, &q, spread: 0.45, radius: 0.16...0.3) }
            }
        }
        return look
    }

    /// Relative expression of channel c in cell g (ground truth, before channel scale).
    func cellExpression(_ g: Int, _ c: Int) -> Float {
        let t = Int(types[g])
        var cr = SplitMix64(hash3(config.seed, 0xE4B2, UInt64(g)))
        let quality = cr.lognormal(0.15)
        let lineage = cr.uniform()            // T-cell subset: CD8 / CD4 / Treg
        var r = SplitMix64(hash4(config.seed, 0xE4B3, UInt64(g), UInt64(c)))
        let m = panel[c]
        if c == 0 {
            var d = m.level[t] * r.lognormal(0.25)
            let u = r.uniform()
            if u < 0.08 { d *= 0.38 } else if u < 0.11 { d *= 1.6 }   // dim and bright (pyknotic) nuclei
            if config.brightnessDecades > 0 {
                // Mean-preserving lognormal whose 95th / 5th percentile ratio is 10^decades.
                var br = SplitMix64(hash3(config.seed, 0xD1A, UInt64(g)))
                let sigma = config.brightnessDecades * log(10) / (2 * 1.6449)
                d *= exp(sigma * br.gauss() - sigma * sigma / 2)
            }
            return Float(d)
        }
        var pos = r.chance(m.fraction[t])
        if t == CellType.tCell {
            switch m.name {
            case "CD8": pos = lineage < 0.4
            case "CD4": pos = lineage >= 0.4 && lineage < 0.97
            case "FOXP3": pos = lineage >= 0.82 && lineage < 0.95
            default: break
            }
        }
        let nonspecific = 0.02 * r.lognormal(0.5)
        let level = pos ? m.level[t] * r.lognormal(0.35) : 0
        // Smooth staining gradient across the slide (per channel, +-25 %), e.g. antibody penetration.
        let field = ValueNoise(seed: hash3(config.seed, 0x57A1, UInt64(c)), scale: 350 * tissue.pxPerUm)
        let regional = 1 + 0.7 * field(Double(xs[g]), Double(ys[g]))
        return Float((level * regional + nonspecific) * quality)
    }

    // MARK: - Label rasterisation

    /// Distance d of (dx, dy) from the centre of shape s, the nucleus contour radius rn in that direction,
    /// and the direction's 2nd and 3rd harmonics (for the cytoplasm extent).
    @inline(__always) static func contour(_ s: ShapeParams, _ dx: Float, _ dy: Float, _ d2: Float)
        -> (d: Float, rn: Float, c2: Float, s2: Float, c3: Float, s3: Float) {
        let d = d2.squareRoot()
        var u: Float = 1, v: Float = 0
        if d > 1e-4 {
            let inv = 1 / d
            let c = dx * inv, sn = dy * inv
            u = c * s.cosA + sn * s.sinA
            v = sn * s.cosA - c * s.sinA
        }
        let re = 1 / (u * u * s.invA2 + v * v * s.invB2).squareRoot()
        let c2 = u * u - v * v, s2 = 2 * u * v
        let c3 = c2 * u - s2 * v, s3 = s2 * u + c2 * v
        let c4 = c3 * u - s3 * v, s4 = s3 * u + c3 * v
        let c5 = c4 * u - s4 * v, s5 = s4 * u + c4 * v
        let hsum = s.h2c * c2 + s.h2s * s2 + s.h3c * c3 + s.h3s * s3
        let hsum2 = s.h4c * c4 + s.h4s * s4 + s.h5c * c5 + s.h5s * s5
        let rn = re * (1 + hsum + hsum2)
        return (d, rn, c2, s2, c3, s3)
    }

    /// The pixel box (first/last row, first/last column) a shape can reach within `rows` x `columns`, or nil.
    static func reachBox(_ s: ShapeParams, rows: Range<Int>, columns: Range<Int>) -> (Int, Int, Int, Int)? {
        let ya = max(rows.lowerBound, Int((s.cy - s.reach).rounded(.down)))
        let yb = min(rows.upperBound - 1, Int((s.cy + s.reach).rounded(.up)))
        let xa = max(columns.lowerBound, Int((s.cx - s.reach).rounded(.down)))
        let xb = min(columns.upperBound - 1, Int((s.cx + s.reach).rounded(.up)))
        return ya > yb || xa > xb ? nil : (ya, yb, xa, xb)
    }

    /// Overlapping nuclei: for every pixel of rows [y0, y1) inside a nucleus (idx, key from `rasterize`),
    /// the list position + 1 of a second nucleus covering it (0 = none) and that nucleus's normalised radius
    /// there. The nucleus with the smaller key owns the pixel; the second adds its stain (clumps only).
    func rasterizeSecond(_ shapes: [ShapeParams], width w: Int, y0: Int, y1: Int, idx: SharedPointer<Int32>, key: SharedPointer<Float>,
                         idx2: SharedPointer<Int32>, rho2: SharedPointer<Float>) {
        parallelChunks(y1 - y0, minChunk: 8) { lo, hi in
            for i in (lo * w)..<(hi * w) { idx2[i] = 0; rho2[i] = .infinity }
            shapes.withUnsafeBufferPointer { sp in
                let ry0 = y0 + lo, ry1 = y0 + hi
                for (n, s) in sp.enumerated() {
                    guard let (ya, yb, xa, xb) = Self.reachBox(s, rows: ry0..<ry1, columns: 0..<w) else { continue }
                    let label = Int32(n + 1)
                    for py in ya...yb {
                        let dy = Float(py) + 0.5 - s.cy
                        for px in xa...xb {
                            let o = (py - y0) * w + px
                            if key[o] > -1 || idx[o] == label { continue }
                            let dx = Float(px) + 0.5 - s.cx
                            let g = Self.contour(s, dx, dy, dx * dx + dy * dy)
                            if g.d > g.rn { continue }
                            let r = g.d / g.rn
                            if r < rho2[o] { rho2[o] = r; idx2[o] = label }
                        }
                    }
                }
            }
        }
    }

    /// Assigns every pixel of [x0,x1) x [y0,y1) to the cell minimising (key, index): key = rho - 2 inside a
    /// nucleus (rho = normalised radius), else the distance beyond the nucleus contour if within the
    /// cell's cytoplasm extent. idx receives list position + 1 (0 = background); buffers have stride x1-x0.
    func rasterize(_ shapes: [ShapeParams], x0: Int, x1: Int, y0: Int, y1: Int, idx: SharedPointer<Int32>, key: SharedPointer<Float>) {
        let w = x1 - x0
        parallelChunks(y1 - y0, minChunk: 8) { lo, hi in
            for i in (lo * w)..<(hi * w) { idx[i] = 0; key[i] = .infinity }
            shapes.withUnsafeBufferPointer { sp in
                let ry0 = y0 + lo, ry1 = y0 + hi
                for (n, s) in sp.enumerated() {
                    guard let (ya, yb, xa, xb) = Self.reachBox(s, rows: ry0..<ry1, columns: x0..<x1) else { continue }
                    let r2 = s.reach * s.reach
                    let label = Int32(n + 1)
                    for py in ya...yb {
                        let dy = Float(py) + 0.5 - s.cy
                        let rowBase = (py - y0) * w - x0
                        for px in xa...xb {
                            let dx = Float(px) + 0.5 - s.cx
                            let d2 = dx * dx + dy * dy
                            if d2 > r2 { continue }
                            let g = Self.contour(s, dx, dy, d2)
                            var k: Float
                            if g.d <= g.rn {
                                k = g.d / g.rn - 2
                            } else {
                                let t = g.d - g.rn
                                let ex = s.ext * (1 + s.e2c * g.c2 + s.e2s * g.s2 + s.e3c * g.c3 + s.e3s * g.s3)
                                if t > ex { continue }
                                k = t
                            }
                            let o = rowBase + px
                            if k < key[o] { key[o] = k; idx[o] = label }
                        }
                    }
                }
            }
        }
    }

    // MARK: - Band rendering

    struct ChannelParams: Sendable {
        var kind: Int          // 0 nuclear (DAPI-like), 1 granular nuclear, 2 cytoplasm, 3 membrane
        var spillFrom: Int     // -1 = none
        var spill: Float
        var offset: Float, af: Float, hot: Float
        var rbc: Float         // red-blood-cell autofluorescence
        var debris: Float      // signal of nuclear debris (bright in DAPI)
        var sigma: Double      // in-focus PSF sigma of this channel
    }

    static let maxDefocus = 1.65

    /// Chromatin factor of textured nuclei (strength ct > 0) at a pixel centre: chromocentres where the value
    /// noise is high (up to 1 + 1.25 ct), the rest at 1 - 0.25 ct.
    @inline(__always) static func chromatin(_ chrom: ValueNoise, _ ct: Float, _ fx: Float, _ fy: Float) -> Float {
        let t = min(max((Float(chrom(Double(fx), Double(fy))) - 0.1) * 2.2, 0), 1)
        return 1 - 0.25 * ct + 1.5 * ct * t * t * (3 - 2 * t)
    }
    /// Halo needed by the blur: radius of the widest kernel.
    var blurRadius: Int {
        let f = config.defocusedFieldFraction > 0 ? Self.maxDefocus : 1
        let r = max(1, Int((3.3 * max(config.psfSigma, 0) * 1.1 * f).rounded(.up)))
        return outOfFocusOn ? max(r, Self.gaussKernel(outOfFocusSigma).count / 2) : r
    }

    var outOfFocusOn: Bool { config.outOfFocusFraction > 0 }
    /// Sigma (px) of the out-of-focus blur.
    var outOfFocusSigma: Double { config.outOfFocusSigma > 0 ? config.outOfFocusSigma : 0.3 * max(config.nucleusDiameter, 2) }

    /// Weight (0 = in focus ... 1 = fully out of focus) of the out-of-focus blur at a point: a smooth field
    /// thresholded at its (1 - outOfFocusFraction) quantile over the image, with a soft edge.
    public func outOfFocus(x: Double, y: Double) -> Double {
        guard outOfFocusOn else { return 0 }
        return smoothstep(focusThreshold - 0.3, focusThreshold + 0.3, focusField(x, y))
    }

    /// Weight (0 ... 1) of clumped nuclei at a point (0 when `clumping` is 0).
    public func clumpWeight(x: Double, y: Double) -> Double {
        guard config.clumping > 0 else { return 0 }
        return min(config.clumping, 1) * smoothstep(0.3, 0.55, clumpField(x, y))
    }

    /// PSF widening of microscope field (tx, ty): most fields in focus, some blurred.
    func focusFactor(_ tx: Int, _ ty: Int) -> Double {
        var r = SplitMix64(hash4(config.seed, 0xF0C5, u64(tx), u64(ty)))
        let u = r.uniform(), v = r.uniform()
        return u < config.defocusedFieldFraction ? 1.15 + (Self.maxDefocus - 1.15) * v : 0.95 + 0.1 * v
    }

    /// Normalised Gaussian taps, radius ceil(3.3 sigma) (identity for sigma ~ 0).
    static func gaussKernel(_ sigma: Double) -> [Float] {
        if sigma < 0.05 { return [1] }
        let r = max(1, Int((3.3 * sigma).rounded(.up)))
        let k = (-r...r).map { i in exp(-Double(i * i) / (2 * sigma * sigma)) }
        let sum = k.reduce(0, +)
        return k.map { Float($0 / sum) }
    }

    func channelParams() -> [ChannelParams] {
        let C = config.channels
        return (0..<C).map { c in
            var r = SplitMix64(hash3(config.seed, 0xC4A7, UInt64(c)))
            let comp = panel[c].compartment
            let kind: Int
            switch comp {
            case .nuclear: kind = panel[c].name == "Ki67" ? 1 : 0
            case .cytoplasm: kind = 2
            case .membrane: kind = 3
            }
            let sigma = max(config.psfSigma, 0) * r.uniform(0.9, 1.1)
            let spillFrom = c >= 2 ? c - 1 : (c == 1 ? 0 : -1)
            let spill = Float(c == 1 ? 0.008 : r.uniform(0.01, 0.04))
            let af = Float(c == 0 ? 700 : (350 + 1500 * r.uniform()) * (1 - 0.5 * Double(c) / Double(max(C, 1))))
            let rbc = Float(c == 0 ? 250 : (900 + 3500 * r.uniform()) * (1 - 0.6 * Double(c) / Double(max(C, 1))))
            return ChannelParams(kind: kind, spillFrom: spillFrom, spill: spill, offset: Float(150 + 250 * r.uniform()),
                                 af: af, hot: Float(r.uniform(0.6, 1)), rbc: rbc,
                                 debris: Float(c == 0 ? 26000 : 150 + 400 * r.uniform()), sigma: sigma)
        }
    }

    public func renderBand(y0: Int, count: Int) -> SynthBand {
        let W = config.width, H = config.height, C = config.channels
        precondition(y0 >= 0 && count >= 0 && y0 + count <= H, "band outside the image")
        if count == 0 { return SynthBand(y0: y0, count: 0, width: W, channels: Array(repeating: [], count: C), nuclei: [], cells: []) }
        let R = blurRadius
        let sy0 = max(0, y0 - R), sy1 = min(H, y0 + count + R)     // signal rows (blur halo)
        let ly0 = max(0, sy0 - 1), ly1 = min(H, sy1 + 1)           // label rows (membrane rim needs neighbours)
        let list = gatherCells(x0: 0, x1: W, y0: ly0, y1: ly1)
        let nCells = list.count

        // Per-cell parameters.
        var shapes = [ShapeParams](repeating: ShapeParams(cx: 0, cy: 0, cosA: 1, sinA: 0, invA2: 1, invB2: 1, h2c: 0, h2s: 0, h3c: 0, h3s: 0, h4c: 0, h4s: 0, h5c: 0, h5s: 0, ext: 0, e2c: 0, e2s: 0, e3c: 0, e3s: 0, reach: 0), count: nCells)
        var looks = [CellLook](repeating: CellLook(tex: 0, n1x: 0, n1y: 0, n1r2: 0, n2x: 0, n2y: 0, n2r2: 0), count: nCells)
        var expr = [Float](repeating: 0, count: nCells * C)
        let scales = channelScales.map { Float($0) }
        if nCells > 0 { shapes.withUnsafeMutableBufferPointer { sb in
            looks.withUnsafeMutableBufferPointer { lb in
                expr.withUnsafeMutableBufferPointer { eb in
                    let sp = SharedPointer(sb.baseAddress!), lp = SharedPointer(lb.baseAddress!), ep = SharedPointer(eb.baseAddress!)
                    parallelChunks(nCells, minChunk: 64) { lo, hi in
                        for i in lo..<hi {
                            let g = list[i]
                            sp[i] = self.shapeParams(g); lp[i] = self.cellLook(g)
                            for c in 0..<C { ep[i * C + c] = self.cellExpression(g, c) * scales[c] }
                        }
                    }
                }
            }
        } }

        // Labels.
        let lrows = ly1 - ly0
        let srows = sy1 - sy0
        let n = srows * W
        // One reusable scratch block: idx, key (label rows), 5 weight planes + blur buffer (signal rows),
        // illumination and illumination x autofluorescence (output rows).
        let scratchFloats = 2 * lrows * W + 6 * n + 2 * count * W
        let (blockFloats, blockCap) = scratch.take(scratchFloats)
        defer { scratch.give(blockFloats, blockCap) }
        let block = UnsafeMutableRawPointer(blockFloats)
        let idxBuf = block.bindMemory(to: Int32.self, capacity: lrows * W)
        let keyBuf = (block + 4 * lrows * W).bindMemory(to: Float.self, capacity: scratchFloats - lrows * W)
        let wBuf = keyBuf + lrows * W
        let hBuf = wBuf + 5 * n
        let illumBuf = hBuf + n
        let illumAFBuf = illumBuf + count * W
        let idx = SharedPointer(idxBuf), key = SharedPointer(keyBuf)
        rasterize(shapes, x0: 0, x1: W, y0: ly0, y1: ly1, idx: idx, key: key)
        // Clumps (off by default): where nuclei overlap, the hidden nucleus adds its stain to the nuclear channel.
        let overlap = config.clumping > 0
        let idx2Buf = UnsafeMutablePointer<Int32>.allocate(capacity: overlap ? lrows * W : 1)
        let rho2Buf = UnsafeMutablePointer<Float>.allocate(capacity: overlap ? lrows * W : 1)
        let w2Buf = UnsafeMutablePointer<Float>.allocate(capacity: overlap ? n : 1)
        defer { idx2Buf.deallocate(); rho2Buf.deallocate(); w2Buf.deallocate() }
        let idx2 = SharedPointer(idx2Buf), rho2 = SharedPointer(rho2Buf), w2p = SharedPointer(w2Buf)
        if overlap { rasterizeSecond(shapes, width: W, y0: ly0, y1: ly1, idx: idx, key: key, idx2: idx2, rho2: rho2) }

        var nuclei = [UInt32](repeating: 0, count: count * W)
        var cellsOut = [UInt32](repeating: 0, count: count * W)
        let ids = list.map { idOf[$0] }
        nuclei.withUnsafeMutableBufferPointer { nb in
            cellsOut.withUnsafeMutableBufferPointer { cb in
                let np = SharedPointer(nb.baseAddress!), cp = SharedPointer(cb.baseAddress!)
                parallelChunks(count, minChunk: 16) { lo, hi in
                    for y in (y0 + lo)..<(y0 + hi) {
                        let lb = (y - ly0) * W, ob = (y - y0) * W
                        for x in 0..<W {
                            let v = idx[lb + x]
                            if v == 0 { continue }
                            let id = ids[Int(v) - 1]
                            cp[ob + x] = id
                            if key[lb + x] <= -1 { np[ob + x] = id }
                        }
                    }
                }
            }
        }

        // Per-pixel compartment weights on the signal rows.
        let wp = SharedPointer(wBuf)
        let texSeed = hash2(config.seed, 0x7E47), speckSeed = hash2(config.seed, 0x5BEC), cytoSeed = hash2(config.seed, 0xC470)
        // Textured chromatin (off by default): chromocentres = the upper lobes of value noise on a lattice of
        // diameter / 4 (several maxima per nucleus), nucleoli darker.
        let ct = Float(min(max(config.chromatinTexture, 0), 1))
        let chrom = ValueNoise(seed: hash2(config.seed, 0xC4C0), scale: max(config.nucleusDiameter, 2) / 4)
        let nucleolusDim: Float = 0.4 - 0.2 * ct
        looks.withUnsafeBufferPointer { lk in
            let lp = SharedPointer(UnsafeMutablePointer(mutating: lk.baseAddress ?? UnsafePointer(bitPattern: 8)!))
            parallelChunks(srows, minChunk: 4) { lo, hi in
                for y in (sy0 + lo)..<(sy0 + hi) {
                    let lb = (y - ly0) * W
                    let ob = (y - sy0) * W
                    let hasUp = y - 1 >= 0, hasDown = y + 1 < H
                    for x in 0..<W {
                        let o = ob + x
                        let v = idx[lb + x]
                        if v == 0 { wp[o] = 0; wp[n + o] = 0; wp[2 * n + o] = 0; wp[3 * n + o] = 0; continue }
                        // Membrane rim: a 4-neighbour (weight 1) or diagonal neighbour (0.5) in another cell/background.
                        let hasL = x > 0, hasR = x + 1 < W
                        var rim: Float = 0
                        if (hasL && idx[lb + x - 1] != v) || (hasR && idx[lb + x + 1] != v)
                            || (hasUp && idx[lb - W + x] != v) || (hasDown && idx[lb + W + x] != v) {
                            rim = 1
                        } else if (hasUp && ((hasL && idx[lb - W + x - 1] != v) || (hasR && idx[lb - W + x + 1] != v)))
                            || (hasDown && ((hasL && idx[lb + W + x - 1] != v) || (hasR && idx[lb + W + x + 1] != v))) {
                            rim = 0.5
                        }
                        let k = key[lb + x]
                        if k <= -1 {
                            let rho = k + 2
                            let look = lp[Int(v) - 1]
                            let tex = pixelTexture(texSeed, x, y)
                            let r2 = rho * rho
                            let radial: Float = 1 - 0.28 * r2 * r2
                            var nucleolus = false
                            let fx = Float(x) + 0.5, fy = Float(y) + 0.5
                            if look.n1r2 > 0 {
                                let ax = fx - look.n1x, ay = fy - look.n1y
                                if ax * ax + ay * ay < look.n1r2 { nucleolus = true }
                                let bx = fx - look.n2x, by = fy - look.n2y
                                if look.n2r2 > 0 && bx * bx + by * by < look.n2r2 { nucleolus = true }
                            }
                            let speck = pixelTexture(speckSeed, x, y)
                            var w0 = radial * (1 + look.tex * tex) * (nucleolus ? nucleolusDim : 1)
                            if ct > 0 {
                                w0 *= Self.chromatin(chrom, ct, fx, fy)
                            }
                            wp[o] = max(0, w0)
                            if overlap {
                                let v2 = idx2[lb + x]
                                if v2 > 0 {
                                    let q = rho2[lb + x], q2 = q * q
                                    let look2 = lp[Int(v2) - 1]
                                    var w2 = (1 - 0.28 * q2 * q2) * (1 + look2.tex * tex)
                                    if ct > 0 { w2 *= Self.chromatin(chrom, ct, fx, fy) }
                                    w2p[o] = max(0, w2)
                                } else {
                                    w2p[o] = 0
                                }
                            }
                            wp[n + o] = radial * (0.3 + 1.4 * max(0, speck + 0.15)) * (nucleolus ? 2.2 : 1)
                            wp[2 * n + o] = 0.12
                            wp[3 * n + o] = 0.1 + 0.9 * rim * (0.75 + 0.3 * pixelTexture(cytoSeed, x, y))
                        } else {
                            wp[o] = 0; wp[n + o] = 0
                            let ct = pixelTexture(cytoSeed, x, y)
                            wp[2 * n + o] = 0.8 + 0.3 * ct
                            wp[3 * n + o] = 0.12 + 0.88 * rim * (0.75 + 0.3 * ct)   // patchy membrane staining
                        }
                    }
                }
            }
        }

        // Red blood cells in vessel lumens: anucleate, unlabelled, autofluorescent in most channels.
        rasterizeRBCs(into: SharedPointer(wBuf + 4 * n), y0: sy0, y1: sy1)
        let rbcOff = 4 * n

        // Channel-independent imaging fields on the output rows: illumination and autofluorescence shape.
        imagingFields(y0: y0, count: count, illum: SharedPointer(illumBuf), illumAF: SharedPointer(illumAFBuf))
        let ilp = SharedPointer(illumBuf), iap = SharedPointer(illumAFBuf)
        let hots = hotPixels(y0: y0, count: count)
        let params = channelParams()
        let gain: Float = 1.5 * Float(config.noiseScale), read: Float = 9 * Float(config.noiseScale)
        let read2 = read * read
        var channelsOut: [[Float]] = []
        channelsOut.reserveCapacity(C)
        let hp = SharedPointer(hBuf)
        // Out-of-focus regions (off by default): a second, wide blur of the same sharp signal, blended in
        // by the smooth out-of-focus weight of each output pixel.
        let oof = outOfFocusOn
        let oofHBuf = UnsafeMutablePointer<Float>.allocate(capacity: oof ? n : 1)
        let oofWBuf = UnsafeMutablePointer<Float>.allocate(capacity: oof ? count * W : 1)
        defer { oofHBuf.deallocate(); oofWBuf.deallocate() }
        let oofHp = SharedPointer(oofHBuf), oofWp = SharedPointer(oofWBuf)
        let oofTaps = oof ? Self.gaussKernel(outOfFocusSigma) : [1]
        if oof {
            parallelChunks(count, minChunk: 8) { lo, hi in
                for yy in lo..<hi { for x in 0..<W {
                    oofWp[yy * W + x] = Float(self.outOfFocus(x: Double(x) + 0.5, y: Double(y0 + yy) + 0.5))
                } }
            }
        }
        // 8-bit nuclear channel (off by default): camera counts per level, pedestal, noise in levels.
        let eight = config.eightBit
        let div8: Float = Float(channelScales[0]) * 0.55 / 45
        let gain8: Float = 0.2 * Float(config.noiseScale), read8: Float = 1.2 * Float(config.noiseScale)
        // Blur kernels per field tile (defocus varies between fields): flat taps with offsets and radii.
        let F = max(16, config.fieldSize)
        let tcols = (W + F - 1) / F
        let trow0 = sy0 / F, trows = (sy1 - 1) / F - trow0 + 1
        let focus = (0..<(trows * tcols)).map { focusFactor($0 % tcols, trow0 + $0 / tcols) }
        for c in 0..<C {
            let p = params[c]
            let src = p.spillFrom
            let kindOff = p.kind * n
            let srcOff = src >= 0 ? params[src].kind * n : 0
            var taps: [Float] = [], offs: [Int] = [], rads: [Int] = []
            for f in focus {
                let k = Self.gaussKernel(p.sigma * f)
                offs.append(taps.count); rads.append(k.count / 2); taps += k
            }
            let kTaps = taps, kOff = offs, kRad = rads
            // Sharp signal + horizontal blur, row by row.
            expr.withUnsafeBufferPointer { eb in
                let ep = SharedPointer(UnsafeMutablePointer(mutating: eb.baseAddress ?? UnsafePointer(bitPattern: 8)!))
                parallelChunks(srows, minChunk: 4) { lo, hi in
                    let row = UnsafeMutablePointer<Float>.allocate(capacity: W + 2 * R)
                    let kp = UnsafeMutablePointer<Float>.allocate(capacity: kTaps.count)
                    defer { row.deallocate(); kp.deallocate() }
                    for t in 0..<kTaps.count { kp[t] = kTaps[t] }
                    for yy in lo..<hi {
                        let lb = (yy + sy0 - ly0) * W, ob = yy * W
                        for x in 0..<W {
                            let v = Int(idx[lb + x])
                            var s: Float = 0
                            if v > 0 {
                                let e = (v - 1) * C
                                s = ep[e + c] * wp[kindOff + ob + x]
                                if src >= 0 { s += p.spill * ep[e + src] * wp[srcOff + ob + x] }
                                if overlap && p.kind == 0 {
                                    let v2 = Int(idx2[lb + x])
                                    if v2 > 0 { s += ep[(v2 - 1) * C + c] * w2p[ob + x] }
                                }
                            }
                            let ro = wp[rbcOff + ob + x]
                            row[R + x] = s + p.rbc * max(ro, 0) - p.debris * min(ro, 0)
                        }
                        for i in 0..<R { row[i] = row[R]; row[R + W + i] = row[R + W - 1] }
                        let tr = (yy + sy0) / F - trow0
                        for tc in 0..<tcols {
                            let xa = tc * F, xb = min(W, xa + F)
                            let ti = tr * tcols + tc
                            let r = kRad[ti], k = kp + kOff[ti]
                            let dst = hp.pointer + ob
                            let k0 = k[0], s0 = row + R - r
                            for x in xa..<xb { dst[x] = k0 * s0[x] }
                            if r > 0 {
                                for t in 1...(2 * r) {
                                    let kt = k[t], st = row + R - r + t
                                    for x in xa..<xb { dst[x] += kt * st[x] }
                                }
                            }
                        }
                        if oof {
                            let r = oofTaps.count / 2
                            let dst = oofHp.pointer + ob
                            for x in 0..<W {
                                var a: Float = 0
                                for t in 0...(2 * r) { a += oofTaps[t] * row[R - r + t + x] }
                                dst[x] = a
                            }
                        }
                    }
                }
            }
            // Vertical blur + background, illumination, noise, hot pixels, quantisation.
            var out = [Float](repeating: 0, count: count * W)
            let noiseSeed = hash3(config.seed, 0x0015E, UInt64(c))
            let offset = p.offset, afLevel = p.af
            out.withUnsafeMutableBufferPointer { obuf in
                let op = SharedPointer(obuf.baseAddress!)
                parallelChunks(count, minChunk: 4) { lo, hi in
                    let kp = UnsafeMutablePointer<Float>.allocate(capacity: kTaps.count)
                    let acc = UnsafeMutablePointer<Float>.allocate(capacity: W)
                    defer { kp.deallocate(); acc.deallocate() }
                    for t in 0..<kTaps.count { kp[t] = kTaps[t] }
                    for yy in lo..<hi {
                        let y = y0 + yy
                        let tr = y / F - trow0
                        for tc in 0..<tcols {
                            let xa = tc * F, xb = min(W, xa + F)
                            let ti = tr * tcols + tc
                            let r = kRad[ti], k = kp + kOff[ti]
                            let r0 = hp.pointer + (min(max(y - r, 0), H - 1) - sy0) * W
                            let k0 = k[0]
                            for x in xa..<xb { acc[x] = k0 * r0[x] }
                            if r > 0 {
                                for t in 1...(2 * r) {
                                    let kt = k[t], rt = hp.pointer + (min(max(y + t - r, 0), H - 1) - sy0) * W
                                    for x in xa..<xb { acc[x] += kt * rt[x] }
                                }
                            }
                        }
                        let ob = yy * W
                        if oof {
                            // Wide blur of the same rows, blended by the out-of-focus weight.
                            let r = oofTaps.count / 2
                            let wp = oofWp.pointer + ob
                            for x in 0..<W where wp[x] > 0 {
                                var a: Float = 0
                                for t in 0...(2 * r) { a += oofTaps[t] * oofHp.pointer[(min(max(y + t - r, 0), H - 1) - sy0) * W + x] }
                                acc[x] += wp[x] * (a - acc[x])
                            }
                        }
                        let yKey = UInt64(y) << 32
                        if eight && c == 0 {
                            // 8-bit camera: levels 0...255, low signal, shot + read noise in levels.
                            for x in 0..<W {
                                let signal = (ilp[ob + x] * acc[x] + afLevel * iap[ob + x]) / div8
                                let h = mix64(noiseSeed ^ (yKey | UInt64(x)))
                                let val = offset / 40 + signal + (gain8 * signal + read8 * read8).squareRoot() * fastGauss(h)
                                op[ob + x] = Float(Int32(min(max(val, 0), 255) + 0.5))
                            }
                            continue
                        }
                        for x in 0..<W {
                            let signal = ilp[ob + x] * acc[x] + afLevel * iap[ob + x]
                            let h = mix64(noiseSeed ^ (yKey | UInt64(x)))
                            let val = offset + signal + (gain * signal + read2).squareRoot() * fastGauss(h)
                            op[ob + x] = Float(Int32(min(max(val, 0), 65535) + 0.5))
                        }
                    }
                }
                let top: Float = eight && c == 0 ? 255 : 65535
                for (o, v) in hots {
                    op[o] = max(op[o], Float(Int32(min(v * p.hot, top) + 0.5)))
                }
            }
            channelsOut.append(out)
        }
        return SynthBand(y0: y0, count: count, width: W, channels: channelsOut, nuclei: nuclei, cells: cellsOut)
    }

    /// Rasterises red blood cells (biconcave discs on a jittered grid inside vessel lumens) into rows [y0, y1).
    func rasterizeRBCs(into w: SharedPointer<Float>, y0: Int, y1: Int) {
        let W = config.width
        let rad = 3.6 * tissue.pxPerUm
        let sp = 2.3 * rad
        let i1 = Int((Double(W) / sp).rounded(.up)) + 1
        let seed = config.seed
        let tissue = self.tissue
        // Parallel over pixel rows; each chunk visits the grid rows whose discs can reach it and writes only its rows.
        parallelChunks(y1 - y0, minChunk: 16) { lo, hi in
            let ya0 = y0 + lo, yb0 = y0 + hi
            for i in (lo * W)..<(hi * W) { w[i] = 0 }
            let j0 = Int(((Double(ya0) - 2 * sp) / sp).rounded(.down)), j1 = Int(((Double(yb0) + 2 * sp) / sp).rounded(.up))
            for j in j0...j1 {
                for i in -1...i1 {
                    var r = SplitMix64(hash4(seed, 0x4BC, u64(i), u64(j)))
                    if !r.chance(0.55) { continue }
                    let cx = (Double(i) + 0.5 + r.uniform(-0.3, 0.3)) * sp
                    let cy = (Double(j) + 0.5 + r.uniform(-0.3, 0.3)) * sp
                    let rr = rad * r.uniform(0.85, 1.1)
                    let bright = Float(r.uniform(0.6, 1.2))
                    let ya = max(ya0, Int((cy - rr).rounded(.down))), yb = min(yb0 - 1, Int((cy + rr).rounded(.up)))
                    let xa = max(0, Int((cx - rr).rounded(.down))), xb = min(W - 1, Int((cx + rr).rounded(.up)))
                    if ya > yb || xa > xb { continue }
                    if tissue.classify(cx, cy).region != .vesselLumen { continue }
                    for y in ya...yb {
                        let dy = Double(y) + 0.5 - cy
                        for x in xa...xb {
                            let dx = Double(x) + 0.5 - cx
                            let q = (dx * dx + dy * dy) / (rr * rr)
                            if q >= 1 { continue }
                            let v = bright * Float(0.55 + 0.45 * q)
                            let o = (y - y0) * W + x
                            if v > w[o] { w[o] = v }
                        }
                    }
                }
            }
            // Nuclear debris / apoptotic bodies: clusters of small, condensed DAPI-bright fragments in tissue,
            // not labelled as nuclei (stored as negative weights in the same plane).
            let dsp = 80 * tissue.pxPerUm
            let dj0 = Int(((Double(ya0) - 12) / dsp).rounded(.down)) - 1, dj1 = Int(((Double(yb0) + 12) / dsp).rounded(.up))
            let di1 = Int((Double(W) / dsp).rounded(.up)) + 1
            for j in dj0...dj1 {
                for i in -1...di1 {
                    var r = SplitMix64(hash4(seed, 0xDEB, u64(i), u64(j)))
                    if !r.chance(0.45) { continue }
                    let cx = (Double(i) + r.uniform()) * dsp, cy = (Double(j) + r.uniform()) * dsp
                    let nFrag = 1 + Int(r.uniform() * 4)
                    var frags: [(Double, Double, Double, Float)] = []
                    for _ in 0..<nFrag {
                        let fr = r.uniform(0.5, 1.2) * tissue.pxPerUm
                        frags.append((cx + r.uniform(-2.5, 2.5) * tissue.pxPerUm, cy + r.uniform(-2.5, 2.5) * tissue.pxPerUm, fr, Float(r.uniform(0.5, 1.1))))
                    }
                    if cy + 8 * tissue.pxPerUm < Double(ya0) || cy - 8 * tissue.pxPerUm > Double(yb0) { continue }
                    let reg = tissue.classify(cx, cy).region
                    if reg == .empty || reg == .vesselLumen { continue }
                    for (fx, fy, fr, fb) in frags {
                        let ya = max(ya0, Int((fy - fr).rounded(.down))), yb = min(yb0 - 1, Int((fy + fr).rounded(.up)))
                        let xa = max(0, Int((fx - fr).rounded(.down))), xb = min(W - 1, Int((fx + fr).rounded(.up)))
                        if ya > yb || xa > xb { continue }
                        for y in ya...yb {
                            let dy = Double(y) + 0.5 - fy
                            for x in xa...xb {
                                let dx = Double(x) + 0.5 - fx
                                let q = (dx * dx + dy * dy) / (fr * fr)
                                if q >= 1 { continue }
                                let v = -fb * Float(1 - 0.5 * q)
                                let o = (y - y0) * W + x
                                if w[o] <= 0 && v < w[o] { w[o] = v }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Hot sensor pixels (position inside a field tile, value) repeated in every field tile; returns band offsets.
    func hotPixels(y0: Int, count: Int) -> [(Int, Float)] {
        let W = config.width
        let F = max(16, config.fieldSize)
        let nHot = Int(min(max(config.hotPixelRate, 0), 1) * Double(F * F) + 0.5)
        if nHot == 0 { return [] }
        var out: [(Int, Float)] = []
        for k in 0..<nHot {
            let h = hash3(config.seed, 0x4077, UInt64(k))
            let sx = Int(h % UInt64(F)), sy = Int((h >> 20) % UInt64(F))
            let v = Float(15000 + 50000 * unit(mix64(h)))
            var ty = (y0 - sy + F - 1) / F
            if y0 - sy < 0 { ty = 0 }
            while ty * F + sy < y0 + count {
                let y = ty * F + sy
                if y >= y0 {
                    var x = sx
                    while x < W { out.append(((y - y0) * W + x, v)); x += F }
                }
                ty += 1
            }
        }
        return out
    }

    /// Illumination (per-field vignetting and gain, global gradient) and illumination x autofluorescence shape
    /// (smooth field on a coarse grid, bilinear; brighter in stroma, dim on empty glass) for output rows.
    func imagingFields(y0: Int, count: Int, illum: SharedPointer<Float>, illumAF: SharedPointer<Float>) {
        let W = config.width, H = config.height
        let G = 8
        let gy0 = y0 / G, gy1 = (y0 + count - 1) / G + 1
        let gx1 = (W - 1) / G + 1
        let gw = gx1 + 1
        let gcount = (gy1 - gy0 + 1) * gw
        var grid = [Float](repeating: 0, count: 2 * gcount)   // [autofluorescence | stromal ECM weight]
        let tissue = self.tissue
        grid.withUnsafeMutableBufferPointer { gb in
            let gp = SharedPointer(gb.baseAddress!)
            parallelChunks(gy1 - gy0 + 1) { lo, hi in
                for j in lo..<hi {
                    let Y = Double((gy0 + j) * G)
                    for i in 0..<gw {
                        let X = Double(i * G)
                        let base = max(0.2, 0.65 + 0.22 * tissue.afField(X, Y))
                        let tis = tissue.tissueness(X, Y)
                        let stroma = 1 - smoothstep(-0.15, 0.15, tissue.tumourField(X, Y) - tissue.tumourThreshold)
                        gp[j * gw + i] = Float(base * (0.3 + 0.7 * tis) * (1 + 0.35 * stroma * tis))
                        gp[gcount + j * gw + i] = Float(stroma * tis)
                    }
                }
            }
        }
        // Uneven illumination (off by default): a smooth gain field (up to about 2x) and patches of diffuse
        // background haze (raised autofluorescence level), on the same grid.
        let uneven = min(max(config.unevenIllumination, 0), 1)
        let ugridBuf = UnsafeMutablePointer<Float>.allocate(capacity: uneven > 0 ? 2 * gcount : 1)
        defer { ugridBuf.deallocate() }
        let ugridP = SharedPointer(ugridBuf)
        if uneven > 0 {
            let illumField = self.illumField, hazeField = self.hazeField
            do {
                let up = ugridP
                parallelChunks(gy1 - gy0 + 1) { lo, hi in
                    for j in lo..<hi {
                        let Y = Double((gy0 + j) * G)
                        for i in 0..<gw {
                            let X = Double(i * G)
                            up[j * gw + i] = Float(exp(uneven * 0.35 * illumField(X, Y)))
                            up[gcount + j * gw + i] = Float(1 + 8 * uneven * smoothstep(0.2, 1.4, hazeField(X, Y)))
                        }
                    }
                }
            }
        }
        let F = max(16, config.fieldSize)
        let phi = 2 * Double.pi * unit(hash2(config.seed, 0x96AD))
        let gcx = Float(cos(phi) * 0.15 / Double(W)), gcy = Float(sin(phi) * 0.15 / Double(H))
        let seed = config.seed
        // Collagen fibres in stroma: local stripe patterns aligned with the fibre-orientation field (the same
        // field orients fibroblasts), defined per 24-px block and blended bilinearly between block centres.
        let FB = 24
        let fbr0 = y0 / FB - 1, fbr1 = (y0 + count - 1) / FB + 1
        let fbc = (W - 1) / FB + 3
        var fib = [Float](repeating: 0, count: (fbr1 - fbr0 + 1) * fbc * 3)   // cos, sin, phase seed bits
        for j in 0..<(fbr1 - fbr0 + 1) {
            for i in 0..<fbc {
                let bx = i - 1, by = fbr0 + j
                let cx = (Double(bx) + 0.5) * Double(FB), cy = (Double(by) + 0.5) * Double(FB)
                let th = tissue.fibreAngle(cx, cy) * 1.6
                let o = (j * fbc + i) * 3
                fib[o] = Float(-sin(th)); fib[o + 1] = Float(cos(th))
                fib[o + 2] = Float(hash4(seed, 0xF1B, u64(bx), u64(by)) >> 44)
            }
        }
        let fibSeed = hash2(seed, 0xF1BE)
        @Sendable @inline(__always) func stripe(_ fp: SharedPointer<Float>, _ j: Int, _ i: Int, _ x: Float, _ y: Float) -> Float {
            let o = (j * fbc + i) * 3
            let cx = (Float(i - 1) + 0.5) * Float(FB), cy = (Float(fbr0 + j) + 0.5) * Float(FB)
            let t = ((x - cx) * fp[o] + (y - cy) * fp[o + 1]) * 0.3 + 1000
            let k = Int(t), f = t - Float(k)
            let base = UInt64(fp[o + 2]) << 20
            let a = Float(mix64(fibSeed ^ base ^ UInt64(k)) >> 40) * 0x1p-24
            let b = Float(mix64(fibSeed ^ base ^ UInt64(k + 1)) >> 40) * 0x1p-24
            let sm = f * f * (3 - 2 * f)
            return a + (b - a) * sm
        }
        fib.withUnsafeMutableBufferPointer { fbp in
        let fp = SharedPointer(fbp.baseAddress!)
        grid.withUnsafeBufferPointer { gbp in
            let gp = SharedPointer(UnsafeMutablePointer(mutating: gbp.baseAddress!))
            parallelChunks(count, minChunk: 8) { lo, hi in
                for yy in lo..<hi {
                    let y = y0 + yy
                    let j = y / G - gy0
                    let ty = Float(y % G) / Float(G)
                    let tileY = y / F
                    let v = (Float(y % F) + 0.5) / Float(F) - 0.5
                    let gyTerm = gcy * (Float(y) - Float(H) / 2)
                    var lastTile = -1
                    var tileGain: Float = 1, vig: Float = 0
                    for x in 0..<W {
                        let i = x / G
                        let tx = Float(x % G) / Float(G)
                        let a = gp[j * gw + i] + (gp[j * gw + i + 1] - gp[j * gw + i]) * tx
                        let b = gp[(j + 1) * gw + i] + (gp[(j + 1) * gw + i + 1] - gp[(j + 1) * gw + i]) * tx
                        var af = a + (b - a) * ty
                        let sa = gp[gcount + j * gw + i] + (gp[gcount + j * gw + i + 1] - gp[gcount + j * gw + i]) * tx
                        let sb = gp[gcount + (j + 1) * gw + i] + (gp[gcount + (j + 1) * gw + i + 1] - gp[gcount + (j + 1) * gw + i]) * tx
                        let ecm = sa + (sb - sa) * ty
                        if ecm > 0.02 {
                            let fx = Float(x) + 0.5, fy = Float(y) + 0.5
                            let gxf = fx / Float(FB) - 0.5, gyf = fy / Float(FB) - 0.5
                            let bi = Int(gxf.rounded(.down)), bj = Int(gyf.rounded(.down))
                            let wx = gxf - Float(bi), wy = gyf - Float(bj)
                            let ii = bi + 1, jj = bj - fbr0
                            let s00 = stripe(fp, jj, ii, fx, fy), s10 = stripe(fp, jj, ii + 1, fx, fy)
                            let s01 = stripe(fp, jj + 1, ii, fx, fy), s11 = stripe(fp, jj + 1, ii + 1, fx, fy)
                            let st = (s00 + (s10 - s00) * wx) + ((s01 + (s11 - s01) * wx) - (s00 + (s10 - s00) * wx)) * wy
                            let fibre = max(0, st - 0.45) * 1.8
                            af *= 1 + 1.6 * ecm * fibre * fibre
                        }
                        let tileX = x / F
                        if tileX != lastTile {
                            lastTile = tileX
                            let th = hash4(seed, 0x711E, UInt64(tileX), UInt64(tileY))
                            tileGain = 0.93 + 0.14 * Float(unit(th))
                            vig = 0.18 + 0.14 * Float(unit(mix64(th)))
                        }
                        let u = (Float(x % F) + 0.5) / Float(F) - 0.5
                        var il = tileGain * (1 - 2 * vig * (u * u + v * v)) * (1 + gcx * (Float(x) - Float(W) / 2) + gyTerm)
                        if uneven > 0 {
                            let ua = ugridP[j * gw + i] + (ugridP[j * gw + i + 1] - ugridP[j * gw + i]) * tx
                            let ub = ugridP[(j + 1) * gw + i] + (ugridP[(j + 1) * gw + i + 1] - ugridP[(j + 1) * gw + i]) * tx
                            il *= ua + (ub - ua) * ty
                            let g0 = gcount
                            let ha = ugridP[g0 + j * gw + i] + (ugridP[g0 + j * gw + i + 1] - ugridP[g0 + j * gw + i]) * tx
                            let hb = ugridP[g0 + (j + 1) * gw + i] + (ugridP[g0 + (j + 1) * gw + i + 1] - ugridP[g0 + (j + 1) * gw + i]) * tx
                            af *= ha + (hb - ha) * ty
                        }
                        illum[yy * W + x] = il
                        illumAF[yy * W + x] = il * af
                    }
                }
            }
        }
        }
    }
}

/// Smooth-ish per-pixel texture in about [-1, 1]: value noise on a 2-px lattice plus a white component.
@inline(__always) func pixelTexture(_ seed: UInt64, _ x: Int, _ y: Int) -> Float {
    let i = x >> 1, j = y >> 1
    let tx: Float = (x & 1) == 0 ? 0.25 : 0.75, ty: Float = (y & 1) == 0 ? 0.25 : 0.75
    @inline(__always) func l(_ a: Int, _ b: Int) -> Float {
        Float(mix64(seed ^ (UInt64(UInt32(truncatingIfNeeded: b)) << 32 | UInt64(UInt32(truncatingIfNeeded: a)))) >> 40) * 0x1p-23 - 1
    }
    let v00 = l(i, j), v10 = l(i + 1, j), v01 = l(i, j + 1), v11 = l(i + 1, j + 1)
    let a = v00 + (v10 - v00) * tx, b = v01 + (v11 - v01) * tx
    let white = Float(mix64(seed ^ 0x5555 ^ (UInt64(UInt32(truncatingIfNeeded: y)) << 32 | UInt64(UInt32(truncatingIfNeeded: x)))) >> 40) * 0x1p-23 - 1
    return 0.8 * (a + (b - a) * ty) * 1.6 + 0.35 * white
}
