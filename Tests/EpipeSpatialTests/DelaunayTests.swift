import XCTest
import Foundation
import EpipeTestSupport
@testable import EpipeSpatial

/// Exact geometry on the snapped integer coordinates (Delaunay.snap), written independently of the
/// implementation: incircle expanded about the first vertex instead of the query point.
private enum Exact {
    static func orient(_ ax: Int64, _ ay: Int64, _ bx: Int64, _ by: Int64, _ cx: Int64, _ cy: Int64) -> Int64 {
        (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    }

    /// A signed 128-bit sum of 64 x 64 products: (hi, lo) two's complement.
    struct Wide { var hi: Int64 = 0; var lo: UInt64 = 0
        mutating func add(_ a: Int64, times b: Int64) {
            let (h, l) = a.multipliedFullWidth(by: b)
            let (s, o) = lo.addingReportingOverflow(l)
            lo = s; hi = hi &+ h &+ (o ? 1 : 0)
        }
        var sign: Int { hi < 0 ? -1 : (hi == 0 && lo == 0 ? 0 : 1) }
    }

    /// > 0: d strictly inside the circumcircle of the counter-clockwise triangle abc; 0: on it; < 0: outside.
    static func inCircle(_ p: [(Int64, Int64)], _ a: Int, _ b: Int, _ c: Int, _ d: Int) -> Int {
        let (ox, oy) = p[a]
        let bx = p[b].0 - ox, by = p[b].1 - oy, cx = p[c].0 - ox, cy = p[c].1 - oy, dx = p[d].0 - ox, dy = p[d].1 - oy
        let bl = bx * bx + by * by, cl = cx * cx + cy * cy, dl = dx * dx + dy * dy
        var w = Wide()
        // -det [[b, bl], [c, cl], [d, dl]] expanded along the lifted column
        w.add(bl, times: -(cx * dy - cy * dx))
        w.add(cl, times: bx * dy - by * dx)
        w.add(dl, times: -(bx * cy - by * cx))
        return w.sign
    }

    /// Strict convex hull (Andrew's monotone chain), counter-clockwise, of the given point indices.
    static func hull(_ p: [(Int64, Int64)], _ ids: [Int]) -> [Int] {
        let s = ids.sorted { p[$0] != p[$1] ? (p[$0].0 != p[$1].0 ? p[$0].0 < p[$1].0 : p[$0].1 < p[$1].1) : $0 < $1 }
        if s.count < 3 { return s }
        func cross(_ o: Int, _ a: Int, _ b: Int) -> Int64 { orient(p[o].0, p[o].1, p[a].0, p[a].1, p[b].0, p[b].1) }
        var lower: [Int] = [], upper: [Int] = []
        for i in s {
            while lower.count >= 2 && cross(lower[lower.count - 2], lower[lower.count - 1], i) <= 0 { lower.removeLast() }
            lower.append(i)
        }
        for i in s.reversed() {
            while upper.count >= 2 && cross(upper[upper.count - 2], upper[upper.count - 1], i) <= 0 { upper.removeLast() }
            upper.append(i)
        }
        return Array(lower.dropLast() + upper.dropLast())
    }
}

final class DelaunayTests: XCTestCase {
    // MARK: helpers

    func snapped(_ x: [Double], _ y: [Double]) -> [(Int64, Int64)] {
        let (qx, qy) = Delaunay.snap(x: x, y: y)
        return zip(qx, qy).map { ($0, $1) }
    }

    func triples(_ t: [Int32]) -> Set<[Int]> {
        Set(stride(from: 0, to: t.count, by: 3).map { [Int(t[$0]), Int(t[$0 + 1]), Int(t[$0 + 2])].sorted() })
    }

    func undirectedEdges(_ t: [Int32]) -> Set<[Int]> {
        var s = Set<[Int]>()
        for k in stride(from: 0, to: t.count, by: 3) {
            for j in 0..<3 { let u = Int(t[k + j]), v = Int(t[k + (j + 1) % 3]); s.insert([min(u, v), max(u, v)]) }
        }
        return s
    }

    func graphEdges(_ g: SpatialGraph) -> Set<[Int]> {
        var s = Set<[Int]>()
        for i in 0..<g.nodes { for j in g.neighbors(i) { s.insert([min(i, Int(j)), max(i, Int(j))]) } }
        return s
    }

