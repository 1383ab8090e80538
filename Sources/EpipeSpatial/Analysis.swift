import Foundation
import EpipeKernels

/// A cell table that cannot be analysed as asked; `message` is one line saying what and what to do.
public struct StatsInputError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything epipe-stats computes for one image: frequencies, the neighbour graph, enrichment
/// with permutation p-values and the cellular neighbourhoods.
public struct SpatialReport: Sendable {
    public let frequencies: Frequencies
    /// Each cell's type as an index into `frequencies.types`.
    public let codes: [Int32]
    public let graphKind: StatsParams.GraphKind
    /// The radius used (px), for the radius graph.
    public let radiusPx: Double?
    public let edges: Int
    public let edgeMedian: Double, edgeMax: Double
    /// Cells without a neighbour in the graph.
    public let isolated: Int
    public let enrichment: EnrichmentResult
    public let neighborhoods: NeighborhoodResult?
    /// Seconds per step: graph, enrichment, neighborhoods.
    public let seconds: [(String, Double)]
    public let warnings: [String]
}

public enum SpatialAnalysis {
    /// The largest number of cell types enrichment takes (it tests T x T pairs).
    public static let maxTypes = 1000

    /// Checks the table, builds the graph, runs the permutation test and the neighbourhoods.
    /// `column` names (for messages): the label, x and y columns. `ids` (optional) name cells in
    /// messages. `step(name, total)` opens a progress step whose closure advances it.
    public static func run(x: [Double], y: [Double], labels: [String], ids: [String]?, params p: StatsParams, imagePixelSize: Double?,
                           step: (String, Int) -> (@Sendable (Int) -> Void) = { _, _ in { _ in } }) throws -> SpatialReport {
        let n = labels.count
        precondition(x.count == n && y.count == n)
        guard n > 0 else { throw StatsInputError("no cells (a header and no rows); nothing to analyse") }
        for i in 0..<n where !x[i].isFinite || !y[i].isFinite {
            let which = x[i].isFinite ? p.y : p.x
            let id = ids.map { " (CellID \($0[i]))" } ?? ""
            throw StatsInputError("row \(i + 1)\(id): \(which) is not a number; every cell needs a position (drop or fix the row)")
        }
        let f = CellTypeStats.frequencies(labels: labels)
        guard f.types.count >= 2 else {
            throw StatsInputError("column \(p.label) has one cell type (\"\(f.types[0])\"); interactions need two or more (is --label the cell-type column?)")
        }
        guard f.types.count <= maxTypes else {
            throw StatsInputError("column \(p.label) has \(f.types.count) distinct values, more than \(maxTypes) cell types; is --label the cell-type column?")
        }
        if p.graph == .knn && n < p.k + 1 {
            throw StatsInputError("\(n) cells, too few for --k \(p.k) neighbours (needs k + 1 cells); give a smaller --k")
        }
        var warnings: [String] = []
        let findNeighborhoods = p.neighborhoods > 0 && n >= max(p.window, p.neighborhoods)
        if p.neighborhoods > 0 && !findNeighborhoods {
            warnings.append("\(n) cells, too few for --window \(p.window) and --neighborhoods \(p.neighborhoods): no cellular neighbourhoods")
        }
        let radiusPx: Double?
        do { radiusPx = try p.radiusPixels(imagePixelSize: imagePixelSize) } catch let e as StatsParams.Invalid { throw StatsInputError(e.message) }
        let index = Dictionary(uniqueKeysWithValues: f.types.enumerated().map { ($1, Int32($0)) })
        let codes = labels.map { index[$0]! }
        var seconds: [(String, Double)] = []
        var clock = Date()
        func lap(_ s: String) { seconds.append((s, Date().timeIntervalSince(clock))); clock = Date() }

        let done = step("graph " + p.graph.rawValue, 1)
        let tree = KDTree2D(x: x, y: y)
        let graph: SpatialGraph
        switch p.graph {
        case .knn: graph = tree.knnGraph(k: p.k)
        case .radius: graph = tree.radiusGraph(radius: radiusPx!)
        case .delaunay: graph = Delaunay.graph(x: x, y: y, maxEdge: p.maxEdge)
        }
        done(1)
        lap("graph")
        guard graph.edges > 0 else {
            throw StatsInputError("the \(p.graph.rawValue) graph has no edges" + (p.graph == .radius ? " at radius \(CSV.number(radiusPx!, digits: 2)) px; give a larger --radius" : "; give a larger --max-edge"))
        }
        let lengths = graph.lengthSummary(x: x, y: y)
        var isolated = 0
        for i in 0..<n where graph.offsets[i] == graph.offsets[i + 1] { isolated += 1 }

        let e = Enrichment.run(graph: graph, labels: codes, types: f.types.count, perms: p.perms, seed: UInt64(p.seed),
                               progress: step("enrichment", p.perms))
        lap("enrichment")
        var nh: NeighborhoodResult? = nil
        if findNeighborhoods {
            let d = step("neighborhoods", 1)
            nh = CellularNeighborhoods.run(tree: tree, labels: codes, types: f.types.count, window: p.window, clusters: p.neighborhoods, seed: UInt64(p.seed))
            d(1)
            lap("neighborhoods")
        }
        return SpatialReport(frequencies: f, codes: codes, graphKind: p.graph, radiusPx: radiusPx, edges: graph.edges,
                             edgeMedian: lengths.median, edgeMax: lengths.max, isolated: isolated, enrichment: e,
                             neighborhoods: nh, seconds: seconds, warnings: warnings)
    }
}
