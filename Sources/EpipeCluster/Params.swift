import Foundation
import EpipeKernels

/// The parameters of one clustering run, each written here once: its key (the flag's name and
/// job.json's `params.cluster` key), its default, how it is read and how it is checked. The
/// runner encodes the defaults, overlays job.json and the flags given, decodes this struct once
/// (which validates it) and records its encoding in the manifest.
public struct ClusterParams: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable { case kmeans, leiden, flowsom, rules }
    public enum TransformKind: String, Codable, Sendable, CaseIterable { case arcsinh, log1p, none }
    public enum KNNMode: String, Codable, Sendable, CaseIterable { case auto, exact, approx }
    public enum GraphWeights: String, Codable, Sendable, CaseIterable { case jaccard, none }

    /// kmeans | leiden (kNN graph + Leiden, the default) | flowsom (SOM + consensus
    /// metaclustering) | rules (SCIMAP-style gating with a workflow).
    public var method: Method = .leiden
    /// Clusters of kmeans and flowsom's metaclusters, 1...1000 (fewer when there are fewer cells).
    public var k: Int = 8
    /// arcsinh (asinh(x / cofactor)), log1p (ln(1 + x), SCIMAP's scale) or none.
    public var transform: TransformKind = .arcsinh
    /// arcsinh cofactor; > 0.
    public var cofactor: Double = 5
    /// Each marker's transformed values are clipped to its [100 - clip, clip] percentiles before
    /// the z-score (50 < clip <= 100; 100 = no clipping), so a few very bright cells do not
    /// squash a marker's scale.
    public var clip: Double = 99.9
    /// "auto" (every marker column except nuclear stains and background channels) or
    /// comma-separated column names (job.json may also give a list).
    public var markers: String = "auto"
    /// Seed of every random choice (k-means++, NN-descent, Leiden, SOM), 0...2^53.
    public var seed: Int = 0
    /// leiden: neighbours per cell of the kNN graph, 2...200.
    public var neighbors: Int = 15
    /// leiden: the resolution of the RB-configuration (modularity) quality, > 0; larger gives
    /// more, smaller clusters.
    public var resolution: Double = 1
    /// leiden: kNN search: exact, approx (NN-descent) or auto (exact up to `exactLimit` cells).
    public var knn: KNNMode = .auto
    /// leiden: edge weights of the kNN graph: jaccard (PhenoGraph: the Jaccard index of the two
    /// cells' neighbour sets, themselves included) or none (every kNN edge weighs 1, as a
    /// scikit-learn + igraph pipeline builds it). Measured: none splits less (README).
    public var weights: GraphWeights = .jaccard
    /// flowsom: the self-organising map's grid, "<x>x<y>" (each 1...100).
    public var som: String = "10x10"
    /// rules: marker,gate CSV on the transform's scale; "" = a gate per marker from a
    /// two-component Gaussian mixture.
    public var gates: String = ""
    /// rules: SCIMAP phenotype_workflow.csv (parent, phenotype, then a keyword per marker).
    public var workflow: String = ""
    /// cluster,phenotype CSV naming clusters (after a first look); "" = "c<k> <top markers>".
    public var names: String = ""

    /// `knn: auto` searches exactly up to this many cells and by NN-descent above.
    public static let exactLimit = 10_000

    public init(method: Method = .leiden, k: Int = 8, transform: TransformKind = .arcsinh, cofactor: Double = 5, clip: Double = 99.9,
                markers: String = "auto", seed: Int = 0, neighbors: Int = 15, resolution: Double = 1, knn: KNNMode = .auto,
                weights: GraphWeights = .jaccard, som: String = "10x10", gates: String = "", workflow: String = "", names: String = "") {
        self.method = method; self.k = k; self.transform = transform; self.cofactor = cofactor; self.clip = clip
        self.markers = markers; self.seed = seed; self.neighbors = neighbors; self.resolution = resolution; self.knn = knn
        self.weights = weights; self.som = som; self.gates = gates; self.workflow = workflow; self.names = names
    }

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case method, k, transform, cofactor, clip, markers, seed, neighbors, resolution, knn, weights, som, gates, workflow, names
    }

    /// A parameter that cannot be used; `message` is one line naming the key.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads each key (a missing one takes its default) and checks it; numbers may be given as
    /// strings ("8"), markers as a list. Unknown keys are refused so a typo is not silently ignored.
    public init(from decoder: Decoder) throws {
        let d = ClusterParams()
        let r = try ParamReader(decoder, known: CodingKeys.allCases.map(\.rawValue)) { Invalid(message: $0) }
        func whole(_ key: CodingKeys, _ range: ClosedRange<Double>, _ what: String) throws -> Int? { try r.whole(key.rawValue, range, what) }
        func real(_ key: CodingKeys, _ ok: (Double) -> Bool, _ what: String) throws -> Double? { try r.real(key.rawValue, ok, what) }
        func string(_ key: CodingKeys) throws -> String? { try r.string(key.rawValue) }
        func choice<E: RawRepresentable & CaseIterable>(_ key: CodingKeys, _ e: E.Type) throws -> E? where E.RawValue == String { try r.choice(key.rawValue, e) }
        let c = r.container
        method = try choice(.method, Method.self) ?? d.method
        k = try whole(.k, 1...1000, "a whole number in 1...1000") ?? d.k
        transform = try choice(.transform, TransformKind.self) ?? d.transform
        cofactor = try real(.cofactor, { $0 > 0 }, "a number > 0") ?? d.cofactor
        clip = try real(.clip, { $0 > 50 && $0 <= 100 }, "a percentile in (50, 100]") ?? d.clip
        seed = try whole(.seed, 0...9_007_199_254_740_992, "a whole number >= 0") ?? d.seed
        neighbors = try whole(.neighbors, 2...200, "a whole number in 2...200") ?? d.neighbors
        resolution = try real(.resolution, { $0 > 0 }, "a number > 0") ?? d.resolution
        knn = try choice(.knn, KNNMode.self) ?? d.knn
        weights = try choice(.weights, GraphWeights.self) ?? d.weights
        som = try string(.som) ?? d.som
        guard somGrid != nil else { throw Invalid(message: "som: expected <x>x<y> with each in 1...100 (e.g. 10x10), got \"\(som)\"") }
        gates = try string(.gates) ?? d.gates
        workflow = try string(.workflow) ?? d.workflow
        names = try string(.names) ?? d.names
        if method == .rules && workflow.isEmpty { throw Invalid(message: "workflow: method rules needs a phenotype workflow CSV (--workflow FILE, SCIMAP's format)") }
        let mk = AnyKey(CodingKeys.markers.rawValue)
        if !c.contains(mk) { markers = d.markers }
        else if let s = try? c.decode(String.self, forKey: mk) { markers = s }
        else if let l = try? c.decode([String].self, forKey: mk) { markers = l.joined(separator: ",") }
        else { throw Invalid(message: "markers: expected auto or comma-separated column names") }
        if markerNames?.contains(where: \.isEmpty) ?? false || markers.trimmingCharacters(in: .whitespaces).isEmpty {
            throw Invalid(message: "markers: expected auto or comma-separated column names, got \"\(markers)\"")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(method, forKey: .method); try c.encode(k, forKey: .k)
        try c.encode(transform, forKey: .transform); try c.encode(cofactor, forKey: .cofactor); try c.encode(clip, forKey: .clip)
        try c.encode(markers, forKey: .markers); try c.encode(seed, forKey: .seed)
        try c.encode(neighbors, forKey: .neighbors); try c.encode(resolution, forKey: .resolution); try c.encode(knn, forKey: .knn)
        try c.encode(weights, forKey: .weights)
        try c.encode(som, forKey: .som); try c.encode(gates, forKey: .gates); try c.encode(workflow, forKey: .workflow)
        try c.encode(names, forKey: .names)
    }

    /// The SOM grid of `som` ("10x10" -> (10, 10)); nil when malformed.
    public var somGrid: (x: Int, y: Int)? {
        let p = som.lowercased().split(separator: "x").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard p.count == 2, let x = p[0], let y = p[1], (1...100).contains(x), (1...100).contains(y) else { return nil }
        return (x, y)
    }

    /// The marker names asked for, trimmed; nil for "auto".
    public var markerNames: [String]? {
        markers.trimmingCharacters(in: .whitespaces) == "auto" ? nil
            : markers.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Column-name prefixes (lower case) of nuclear stains and background channels, left out by "auto".
    public static let autoSkip = ["dapi", "hoechst", "dna", "bg", "background", "blank", "autofluor"]
    /// Columns of an MCQuant table that are not per-marker means.
    public static let shapeColumns: Set<String> = ["CellID", "X_centroid", "Y_centroid", "X_position", "Y_position", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation", "cluster", "phenotype", "input_cluster", "input_phenotype", "index"]

    /// The marker-mean columns of an MCQuant header (not shape, not `_nucleus`).
    public static func markerColumns(header: [String]) -> [String] {
        header.filter { !shapeColumns.contains($0) && !$0.hasSuffix("_nucleus") }
    }

    /// The columns to cluster on: the named ones (`missing` lists those the header lacks), or
    /// for "auto" every marker column but nuclear and background ones (all of them if that
    /// would leave none).
    public func selectMarkers(header: [String]) -> (markers: [String], missing: [String]) {
        let all = Self.markerColumns(header: header)
        if let want = markerNames { return (want, want.filter { !header.contains($0) }) }
        let kept = all.filter { m in !Self.autoSkip.contains { m.lowercased().hasPrefix($0) } }
        return (kept.isEmpty ? all : kept, [])
    }

}
