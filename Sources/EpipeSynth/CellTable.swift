import Foundation
import EpipeKernels

/// A generated per-cell table (MCQuant columns) with known cell types, for the cluster tests and
/// benchmarks: what a segmentation of a multiplexed slide gives, without the slide.
///
/// - `types` cell types with unequal frequencies (weight 1 / sqrt(t + 1)).
/// - Each type is positive for 3 markers of its own (type t: markers 3t, 3t+1, 3t+2 modulo the
///   panel) and, for the even types, a shared lineage marker (marker 0, "CD45"-like), so types
///   overlap on some markers as real panels do.
/// - A cell's mean of a positive marker is 600 x lognormal(0, spread), of a negative one
///   25 x lognormal(0, spread) plus 4 % spillover of the cell's brightest positive marker;
///   every value times a per-cell brightness factor lognormal(0, 0.25) (cell size and staining),
///   plus Gaussian read noise of sd 5 (clipped at 0). `spread` sets the overlap (0.35: types
///   separate; 0.8: they overlap).
/// - Centroids uniform in a 20,000 px square; Area from the brightness factor.
public struct CellTable: Sendable {
    public var markers: [String]
    /// columns[marker][cell]
    public var columns: [[Double]]
    public var types: [Int]
    public var x: [Double], y: [Double], area: [Double]

    static let panel = ["CD45", "CD3", "CD4", "CD8", "FOXP3", "CD20", "CD68", "CD163", "CD11C", "HLADR", "PANCK", "ECAD",
                        "VIM", "ASMA", "CD31", "KI67", "PD1", "PDL1", "CD56", "CD15", "CD11B", "GZMB", "CD57", "CD21",
                        "LAG3", "TIM3", "CD206", "CD14", "SOX10", "CDX2", "CK7", "CK20", "COL1", "LYVE1", "CD34", "BCL2"]

    public static func generate(cells n: Int, markers d: Int = 30, types: Int = 10, spread: Double = 0.5, seed: UInt64 = 1) -> CellTable {
        precondition(n >= 0 && d >= 1 && types >= 1)
        var rng = SplitMix64(seed: seed)
        func gauss() -> Double {
            let u = max(rng.nextUnit(), 1e-300), v = rng.nextUnit()
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let names = (0..<d).map { $0 < panel.count ? panel[$0] : String(format: "M%02d", $0 + 1) }
        let w = (0..<types).map { 1 / Double($0 + 1).squareRoot() }
        var cum = [Double](), acc = 0.0
        for v in w { acc += v; cum.append(acc) }
        let positive = (0..<types).map { t -> [Int] in
            var m = [(3 * t) % d, (3 * t + 1) % d, (3 * t + 2) % d]
            if t % 2 == 0 && !m.contains(0) { m.append(0) }
            return m
        }
        var cols = [[Double]](repeating: [Double](repeating: 0, count: n), count: d)
        var tv = [Int](repeating: 0, count: n), xs = [Double](repeating: 0, count: n), ys = xs, ar = xs
        var row = [Double](repeating: 0, count: d)
        for i in 0..<n {
            let u = rng.nextUnit() * acc
            let t = cum.firstIndex { u < $0 } ?? types - 1
            tv[i] = t
            let bright = exp(0.25 * gauss())
            var top = 0.0
            for j in 0..<d { row[j] = 0 }
            for j in positive[t] { row[j] = 600 * exp(spread * gauss()); top = max(top, row[j]) }
            for j in 0..<d {
                if row[j] == 0 { row[j] = 25 * exp(spread * gauss()) + 0.04 * top }
                cols[j][i] = max(0, row[j] * bright + 5 * gauss())
            }
            xs[i] = 20_000 * rng.nextUnit(); ys[i] = 20_000 * rng.nextUnit()
            ar[i] = (80 * bright * bright).rounded()
        }
        return CellTable(markers: names, columns: cols, types: tv, x: xs, y: ys, area: ar)
    }

    /// The MCQuant-style CSV: CellID, the markers, X_centroid, Y_centroid, Area.
    public func csv() -> String {
        var s = "CellID," + markers.joined(separator: ",") + ",X_centroid,Y_centroid,Area\n"
        s.reserveCapacity(types.count * (markers.count * 9 + 30))
        for i in types.indices {
            s += String(i + 1)
            for j in markers.indices { s += ","; s += CSV.number(columns[j][i], digits: 2) }
            s += ","; s += CSV.number(x[i], digits: 1); s += ","; s += CSV.number(y[i], digits: 1); s += ","; s += String(Int(area[i])); s += "\n"
        }
        return s
    }

    /// CellID,type truth table.
    public func truthCSV() -> String {
        var s = "CellID,type\n"
        for i in types.indices { s += "\(i + 1),\(types[i])\n" }
        return s
    }
}
