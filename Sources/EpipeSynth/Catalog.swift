// Marker panel and cell-type definitions.

import Foundation
import EpipeKernels

enum CellType {
    static let tumour = 0, tCell = 1, bCell = 2, macrophage = 3, stroma = 4, endothelial = 5
    static let names = ["Tumor", "T cell", "B cell", "Macrophage", "Stroma", "Endothelial"]
    static let count = 6

    /// Shape parameters per type, relative to the mean nucleus radius.
    struct Shape {
        var radius: Double, radiusSD: Double     // median scale and lognormal sd
        var aspect: ClosedRange<Double>         // major/minor axis ratio
        var harmonics: Double                   // amplitude of low-order contour harmonics
        var ext: ClosedRange<Double>            // cytoplasm extent beyond the nucleus (x mean radius)
        var nucleoli: Double                    // probability of visible nucleoli
    }
    static let shapes: [Shape] = [
        Shape(radius: 1.18, radiusSD: 0.22, aspect: 1.0...1.7, harmonics: 0.07, ext: 0.55...1.0, nucleoli: 0.7),
        Shape(radius: 0.72, radiusSD: 0.10, aspect: 1.0...1.25, harmonics: 0.03, ext: 0.22...0.45, nucleoli: 0),
        Shape(radius: 0.78, radiusSD: 0.11, aspect: 1.0...1.3, harmonics: 0.035, ext: 0.25...0.5, nucleoli: 0.05),
        Shape(radius: 0.98, radiusSD: 0.15, aspect: 1.1...1.7, harmonics: 0.09, ext: 0.9...1.45, nucleoli: 0.1),
        Shape(radius: 0.92, radiusSD: 0.14, aspect: 2.2...4.0, harmonics: 0.04, ext: 0.4...0.75, nucleoli: 0.05),
        Shape(radius: 0.92, radiusSD: 0.12, aspect: 2.4...4.0, harmonics: 0.03, ext: 0.3...0.55, nucleoli: 0),
    ]
    /// Relative DAPI brightness per type (lymphocytes have dense chromatin).
    static let dapi: [Double] = [0.72, 1.0, 0.95, 0.75, 0.82, 0.78]
}

struct MarkerDef {
    var name: String
    var compartment: SynthCompartment
    /// Level in positive cells per type (0 = never positive).
    var level: [Double]
    /// Fraction of cells of each type that are positive.
    var fraction: [Double]
}

enum Panel {
    //                         Tumor  T     B     Mac   Str   Endo
    static let known: [MarkerDef] = [
        MarkerDef(name: "DAPI", compartment: .nuclear, level: CellType.dapi, fraction: [1, 1, 1, 1, 1, 1]),
        MarkerDef(name: "CD45", compartment: .membrane, level: [0, 0.9, 0.85, 0.7, 0, 0], fraction: [0, 0.98, 0.98, 0.95, 0, 0]),
        MarkerDef(name: "PanCK", compartment: .cytoplasm, level: [0.95, 0, 0, 0, 0, 0], fraction: [0.96, 0, 0, 0, 0, 0]),
        MarkerDef(name: "CD3", compartment: .membrane, level: [0, 0.9, 0, 0, 0, 0], fraction: [0, 0.97, 0, 0, 0, 0]),
        MarkerDef(name: "CD20", compartment: .membrane, level: [0, 0, 0.9, 0, 0, 0], fraction: [0, 0, 0.96, 0, 0, 0]),
        MarkerDef(name: "CD68", compartment: .cytoplasm, level: [0, 0, 0, 0.9, 0.3, 0], fraction: [0, 0, 0, 0.95, 0.05, 0]),
        MarkerDef(name: "aSMA", compartment: .cytoplasm, level: [0, 0, 0, 0, 0.85, 0.35], fraction: [0, 0, 0, 0, 0.65, 0.3]),
        MarkerDef(name: "CD31", compartment: .membrane, level: [0, 0, 0, 0, 0, 0.9], fraction: [0, 0, 0, 0, 0, 0.97]),
        MarkerDef(name: "Ki67", compartment: .nuclear, level: [0.85, 0.8, 0.8, 0.6, 0.6, 0.6], fraction: [0.35, 0.08, 0.25, 0.03, 0.03, 0.05]),
        MarkerDef(name: "CD8", compartment: .membrane, level: [0, 0.85, 0, 0, 0, 0], fraction: [0, 0.4, 0, 0, 0, 0]),
        MarkerDef(name: "CD4", compartment: .membrane, level: [0, 0.75, 0, 0.3, 0, 0], fraction: [0, 0.55, 0, 0.6, 0, 0]),
        MarkerDef(name: "FOXP3", compartment: .nuclear, level: [0, 0.7, 0, 0, 0, 0], fraction: [0, 0.08, 0, 0, 0, 0]),
        MarkerDef(name: "Vimentin", compartment: .cytoplasm, level: [0.15, 0.3, 0.3, 0.6, 0.9, 0.7], fraction: [0.2, 0.8, 0.8, 0.9, 0.95, 0.9]),
        MarkerDef(name: "HLA-DR", compartment: .membrane, level: [0.3, 0.2, 0.9, 0.85, 0, 0.2], fraction: [0.3, 0.1, 0.95, 0.9, 0, 0.3]),
        MarkerDef(name: "Ecad", compartment: .membrane, level: [0.85, 0, 0, 0, 0, 0], fraction: [0.9, 0, 0, 0, 0, 0]),
        MarkerDef(name: "CD163", compartment: .membrane, level: [0, 0, 0, 0.7, 0, 0], fraction: [0, 0, 0, 0.5, 0, 0]),
        MarkerDef(name: "CD11c", compartment: .membrane, level: [0, 0, 0.1, 0.6, 0, 0], fraction: [0, 0, 0.1, 0.45, 0, 0]),
        MarkerDef(name: "PD-L1", compartment: .membrane, level: [0.5, 0, 0, 0.5, 0, 0], fraction: [0.3, 0, 0, 0.4, 0, 0]),
        MarkerDef(name: "PD-1", compartment: .membrane, level: [0, 0.6, 0, 0, 0, 0], fraction: [0, 0.25, 0, 0, 0, 0]),
        MarkerDef(name: "GranzymeB", compartment: .cytoplasm, level: [0, 0.6, 0, 0, 0, 0], fraction: [0, 0.15, 0, 0, 0, 0]),
    ]

    /// Panel for `channels` planes: the known markers, then random extra markers named M<channel index>.
    static func make(channels: Int, seed: UInt64) -> [MarkerDef] {
        var out = Array(known.prefix(channels))
        var c = out.count
        while out.count < channels {
            var r = SplitMix64(hash3(seed, 0x4D41524B, UInt64(c)))
            let comps: [SynthCompartment] = [.membrane, .cytoplasm, .nuclear]
            let comp = comps[Int(r.uniform() * 2.999)]
            var level = [Double](repeating: 0, count: CellType.count)
            var frac = level
            var any = false
            for t in 0..<CellType.count where r.chance(0.35) {
                level[t] = r.uniform(0.3, 0.9); frac[t] = r.uniform(0.3, 1); any = true
            }
            if !any { let t = Int(r.uniform() * 5.999); level[t] = r.uniform(0.3, 0.9); frac[t] = r.uniform(0.3, 1) }
            out.append(MarkerDef(name: "M\(c)", compartment: comp, level: level, fraction: frac))
            c += 1
        }
        return out
    }
}
