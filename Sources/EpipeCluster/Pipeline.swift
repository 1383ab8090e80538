import Foundation
import EpipeKernels

/// A value of the cell table that a run cannot use, or a side file (gates, workflow, names) it
/// cannot read: `message` is one line naming the column and row, or the file's line.
public struct ClusterInputError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The texts of the side files a run reads (already loaded by the caller).
public struct ClusterFiles: Sendable {
    public var gates: String?
    public var workflow: String?
    public var names: String?
    public init(gates: String? = nil, workflow: String? = nil, names: String? = nil) {
        self.gates = gates; self.workflow = workflow; self.names = names
    }
}

/// The marker matrix as every method sees it.
public struct PreparedMarkers: Sendable {
    public var n: Int
    public var d: Int
    /// columns[marker][cell] after the transform (arcsinh / log1p / none), before clipping.
    public var transformed: [[Double]]
    /// Row-major n x d: the transformed values clipped to each marker's [100 - clip, clip]
    /// percentiles, then z-scored (mean 0, population sd 1; constant markers all 0).
    public var z: [Double]
    /// Per marker the clipping bounds on the transformed scale.
    public var clipLow: [Double]
    public var clipHigh: [Double]
}

/// What a clustering run found.
public struct ClusterResult: Sendable {
    public struct Quality: Sendable, Equatable {
        /// "modularity" (leiden) or "silhouette" (on a sample of at most 2,000 cells).
        public var name: String
        public var value: Double
    }
    public struct RuleCount: Sendable, Equatable {
        public var parent: String
        public var phenotype: String
        public var cells: Int
    }
    public var method: ClusterParams.Method
    /// Clusters in the tables (0..<k), numbered by decreasing size.
    public var k: Int
    public var labels: [Int]
    public var counts: [Int]
    /// means[cluster][marker] of the z-scored values and of the transformed values.
    public var zMeans: [[Double]]
    public var means: [[Double]]
    /// Per cluster: the name given by the names file, the gated phenotype (rules), or
    /// "c<i> M1+ M2+" from its top markers.
    public var phenotypes: [String]
    public var quality: Quality
    /// Method-specific figures for the manifest (inertia, iterations, passes, neighbours, ...).
    public var metrics: [String: Double]
    /// leiden: "exact" or "approx"; empty otherwise.
    public var knn: String
    /// rules: the cells each workflow row took, in the workflow's order; the gates used.
    public var rules: [RuleCount]
    public var gates: [Double]
}

public enum Clustering {
    /// Checks every value (NaN and infinities refused; log1p refuses negatives), transforms,
    /// clips and z-scores. `markers` names the columns in messages.
    public static func prepare(columns: [[Double]], markers: [String], params p: ClusterParams) throws -> PreparedMarkers {
        let d = columns.count, n = columns.first?.count ?? 0
        precondition(markers.count == d && columns.allSatisfy { $0.count == n })
        var cols = columns
        for j in 0..<d {
            for i in 0..<n {
                let v = cols[j][i]
                if !v.isFinite { throw ClusterInputError("\(markers[j]): value \(v) in cell row \(i + 1); every marker mean must be a finite number") }
                if p.transform == .log1p && v < 0 {
                    throw ClusterInputError("\(markers[j]): value \(v) in cell row \(i + 1) is negative and log1p cannot take it; use --transform arcsinh or none")
                }
            }
            Transform.apply(p.transform, &cols[j], cofactor: p.cofactor)
        }
        let transformed = cols
        var lo = [Double](repeating: 0, count: d), hi = [Double](repeating: 0, count: d)
        let C = UnsafeShared(cols), clip = p.clip
        lo.withUnsafeMutableBufferPointer { lb in
            hi.withUnsafeMutableBufferPointer { hb in
                let L = SharedPointer(lb.baseAddress!), H = SharedPointer(hb.baseAddress!)
                parallelChunks(d, minChunk: 1, cost: n * 20) { a, b in
                    for j in a..<b { let (l, h) = Transform.percentileBounds(C.value[j], clip: clip); L[j] = l; H[j] = h }
                }
            }
        }
        if clip < 100 { for j in 0..<d { let (l, h) = (lo[j], hi[j]); for i in 0..<n { cols[j][i] = Swift.min(h, Swift.max(l, cols[j][i])) } } }
        Transform.zscore(columns: &cols)
        return PreparedMarkers(n: n, d: d, transformed: transformed, z: Transform.rowMajor(columns: cols), clipLow: lo, clipHigh: hi)
    }