    /// Rows sorted strictly ascending, no self edges, symmetric.
    func assertWellFormed(_ g: SpatialGraph, _ n: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(g.nodes, n, file: file, line: line)
        for i in 0..<g.nodes {
            let r = Array(g.neighbors(i))
            XCTAssertFalse(r.contains(Int32(i)), "self edge at \(i)", file: file, line: line)
            XCTAssertTrue(zip(r, r.dropFirst()).allSatisfy { $0 < $1 }, "row \(i) not sorted: \(r)", file: file, line: line)
        }
        XCTAssertTrue(g.isSymmetric, file: file, line: line)
    }

    /// Checks that `tri` is a Delaunay triangulation of the distinct finite points, exactly on the snapped
    /// grid: every triangle counter-clockwise and non-degenerate, every directed edge used once, edges
    /// without a twin exactly on the hull's boundary, every distinct point a vertex, triangle count
    /// 2n - 2 - b (b = points on the hull boundary), areas summing to the hull area, and no point strictly
    /// inside any circumcircle (and, in general position, none on one either).
    func assertDelaunay(_ x: [Double], _ y: [Double], _ tr: Triangulation, generalPosition: Bool,
                        file: StaticString = #filePath, line: UInt = #line) {
        let p = snapped(x, y)
        let n = x.count
        // duplicates: exactly the finite points repeating an earlier one, mapped to the first on their spot
        var firstAt: [String: Int] = [:]
        var expectDup: [Int32: Int32] = [:]
        var distinct: [Int] = []
        for i in 0..<n where x[i].isFinite && y[i].isFinite {
            let k = "\(p[i].0),\(p[i].1)"
            if let f = firstAt[k] { expectDup[Int32(i)] = Int32(f) } else { firstAt[k] = i; distinct.append(i) }
        }
        XCTAssertEqual(tr.duplicates, expectDup, "duplicates", file: file, line: line)
        let t = tr.triangles
        XCTAssertEqual(t.count % 3, 0, file: file, line: line)
        let T = t.count / 3
        let hull = Exact.hull(p, distinct)
        if hull.count < 3 {
            XCTAssertEqual(T, 0, "collinear input has no triangles", file: file, line: line)
            return
        }
        // points on the hull boundary (vertices and points on its edges)
        var onBoundary = Set<Int>()
        for (k, a) in hull.enumerated() {
            let b = hull[(k + 1) % hull.count]
            for w in distinct where Exact.orient(p[a].0, p[a].1, p[b].0, p[b].1, p[w].0, p[w].1) == 0
                && min(p[a].0, p[b].0) <= p[w].0 && p[w].0 <= max(p[a].0, p[b].0)
                && min(p[a].1, p[b].1) <= p[w].1 && p[w].1 <= max(p[a].1, p[b].1) { onBoundary.insert(w) }
        }
        XCTAssertEqual(T, 2 * distinct.count - 2 - onBoundary.count, "Euler count", file: file, line: line)
        let distinctSet = Set(distinct)
        var directed = Set<[Int]>()
        var used = Set<Int>()
        var area2: Int64 = 0
        for k in 0..<T {
            let a = Int(t[3 * k]), b = Int(t[3 * k + 1]), c = Int(t[3 * k + 2])
            XCTAssertTrue(distinctSet.contains(a) && distinctSet.contains(b) && distinctSet.contains(c), file: file, line: line)
            let o = Exact.orient(p[a].0, p[a].1, p[b].0, p[b].1, p[c].0, p[c].1)
            XCTAssertGreaterThan(o, 0, "triangle \(k) not counter-clockwise", file: file, line: line)
            area2 += o
            for (u, v) in [(a, b), (b, c), (c, a)] {
                XCTAssertTrue(directed.insert([u, v]).inserted, "directed edge \(u)->\(v) twice", file: file, line: line)
            }
            used.formUnion([a, b, c])
        }
        XCTAssertEqual(used, distinctSet, "every distinct point is a vertex", file: file, line: line)
        var hullArea2: Int64 = 0
        for (k, a) in hull.enumerated() {
            let b = hull[(k + 1) % hull.count]
            hullArea2 += p[a].0 * p[b].1 - p[b].0 * p[a].1
        }
        XCTAssertEqual(area2, hullArea2, "triangles cover the hull", file: file, line: line)
        var boundaryEdges = 0
        for e in directed where !directed.contains([e[1], e[0]]) {
            boundaryEdges += 1
            let (u, v) = (e[0], e[1])
            XCTAssertTrue(hull.allSatisfy { Exact.orient(p[u].0, p[u].1, p[v].0, p[v].1, p[$0].0, p[$0].1) >= 0 },
                          "edge \(u)->\(v) without twin is not on the hull", file: file, line: line)
        }
        XCTAssertEqual(boundaryEdges, onBoundary.count, file: file, line: line)
        var bad = 0
        for k in 0..<T {
            let a = Int(t[3 * k]), b = Int(t[3 * k + 1]), c = Int(t[3 * k + 2])
            for w in distinct where w != a && w != b && w != c {
                let s = Exact.inCircle(p, a, b, c, w)
                if s > 0 || (generalPosition && s == 0) { bad += 1 }
            }
        }
        XCTAssertEqual(bad, 0, "points inside circumcircles", file: file, line: line)
    }

