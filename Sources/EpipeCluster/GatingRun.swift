import Foundation
import EpipeKernels

extension Gating {
    // MARK: - Rescaling (sm.pp.rescale)

    /// SCIMAP's rescaling of one marker column of one image so that its gate lands on 0.5
    /// (`sm.pp.rescale`, scimap 2.3.6). `values` are on the gate's scale (log1p of the raw means
    /// for SCIMAP's default `log=True`; the caller transforms). Let c be the value closest to the
    /// gate (the first such cell in table order), lo the column's minimum and hi its maximum:
    /// cells below c, and that one cell at c, map linearly from [lo, c] onto [0, 0.5]; all other
    /// cells (>= c) map linearly from [c, hi] onto [0.5, 1]. So the gate itself sits at c, not
    /// exactly at the manual gate value: a cell is positive for the marker when its value is at
    /// least the data value nearest the gate. Arithmetic as sklearn's MinMaxScaler
    /// (`x * scale + min_`, a range below 10 ulp(1) counts as 1), so results match SCIMAP's to the
    /// bit. A column of zeros maps to 0 except its last cell, which gets 0.5 (SCIMAP splits the
    /// sorted zeros before the last one; which cell is last in its unstable sort is undefined,
    /// here the last in table order). Values must be finite.
    public static func rescale(_ values: [Double], gate: Double) -> [Double] {
        var out = [Double](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { v in
            out.withUnsafeMutableBufferPointer { o in
                rescaleColumn(v, gate: gate, image: nil, images: 1, out: o.baseAddress!)
            }
        }
        return out
    }

    /// sklearn's `_handle_zeros_in_scale`: a range below 10 epsilon counts as 1.
    @inline(__always) static func range(_ r: Double) -> Double { r < 10 * Double.ulpOfOne ? 1 : r }

    /// Rescales one column, each image (dense ids `image[i]` in 0..<images; nil: one image) on its
    /// own minimum, maximum and nearest-to-gate value, into `out`.
    static func rescaleColumn(_ v: UnsafeBufferPointer<Double>, gate: Double, image: UnsafeBufferPointer<Int32>?,
                              images m: Int, out: UnsafeMutablePointer<Double>) {
        let n = v.count
        guard n > 0 else { return }
        var lo = [Double](repeating: .infinity, count: m), hi = [Double](repeating: -.infinity, count: m)
        var bestD = [Double](repeating: .infinity, count: m), bestI = [Int](repeating: -1, count: m)
        var nonZero = [Bool](repeating: false, count: m), first = [Int](repeating: -1, count: m), last = first
        for i in 0..<n {
            let k = image.map { Int($0[i]) } ?? 0, x = v[i]
            if x < lo[k] { lo[k] = x }
            if x > hi[k] { hi[k] = x }
            let d = abs(x - gate)
            if d < bestD[k] { bestD[k] = d; bestI[k] = i }
            if x != 0 { nonZero[k] = true }
            if first[k] < 0 { first[k] = i }
            last[k] = i
        }
        var c = [Double](repeating: .nan, count: m)
        var sl = c, ml = c, sh = c, mh = c
        for k in 0..<m where bestI[k] >= 0 {
            if !nonZero[k] {
                // SCIMAP's all-zero branch: low = all but the last (-> 0), high = the last (-> 0.5).
                c[k] = 0; sl[k] = 0.5; ml[k] = 0 - 0 * 0.5; sh[k] = 0.5; mh[k] = 0.5 - 0 * 0.5
                bestI[k] = -2  // no single low cell; `last` is the one high cell
                continue
            }
            let ck = v[bestI[k]]
            c[k] = ck
            sl[k] = 0.5 / range(ck - lo[k]); ml[k] = 0 - lo[k] * sl[k]
            sh[k] = 0.5 / range(hi[k] - ck); mh[k] = 0.5 - ck * sh[k]
        }
        for i in 0..<n {
            let k = image.map { Int($0[i]) } ?? 0, x = v[i]
            let low: Bool
            if bestI[k] == -2 { low = i != last[k] || i == first[k] }  // a one-cell image stays low
            else { low = x < c[k] || i == bestI[k] }
            out[i] = low ? x * sl[k] + ml[k] : x * sh[k] + mh[k]
        }
    }

    // MARK: - Automatic gate (the GMM of sm.pp.rescale)

    /// An automatic gate and how it was found.
    public struct AutoGate: Sendable, Equatable {
        /// The gate, on the scale of the fitted values (log1p scale when `log1p` was set).
        public var gate: Double
        /// The fitted component means, ascending, and their weights in the same order.
        public var means: [Double]
        public var weights: [Double]
        /// True when the column has fewer distinct values than components (a constant column:
        /// gate = that value). The fit then used as many components as distinct values.
        public var degenerate: Bool
        public var iterations: Int
        public var converged: Bool
    }

    /// SCIMAP's automatic gate for one marker (`sm.pp.rescale` without a manual gate): the values
    /// are clipped to their 0.01th and 99.99th percentiles (numpy's linear interpolation), a
    /// Gaussian mixture of `components` components (SCIMAP's default 3) is fitted by EM (sklearn's
    /// GaussianMixture conventions: reg_covar 1e-6, tol 1e-3 on the mean log-likelihood, at most
    /// 100 iterations), and the gate is the midpoint of the two highest component means.
    ///
    /// `values` are on the gate's scale; with `log1p: true` they are raw and are clipped first and
    /// then log1p-transformed, SCIMAP's order for `log=True` (the gate is then on the log1p scale).
    /// EM starts, as in sklearn, from the hard labels of a k-means (Lloyd with sklearn's stopping
    /// rule); the one deliberate difference is its start: sklearn seeds k-means with k-means++ from
    /// a seeded random state, here with the (j + 1/2)/k quantiles, so the gate is deterministic
    /// and close to, not bit-equal to, SCIMAP's. The early stop (tol 1e-3) matters: SCIMAP's gates
    /// are often 0.1 or more from the converged fit's, so this keeps sklearn's. On scimap's example
    /// table (GatingTests): 12 of 33 gates equal to 1e-6, mean difference 0.003, largest 0.03
    /// (log1p scale), 98.8% of the labels equal. Sums run over fixed blocks, so the result does not
    /// depend on the number of threads. Non-finite values are dropped.
    public static func autoGate(_ values: [Double], components: Int = 3, log1p applyLog: Bool = false) -> AutoGate {
        var x = values.filter { $0.isFinite }
        x.sort()
        let n = x.count
        guard n > 0 else { return AutoGate(gate: .nan, means: [], weights: [], degenerate: true, iterations: 0, converged: false) }
        let lower = percentile(x, 0.01), upper = percentile(x, 99.99)
        for i in 0..<n {
            var v = Swift.min(Swift.max(x[i], lower), upper)
            if applyLog { v = Foundation.log1p(v) }
            x[i] = v
        }
        var distinct = 1
        for i in 1..<n where x[i] != x[i - 1] { distinct += 1 }
        let wanted = Swift.max(2, components)
        if distinct < 2 {
            return AutoGate(gate: x[0], means: [x[0]], weights: [1], degenerate: true, iterations: 0, converged: true)
        }
        let k = Swift.min(wanted, distinct)
        return x.withUnsafeBufferPointer { xs in
            var fit = gmm(xs, k: k)
            fit.degenerate = k < wanted
            return fit
        }
    }

    /// numpy's `percentile(a, q)` (method "linear") of sorted `a`.
    static func percentile(_ a: [Double], _ q: Double) -> Double {
        let n = a.count
        let vi = (q / 100) * Double(n - 1)
        let p = Swift.min(Swift.max(Int(vi.rounded(.down)), 0), n - 1), nx = Swift.min(p + 1, n - 1)
        let t = vi - Double(p), lo = a[p], hi = a[nx], d = hi - lo
        return t >= 0.5 ? hi - d * (1 - t) : lo + d * t
    }

    /// EM for a 1-D k-component Gaussian mixture of sorted `x` (k >= 2 distinct values present).
    static func gmm(_ x: UnsafeBufferPointer<Double>, k: Int) -> AutoGate {
        let n = x.count
        let eps10 = 10 * Double.ulpOfOne, reg = 1e-6
        // k-means init: quantile seeds, 1-D Lloyd on the sorted values (clusters are ranges).
        var centre = (0..<k).map { x[Swift.min(n - 1, Int((Double($0) + 0.5) / Double(k) * Double(n)))] }
        if Set(centre).count < k {  // few distinct values: seed on distinct values instead
            var d: [Double] = [x[0]]
            for i in 1..<n where x[i] != x[i - 1] { d.append(x[i]) }
            centre = (0..<k).map { d[$0 * (d.count - 1) / (k - 1)] }
        }
        var bounds: [Int] = []
        func upperBound(_ v: Double) -> Int {  // first index with x > v
            var l = 0, h = n
            while l < h { let m = (l + h) >> 1; if x[m] > v { h = m } else { l = m + 1 } }
            return l
        }
        func assign() -> [Int] {
            var nb = [Int](repeating: 0, count: k + 1)
            nb[k] = n
            for j in 1..<k { nb[j] = upperBound((centre[j - 1] + centre[j]) / 2) }
            return nb
        }
        // sklearn's Lloyd stopping rule: labels unchanged, or the squared centre shift at most
        // 1e-4 times the variance of the data (then the labels are redone from the last centres).
        var mean = 0.0, ss = 0.0
        for i in 0..<n { mean += x[i] }
        mean /= Double(n)
        for i in 0..<n { let d = x[i] - mean; ss += d * d }
        let tol = ss / Double(n) * 1e-4
        var previous: [Int] = []
        for _ in 0..<300 {
            bounds = assign()
            if bounds == previous { break }
            var shift = 0.0
            for j in 0..<k where bounds[j + 1] > bounds[j] {
                var s = 0.0
                for i in bounds[j]..<bounds[j + 1] { s += x[i] }
                let c = s / Double(bounds[j + 1] - bounds[j])
                shift += (c - centre[j]) * (c - centre[j])
                centre[j] = c
            }
            previous = bounds
            if shift <= tol { bounds = assign(); break }
        }
        var w = [Double](repeating: 0, count: k), mu = w, v = w
        for j in 0..<k {
            let a = bounds[j], b = bounds[j + 1]
            let nk = Double(b - a) + eps10
            var s = 0.0
            for i in a..<b { s += x[i] }
            mu[j] = s / nk
            var q = 0.0
            for i in a..<b { let d = x[i] - mu[j]; q += d * d }
            v[j] = q / nk + reg
            w[j] = nk / Double(n)
        }
        // EM with per-block partial sums (fixed blocks: thread-count independent).
        let block = 8192, nBlocks = (n + block - 1) / block
        var resp = [Double](repeating: 0, count: n * k)
        var partial = [Double](repeating: 0, count: nBlocks * (2 * k + 1))
        var lowerBound = -Double.infinity, iterations = 0, converged = false
        let log2pi = Foundation.log(2 * Double.pi)
        resp.withUnsafeMutableBufferPointer { rb in
            partial.withUnsafeMutableBufferPointer { pb in
                let R = SharedPointer(rb.baseAddress!), P = SharedPointer(pb.baseAddress!), X = UnsafeShared(x)
                let stride = 2 * k + 1
                for it in 1...100 {
                    iterations = it
                    // E-step: log w + log N(x | mu, v) as sklearn computes it, log-sum-exp, resp.
                    var lw = [Double](repeating: 0, count: k), pc = lw, mpc = lw, ld = lw
                    for j in 0..<k { lw[j] = Foundation.log(w[j]); pc[j] = 1 / v[j].squareRoot(); mpc[j] = mu[j] * pc[j]; ld[j] = Foundation.log(pc[j]) }
                    let consts = UnsafeShared((lw, pc, mpc, ld))
                    parallelChunks(nBlocks, cost: block * k * 8) { b0, b1 in
                        let (lw, pc, mpc, ld) = consts.value
                        let xs = X.value
                        var lp = [Double](repeating: 0, count: k)
                        for b in b0..<b1 {
                            let base = b * stride
                            for t in 0..<stride { P[base + t] = 0 }
                            for i in (b * block)..<Swift.min(n, (b + 1) * block) {
                                let xi = xs[i]
                                var mx = -Double.infinity
                                for j in 0..<k {
                                    let y = xi * pc[j] - mpc[j]
                                    lp[j] = -0.5 * (log2pi + y * y) + ld[j] + lw[j]
                                    if lp[j] > mx { mx = lp[j] }
                                }
                                var s = 0.0
                                for j in 0..<k { lp[j] = Foundation.exp(lp[j] - mx); s += lp[j] }
                                P[base] += mx + Foundation.log(s)
                                let inv = 1 / s
                                for j in 0..<k {
                                    let r = lp[j] * inv
                                    R[i * k + j] = r
                                    P[base + 1 + j] += r
                                    P[base + 1 + k + j] += r * xi
                                }
                            }
                        }
                    }
                    var ll = 0.0, nk = [Double](repeating: 0, count: k), sx = nk
                    for b in 0..<nBlocks {
                        ll += P[b * stride]
                        for j in 0..<k { nk[j] += P[b * stride + 1 + j]; sx[j] += P[b * stride + 1 + k + j] }
                    }
                    // M-step.
                    for j in 0..<k { nk[j] += eps10; mu[j] = sx[j] / nk[j] }
                    let muS = UnsafeShared(mu)
                    parallelChunks(nBlocks, cost: block * k * 4) { b0, b1 in
                        let mu = muS.value, xs = X.value
                        for b in b0..<b1 {
                            let base = b * stride
                            for j in 0..<k { P[base + 1 + j] = 0 }
                            for i in (b * block)..<Swift.min(n, (b + 1) * block) {
                                for j in 0..<k { let d = xs[i] - mu[j]; P[base + 1 + j] += R[i * k + j] * d * d }
                            }
                        }
                    }
                    var tot = 0.0
                    for j in 0..<k {
                        var q = 0.0
                        for b in 0..<nBlocks { q += P[b * stride + 1 + j] }
                        v[j] = q / nk[j] + reg
                        tot += nk[j]
                    }
                    for j in 0..<k { w[j] = nk[j] / tot }
                    let prev = lowerBound
                    lowerBound = ll / Double(n)
                    if abs(lowerBound - prev) < 1e-3 { converged = true; break }
                }
            }
        }
        let order = (0..<k).sorted { mu[$0] < mu[$1] }
        let means = order.map { mu[$0] }, weights = order.map { w[$0] }
        return AutoGate(gate: (means[k - 2] + means[k - 1]) / 2, means: means, weights: weights,
                        degenerate: false, iterations: iterations, converged: converged)
    }

    // MARK: - Phenotyping (sm.tl.phenotype_cells)

    /// Cells given to one rule by its parent.
    public struct RuleCount: Sendable, Equatable {
        public var parent: String
        public var phenotype: String
        /// Cells labelled `phenotype` by this rule (before any threshold), `likely` of them as
        /// "likely-<phenotype>".
        public var cells: Int
        public var likely: Int
    }

    /// The labels and what each rule did.
    public struct Result: Sendable {
        /// The distinct labels; `codes[cell]` indexes it.
        public var names: [String]
        public var codes: [Int32]
        /// Per rule, in workflow order.
        public var ruleCounts: [RuleCount]
        /// Per parent (in `Workflow.groups` order): its cells that matched none of its rules.
        public var restCounts: [(parent: String, cells: Int)]
        /// Phenotypes turned into "Unknown" by a threshold (in at least one image), sorted.
        public var thresholded: [String]
        /// The label of every cell.
        public var labels: [String] { codes.map { names[Int($0)] } }
        /// Cells per label, by count descending then name.
        public var labelCounts: [(label: String, cells: Int)] {
            var c = [Int](repeating: 0, count: names.count)
            for v in codes { c[Int(v)] += 1 }
            return names.indices.filter { c[$0] > 0 }.map { (names[$0], c[$0]) }
                .sorted { $0.cells != $1.cells ? $0.cells > $1.cells : $0.label < $1.label }
        }
    }

    /// Rescales the columns with `gates` (SCIMAP's `sm.pp.rescale`, see `rescale`), then labels the
    /// cells (`phenotype(scaled:...)`). `columns[j][cell]` are on the gates' scale (log1p of the
    /// raw means for SCIMAP's `log=True`), `markers[j]` names column j and `gates[j]` is its gate
    /// (only the markers the workflow uses are read; others may be NaN). `images` (optional, one
    /// id per cell): each image is rescaled on its own range, as SCIMAP does, and thresholds
    /// count per image. The workflow's markers must be among `markers` (as `Workflow.parse`
    /// checked against the same list).
    public static func phenotype(columns: [[Double]], markers: [String], gates: [Double], workflow: Workflow,
                                 images: [Int]? = nil, gate: Double = 0.5,
                                 thresholdPercent: Double? = nil, thresholdAbs: Int? = nil) -> Result {
        precondition(columns.count == markers.count && gates.count == markers.count, "Gating.phenotype: columns, markers and gates differ in count")
        let n = columns.first?.count ?? 0
        let (slot, used) = slots(workflow: workflow, markers: markers)
        let (imageIds, m) = denseImages(images, n: n)
        var flat = [Double](repeating: 0, count: used.count * n)
        flat.withUnsafeMutableBufferPointer { fb in
            let F = SharedPointer(fb.baseAddress!), C = UnsafeShared(columns), I = UnsafeShared(imageIds), G = UnsafeShared(gates)
            let U = UnsafeShared(used)
            parallelChunks(used.count, cost: n * 4) { a, b in
                for s in a..<b {
                    let col = U.value[s]
                    C.value[col].withUnsafeBufferPointer { v in
                        I.value.withUnsafeBufferPointer { ib in
                            rescaleColumn(v, gate: G.value[col], image: ib.isEmpty ? nil : ib, images: m, out: F.pointer + s * n)
                        }
                    }
                }
            }
        }
        return flat.withUnsafeBufferPointer { fb in
            label(flat: fb, n: n, slot: slot, workflow: workflow, image: imageIds, images: m, gate: gate,
                  thresholdPercent: thresholdPercent, thresholdAbs: thresholdAbs)
        }
    }

    /// SCIMAP's `sm.tl.phenotype_cells` on rescaled values (`scaled[j][cell]`, gate at `gate`,
    /// 0.5 as SCIMAP's default), with SCIMAP's defaults `pheno_threshold_percent` = nil and
    /// `pheno_threshold_abs` = nil (no threshold).
    ///
    /// Scores. For each parent, every one of its rules scores every cell of the parent; with x the
    /// cell's rescaled values, each keyword group of the rule's markers gives a part:
    /// - pos: the mean of x; neg: the mean of 1 - x;
    /// - anypos: the max of x; anyneg: the max of 1 - x;
    /// - allpos: the max of x if every x >= gate, else 0, plus 0.01 (the small edge over an equal
    ///   pos score); allneg: the max of 1 - x if every 1 - x >= gate, else 0, plus 0.01;
    /// and the score is the sum of the parts divided by the number of keyword groups the rule uses.
    ///
    /// Choice. The cell takes the rule with the highest score; a tie goes to the rule written
    /// first in the file among the parent's rules. When every score is below `gate` the cell
    /// matches none: it is "<parent>-rest" at this level. A chosen rule with several pos markers
    /// of which one is below the gate, or several neg markers of which one is above it, labels the
    /// cell "likely-<phenotype>" (that label is final: the phenotype's own children do not refine it).
    ///
    /// Hierarchy. Parents are gated in order of first appearance in the parent column; the first
    /// (the root, usually "all") gates every cell, and each later parent gates the cells that an
    /// earlier parent labelled with its name; a phenotype listed under several parents (SCIMAP's
    /// example has "T cells" under "Other Immune cells" and under "Myeloid Lineage") collects the
    /// cells of all of them. "<P>-rest" is itself a label a later parent can refine (SCIMAP's
    /// "T cells-rest" rows gate the T cells that are not "Tumor CD30+").
    ///
    /// Final label: the deepest label that does not contain "-rest" (SCIMAP drops every label
    /// containing "-rest", even inside a phenotype name); so a cell of a parent that matches no
    /// child keeps the parent's name ("Other Immune cells" in the example are immune cells none
    /// of whose children matched), and a cell matching nothing at the root is "Unknown".
    ///
    /// Thresholds (per image): with `thresholdPercent`, a label held by fewer than that percent of
    /// the image's cells becomes "Unknown"; with `thresholdAbs`, fewer than that many cells (when
    /// both are given, only `thresholdAbs` applies, as in SCIMAP).
    public static func phenotype(scaled: [[Double]], markers: [String], workflow: Workflow,
                                 images: [Int]? = nil, gate: Double = 0.5,
                                 thresholdPercent: Double? = nil, thresholdAbs: Int? = nil) -> Result {
        precondition(scaled.count == markers.count, "Gating.phenotype: scaled and markers differ in count")
        let n = scaled.first?.count ?? 0
        let (slot, used) = slots(workflow: workflow, markers: markers)
        let (imageIds, m) = denseImages(images, n: n)
        var flat = [Double](); flat.reserveCapacity(used.count * n)
        for col in used { flat.append(contentsOf: scaled[col]) }
        return flat.withUnsafeBufferPointer { fb in
            label(flat: fb, n: n, slot: slot, workflow: workflow, image: imageIds, images: m, gate: gate,
                  thresholdPercent: thresholdPercent, thresholdAbs: thresholdAbs)
        }
    }

    /// Workflow marker -> slot in the flat buffer (-1: unused), and the table columns of the slots.
    static func slots(workflow: Workflow, markers: [String]) -> (slot: [Int], used: [Int]) {
        var colOf: [String: Int] = [:]
        for (j, m) in markers.enumerated() where colOf[m] == nil { colOf[m] = j }
        var slot = [Int](repeating: -1, count: workflow.markers.count), used: [Int] = []
        for r in workflow.rules {
            for c in r.conditions where slot[c.marker] < 0 {
                let name = workflow.markers[c.marker]
                guard let col = colOf[name] else { preconditionFailure("Gating.phenotype: workflow marker '\(name)' is not among the columns") }
                slot[c.marker] = used.count
                used.append(col)
            }
        }
        return (slot, used)
    }

    static func denseImages(_ images: [Int]?, n: Int) -> ([Int32], Int) {
        guard let images else { return ([], 1) }
        precondition(images.count == n, "Gating.phenotype: one image id per cell")
        var map: [Int: Int32] = [:]
        let ids = images.map { v -> Int32 in
            if let k = map[v] { return k }
            let k = Int32(map.count); map[v] = k; return k
        }
        return (ids, Swift.max(1, map.count))
    }

    /// One rule, compiled: flat-buffer slots per keyword group.
    struct Compiled {
        var pos: [Int], neg: [Int], anypos: [Int], anyneg: [Int], allpos: [Int], allneg: [Int]
        var groups: Double
        init(_ r: Rule, slot: [Int]) {
            func s(_ k: Kind) -> [Int] { r.markers(k).map { slot[$0] } }
            pos = s(.pos); neg = s(.neg); anypos = s(.anypos); anyneg = s(.anyneg); allpos = s(.allpos); allneg = s(.allneg)
            groups = Double([pos, neg, anypos, anyneg, allpos, allneg].filter { !$0.isEmpty }.count)
        }

        /// SCIMAP's total score of cell i (parts summed in SCIMAP's order).
        @inline(__always) func score(_ f: UnsafeBufferPointer<Double>, _ n: Int, _ i: Int, gate: Double) -> Double {
            var total = 0.0
            if !pos.isEmpty {
                var s = 0.0
                for c in pos { s += f[c * n + i] }
                total += s / Double(pos.count)
            }
            if !neg.isEmpty {
                var s = 0.0
                for c in neg { s += 1 - f[c * n + i] }
                total += s / Double(neg.count)
            }
            if !anypos.isEmpty {
                var s = -Double.infinity
                for c in anypos { s = Swift.max(s, f[c * n + i]) }
                total += s
            }
            if !anyneg.isEmpty {
                var s = -Double.infinity
                for c in anyneg { s = Swift.max(s, 1 - f[c * n + i]) }
                total += s
            }
            if !allpos.isEmpty {
                var s = -Double.infinity, fail = false
                for c in allpos { let x = f[c * n + i]; s = Swift.max(s, x); if x < gate { fail = true } }
                total += (fail ? 0 : s) + 0.01
            }
            if !allneg.isEmpty {
                var s = -Double.infinity, fail = false
                for c in allneg { let y = 1 - f[c * n + i]; s = Swift.max(s, y); if y < gate { fail = true } }
                total += (fail ? 0 : s) + 0.01
            }
            return total / groups
        }

        /// "likely-": several pos markers with one below the gate, or several neg with one above.
        @inline(__always) func likely(_ f: UnsafeBufferPointer<Double>, _ n: Int, _ i: Int, gate: Double) -> Bool {
            if pos.count > 1 { for c in pos where f[c * n + i] < gate { return true } }
            if neg.count > 1 { for c in neg where f[c * n + i] > gate { return true } }
            return false
        }
    }

    /// The hierarchy walk on the flat rescaled buffer (slot-major, n cells per slot).
    static func label(flat: UnsafeBufferPointer<Double>, n: Int, slot: [Int], workflow wf: Workflow,
                      image: [Int32], images m: Int, gate: Double,
                      thresholdPercent: Double?, thresholdAbs: Int?) -> Result {
        // Label table: names interned, so a phenotype under several parents is one label.
        var names: [String] = [], idOf: [String: Int32] = [:]
        func intern(_ s: String) -> Int32 {
            if let v = idOf[s] { return v }
            let v = Int32(names.count); names.append(s); idOf[s] = v; return v
        }
        let groupIndex = Dictionary(uniqueKeysWithValues: wf.groups.enumerated().map { ($1, $0) })
        let rulesOf = wf.groups.map { g in wf.rules.indices.filter { wf.rules[$0].parent == g } }
        let compiled = wf.rules.map { Compiled($0, slot: slot) }
        let phenoId = wf.rules.map { intern($0.phenotype) }
        let likelyId = wf.rules.indices.map { compiled[$0].pos.count > 1 || compiled[$0].neg.count > 1 ? intern("likely-" + wf.rules[$0].phenotype) : -1 }
        let restId = wf.groups.map { intern($0 + "-rest") }
        let unknownId = intern("Unknown")
        let next = names.map { groupIndex[$0] ?? -1 }
        let dropped = names.map { $0.contains("-rest") }

        var final = [Int32](repeating: -1, count: n)
        var pending = [Int32](repeating: 0, count: n)   // the parent that gates the cell next (-1: none)
        var choice = [Int32](repeating: 0, count: n)
        var ruleCells = [Int](repeating: 0, count: wf.rules.count), ruleLikely = ruleCells
        var restCells = [Int](repeating: 0, count: wf.groups.count)
        var members = [Int32](); members.reserveCapacity(n)
        for g in 0..<wf.groups.count {
            members.removeAll(keepingCapacity: true)
            for i in 0..<n where pending[i] == g { members.append(Int32(i)) }
            if members.isEmpty { continue }
            let rules = rulesOf[g].map { compiled[$0] }
            let Mb = UnsafeShared(members), Rb = UnsafeShared(rules), F = UnsafeShared(flat)
            choice.withUnsafeMutableBufferPointer { cb in
                let C = SharedPointer(cb.baseAddress!)
                parallelChunks(members.count, minChunk: 1024, cost: rules.count * 8) { a, b in
                    let rules = Rb.value, f = F.value
                    for t in a..<b {
                        let i = Int(Mb.value[t])
                        var best = -1, bestV = -Double.infinity, anyAbove = false
                        for (r, rule) in rules.enumerated() {
                            let s = rule.score(f, n, i, gate: gate)
                            if !(s < gate) { anyAbove = true }
                            if best < 0 || s > bestV { best = r; bestV = s }
                        }
                        // SCIMAP's idxmax over [scores..., rest] with rest = 1 if all scores < gate else 0.
                        let rest: Double = anyAbove ? 0 : 1
                        if rest > bestV { C[i] = -1 }
                        else { C[i] = Int32(best * 2 + (rules[best].likely(f, n, i, gate: gate) ? 1 : 0)) }
                    }
                }
            }
            for t in members {
                let i = Int(t), c = Int(choice[i])
                let id: Int32
                if c < 0 { id = restId[g]; restCells[g] += 1 }
                else {
                    let r = rulesOf[g][c >> 1]
                    ruleCells[r] += 1
                    if c & 1 == 1 { ruleLikely[r] += 1; id = likelyId[r] } else { id = phenoId[r] }
                }
                if !dropped[Int(id)] { final[i] = id }
                pending[i] = Int32(next[Int(id)])
            }
        }
        for i in 0..<n where final[i] < 0 { final[i] = unknownId }

        // Thresholds per image (SCIMAP: abs replaces percent when both are given).
        var thresholded = Set<String>()
        if thresholdPercent != nil || thresholdAbs != nil {
            let L = names.count
            var count = [Int](repeating: 0, count: m * L), total = [Int](repeating: 0, count: m)
            for i in 0..<n { let k = image.isEmpty ? 0 : Int(image[i]); count[k * L + Int(final[i])] += 1; total[k] += 1 }
            var fail = [Bool](repeating: false, count: m * L)
            for k in 0..<m {
                for l in 0..<L where count[k * L + l] > 0 {
                    let c = count[k * L + l]
                    let f: Bool
                    if let a = thresholdAbs { f = c < a } else { f = Double(c) < Double(total[k]) * thresholdPercent! / 100 }
                    if f { fail[k * L + l] = true; if l != Int(unknownId) { thresholded.insert(names[l]) } }
                }
            }
            for i in 0..<n {
                let k = image.isEmpty ? 0 : Int(image[i])
                if fail[k * L + Int(final[i])] { final[i] = unknownId }
            }
        }
        let ruleCounts = wf.rules.indices.map { RuleCount(parent: wf.rules[$0].parent, phenotype: wf.rules[$0].phenotype, cells: ruleCells[$0], likely: ruleLikely[$0]) }
        let restCounts = wf.groups.indices.map { (parent: wf.groups[$0], cells: restCells[$0]) }
        return Result(names: names, codes: final, ruleCounts: ruleCounts, restCounts: restCounts, thresholded: thresholded.sorted())
    }
}
