import XCTest
import EpipeTestSupport
@testable import EpipeSpatial


final class SpatialTests: XCTestCase {
    func testFrequencies() {
        let f = CellTypeStats.frequencies(labels: ["T", "B", "T", "Mac", "B", "T", "A", "Mac"])
        XCTAssertEqual(f.types, ["T", "B", "Mac", "A"])
        XCTAssertEqual(f.counts, [3, 2, 2, 1])
        XCTAssertEqual(f.proportions, [3.0 / 8, 2.0 / 8, 2.0 / 8, 1.0 / 8])
        XCTAssertEqual(CellTypeStats.frequencies(labels: []).types, [])
    }

    func bruteKNN(_ xs: [Double], _ ys: [Double], _ x: Double, _ y: Double, _ k: Int) -> [Int] {
        let d = (0..<xs.count).map { ((xs[$0] - x) * (xs[$0] - x) + (ys[$0] - y) * (ys[$0] - y), $0) }
        return d.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.prefix(k).map { $0.1 }
    }

    func testKDTreeVsBruteForce() {
        var g = TestRNG(s: 1)
        for (n, grid) in [(1, false), (7, false), (500, false), (3000, false), (400, true)] {
            // grid=true: integer coordinates with many exact ties and duplicates
            let xs = (0..<n).map { _ in grid ? Double(Int.random(in: 0..<10, using: &g)) : Double.random(in: 0..<1000, using: &g) }
            let ys = (0..<n).map { _ in grid ? Double(Int.random(in: 0..<10, using: &g)) : Double.random(in: 0..<500, using: &g) }
            let t = KDTree2D(x: xs, y: ys)
            XCTAssertEqual(t.count, n)
            for _ in 0..<50 {
                let qx = grid ? Double(Int.random(in: -2..<12, using: &g)) : Double.random(in: -50..<1050, using: &g)
                let qy = grid ? Double(Int.random(in: -2..<12, using: &g)) : Double.random(in: -50..<550, using: &g)
                for k in [1, 5, 17] {
                    let res = t.nearest(x: qx, y: qy, k: k)
                    XCTAssertEqual(res.map(\.index), bruteKNN(xs, ys, qx, qy, k), "n=\(n) k=\(k)")
                }
                for r in [0.0, 1.0, 3.0, 40.0] {
                    let ref = (0..<n).filter { (xs[$0] - qx) * (xs[$0] - qx) + (ys[$0] - qy) * (ys[$0] - qy) <= r * r }
                    XCTAssertEqual(t.within(x: qx, y: qy, radius: r), ref, "n=\(n) r=\(r)")
                }
            }
            let graph = t.knnGraph(k: 4).rows
            for i in stride(from: 0, to: n, by: max(1, n / 37)) {
                XCTAssertEqual(graph[i], bruteKNN(xs, ys, xs[i], ys[i], 5).filter { $0 != i }.prefix(4).map { $0 })
            }
        }
        do {
            let xs = (0..<800).map { _ in Double.random(in: 0..<100, using: &g) }
            let ys = (0..<800).map { _ in Double.random(in: 0..<100, using: &g) }
            let rg = KDTree2D(x: xs, y: ys).radiusGraph(radius: 6).rows
            for i in 0..<800 {
                let ref = (0..<800).filter { $0 != i && (xs[$0] - xs[i]) * (xs[$0] - xs[i]) + (ys[$0] - ys[i]) * (ys[$0] - ys[i]) <= 36 }
                XCTAssertEqual(rg[i], ref)
            }
        }
        XCTAssertEqual(KDTree2D(x: [], y: []).nearest(x: 0, y: 0, k: 3).count, 0)
    }
}