    func randomPoints(_ n: Int, _ seed: UInt64, scale: Double = 1000) -> ([Double], [Double]) {
        var g = TestRNG(s: seed)
        var x = [Double](), y = [Double]()
        for _ in 0..<n { x.append(g.nextUnit() * scale); y.append(g.nextUnit() * scale * 0.7) }
        return (x, y)
    }

    // MARK: 1. known triangulations

    func testKnownTriangulations() {
        // a square's corners and its centre: the four triangles around the centre
        let sx: [Double] = [0, 10, 10, 0, 5], sy: [Double] = [0, 0, 10, 10, 5]
        let s = Delaunay.triangulate(x: sx, y: sy)
        XCTAssertEqual(triples(s.triangles), [[0, 1, 4], [1, 2, 4], [2, 3, 4], [0, 3, 4]])
        XCTAssertEqual(s.duplicates, [:])
        assertDelaunay(sx, sy, s, generalPosition: false)
        XCTAssertEqual(Delaunay.graph(x: sx, y: sy).rows, [[1, 3, 4], [0, 2, 4], [1, 3, 4], [0, 2, 4], [0, 1, 2, 3]])

        // A(0,0) B(2,-1) C(4,0) D(2,3): D is inside circle ABC (centre (2,1.5), r^2 6.25), C is outside
        // circle ABD (centre (1.75,1), r^2 65/16): the diagonal is BD
        let qx: [Double] = [0, 2, 4, 2], qy: [Double] = [0, -1, 0, 3]
        let q = Delaunay.triangulate(x: qx, y: qy)
        XCTAssertEqual(triples(q.triangles), [[0, 1, 3], [1, 2, 3]])
        assertDelaunay(qx, qy, q, generalPosition: true)
        // triangle vertices counter-clockwise in input order too
        for k in stride(from: 0, to: q.triangles.count, by: 3) {
            let a = Int(q.triangles[k]), b = Int(q.triangles[k + 1]), c = Int(q.triangles[k + 2])
            XCTAssertGreaterThan((qx[b] - qx[a]) * (qy[c] - qy[a]) - (qy[b] - qy[a]) * (qx[c] - qx[a]), 0)
        }

        // a square's four co-circular corners: two triangles on either diagonal
        let c = Delaunay.triangulate(x: [0, 1, 1, 0], y: [0, 0, 1, 1])
        XCTAssertEqual(c.triangles.count, 6)
        assertDelaunay([0, 1, 1, 0], [0, 0, 1, 1], c, generalPosition: false)

        // a single triangle given clockwise comes back counter-clockwise
        let t = Delaunay.triangulate(x: [0, 0, 3], y: [0, 3, 0])
        XCTAssertEqual(t.triangles.count, 3)
        XCTAssertEqual(triples(t.triangles), [[0, 1, 2]])
        assertDelaunay([0, 0, 3], [0, 3, 0], t, generalPosition: true)
    }

    // MARK: 2. empty circles, orientation, Euler count, area on random sets

