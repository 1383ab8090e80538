import Foundation
import EpipeKernels

/// A neighbour graph over n cells in compressed sparse rows: cell i's neighbours are
/// `targets[offsets[i] ..< offsets[i + 1]]`, never i itself, each row sorted ascending (a kNN row
/// is sorted by distance, then index). An undirected graph (radius, Delaunay) holds each edge in
/// both rows; the kNN graph is directed (i -> its k nearest), as squidpy's `spatial_neighbors` builds
/// it, so enrichment counts agree with squidpy's on the same graph. Memory: 8 (n + 1) + 4 edges bytes.
public struct SpatialGraph: Sendable, Equatable {
    public var offsets: [Int]
    public var targets: [Int32]

    public init(offsets: [Int], targets: [Int32]) {
        precondition(!offsets.isEmpty && offsets.first == 0 && offsets.last == targets.count)
        self.offsets = offsets; self.targets = targets
    }

    /// From one list per cell (kept in the given order).
    public init(rows: [[Int]]) {
        var o = [Int](); o.reserveCapacity(rows.count + 1); o.append(0)
        var t = [Int32](); t.reserveCapacity(rows.reduce(0) { $0 + $1.count })
        for r in rows { for j in r { t.append(Int32(j)) }; o.append(t.count) }
        offsets = o; targets = t
    }

    /// Every cell has exactly `k` neighbours, row i at `targets[i * k ..< (i + 1) * k]`.
    public init(uniform k: Int, targets: [Int32]) {
        precondition(k > 0 ? targets.count % k == 0 : targets.isEmpty)
        let n = k > 0 ? targets.count / k : 0
        self.offsets = (0...n).map { $0 * k }; self.targets = targets
    }

    public var nodes: Int { offsets.count - 1 }
    public var edges: Int { targets.count }

    public func neighbors(_ i: Int) -> ArraySlice<Int32> { targets[offsets[i]..<offsets[i + 1]] }

    /// The rows as plain lists (for tests and small graphs).
    public var rows: [[Int]] { (0..<nodes).map { neighbors($0).map { Int($0) } } }

    /// True when every edge i -> j has its twin j -> i.
    public var isSymmetric: Bool {
        for i in 0..<nodes {
            for j in neighbors(i) {
                let r = neighbors(Int(j))
                if !r.contains(Int32(i)) { return false }
            }
        }
        return true
    }

    /// Edge lengths' median and maximum (px), for the manifest; (0, 0) without edges.
    public func lengthSummary(x: [Double], y: [Double]) -> (median: Double, max: Double) {
        guard edges > 0 else { return (0, 0) }
        let stride = max(1, edges / 200_000)  // a sample is enough for a median
        var sample: [Double] = []; sample.reserveCapacity(edges / stride + 1)
        var mx = 0.0
        for i in 0..<nodes {
            for e in offsets[i]..<offsets[i + 1] {
                let j = Int(targets[e])
                let d = ((x[i] - x[j]) * (x[i] - x[j]) + (y[i] - y[j]) * (y[i] - y[j])).squareRoot()
                if d > mx { mx = d }
                if e % stride == 0 { sample.append(d) }
            }
        }
        sample.sort()
        return (sample[sample.count / 2], mx)
    }
}
