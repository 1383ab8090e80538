import Foundation
import EpipeKernels

/// The parameters of one stats run, each written here once: its key (the flag's name and job.json's
/// `params.stats` key), its default, how it is read and how it is checked. The runner encodes the
/// defaults, overlays job.json and the flags given, decodes this struct once (which validates it)
/// and records its encoding in the manifest.
public struct StatsParams: Codable, Sendable, Equatable {
    public enum GraphKind: String, Codable, Sendable, CaseIterable { case knn, radius, delaunay }

    /// The column of the cell table holding each cell's type.
    public var label: String = "phenotype"
    /// The neighbour graph: knn (each cell to its k nearest, directed, as squidpy builds it),
    /// radius (every pair closer than the radius) or delaunay (the triangulation's edges).
    public var graph: GraphKind = .knn
    /// knn: neighbours per cell, 1...100.
    public var k: Int = 6
    /// radius: the distance in pixels (or give radiusUm).
    public var radius: Double? = nil
    /// radius: the distance in micrometres, converted with pixelSize.
    public var radiusUm: Double? = nil
    /// Micrometres per pixel; default the segmentation's (the image's OME pixel size).
    public var pixelSize: Double? = nil
    /// delaunay: drop edges longer than this many pixels (nil: keep every edge).
    public var maxEdge: Double? = nil
    /// Label permutations of the null, 0...100000 (0: observed counts only, no z or p).
    public var perms: Int = 1000
    /// Seed of the permutations and of the neighbourhoods' k-means, 0...2^53.
    public var seed: Int = 0
    /// Cellular neighbourhoods (Schürch et al. 2020) to find, 0...100 (0: none).
    public var neighborhoods: Int = 10
    /// The window of each cell: its `window` nearest cells, itself included, 2...200.
    public var window: Int = 10
    /// Centroid columns. With the defaults, a table without them may use X_position/Y_position.
    public var x: String = "X_centroid"
    public var y: String = "Y_centroid"

    public init(label: String = "phenotype", graph: GraphKind = .knn, k: Int = 6, radius: Double? = nil, radiusUm: Double? = nil,
                pixelSize: Double? = nil, maxEdge: Double? = nil, perms: Int = 1000, seed: Int = 0, neighborhoods: Int = 10,
                window: Int = 10, x: String = "X_centroid", y: String = "Y_centroid") {
        self.label = label; self.graph = graph; self.k = k; self.radius = radius; self.radiusUm = radiusUm
        self.pixelSize = pixelSize; self.maxEdge = maxEdge; self.perms = perms; self.seed = seed
        self.neighborhoods = neighborhoods; self.window = window; self.x = x; self.y = y
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case label, graph, k, radius, radiusUm = "radius-um", pixelSize = "pixel-size", maxEdge = "max-edge", perms, seed
        case neighborhoods, window, x, y
    }

    /// A parameter that cannot be used; `message` is one line naming the key.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads each key (a missing one takes its default) and checks it; numbers may be given as
    /// strings ("6"). Unknown keys are refused so a typo is not silently ignored.
    public init(from decoder: Decoder) throws {
        let d = StatsParams()
        let r = try ParamReader(decoder, known: CodingKeys.allCases.map(\.rawValue)) { Invalid(message: $0) }
        func whole(_ key: CodingKeys, _ range: ClosedRange<Double>, _ what: String) throws -> Int? { try r.whole(key.rawValue, range, what) }
        func positive(_ key: CodingKeys) throws -> Double? { try r.real(key.rawValue, { $0 > 0 }, "a number > 0") }
        func column(_ key: CodingKeys) throws -> String? {
            guard let s = try r.string(key.rawValue, "a column name (a string)") else { return nil }
            guard !s.isEmpty else { throw Invalid(message: "\(key.rawValue): expected a column name, got \"\"") }
            return s
        }
        label = try column(.label) ?? d.label
        if let s = try column(.graph) {
            guard let g = GraphKind(rawValue: s.lowercased()) else {
                throw Invalid(message: "graph: expected one of \(GraphKind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(s)\"")
            }
            graph = g
        }
        k = try whole(.k, 1...100, "a whole number in 1...100") ?? d.k
        radius = try positive(.radius)
        radiusUm = try positive(.radiusUm)
        pixelSize = try positive(.pixelSize)
        maxEdge = try positive(.maxEdge)
        perms = try whole(.perms, 0...100_000, "a whole number in 0...100000") ?? d.perms
        seed = try whole(.seed, 0...9_007_199_254_740_992, "a whole number >= 0") ?? d.seed
        neighborhoods = try whole(.neighborhoods, 0...100, "a whole number in 0...100") ?? d.neighborhoods
        window = try whole(.window, 2...200, "a whole number in 2...200") ?? d.window
        x = try column(.x) ?? d.x
        y = try column(.y) ?? d.y
        if radius != nil && radiusUm != nil { throw Invalid(message: "radius: give radius (px) or radius-um (µm), not both") }
        if graph == .radius && radius == nil && radiusUm == nil {
            throw Invalid(message: "radius: --graph radius needs --radius PX or --radius-um UM")
        }
        if graph != .radius && (radius != nil || radiusUm != nil) {
            throw Invalid(message: "radius: only --graph radius uses a radius; this run's graph is \(graph.rawValue)")
        }
        if graph != .delaunay && maxEdge != nil {
            throw Invalid(message: "max-edge: only --graph delaunay uses max-edge; this run's graph is \(graph.rawValue)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(label, forKey: .label); try c.encode(graph, forKey: .graph)
        try c.encode(k, forKey: .k)
        try c.encodeIfPresent(radius, forKey: .radius); try c.encodeIfPresent(radiusUm, forKey: .radiusUm)
        try c.encodeIfPresent(pixelSize, forKey: .pixelSize); try c.encodeIfPresent(maxEdge, forKey: .maxEdge)
        try c.encode(perms, forKey: .perms); try c.encode(seed, forKey: .seed)
        try c.encode(neighborhoods, forKey: .neighborhoods); try c.encode(window, forKey: .window)
        try c.encode(x, forKey: .x); try c.encode(y, forKey: .y)
    }

    /// The radius in pixels: `radius`, or `radiusUm` over the pixel size (this struct's, else
    /// `imagePixelSize`). Throws when a micrometre radius has no pixel size to convert it with.
    public func radiusPixels(imagePixelSize: Double?) throws -> Double? {
        if let radius { return radius }
        guard let um = radiusUm else { return nil }
        guard let px = pixelSize ?? imagePixelSize else {
            throw Invalid(message: "radius-um: no pixel size to convert micrometres with (the image has none); give --pixel-size UM or --radius PX")
        }
        return um / px
    }

}