    func testRandomSetsAreDelaunay() {
        for (n, seed) in [(3, 1), (4, 2), (5, 3), (20, 4), (200, 5), (2000, 6)] as [(Int, UInt64)] {
            let (x, y) = randomPoints(n, seed)
            let t = Delaunay.triangulate(x: x, y: y)
            assertDelaunay(x, y, t, generalPosition: true)
            // general position: triangles = 2n - 2 - h, h = the reference hull's vertex count
            XCTAssertEqual(t.triangles.count / 3, 2 * n - 2 - Exact.hull(snapped(x, y), Array(0..<n)).count)
            XCTAssertEqual(Delaunay.triangulate(x: x, y: y), t, "deterministic")
            // the graph holds exactly the triangles' edges
            let g = Delaunay.graph(x: x, y: y)
            assertWellFormed(g, n)
            XCTAssertEqual(graphEdges(g), undirectedEdges(t.triangles))
        }
        // tiny and huge coordinate ranges snap the same way
        for scale in [1e-6, 1e9] {
            let (x, y) = randomPoints(300, 7, scale: scale)
            assertDelaunay(x, y, Delaunay.triangulate(x: x, y: y), generalPosition: true)
        }
    }

    // MARK: 3. brute force

    func testAgainstBruteForce() {
        for seed in [11, 12, 13] as [UInt64] {
            let n = 36
            let (x, y) = randomPoints(n, seed)
            let p = snapped(x, y)
            var ref = Set<[Int]>()
            for a in 0..<n { for b in (a + 1)..<n { for c in (b + 1)..<n {
                let o = Exact.orient(p[a].0, p[a].1, p[b].0, p[b].1, p[c].0, p[c].1)
                if o == 0 { continue }
                let (u, v) = o > 0 ? (b, c) : (c, b)
                var empty = true
                for d in 0..<n where d != a && d != b && d != c {
                    let s = Exact.inCircle(p, a, u, v, d)
                    XCTAssertNotEqual(s, 0, "not in general position")
                    if s > 0 { empty = false; break }
                }
                if empty { ref.insert([a, b, c]) }
            } } }
            let t = Delaunay.triangulate(x: x, y: y)
            XCTAssertEqual(triples(t.triangles), ref, "seed \(seed)")
            XCTAssertEqual(t.triangles.count / 3, ref.count)
        }
    }

    // MARK: 4. lattices, co-circular points, duplicates

    func testLatticeAndDuplicates() {
        // 30 x 30 integer grid: every unit square's corners are co-circular
        var x: [Double] = [], y: [Double] = []
        for i in 0..<30 { for j in 0..<30 { x.append(Double(i)); y.append(Double(j)) } }
        let t = Delaunay.triangulate(x: x, y: y)
        XCTAssertEqual(t.triangles.count / 3, 2 * 29 * 29)
        assertDelaunay(x, y, t, generalPosition: false)
        let g = Delaunay.graph(x: x, y: y)
        assertWellFormed(g, x.count)
        // each grid point is joined to its 4 axis neighbours, and diagonals only within a unit square
        for i in 0..<x.count {
            for j in g.neighbors(i) {
                let dx = abs(x[i] - x[Int(j)]), dy = abs(y[i] - y[Int(j)])
                XCTAssertTrue(dx <= 1 && dy <= 1)
            }
            let axis = (0..<x.count).filter { abs(x[i] - x[$0]) + abs(y[i] - y[$0]) == 1 }
            XCTAssertTrue(Set(axis).isSubset(of: g.neighbors(i).map { Int($0) }))
        }

        // integer points with many duplicates and co-circular quadruples, a rotated lattice, a circle
        var g2 = TestRNG(s: 21)
        var ix: [Double] = [], iy: [Double] = []
        for _ in 0..<500 { ix.append(Double(Int.random(in: 0..<18, using: &g2))); iy.append(Double(Int.random(in: 0..<15, using: &g2))) }
        for i in -6...6 { for j in -6...6 { ix.append(Double(100 + 3 * i - 2 * j)); iy.append(Double(40 + 2 * i + 3 * j)) } }
        for a in -25...25 { for b in -25...25 where a * a + b * b == 625 { ix.append(Double(200 + a)); iy.append(Double(200 + b)) } }
        ix.append(200); iy.append(200)
        ix.append(7); iy.append(7)  // a duplicate at the end
        let tr = Delaunay.triangulate(x: ix, y: iy)
        XCTAssertGreaterThan(tr.duplicates.count, 200)
        assertDelaunay(ix, iy, tr, generalPosition: false)
        assertDuplicatesJoined(ix, iy, tr)
    }

