// Spatial organisation of the tissue: smooth random fields decide tumour nests vs stroma,
// immune follicles, vessels and sparse regions. All fields are pure functions of (seed, x, y).

import Foundation
import EpipeKernels

struct Follicle: Sendable { var x: Double, y: Double, r: Double }

struct TissuePoint {
    var region: SynthRegion
    /// Relative target coverage (before global density scaling).
    var rel: Double
}

struct Tissue: Sendable {
    let seed: UInt64
    let pxPerUm: Double
    let tumourField: FractalNoise
    var tumourThreshold: Double = 0.25
    let septa: FractalNoise
    let vessel: FractalNoise
    let vesselGate: ValueNoise
    let vesselWidth: ValueNoise
    let sparse: FractalNoise
    let stromaDensity: FractalNoise
    let clump: ValueNoise
    let fibreAngle: FractalNoise
    let follicleShape: ValueNoise
    let afField: FractalNoise
    // Follicle grid (cells of `follicleBlock` px, origin at follicleOrigin).
    let follicleBlock: Double
    var follicleOriginX = 0, follicleOriginY = 0, follicleCols = 0, follicleRows = 0
    var follicles: [Follicle?] = []

    static let marginWidth = 0.16
    static let septaWidth = 0.16

    init(seed: UInt64, pixelSizeMicrons: Double) {
        self.seed = seed
        let p = 1 / max(pixelSizeMicrons, 1e-3)
        pxPerUm = p
        tumourField = FractalNoise(seed: hash2(seed, 101), scale: 320 * p, octaves: 3)
        septa = FractalNoise(seed: hash2(seed, 102), scale: 90 * p, octaves: 2)
        vessel = FractalNoise(seed: hash2(seed, 103), scale: 170 * p, octaves: 2, persistence: 0.4)
        vesselGate = ValueNoise(seed: hash2(seed, 104), scale: 450 * p)
        vesselWidth = ValueNoise(seed: hash2(seed, 105), scale: 120 * p)
        sparse = FractalNoise(seed: hash2(seed, 106), scale: 450 * p, octaves: 2)
        stromaDensity = FractalNoise(seed: hash2(seed, 107), scale: 60 * p, octaves: 2)
        clump = ValueNoise(seed: hash2(seed, 108), scale: 12 * p)
        fibreAngle = FractalNoise(seed: hash2(seed, 109), scale: 70 * p, octaves: 2)
        follicleShape = ValueNoise(seed: hash2(seed, 110), scale: 35 * p)
        afField = FractalNoise(seed: hash2(seed, 111), scale: 250 * p, octaves: 3)
        follicleBlock = 900 * p
    }

    /// Places follicle-like immune aggregates (one per block at most, only in stroma) covering the given area.
    mutating func buildFollicles(x0: Double, y0: Double, x1: Double, y1: Double) {
        let b = follicleBlock
        follicleOriginX = Int((x0 / b).rounded(.down)) - 1
        follicleOriginY = Int((y0 / b).rounded(.down)) - 1
        follicleCols = Int((x1 / b).rounded(.down)) + 2 - follicleOriginX
        follicleRows = Int((y1 / b).rounded(.down)) + 2 - follicleOriginY
        follicles = []
        follicles.reserveCapacity(follicleCols * follicleRows)
        for j in 0..<follicleRows {
            for i in 0..<follicleCols {
                let bx = i + follicleOriginX, by = j + follicleOriginY
                var r = SplitMix64(hash4(seed, 0xF011, u64(bx), u64(by)))
                let exists = r.chance(0.65)
                let fx = (Double(bx) + r.uniform(0.15, 0.85)) * b
                let fy = (Double(by) + r.uniform(0.15, 0.85)) * b
                let rad = r.uniform(45, 105) * pxPerUm
                if exists && tumourField(fx, fy) - tumourThreshold < -0.35 {
                    follicles.append(Follicle(x: fx, y: fy, r: rad))
                } else {
                    follicles.append(nil)
                }
            }
        }
    }

    /// Normalised distance to the nearest follicle centre (< 1 inside), perturbed to irregular outlines.
    func follicleDistance(_ x: Double, _ y: Double) -> Double {
        let i = Int((x / follicleBlock).rounded(.down)) - follicleOriginX
        let j = Int((y / follicleBlock).rounded(.down)) - follicleOriginY
        var best = Double.infinity
        for jj in (j - 1)...(j + 1) where jj >= 0 && jj < follicleRows {
            for ii in (i - 1)...(i + 1) where ii >= 0 && ii < follicleCols {
                guard let f = follicles[jj * follicleCols + ii] else { continue }
                let dx = x - f.x, dy = y - f.y
                let d = (dx * dx + dy * dy).squareRoot() / f.r
                if d < best { best = d }
            }
        }
        if best < 2 { best /= (1 + 0.35 * follicleShape(x, y)) }
        return best
    }

    /// Multiplier in [0, 1]: 0 in tissue holes / empty glass, 1 in normal tissue.
    @inline(__always) func tissueness(_ x: Double, _ y: Double) -> Double {
        smoothstep(-1.6, -0.9, sparse(x, y))
    }

    func classify(_ x: Double, _ y: Double) -> TissuePoint {
        let tissue = tissueness(x, y)
        if tissue <= 0 { return TissuePoint(region: .empty, rel: 0) }
        let tum = tumourField(x, y) - tumourThreshold
        let inTumour = tum > 0 && abs(septa(x, y)) > Tissue.septaWidth
        // Vessels: a band around the zero set of a smooth field, present where a gate field allows.
        let gate = vesselGate(x, y)
        if gate > (inTumour ? 0.2 : -0.15) {
            let v = abs(vessel(x, y))
            let wl = 0.035 + 0.05 * (vesselWidth(x, y) + 1)
            if v < wl { return TissuePoint(region: .vesselLumen, rel: 0) }
            if v < wl + 0.045 { return TissuePoint(region: .vesselWall, rel: 0.9 * tissue) }
        }
        let f = follicleDistance(x, y)
        if f < 0.7 { return TissuePoint(region: .follicleCore, rel: 1.0 * tissue) }
        if inTumour {
            if tum < Tissue.marginWidth { return TissuePoint(region: .tumourMargin, rel: 0.9 * tissue) }
            return TissuePoint(region: .tumour, rel: 1.0 * tissue)
        }
        if f < 1.3 { return TissuePoint(region: .follicleMantle, rel: 0.95 * tissue) }
        // Stroma: variable density, denser next to tumour (reactive stroma with immune infiltrate).
        var rel = 0.36 * (1 + 0.5 * stromaDensity(x, y))
        if tum > -Tissue.marginWidth { rel *= 1.4 }
        return TissuePoint(region: .stroma, rel: min(max(rel, 0.05), 0.9) * tissue)
    }

    /// Cell-type probabilities per region (Tumor, T, B, Macrophage, Stroma, Endothelial).
    static let typeMix: [[Double]] = [
        [0, 0, 0, 0, 0, 0],                      // empty
        [0.04, 0.18, 0.04, 0.15, 0.575, 0.015],  // stroma
        [0.87, 0.05, 0.0, 0.05, 0.03, 0],        // tumour
        [0.55, 0.22, 0.02, 0.13, 0.08, 0],       // tumour margin
        [0, 0.13, 0.81, 0.05, 0.01, 0],          // follicle core
        [0, 0.68, 0.15, 0.10, 0.07, 0],          // follicle mantle
        [0, 0, 0, 0, 0, 0],                      // vessel lumen
        [0, 0, 0, 0, 0.08, 0.92],                // vessel wall
    ]
}
