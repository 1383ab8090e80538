import Foundation

// Delaunay triangulation of cell centroids: the neighbour graph of `epipe-stats --graph delaunay`.
//
// Algorithm: a sweep-hull (Sinclair's s-hull, in the form of Mapbox's Delaunator; this is our own
// code, not a port). The input is snapped to an integer grid and duplicates are set aside; the points
// are sorted by exact squared distance from a centre point p0 (the snapped point nearest the
// bounding box centre), then added in that order. Each new point lies outside the convex hull of the
// points before it (below), so it is joined to the hull edges it sees (found from a hash of hull
// vertices by pseudo-angle around p0, then a short walk), which become interior, and every edge
// opposite the new point is legalised by Lawson flips (an explicit stack, no recursion). The hull is a
// doubly linked list over the points with, per hull vertex, the half-edge of its outgoing hull edge;
// triangles are 3 vertex indices each and `halfedges[e]` is the twin of half-edge e (-1 on the hull).
// When the points nearest p0 are collinear, the first non-collinear point is joined to all of them by
// a fan, the only triangulation of such a set. Collinear input gives no triangles; the graph then joins
// consecutive points along the line.
//
// Why the sweep is sound: the k-th point p lies at distance r >= the distance of every earlier point
// from p0, so the earlier points (and their hull) lie in the closed disc of radius r around p0 and p is
// on its boundary circle. A convex polygon in a closed disc meets the circle only at its vertices, so p
// is strictly outside the hull unless it repeats a vertex, and duplicates were removed: some hull edge
// has p strictly on its outer side, and the visible edges form one chain. Each spoke from p to a vertex
// v of that chain is a Delaunay edge (the circle through p tangent at v to a supporting line of the hull
// that separates p is empty), flips of the edges opposite p only create more such edges (the classical
// incremental argument), so once every edge opposite p is locally Delaunay the triangulation of the
// points so far is Delaunay.
//
// Exactness: coordinates are translated to the minimum and scaled by a power of two chosen so the
// largest extent spans at most 2^28 units (1/4096 px at a 60,000 px slide; finer for smaller ones),
// then rounded: points equal after snapping are duplicates. orient2d is then exact in Int64 (|terms| <=
// 2^59) and incircle exact in 128 bits (three 64x64 -> 128 products of lifted lengths <= 2^59 and 2x2
// minors <= 2^59 via `multipliedFullWidth`, sum < 2^121). The sort keys (squared distances) are exact
// integers too. There is no epsilon anywhere: on lattices with many co-circular points a flip happens
// only when a point is strictly inside a circumcircle, so flips terminate and the result is one valid
// Delaunay triangulation, never an overlap or a hole, and the same input always gives the same output.
//
// Complexity: O(n log n) for the sort and, on cell-like input, O(n) for the sweep (the hash finds a
// visible hull edge in O(1) steps; about 6 flips per point). Measured in release on 1M points: uniform,
// an annulus, a C shape, two blobs, a slide with holes, tight clusters, a thin strip, a 1000 x 1000
// lattice (exact or jittered), uniform plus a 20k-point ring: 0.25-0.5 s each. The flips per point equal
// the new point's degree among the points so far, which the distance order does not bound: when most of
// the input lies in convex position or near one circle around an empty disc (10^5+ points on a parabola,
// two perfect concentric rings), the sweep needs Theta(n^2) flips (1M such points: 3 s to minutes).
// Cell centroids fill their regions, so this does not arise from segmented tissue. Memory O(n): peak RSS
// at 1M points (with the 16 MB input) 118 MB in `triangulate`, 143 MB in `graph` (its CSR rows included).

/// A Delaunay triangulation of input points.
public struct Triangulation: Sendable, Equatable {
    /// 3 vertex indices per triangle, counter-clockwise (in x-right, y-up orientation: orient2d > 0), indices into the input arrays.
    public var triangles: [Int32]
    /// The input points that coincide (after snapping) with an earlier point: duplicate index -> the point it repeats
    /// (the smallest index on that spot).
    public var duplicates: [Int32: Int32]

    public init(triangles: [Int32], duplicates: [Int32: Int32]) {
        self.triangles = triangles; self.duplicates = duplicates
    }
}