    /// Every point on a spot has the same closed neighbourhood: row(d) + {d} == row(r) + {r}, d joined to r.
    func assertDuplicatesJoined(_ x: [Double], _ y: [Double], _ tr: Triangulation, file: StaticString = #filePath, line: UInt = #line) {
        let g = Delaunay.graph(x: x, y: y)
        assertWellFormed(g, x.count, file: file, line: line)
        for (d, r) in tr.duplicates {
            XCTAssertLessThan(r, d, file: file, line: line)
            XCTAssertTrue(g.neighbors(Int(d)).contains(r), "duplicate \(d) not joined to \(r)", file: file, line: line)
            XCTAssertEqual(Set(g.neighbors(Int(d))).union([d]), Set(g.neighbors(Int(r))).union([r]), file: file, line: line)
        }
        // the graph between spots is the triangulation's, or without triangles the path along the line
        let e = graphEdges(g).filter { tr.duplicates[Int32($0[0])] == nil && tr.duplicates[Int32($0[1])] == nil }
        if tr.triangles.isEmpty {
            let p = snapped(x, y)
            let spots = (0..<x.count).filter { x[$0].isFinite && y[$0].isFinite && tr.duplicates[Int32($0)] == nil }
                .sorted { p[$0].0 != p[$1].0 ? p[$0].0 < p[$1].0 : p[$0].1 < p[$1].1 }
            XCTAssertEqual(e, Set(zip(spots, spots.dropFirst()).map { [min($0, $1), max($0, $1)] }), file: file, line: line)
        } else {
            XCTAssertEqual(e, undirectedEdges(tr.triangles), file: file, line: line)
        }
    }

    // MARK: degenerate inputs

    func testDegenerateInputs() {
        // n = 0, 1, 2
        XCTAssertEqual(Delaunay.triangulate(x: [], y: []), Triangulation(triangles: [], duplicates: [:]))
        XCTAssertEqual(Delaunay.graph(x: [], y: []).offsets, [0])
        XCTAssertEqual(Delaunay.graph(x: [5], y: [5]).rows, [[]])
        XCTAssertEqual(Delaunay.graph(x: [5, 9], y: [5, 1]).rows, [[1], [0]])
        XCTAssertEqual(Delaunay.graph(x: [5, 9], y: [5, 1], maxEdge: 1).rows, [[], []])

        // all duplicates: one spot, every point joined to every other
        let d = Delaunay.triangulate(x: [3, 3, 3, 3], y: [4, 4, 4, 4])
        XCTAssertEqual(d.triangles, [])
        XCTAssertEqual(d.duplicates, [1: 0, 2: 0, 3: 0])
        XCTAssertEqual(Delaunay.graph(x: [3, 3, 3, 3], y: [4, 4, 4, 4]).rows, [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])

        // all collinear (shuffled, with a duplicate and a non-finite point): consecutive along the line
        let lx: [Double] = [4, 0, 2, 1, .nan, 3, 2, 6], ly: [Double] = [8, 0, 4, 2, 1, 6, 4, 12]
        let lt = Delaunay.triangulate(x: lx, y: ly)
        XCTAssertEqual(lt.triangles, [])
        XCTAssertEqual(lt.duplicates, [6: 2])
        XCTAssertEqual(Delaunay.graph(x: lx, y: ly).rows,
                       [[5, 7], [3], [3, 5, 6], [1, 2, 6], [], [0, 2, 6], [2, 3, 5], [0]])
        XCTAssertEqual(Delaunay.graph(x: lx, y: ly, maxEdge: 3).rows,
                       [[5], [3], [3, 5, 6], [1, 2, 6], [], [0, 2, 6], [2, 3, 5], []])

        // non-finite points are left out; the rest is triangulated
        let nx: [Double] = [0, .infinity, 10, 10, 0, 5], ny: [Double] = [0, 1, 0, 10, 10, .nan]
        let nt = Delaunay.triangulate(x: nx, y: ny)
        XCTAssertEqual(nt.triangles.count, 6)
        XCTAssertFalse(nt.triangles.contains(1) || nt.triangles.contains(5))
        let ng = Delaunay.graph(x: nx, y: ny)
        XCTAssertEqual(ng.neighbors(1).count + ng.neighbors(5).count, 0)
        assertWellFormed(ng, 6)

        // collinear points nearest the centre (a fan over them), a cross, and a few collinear runs in random points
        var cases: [([Double], [Double])] = []
        cases.append(((0..<21).map { Double($0) } + [10, 3], Array(repeating: 0, count: 21) + [7, -40]))
        cases.append(((-10...10).map { Double($0) } + Array(repeating: 0, count: 21), Array(repeating: 0, count: 21) + (-10...10).map { Double($0) }))
        var (rx, ry) = randomPoints(150, 31, scale: 100)
        for i in 0..<12 { rx.append(10 + 5 * Double(i)); ry.append(20 + 3 * Double(i)) }
        for i in 0..<8 { rx.append(50); ry.append(2 * Double(i)) }
        cases.append((rx, ry))
        cases.append(([0, 1, 2, 3, 1.5], [0, 0, 0, 0, 1e-9]))  // nearly collinear
        for (cx, cy) in cases {
            let t = Delaunay.triangulate(x: cx, y: cy)
            assertDelaunay(cx, cy, t, generalPosition: false)
            assertDuplicatesJoined(cx, cy, t)
        }
    }

