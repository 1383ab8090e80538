import Foundation
import EpipeKernels

/// The parameters of one clustering run, each written here once: its key (the flag's name and
/// job.json's `params.cluster` key), its default, how it is read and how it is checked. The
/// runner encodes the defaults, overlays job.json and the flags given, decodes this struct once
/// (which validates it) and records its encoding in the manifest.
public struct ClusterParams: Codable, Sendable, Equatable {
    /// Number of k-means clusters, 1...1000 (fewer when there are fewer cells).
    public var k: Int = 8
    /// arcsinh cofactor: each marker mean x becomes asinh(x / cofactor); > 0.
    public var cofactor: Double = 5
    /// "auto" (every marker column except nuclear stains and background channels) or
    /// comma-separated column names (job.json may also give a list).
    public var markers: String = "auto"
    /// Seed of the k-means++ initialisation, 0...2^53.
    public var seed: Int = 0

    public init(k: Int = 8, cofactor: Double = 5, markers: String = "auto", seed: Int = 0) {
        self.k = k; self.cofactor = cofactor; self.markers = markers; self.seed = seed
    }

    public enum CodingKeys: String, CodingKey, CaseIterable { case k, cofactor, markers, seed }

    /// A parameter that cannot be used; `message` is one line naming the key.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Reads each key (a missing one takes its default) and checks it; numbers may be given as
    /// strings ("8"), markers as a list. Unknown keys are refused so a typo is not silently ignored.
    public init(from decoder: Decoder) throws {
        let d = ClusterParams()
        let c = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let bad = c.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw Invalid(message: "\(bad): unknown parameter; known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        func number(_ key: CodingKeys) -> Double?? {
            let a = AnyKey(key.rawValue)
            guard c.contains(a) else { return .some(nil) }
            if let v = try? c.decode(Double.self, forKey: a) { return v }
            if let s = try? c.decode(String.self, forKey: a), let v = Double(s.trimmingCharacters(in: .whitespaces)) { return v }
            return nil
        }
        func whole(_ key: CodingKeys, _ range: ClosedRange<Double>, _ what: String) throws -> Int? {
            guard let v = number(key) else { throw Invalid(message: "\(key.rawValue): expected \(what)") }
            guard let v else { return nil }
            guard v == v.rounded(), range.contains(v) else { throw Invalid(message: "\(key.rawValue): expected \(what), got \(Self.text(v))") }
            return Int(v)
        }
        k = try whole(.k, 1...1000, "a whole number in 1...1000") ?? d.k
        seed = try whole(.seed, 0...9_007_199_254_740_992, "a whole number >= 0") ?? d.seed
        guard let cf = number(.cofactor) else { throw Invalid(message: "cofactor: expected a number > 0") }
        cofactor = cf ?? d.cofactor
        guard cofactor > 0, cofactor.isFinite else { throw Invalid(message: "cofactor: expected a number > 0, got \(Self.text(cofactor))") }
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
        try c.encode(k, forKey: .k); try c.encode(cofactor, forKey: .cofactor)
        try c.encode(markers, forKey: .markers); try c.encode(seed, forKey: .seed)
    }

    /// The marker names asked for, trimmed; nil for "auto".
    public var markerNames: [String]? {
        markers.trimmingCharacters(in: .whitespaces) == "auto" ? nil
            : markers.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// Column-name prefixes (lower case) of nuclear stains and background channels, left out by "auto".
    public static let autoSkip = ["dapi", "hoechst", "dna", "bg", "background", "blank", "autofluor"]
    /// Columns of an MCQuant table that are not per-marker means.
    public static let shapeColumns: Set<String> = ["CellID", "X_centroid", "Y_centroid", "X_position", "Y_position", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation", "cluster", "phenotype"]

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

    static func text(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}

/// What a clustering run found.
public struct ClusterResult: Sendable {
    /// Clusters in the tables: min(k, max(1, cells)).
    public var k: Int
    public var labels: [Int]
    public var counts: [Int]
    /// means[cluster][marker] of the z-scored and of the arcsinh-transformed values.
    public var zMeans: [[Double]]
    public var asinhMeans: [[Double]]
    /// "c<i> M1+ M2+" from the (at most two) markers with cluster z-mean > 0.5, else "c<i> low".
    public var phenotypes: [String]
    public var inertia: Double
    public var iterations: Int
}

public enum Clustering {
    /// arcsinh(x / cofactor) of each marker column, z-score, k-means (k-means++ from `seed`),
    /// per-cluster means and phenotype names. `columns[marker][cell]`; `step` is called after
    /// the transform, after k-means and at the end.
    public static func run(columns: [[Double]], markers: [String], params: ClusterParams, step: () -> Void = {}) -> ClusterResult {
        let d = columns.count, n = columns.first?.count ?? 0
        precondition(markers.count == d)
        let k = min(params.k, max(1, n))
        var cols = columns
        for j in 0..<d { Transform.arcsinh(&cols[j], cofactor: params.cofactor) }
        let transformed = cols
        Transform.zscore(columns: &cols)
        step()
        var labels = [Int](repeating: 0, count: n)
        var inertia = 0.0, iters = 0
        let data = Transform.rowMajor(columns: cols)
        if n > 0 && d > 0 {
            let r = KMeans.fit(data, n: n, d: d, k: k, seed: UInt64(params.seed))
            labels = r.labels; inertia = r.inertia; iters = r.iterations
        }
        step()
        let (counts, zMeans) = ClusterProfile.means(data, n: n, d: d, labels: labels, k: k)
        let asinhMeans = ClusterProfile.means(columns: transformed, labels: labels, k: k).means
        let names = (0..<k).map { phenotype(cluster: $0, zMeans: zMeans[$0], markers: markers) }
        step()
        return ClusterResult(k: k, labels: labels, counts: counts, zMeans: zMeans, asinhMeans: asinhMeans,
                             phenotypes: names, inertia: inertia, iterations: iters)
    }

    /// "c<i> M1+ M2+": the two markers of highest z-mean, those above 0.5; "c<i> low" if none.
    public static func phenotype(cluster c: Int, zMeans: [Double], markers: [String]) -> String {
        let top = zMeans.indices.sorted { zMeans[$0] > zMeans[$1] }.prefix(2).filter { zMeans[$0] > 0.5 }
        return top.isEmpty ? "c\(c) low" : "c\(c) " + top.map { markers[$0] + "+" }.joined(separator: " ")
    }
}
