import Foundation
import EpipeKernels

/// Generated cell positions and types with a known spatial structure, for the stats tests and
/// benchmarks: what a phenotyped slide gives, without the slide.
///
/// - `uniform`: positions uniform in a square, types drawn independently of position with
///   unequal frequencies (weight 1 / sqrt(t + 1)). The labels are exchangeable, so every
///   neighbourhood-enrichment null hypothesis holds exactly: z-scores near 0, p-values uniform.
/// - `niches`: the square is tiled by `patches` x `patches` squares, each given one of `niches`
///   niches at random. Types are split round-robin into the niches' groups (type t belongs to
///   niche t mod niches); a cell in a niche takes a type of its niche's group with probability
///   `purity`, else any type. So types of one niche are enriched with each other and themselves,
///   types of different niches depleted against each other, and the niches are what a cellular
///   neighbourhood analysis should find.
/// Density: the square's side is 15 px x sqrt(n) (a cell every ~15 px, as in tissue at 0.5 µm/px).
public struct SpatialCells: Sendable {
    public enum Layout: String, Sendable, CaseIterable { case uniform, niches }
    public var x: [Double], y: [Double]
    public var types: [Int]
    /// Each cell's niche (all 0 for `uniform`).
    public var niches: [Int]
    public var typeNames: [String]

    public static func generate(cells n: Int, types: Int = 10, layout: Layout = .niches, niches m: Int = 4, patches: Int = 8,
                                purity: Double = 0.85, seed: UInt64 = 1) -> SpatialCells {
        precondition(n >= 0 && types >= 1 && m >= 1 && patches >= 1)
        var rng = SplitMix64(seed: seed ^ 0x5A7A_11CE)
        let side = 15 * Double(n).squareRoot().rounded(.up)
        let w = (0..<types).map { 1 / Double($0 + 1).squareRoot() }
        func draw(_ among: [Int]) -> Int {
            var acc = 0.0
            for t in among { acc += w[t] }
            var u = rng.nextUnit() * acc
            for t in among { u -= w[t]; if u < 0 { return t } }
            return among.last!
        }
        let all = Array(0..<types)
        let groups = (0..<m).map { g in all.filter { $0 % m == g } }
        var patchNiche = [Int](repeating: 0, count: patches * patches)
        for p in patchNiche.indices { patchNiche[p] = Int(rng.next() % UInt64(m)) }
        var xs = [Double](repeating: 0, count: n), ys = xs, ts = [Int](repeating: 0, count: n), ns = ts
        for i in 0..<n {
            let x = side * rng.nextUnit(), y = side * rng.nextUnit()
            xs[i] = x; ys[i] = y
            switch layout {
            case .uniform:
                ts[i] = draw(all)
            case .niches:
                let px = min(patches - 1, Int(x / side * Double(patches))), py = min(patches - 1, Int(y / side * Double(patches)))
                let c = patchNiche[py * patches + px]
                ns[i] = c
                ts[i] = rng.nextUnit() < purity && !groups[c].isEmpty ? draw(groups[c]) : draw(all)
            }
        }
        return SpatialCells(x: xs, y: ys, types: ts, niches: ns, typeNames: (0..<types).map { "T\($0)" })
    }

    /// CellID,X_centroid,Y_centroid,phenotype (one decimal for the coordinates).
    public func csv() -> String {
        var s = "CellID,X_centroid,Y_centroid,phenotype\n"
        s.reserveCapacity(types.count * 28)
        for i in types.indices {
            s += String(i + 1); s += ","; s += CSV.number(x[i], digits: 1); s += ","; s += CSV.number(y[i], digits: 1)
            s += ","; s += typeNames[types[i]]; s += "\n"
        }
        return s
    }

    /// CellID,type,niche truth table.
    public func truthCSV() -> String {
        var s = "CellID,type,niche\n"
        for i in types.indices { s += "\(i + 1),\(typeNames[types[i]]),\(niches[i])\n" }
        return s
    }
}