    /// Awkward shapes: every point on the hull (circle, parabola), co-circular rings, a thin strip, tight clusters.
    static func shape(_ kind: Int, _ n: Int, _ seed: UInt64) -> ([Double], [Double]) {
        var g = TestRNG(s: seed)
        var x: [Double] = [], y: [Double] = []
        for i in 0..<n {
            let u = g.nextUnit(), v = g.nextUnit()
            switch kind {
            case 0: x.append(500 + 400 * cos(2 * .pi * u)); y.append(500 + 400 * sin(2 * .pi * u))  // circle
            case 1: let t = Double(i) / Double(n) * 2 - 1; x.append(1000 * t); y.append(1000 * t * t)  // parabola
            case 2: let r = i % 2 == 0 ? 300.0 : 150; x.append(r * cos(2 * .pi * u)); y.append(r * sin(2 * .pi * u))  // two rings
            case 3: x.append(1e5 * u); y.append(10 * v)  // thin strip
            default:  // a few tight clusters
                let c = Double(i % 5)
                let r = (-2 * log(max(u, 1e-300))).squareRoot() * 3
                x.append(1000 * c + r * cos(2 * .pi * v)); y.append(700 * (c * c).truncatingRemainder(dividingBy: 3) + r * sin(2 * .pi * v))
            }
        }
        return (x, y)
    }

    func testAwkwardShapes() {
        for kind in 0..<5 {
            let (x, y) = DelaunayTests.shape(kind, 400, UInt64(70 + kind))
            let t = Delaunay.triangulate(x: x, y: y)
            XCTAssertGreaterThan(t.triangles.count, 0)
            assertDelaunay(x, y, t, generalPosition: false)
            assertDuplicatesJoined(x, y, t)
        }
    }

    // MARK: 5. maxEdge

    func testMaxEdgeFilter() {
        var (x, y) = randomPoints(1500, 41, scale: 400)
        x += [100, 100, 250]; y += [100, 100, 10]  // a duplicate pair
        let full = Delaunay.graph(x: x, y: y)
        assertWellFormed(full, x.count)
        for m in [0.0, 8.0, 15.0, 1e9] {
            let f = Delaunay.graph(x: x, y: y, maxEdge: m)
            assertWellFormed(f, x.count)
            let expect = full.rows.enumerated().map { i, r in
                r.filter { j in ((x[i] - x[j]) * (x[i] - x[j]) + (y[i] - y[j]) * (y[i] - y[j])).squareRoot() <= m }
            }
            XCTAssertEqual(f.rows, expect, "maxEdge \(m)")
            if m == 8 { XCTAssertTrue(f.edges > 0 && f.edges < full.edges) }
        }
        // the coincident pair stays joined at maxEdge 0
        XCTAssertEqual(Delaunay.graph(x: x, y: y, maxEdge: 0).neighbors(1500).map { Int($0) }, [1501])
    }