    /// The whole run: prepare, the method, per-cluster means, names, quality. `columns[marker][cell]`;
    /// `step` is called after the preparation, after the method and at the end.
    public static func run(columns: [[Double]], markers: [String], params p: ClusterParams, files: ClusterFiles = ClusterFiles(),
                           step: () -> Void = {}) throws -> ClusterResult {
        let m = try prepare(columns: columns, markers: markers, params: p)
        step()
        return try run(prepared: m, markers: markers, params: p, files: files, step: step)
    }

    public static func run(prepared m: PreparedMarkers, markers: [String], params p: ClusterParams, files: ClusterFiles = ClusterFiles(),
                           step: () -> Void = {}) throws -> ClusterResult {
        let n = m.n, d = m.d, seed = UInt64(p.seed)
        var labels = [Int](repeating: 0, count: n)
        var metrics: [String: Double] = [:]
        var quality = ClusterResult.Quality(name: "silhouette", value: 0)
        let started = Date()
        var knnMode = "", rules: [ClusterResult.RuleCount] = [], gates: [Double] = [], gatedNames: [String]? = nil
        switch p.method {
        case .kmeans:
            if n > 0 && d > 0 {
                let r = KMeans.fit(m.z, n: n, d: d, k: min(p.k, n), seed: seed)
                labels = Leiden.renumberBySize(r.labels).0
                metrics["inertia"] = r.inertia; metrics["iterations"] = Double(r.iterations)
            }
        case .leiden:
            if n > 1 && d > 0 {
                let exact = p.knn == .exact || (p.knn == .auto && n <= ClusterParams.exactLimit)
                knnMode = exact ? "exact" : "approx"
                var t0 = Date()
                // the kNN lists live only until the graph is built (not through Leiden)
                var g: Graph, kUsed: Int
                do {
                    let knn = exact ? KNN.exact(m.z, n: n, d: d, k: p.neighbors)
                                    : KNN.approximate(m.z, n: n, d: d, k: p.neighbors, seed: seed)
                    metrics["knn_seconds"] = Date().timeIntervalSince(t0); t0 = Date()
                    kUsed = knn.k
                    g = Graph.jaccard(knn)
                }
                if p.weights == .none { g.weights = [Double](repeating: 1, count: g.weights.count) }
                metrics["graph_seconds"] = Date().timeIntervalSince(t0); t0 = Date()
                let r = Leiden.cluster(g, resolution: p.resolution, seed: seed)
                metrics["leiden_seconds"] = Date().timeIntervalSince(t0)
                labels = r.labels
                quality = .init(name: "modularity", value: r.quality)
                metrics["passes"] = Double(r.iterations); metrics["neighbors"] = Double(kUsed); metrics["graph_edges"] = Double(g.entryCount / 2)
            } else { quality = .init(name: "modularity", value: 0) }
        case .flowsom:
            if n > 0 && d > 0 {
                let grid = p.somGrid ?? (10, 10)
                let r = FlowSOM.cluster(m.z, n: n, d: d, options: .init(k: p.k, xdim: grid.x, ydim: grid.y, seed: seed))
                labels = r.labels
                metrics["som_nodes"] = Double(grid.x * grid.y)
                metrics["som_nodes_used"] = Double(Set(r.node).count)
            }
        case .rules:
            guard let text = files.workflow else { throw ClusterInputError("workflow: method rules needs a phenotype workflow CSV") }
            let wf: Gating.Workflow, manual: [String: Double]
            do {
                wf = try Gating.Workflow.parse(text, available: markers)
                manual = try files.gates.map { try Gating.parseGates($0, available: markers) } ?? [:]
            } catch let e as Gating.Invalid {
                throw ClusterInputError(e.message)   // "phenotype workflow row ..." or "gates line ..."
            }
            let used = Set(wf.rules.flatMap { $0.conditions.map { wf.markers[$0.marker] } })
            gates = [Double](repeating: .nan, count: d)
            let todo = (0..<d).filter { used.contains(markers[$0]) && manual[markers[$0]] == nil }
            let T = UnsafeShared(m.transformed)
            gates.withUnsafeMutableBufferPointer { gb in
                let G = SharedPointer(gb.baseAddress!)
                parallelChunks(todo.count, minChunk: 1, cost: n * 50) { a, b in
                    for t in a..<b { G[todo[t]] = Gating.autoGate(T.value[todo[t]]).gate }
                }
            }
            for j in 0..<d { if let g = manual[markers[j]] { gates[j] = g } }
            metrics["gates_automatic"] = Double(todo.count); metrics["gates_manual"] = Double((0..<d).filter { used.contains(markers[$0]) && manual[markers[$0]] != nil }.count)
            let g = Gating.phenotype(columns: m.transformed, markers: markers, gates: gates, workflow: wf)
            // clusters = the labels by decreasing count (then name)
            let order = g.labelCounts.map(\.label)
            let index = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
            let code = g.names.map { index[$0]! }
            labels = g.codes.map { code[Int($0)] }
            gatedNames = order
            rules = g.ruleCounts.map { .init(parent: $0.parent, phenotype: $0.phenotype, cells: $0.cells) }
        }
        metrics["method_seconds"] = Date().timeIntervalSince(started)
        step()
        let k = (labels.max() ?? -1) + 1
        let kk = max(1, k)
        let (counts, zMeans) = ClusterProfile.means(m.z, n: n, d: d, labels: labels, k: kk)
        let means = ClusterProfile.means(columns: m.transformed, labels: labels, k: kk).means
        var names = gatedNames ?? (0..<kk).map { phenotype(cluster: $0, zMeans: zMeans[$0], markers: markers) }
        if let text = files.names {
            for (c, name) in try ClusterNames.parse(text, clusters: kk) { names[c] = name }
        }
        if p.method != .leiden { quality = .init(name: "silhouette", value: Quality.silhouette(m.z, n: n, d: d, labels: labels, seed: seed)) }
        step()
        return ClusterResult(method: p.method, k: kk, labels: labels, counts: counts, zMeans: zMeans, means: means, phenotypes: names,
                             quality: quality, metrics: metrics, knn: knnMode, rules: rules, gates: gates)
    }