public enum Delaunay {
    /// Delaunay triangulation of (x[i], y[i]). Non-finite points are left out (no triangles, no edges).
    /// Coordinates are snapped to a grid of 2^28 steps over the larger extent (see the file header);
    /// points equal on that grid are duplicates, listed in `duplicates` and in no triangle.
    public static func triangulate(x: [Double], y: [Double]) -> Triangulation {
        let c = DelaunayCore(x: x, y: y)
        var t = [Int32](repeating: 0, count: c.triangles.count)
        c.orig.withUnsafeBufferPointer { O in
            c.triangles.withUnsafeBufferPointer { T in
                t.withUnsafeMutableBufferPointer { R in
                    for h in 0..<T.count { R[h] = O[Int(T[h])] }
                }
            }
        }
        return Triangulation(triangles: t, duplicates: c.duplicates)
    }

    /// The Delaunay edges as an undirected SpatialGraph over all x.count points, dropping edges longer than
    /// maxEdge (px) when given (an edge is kept iff `(dx * dx + dy * dy).squareRoot() <= maxEdge` on the input
    /// coordinates; a NaN maxEdge keeps none).
    /// A duplicate point is joined to the point it repeats and to that point's neighbours (and they to it),
    /// so no cell is left without neighbours because another sits on the same spot. Precisely: every point
    /// on a spot is joined to the other points on that spot and to every point on a Delaunay-adjacent spot.
    /// Collinear input (all points on a line, no triangles): consecutive points along the line are joined.
    /// Non-finite points have empty rows. Rows are sorted ascending, without self edges.
    public static func graph(x: [Double], y: [Double], maxEdge: Double? = nil) -> SpatialGraph {
        precondition(x.count == y.count, "Delaunay.graph: x and y differ in length")
        let n = x.count
        var c = DelaunayCore(x: x, y: y)
        let N = c.orig.count
        if N == 0 { return SpatialGraph(offsets: [Int](repeating: 0, count: n + 1), targets: []) }

        // 1. Adjacency between distinct spots (sweep indices), each undirected edge in both rows.
        var bOff = [Int](repeating: 0, count: N + 1)
        bOff.withUnsafeMutableBufferPointer { O in
            c.triangles.withUnsafeBufferPointer { T in
                c.halfedges.withUnsafeBufferPointer { H in
                    for h in 0..<T.count {
                        O[Int(T[h]) + 1] += 1
                        if H[h] < 0 { O[Int(T[DelaunayCore.next(h)]) + 1] += 1 }
                    }
                }
            }
            if c.triangles.isEmpty {
                for k in 1..<max(1, c.line.count) { O[Int(c.line[k - 1]) + 1] += 1; O[Int(c.line[k]) + 1] += 1 }
            }
            for i in 0..<N { O[i + 1] += O[i] }
        }
        var bAdj = [Int32](repeating: 0, count: bOff[N])
        do {
            var fill = Array(bOff[0..<N])
            fill.withUnsafeMutableBufferPointer { F in
                bAdj.withUnsafeMutableBufferPointer { A in
                    c.triangles.withUnsafeBufferPointer { T in
                        c.halfedges.withUnsafeBufferPointer { H in
                            for h in 0..<T.count {
                                let u = Int(T[h]), v = Int(T[DelaunayCore.next(h)])
                                A[F[u]] = Int32(v); F[u] += 1
                                if H[h] < 0 { A[F[v]] = Int32(u); F[v] += 1 }
                            }
                        }
                    }
                    if c.triangles.isEmpty {
                        for k in 1..<max(1, c.line.count) {
                            let u = Int(c.line[k - 1]), v = Int(c.line[k])
                            A[F[u]] = Int32(v); F[u] += 1
                            A[F[v]] = Int32(u); F[v] += 1
                        }
                    }
                }
            }
        }

        c.triangles = []; c.halfedges = []

        // 2. The points on each spot in sweep order (the representative first, then its duplicates by
        //    index), with their coordinates alongside: the rows below are built spot by spot, so the
        //    neighbours' data sits near each other in memory (Delaunay neighbours are close in sweep order).
        var gOff = [Int](repeating: 1, count: N + 1)
        let members = N + c.duplicates.count
        var gIdx = [Int32](repeating: 0, count: members)
        var gx = [Double](repeating: 0, count: members), gy = [Double](repeating: 0, count: members)
        gOff[0] = 0
        if c.duplicates.isEmpty {
            for s in 0..<N { gOff[s + 1] = s + 1 }
            gIdx = c.orig
        } else {
            for (_, r) in c.duplicates { gOff[Int(c.spot[Int(r)]) + 1] += 1 }
            for i in 0..<N { gOff[i + 1] += gOff[i] }
            var fill = Array(gOff[0..<N])
            for s in 0..<N { gIdx[fill[s]] = c.orig[s]; fill[s] += 1 }
            for (d, r) in c.duplicates.sorted(by: { $0.key < $1.key }) {
                let s = Int(c.spot[Int(r)]); gIdx[fill[s]] = d; fill[s] += 1
            }
        }
        for g in 0..<members { gx[g] = x[Int(gIdx[g])]; gy[g] = y[Int(gIdx[g])] }

        // 3. Rows over the input points: same-spot points plus the points on adjacent spots, filtered by
        //    length. Pass 0 counts (exact offsets), pass 1 fills and sorts.
        var offsets = [Int](repeating: 0, count: n + 1)
        var targets = [Int32]()
        let limit = maxEdge ?? 0, filtered = maxEdge != nil
        for pass in 0..<2 {
            if pass == 1 {
                for i in 0..<n { offsets[i + 1] += offsets[i] }
                targets = [Int32](repeating: 0, count: offsets[n])
            }
            targets.withUnsafeMutableBufferPointer { Tg in
                offsets.withUnsafeMutableBufferPointer { O in
                    gOff.withUnsafeBufferPointer { G in
                        gIdx.withUnsafeBufferPointer { GI in
                            gx.withUnsafeBufferPointer { GX in
                                gy.withUnsafeBufferPointer { GY in
                                    bOff.withUnsafeBufferPointer { B in
                                        bAdj.withUnsafeBufferPointer { A in
                                            @inline(__always) func keep(_ g1: Int, _ g: Int) -> Bool {
                                                if !filtered { return true }
                                                let dx = GX[g] - GX[g1], dy = GY[g] - GY[g1]
                                                return (dx * dx + dy * dy).squareRoot() <= limit
                                            }
                                            for s in 0..<N {
                                                for g1 in G[s]..<G[s + 1] {
                                                    let i = Int(GI[g1])
                                                    if pass == 0 {
                                                        var cnt = 0
                                                        for g in G[s]..<G[s + 1] where g != g1 && keep(g1, g) { cnt += 1 }
                                                        for e in B[s]..<B[s + 1] {
                                                            let w = Int(A[e])
                                                            for g in G[w]..<G[w + 1] where keep(g1, g) { cnt += 1 }
                                                        }
                                                        O[i + 1] = cnt
                                                    } else {
                                                        let lo = O[i]
                                                        var p = lo
                                                        for g in G[s]..<G[s + 1] where g != g1 && keep(g1, g) { Tg[p] = GI[g]; p += 1 }
                                                        for e in B[s]..<B[s + 1] {
                                                            let w = Int(A[e])
                                                            for g in G[w]..<G[w + 1] where keep(g1, g) { Tg[p] = GI[g]; p += 1 }
                                                        }
                                                        sortRow(Tg, lo, p)
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return SpatialGraph(offsets: offsets, targets: targets)
    }

    /// Ascending sort of T[lo..<hi] (insertion sort: Delaunay rows hold about 6 entries).
    @inline(__always)
    static func sortRow(_ T: UnsafeMutableBufferPointer<Int32>, _ lo: Int, _ hi: Int) {
        if hi - lo > 32 {
            var r = UnsafeMutableBufferPointer(rebasing: T[lo..<hi])
            r.sort()
            return
        }
        var i = lo + 1
        while i < hi {
            let v = T[i]
            var j = i
            while j > lo && T[j - 1] > v { T[j] = T[j - 1]; j -= 1 }
            T[j] = v
            i += 1
        }
    }

    /// The snapped grid coordinates of the input (see the file header), -1 for non-finite points.
    /// Internal: the tests check the empty-circle property exactly on these.
    static func snap(x: [Double], y: [Double]) -> (qx: [Int64], qy: [Int64]) {
        precondition(x.count == y.count, "Delaunay: x and y differ in length")
        let n = x.count
        var mnx = Double.infinity, mny = Double.infinity, mxx = -Double.infinity, mxy = -Double.infinity
        for i in 0..<n where x[i].isFinite && y[i].isFinite {
            mnx = min(mnx, x[i]); mxx = max(mxx, x[i]); mny = min(mny, y[i]); mxy = max(mxy, y[i])
        }
        var qx = [Int64](repeating: -1, count: n), qy = [Int64](repeating: -1, count: n)
        guard mnx <= mxx else { return (qx, qy) }
        // Half-coordinates: x/2 - min/2 cannot overflow even for coordinates near Double.greatestFiniteMagnitude.
        let hx0 = mnx * 0.5, hy0 = mny * 0.5
        let ext = max(mxx * 0.5 - hx0, mxy * 0.5 - hy0)
        var k = 0
        if ext > 0 {
            let r = Double(1 << DelaunayCore.gridBits) / ext
            k = r.isFinite ? Int(r.exponent) : 1000
            k = min(max(k, -1000), 1000)
        }
        let scale = Double(sign: .plus, exponent: k, significand: 1)
        let cap = Double(1 << (DelaunayCore.gridBits + 1))
        for i in 0..<n where x[i].isFinite && y[i].isFinite {
            let u = ((x[i] * 0.5 - hx0) * scale).rounded(.toNearestOrAwayFromZero)
            let v = ((y[i] * 0.5 - hy0) * scale).rounded(.toNearestOrAwayFromZero)
            qx[i] = Int64(min(max(u, 0), cap)); qy[i] = Int64(min(max(v, 0), cap))
        }
        return (qx, qy)
    }
}

/// The triangulation in sweep order: distinct snapped points, triangles and half-edges over them.
struct DelaunayCore {
    /// The larger extent of the input spans at most 2^gridBits grid units.
    static let gridBits = 28

    /// Sweep index -> input index (the smallest input index on that spot).
    var orig: [Int32] = []
    /// Input index -> sweep index of its spot; -1 for non-finite points.
    var spot: [Int32] = []
    var duplicates: [Int32: Int32] = [:]
    /// 3 sweep indices per triangle, counter-clockwise.
    var triangles: [Int32] = []
    /// Twin of each half-edge (half-edge e runs from triangles[e] to triangles[next(e)]), -1 on the hull.
    var halfedges: [Int32] = []
    /// Without triangles: the distinct points (sweep indices) in order along their line.
    var line: [Int32] = []

    @inline(__always) static func next(_ e: Int) -> Int { e % 3 == 2 ? e - 2 : e + 1 }

    struct Key { var d: UInt64; var xy: UInt64; var id: Int32 }

    init(x: [Double], y: [Double]) {
        let n = x.count
        precondition(n == y.count, "Delaunay: x and y differ in length")
        precondition(n < Int(Int32.max), "Delaunay: too many points")
        spot = [Int32](repeating: -1, count: n)
        // Sort by (squared distance from p0, x, y, index): the sweep order, duplicates adjacent.
        var keys = [Key]()
        do {
            let (qx, qy) = Delaunay.snap(x: x, y: y)
            // Centre p0: the snapped point nearest the bounding box centre (ties: smallest index).
            var mx: Int64 = 0, my: Int64 = 0, any = false
            for i in 0..<n where qx[i] >= 0 { mx = max(mx, qx[i]); my = max(my, qy[i]); any = true }
            guard any else { return }
            let cx = mx / 2, cy = my / 2
            var best = UInt64.max, p0 = -1
            for i in 0..<n where qx[i] >= 0 {
                let dx = qx[i] - cx, dy = qy[i] - cy
                let d = UInt64(dx * dx + dy * dy)
                if d < best { best = d; p0 = i }
            }
            let p0x = qx[p0], p0y = qy[p0]
            keys.reserveCapacity(n)
            for i in 0..<n where qx[i] >= 0 {
                let dx = qx[i] - p0x, dy = qy[i] - p0y
                keys.append(Key(d: UInt64(dx * dx + dy * dy), xy: UInt64(qx[i]) << 32 | UInt64(qy[i]), id: Int32(i)))
            }
        }
        keys.withUnsafeMutableBufferPointer { K in
            K.sort { a, b in a.d != b.d ? a.d < b.d : (a.xy != b.xy ? a.xy < b.xy : a.id < b.id) }
        }

        var X = [Int32](), Y = [Int32]()
        X.reserveCapacity(keys.count); Y.reserveCapacity(keys.count); orig.reserveCapacity(keys.count)
        var prev = Key(d: .max, xy: .max, id: -1)
        for k in keys {
            if k.d == prev.d && k.xy == prev.xy {
                duplicates[k.id] = prev.id
                spot[Int(k.id)] = Int32(orig.count - 1)
                continue
            }
            prev = k
            spot[Int(k.id)] = Int32(orig.count)
            orig.append(k.id)
            X.append(Int32(k.xy >> 32)); Y.append(Int32(truncatingIfNeeded: k.xy))
        }
        keys = []

        let N = orig.count
        if N < 3 {
            if N == 2 { line = lexicographic([0, 1], X, Y) }
            return
        }
        // The first point off the line through the two nearest to p0.
        var m = 2
        while m < N && DelaunayCore.orient(X, Y, 0, 1, m) == 0 { m += 1 }
        if m == N {
            line = lexicographic((0..<Int32(N)).map { $0 }, X, Y)
            return
        }
        // The sweep writes straight into the arrays' storage (at most 2N - 5 triangles).
        let cap = 3 * (2 * N - 5)
        var used = 0
        var he = [Int32]()
        triangles = [Int32](unsafeUninitializedCapacity: cap) { tb, tc in
            he = [Int32](unsafeUninitializedCapacity: cap) { hb, hc in
                let s = Sweep(X, Y, tb.baseAddress!, hb.baseAddress!)
                X = []; Y = []
                s.run(m)
                used = s.tcount; hc = used
            }
            tc = used
        }
        halfedges = he
    }

    /// Collinear points ordered along their line: lexicographic (x, y) order is an order along any line.
    func lexicographic(_ ids: [Int32], _ X: [Int32], _ Y: [Int32]) -> [Int32] {
        ids.sorted { X[Int($0)] != X[Int($1)] ? X[Int($0)] < X[Int($1)] : Y[Int($0)] < Y[Int($1)] }
    }

    static func orient(_ X: [Int32], _ Y: [Int32], _ a: Int, _ b: Int, _ c: Int) -> Int64 {
        let ax = Int64(X[a]), ay = Int64(Y[a])
        return (Int64(X[b]) - ax) * (Int64(Y[c]) - ay) - (Int64(Y[b]) - ay) * (Int64(X[c]) - ax)
    }
}

/// The sweep's working state: raw buffers (its own freed on deinit; the triangles' and half-edges' lent).
final class Sweep {
    let N: Int
    let X: UnsafeMutablePointer<Int32>, Y: UnsafeMutablePointer<Int32>
    let tri: UnsafeMutablePointer<Int32>, he: UnsafeMutablePointer<Int32>
    var tcount = 0
    let hullPrev: UnsafeMutablePointer<Int32>, hullNext: UnsafeMutablePointer<Int32>, hullTri: UnsafeMutablePointer<Int32>
    let hashSize: Int
    let hash: UnsafeMutablePointer<Int32>
    var stack: UnsafeMutablePointer<Int32>
    var stackCap = 1024
    let cx: Double, cy: Double

    /// `tri` and `he` hold room for 3 (2N - 5) half-edges; the caller owns them.
    init(_ xs: [Int32], _ ys: [Int32], _ tri: UnsafeMutablePointer<Int32>, _ he: UnsafeMutablePointer<Int32>) {
        let n = xs.count
        N = n
        let px = UnsafeMutablePointer<Int32>.allocate(capacity: n), py = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        xs.withUnsafeBufferPointer { px.initialize(from: $0.baseAddress!, count: n) }
        ys.withUnsafeBufferPointer { py.initialize(from: $0.baseAddress!, count: n) }
        X = px; Y = py
        self.tri = tri; self.he = he
        hullPrev = .allocate(capacity: N); hullNext = .allocate(capacity: N); hullTri = .allocate(capacity: N)
        hashSize = max(16, Int(Double(N).squareRoot().rounded(.up)))
        hash = .allocate(capacity: hashSize)
        hash.initialize(repeating: -1, count: hashSize)
        stack = .allocate(capacity: stackCap)
        cx = Double(xs[0]); cy = Double(ys[0])
    }

    deinit {
        X.deallocate(); Y.deallocate()
        hullPrev.deallocate(); hullNext.deallocate(); hullTri.deallocate(); hash.deallocate(); stack.deallocate()
    }

    @inline(__always) func orient(_ a: Int, _ b: Int, _ c: Int) -> Int64 {
        let ax = Int64(X[a]), ay = Int64(Y[a])
        return (Int64(X[b]) - ax) * (Int64(Y[c]) - ay) - (Int64(Y[b]) - ay) * (Int64(X[c]) - ax)
    }

    /// True iff d lies strictly inside the circumcircle of the counter-clockwise triangle (a, b, c); exact.
    @inline(__always) func inCircle(_ a: Int, _ b: Int, _ c: Int, _ d: Int) -> Bool {
        let dx = Int64(X[d]), dy = Int64(Y[d])
        let ax = Int64(X[a]) - dx, ay = Int64(Y[a]) - dy
        let bx = Int64(X[b]) - dx, by = Int64(Y[b]) - dy
        let cx = Int64(X[c]) - dx, cy = Int64(Y[c]) - dy
        let al = ax * ax + ay * ay, bl = bx * bx + by * by, cl = cx * cx + cy * cy
        let (h1, l1) = al.multipliedFullWidth(by: bx * cy - by * cx)
        let (h2, l2) = bl.multipliedFullWidth(by: cx * ay - cy * ax)
        let (h3, l3) = cl.multipliedFullWidth(by: ax * by - ay * bx)
        let (s12, o12) = l1.addingReportingOverflow(l2)
        let (lo, o3) = s12.addingReportingOverflow(l3)
        let hi = h1 &+ h2 &+ h3 &+ (o12 ? 1 : 0) &+ (o3 ? 1 : 0)
        return hi > 0 || (hi == 0 && lo != 0)
    }

    /// Hash bucket of a point: its pseudo-angle around p0 (monotone in the true angle).
    @inline(__always) func hashKey(_ i: Int) -> Int {
        let dx = Double(X[i]) - cx, dy = Double(Y[i]) - cy
        let s = abs(dx) + abs(dy)
        if s == 0 { return 0 }
        let p = dx / s
        let a = (dy > 0 ? 3 - p : 1 + p) * 0.25  // [0, 1]
        let k = Int(a * Double(hashSize))
        return k >= hashSize ? k - hashSize : k
    }

    @inline(__always) func link(_ a: Int, _ b: Int32) {
        he[a] = b
        if b >= 0 { he[Int(b)] = Int32(a) }
    }

    /// Appends triangle (i0, i1, i2) with the twins of its half-edges; returns its first half-edge.
    @inline(__always) func addTriangle(_ i0: Int, _ i1: Int, _ i2: Int, _ a: Int32, _ b: Int32, _ c: Int32) -> Int {
        let t = tcount
        tri[t] = Int32(i0); tri[t + 1] = Int32(i1); tri[t + 2] = Int32(i2)
        link(t, a); link(t + 1, b); link(t + 2, c)
        tcount = t + 3
        return t
    }

    @inline(__always) func push(_ e: Int, _ sp: inout Int) {
        if sp == stackCap {
            let bigger = UnsafeMutablePointer<Int32>.allocate(capacity: 2 * stackCap)
            bigger.update(from: stack, count: stackCap)
            stack.deallocate(); stack = bigger; stackCap *= 2
        }
        stack[sp] = Int32(e); sp += 1
    }

    /// Lawson flips from half-edge `start` (opposite the newest point): while the point across an edge
    /// is strictly inside the circumcircle of the triangle holding the newest point, flip the edge and
    /// check the two edges that then face the newest point. Keeps `hullTri` right when a flip moves a
    /// hull edge to another half-edge slot.
    func legalize(_ start: Int) {
        var a = start
        var sp = 0
        while true {
            let b = Int(he[a])
            if b < 0 {
                if sp == 0 { return }
                sp -= 1; a = Int(stack[sp]); continue
            }
            //        pl                   pl
            //       /||\                 /  \
            //    al/ || \bl           al/    \a
            //     /  ||  \             /      \
            //    /  a||b  \   flip    /___ar___\
            //  p0\   ||   /p1  =>   p0\---bl---/p1
            //     \  ||  /             \      /
            //    ar\ || /br            b\    /br
            //       \||/                 \  /
            //        pr                   pr
            let a0 = a - a % 3, b0 = b - b % 3
            let al = a0 + (a + 1) % 3, ar = a0 + (a + 2) % 3
            let bl = b0 + (b + 2) % 3
            let p0 = Int(tri[ar]), pr = Int(tri[a]), pl = Int(tri[al]), p1 = Int(tri[bl])
            if inCircle(p0, pr, pl, p1) {
                tri[a] = Int32(p1); tri[b] = Int32(p0)
                let hbl = he[bl], har = he[ar]
                // a hull edge that changes slot: p1 -> pl moves from bl to a, p0 -> pr from ar to b
                if hbl < 0 { hullTri[p1] = Int32(a) }
                if har < 0 { hullTri[p0] = Int32(b) }
                link(a, hbl); link(b, har); link(ar, Int32(bl))
                push(b0 + (b + 1) % 3, &sp)
            } else {
                if sp == 0 { return }
                sp -= 1; a = Int(stack[sp])
            }
        }
    }

    /// Triangulates: points 0..<m are collinear (through 0 and 1), m is off their line, then m+1..<N.
    func run(_ m: Int) {
        // The fan over the collinear prefix, ordered along its line with m on the left.
        var L = (0..<m).sorted { X[$0] != X[$1] ? X[$0] < X[$1] : Y[$0] < Y[$1] }
        if orient(L[0], L[m - 1], m) < 0 { L.reverse() }
        var first = -1, last = -1
        for i in 0..<(m - 1) {
            let t = addTriangle(L[i], L[i + 1], m, -1, -1, last >= 0 ? Int32(last + 1) : -1)
            if first < 0 { first = t }
            last = t
            hullTri[L[i]] = Int32(t)
        }
        hullTri[L[m - 1]] = Int32(last + 1)
        hullTri[m] = Int32(first + 2)
        for i in 0..<m {
            let nx = i + 1 < m ? L[i + 1] : m
            hullNext[L[i]] = Int32(nx); hullPrev[nx] = Int32(L[i])
        }
        hullNext[m] = Int32(L[0]); hullPrev[L[0]] = Int32(m)
        for i in 0..<m { hash[hashKey(L[i])] = Int32(L[i]) }
        hash[hashKey(m)] = Int32(m)

        var k = m + 1
        while k < N {
            let key = hashKey(k)
            // a hull vertex near k's angle, then walk forward to the first edge k sees (strictly)
            var start = 0
            for j in 0..<hashSize {
                let c = key + j < hashSize ? key + j : key + j - hashSize
                start = Int(hash[c])
                if start >= 0 && start != Int(hullNext[start]) { break }
            }
            start = Int(hullPrev[start])
            var e = start
            while true {
                let q = Int(hullNext[e])
                if orient(e, q, k) < 0 { break }
                e = q
                // unreachable: k is strictly outside the hull (see the file header)
                if e == start { fatalError("Delaunay: point \(k) inside the hull") }
            }

            var t = addTriangle(e, k, Int(hullNext[e]), -1, -1, hullTri[e])
            hullTri[e] = Int32(t); hullTri[k] = Int32(t + 1)
            legalize(t + 2)

            // forward along the hull while k sees the edges
            var n = Int(hullNext[e])
            while true {
                let q = Int(hullNext[n])
                if orient(n, q, k) >= 0 { break }
                t = addTriangle(n, k, q, hullTri[k], -1, hullTri[n])
                hullTri[k] = Int32(t + 1)
                legalize(t + 2)
                hullNext[n] = Int32(n)  // removed from the hull
                n = q
            }
            // backward, when the first edge found may have visible ones before it
            if e == start {
                while true {
                    let q = Int(hullPrev[e])
                    if orient(q, e, k) >= 0 { break }
                    t = addTriangle(q, k, e, -1, hullTri[e], hullTri[q])
                    hullTri[q] = Int32(t)
                    legalize(t + 2)
                    hullNext[e] = Int32(e)
                    e = q
                }
            }
            hullPrev[k] = Int32(e); hullNext[e] = Int32(k)
            hullPrev[n] = Int32(k); hullNext[k] = Int32(n)
            hash[key] = Int32(k)
            hash[hashKey(e)] = Int32(e)
            k += 1
        }
    }
}