    // MARK: 6. scipy

    func testAgainstScipy() throws {
        let env = ProcessInfo.processInfo.environment
        let python = env["EPIPE_PYTHON"] ?? "/work/main/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw XCTSkip("no python at \(python) (set EPIPE_PYTHON)") }
        let (x, y) = randomPoints(500, 51, scale: 2000)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("epipe-delaunay-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pts = dir.appendingPathComponent("points.txt")
        try zip(x, y).map { "\($0.0) \($0.1)" }.joined(separator: "\n").write(to: pts, atomically: true, encoding: .utf8)
        let script = """
        import sys
        try:
            import numpy as np, scipy.spatial
        except ImportError:
            print("NOSCIPY"); sys.exit(0)
        p = np.loadtxt(sys.argv[1])
        for s in scipy.spatial.Delaunay(p).simplices:
            print(*s)
        """
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: python)
        proc.arguments = ["-c", script, pts.path]
        let pipe = Pipe()
        proc.standardOutput = pipe
        proc.standardError = FileHandle.nullDevice
        try proc.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        proc.waitUntilExit()
        let out = String(decoding: data, as: UTF8.self)
        guard proc.terminationStatus == 0, !out.hasPrefix("NOSCIPY") else { throw XCTSkip("scipy.spatial not importable with \(python)") }
        let ref = out.split(separator: "\n").map { $0.split(separator: " ").map { Int($0)! } }
        XCTAssertGreaterThan(ref.count, 900)
        let t = Delaunay.triangulate(x: x, y: y)
        XCTAssertEqual(triples(t.triangles), Set(ref.map { $0.sorted() }))
        var refEdges = Set<[Int]>()
        for s in ref { for j in 0..<3 { let u = s[j], v = s[(j + 1) % 3]; refEdges.insert([min(u, v), max(u, v)]) } }
        XCTAssertEqual(graphEdges(Delaunay.graph(x: x, y: y)), refEdges)
    }

    // MARK: 7. timing (EPIPE_BENCH=1, release)

    func testBenchDelaunay() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = 1_000_000
        let (x, y) = randomPoints(n, 61, scale: 50_000)
        let t0 = Date()
        let t = Delaunay.triangulate(x: x, y: y)
        let t1 = Date()
        let g = Delaunay.graph(x: x, y: y, maxEdge: 500)
        let t2 = Date()
        var lx: [Double] = [], ly: [Double] = []
        for i in 0..<1000 { for j in 0..<1000 { lx.append(Double(i) * 12); ly.append(Double(j) * 12) } }
        let t3 = Date()
        let lt = Delaunay.triangulate(x: lx, y: ly)
        let t4 = Date()
        print(String(format: "bench delaunay n=1M uniform: triangulate %.3fs (%d triangles), graph %.3fs (%d edges); 1000x1000 lattice: triangulate %.3fs (%d triangles)",
                     t1.timeIntervalSince(t0), t.triangles.count / 3, t2.timeIntervalSince(t1), g.edges,
                     t4.timeIntervalSince(t3), lt.triangles.count / 3))
        // circle, parabola and two rings put every point in convex position or near one circle: the
        // sweep's worst case (Theta(n^2) flips, see Delaunay.swift), timed at 20k points; the rest at 1M
        for (kind, name) in ["circle", "parabola", "two rings", "thin strip", "clusters"].enumerated() {
            let n = kind == 1 || kind == 2 ? 20_000 : 1_000_000
            let (sx, sy) = DelaunayTests.shape(kind, n, 80)
            let s0 = Date()
            let st = Delaunay.triangulate(x: sx, y: sy)
            print(String(format: "bench delaunay n=%d %@: triangulate %.3fs (%d triangles, %d duplicates)",
                         n, name, Date().timeIntervalSince(s0), st.triangles.count / 3, st.duplicates.count))
        }
        XCTAssertEqual(lt.triangles.count / 3, 2 * 999 * 999)
    }
}