    /// "c<i> M1+ M2+": the two markers of highest z-mean, those above 0.5; "c<i> low" if none.
    public static func phenotype(cluster c: Int, zMeans: [Double], markers: [String]) -> String {
        let top = zMeans.indices.sorted { zMeans[$0] > zMeans[$1] }.prefix(2).filter { zMeans[$0] > 0.5 }
        return top.isEmpty ? "c\(c) low" : "c\(c) " + top.map { markers[$0] + "+" }.joined(separator: " ")
    }

    /// Marker indices by decreasing z-mean of a cluster (its "top markers first" order).
    public static func topMarkers(_ zMeans: [Double]) -> [Int] {
        zMeans.indices.sorted { zMeans[$0] != zMeans[$1] ? zMeans[$0] > zMeans[$1] : $0 < $1 }
    }
}

/// The names file: `cluster,phenotype` lines (a header line is allowed; blank lines and lines
/// starting with # are skipped). A cluster not listed keeps its "c<i> ..." name.
public enum ClusterNames {
    public static func parse(_ text: String, clusters k: Int) throws -> [(Int, String)] {
        var out: [(Int, String)] = [], seen = Set<Int>()
        for (ln, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            let f = CSV.parse(String(t)).first ?? []
            let id = f.first?.trimmingCharacters(in: .whitespaces) ?? ""
            guard let c = Int(id.hasPrefix("c") ? String(id.dropFirst()) : id) else {
                if out.isEmpty && ln == 0 { continue }   // header
                throw ClusterInputError("names line \(ln + 1): expected cluster,phenotype with a cluster number, got \"\(t)\"")
            }
            guard f.count >= 2, !f[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ClusterInputError("names line \(ln + 1): cluster \(c) has no phenotype name")
            }
            guard (0..<k).contains(c) else { throw ClusterInputError("names line \(ln + 1): there is no cluster \(c) (this run made clusters 0...\(k - 1))") }
            guard seen.insert(c).inserted else { throw ClusterInputError("names line \(ln + 1): cluster \(c) is named twice") }
            out.append((c, f[1].trimmingCharacters(in: .whitespaces)))
        }
        return out
    }
}

public enum Quality {
    /// Mean silhouette (Rousseeuw 1987; Euclidean; a cell alone in its cluster scores 0, as
    /// scikit-learn) over a seeded sample of at most `sample` cells; 0 with fewer than 2 clusters.
    public static func silhouette(_ data: [Double], n: Int, d: Int, labels: [Int], sample: Int = 2000, seed: UInt64 = 0) -> Double {
        let k = (labels.max() ?? -1) + 1
        guard k >= 2, n >= 2 else { return 0 }
        var idx = Array(0..<n)
        var rng = SplitMix64(seed: seed ^ 0x5117)
        let m = min(n, sample)
        if m < n { for i in 0..<m { let j = i + Int(rng.next() % UInt64(n - i)); idx.swapAt(i, j) } }
        let pick = Array(idx[0..<m])
        var sizes = [Int](repeating: 0, count: k)
        for i in pick { sizes[labels[i]] += 1 }
        let size = sizes
        var s = [Double](repeating: 0, count: m)
        s.withUnsafeMutableBufferPointer { sb in data.withUnsafeBufferPointer { xb in
            let X = UnsafeShared(xb.baseAddress!), S = SharedPointer(sb.baseAddress!)
            parallelChunks(m, minChunk: 64, cost: m * d) { a, b in
                var sum = [Double](repeating: 0, count: k)
                for u in a..<b {
                    let i = pick[u]
                    for c in 0..<k { sum[c] = 0 }
                    let xi = X.value + i * d
                    for j in pick where j != i {
                        let xj = X.value + j * d
                        var t = 0.0
                        for q in 0..<d { let e = xi[q] - xj[q]; t += e * e }
                        sum[labels[j]] += t.squareRoot()
                    }
                    let own = labels[i]
                    guard size[own] > 1 else { S[u] = 0; continue }
                    let ai = sum[own] / Double(size[own] - 1)
                    var bi = Double.infinity
                    for c in 0..<k where c != own && size[c] > 0 { bi = min(bi, sum[c] / Double(size[c])) }
                    S[u] = bi.isFinite && max(ai, bi) > 0 ? (bi - ai) / max(ai, bi) : 0
                }
            }
        } }
        return s.reduce(0, +) / Double(m)
    }
}

