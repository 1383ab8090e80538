import Foundation
import EpipeKernels
import EpipeCluster

/// Cellular neighbourhoods (Schürch et al., Cell 2020): each cell's window, its `window` nearest
/// cells with itself included, described by the fractions of each cell type in it; the windows
/// clustered by k-means (k-means++ seeding, Lloyd to convergence) into `clusters` neighbourhoods.
/// Neighbourhoods are numbered by size, largest 0. Memory: n x T doubles for the windows.
public struct NeighborhoodResult: Sendable {
    public let clusters: Int
    /// Each cell's neighbourhood.
    public let assignment: [Int32]
    /// Cells per neighbourhood.
    public let counts: [Int]
    /// composition[c][t]: mean fraction of type t in the windows of neighbourhood c.
    public let composition: [[Double]]
}

public enum CellularNeighborhoods {
    public static func run(tree: KDTree2D, labels: [Int32], types t: Int, window: Int, clusters: Int, seed: UInt64) -> NeighborhoodResult {
        let n = labels.count
        precondition(n == tree.count && window >= 1 && clusters >= 1)
        let w = min(window, n)
        let g = tree.knnGraph(k: w - 1)
        var data = [Double](repeating: 0, count: n * t)
        data.withUnsafeMutableBufferPointer { dd in
            let D = UnsafeShared(dd)
            parallelChunks(n, minChunk: 4096) { lo, hi in
                g.targets.withUnsafeBufferPointer { tg in
                    labels.withUnsafeBufferPointer { lab in
                        for i in lo..<hi {
                            let row = i * t
                            let off = g.offsets[i], end = g.offsets[i + 1]
                            let inv = 1 / Double(end - off + 1)
                            D.value[row + Int(lab[i])] += inv
                            for e in off..<end { D.value[row + Int(lab[Int(tg[e])])] += inv }
                        }
                    }
                }
            }
        }
        let km = KMeans.fit(data, n: n, d: t, k: min(clusters, n), seed: seed)
        let k = max(1, km.centroids.count)  // fewer when there are fewer distinct windows
        // number by size, largest first (ties by the first cell met)
        var size = [Int](repeating: 0, count: k)
        for l in km.labels { size[l] += 1 }
        let order = (0..<k).sorted { size[$0] != size[$1] ? size[$0] > size[$1] : $0 < $1 }
        var rename = [Int](repeating: 0, count: k)
        for (new, old) in order.enumerated() { rename[old] = new }
        let assignment = km.labels.map { Int32(rename[$0]) }
        var comp = [[Double]](repeating: [Double](repeating: 0, count: t), count: k)
        var counts = [Int](repeating: 0, count: k)
        for i in 0..<n {
            let c = Int(assignment[i]); counts[c] += 1
            for j in 0..<t { comp[c][j] += data[i * t + j] }
        }
        for c in 0..<k where counts[c] > 0 { for j in 0..<t { comp[c][j] /= Double(counts[c]) } }
        return NeighborhoodResult(clusters: k, assignment: assignment, counts: counts, composition: comp)
    }
}