public enum Embedding {
    /// The first two principal components of row-major n x d data (centred here): scores n x 2
    /// row-major and the fraction of variance each explains. Eigenvectors by cyclic Jacobi on the
    /// d x d covariance; each vector's sign makes its largest loading positive (deterministic).
    public static func pca2(_ data: [Double], n: Int, d: Int) -> (scores: [Double], explained: [Double]) {
        guard n > 0, d > 0 else { return ([], [0, 0]) }
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += data[i * d + j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        var cov = [Double](repeating: 0, count: d * d)
        for i in 0..<n {
            let b = i * d
            for a in 0..<d {
                let va = data[b + a] - mean[a]
                if va == 0 { continue }
                for c in a..<d { cov[a * d + c] += va * (data[b + c] - mean[c]) }
            }
        }
        for a in 0..<d { for c in a..<d { cov[a * d + c] /= Double(n); cov[c * d + a] = cov[a * d + c] } }
        let (vals, vecs) = jacobiEigen(cov, d)
        let order = (0..<d).sorted { vals[$0] > vals[$1] }
        let total = max(vals.reduce(0) { $0 + max(0, $1) }, 1e-300)
        let comps = Array(order.prefix(2))
        var w = comps.map { c -> [Double] in
            var v = (0..<d).map { vecs[$0 * d + c] }
            let big = v.indices.max { abs(v[$0]) < abs(v[$1]) } ?? 0
            if v[big] < 0 { v = v.map { -$0 } }
            return v
        }
        while w.count < 2 { w.append([Double](repeating: 0, count: d)) }
        var scores = [Double](repeating: 0, count: 2 * n)
        for i in 0..<n {
            var s0 = 0.0, s1 = 0.0
            for j in 0..<d { let v = data[i * d + j] - mean[j]; s0 += v * w[0][j]; s1 += v * w[1][j] }
            scores[2 * i] = s0; scores[2 * i + 1] = s1
        }
        let ex = comps.map { max(0, vals[$0]) / total }
        return (scores, ex + [Double](repeating: 0, count: 2 - ex.count))
    }

    /// Eigen-decomposition of a symmetric d x d matrix by cyclic Jacobi rotations:
    /// eigenvalues and eigenvectors (column c of the row-major d x d result).
    static func jacobiEigen(_ a0: [Double], _ d: Int) -> ([Double], [Double]) {
        var a = a0
        var v = [Double](repeating: 0, count: d * d)
        for i in 0..<d { v[i * d + i] = 1 }
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<d { for q in (p + 1)..<max(p + 1, d) { off += a[p * d + q] * a[p * d + q] } }
            if off < 1e-22 { break }
            for p in 0..<d {
                for q in (p + 1)..<max(p + 1, d) where abs(a[p * d + q]) > 1e-300 {
                    let apq = a[p * d + q], app = a[p * d + p], aqq = a[q * d + q]
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for r in 0..<d {
                        let arp = a[r * d + p], arq = a[r * d + q]
                        a[r * d + p] = c * arp - s * arq; a[r * d + q] = s * arp + c * arq
                    }
                    for r in 0..<d {
                        let apr = a[p * d + r], aqr = a[q * d + r]
                        a[p * d + r] = c * apr - s * aqr; a[q * d + r] = s * apr + c * aqr
                    }
                    for r in 0..<d {
                        let vrp = v[r * d + p], vrq = v[r * d + q]
                        v[r * d + p] = c * vrp - s * vrq; v[r * d + q] = s * vrp + c * vrq
                    }
                }
            }
        }
        return ((0..<d).map { a[$0 * d + $0] }, v)
    }
}
