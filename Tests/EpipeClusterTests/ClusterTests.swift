import XCTest
import Foundation
@testable import EpipeCluster
import EpipeKernels

/// Gaussian blobs: k centres far apart, n points per blob.
func blobs(k: Int, perBlob: Int, d: Int, spread: Double, seed: UInt64) -> (data: [Double], truth: [Int]) {
    var g = SplitMix64(seed: seed)
    func normal() -> Double {  // Box-Muller
        let u = max(g.nextUnit(), 1e-300), v = g.nextUnit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
    var centres: [[Double]] = []
    for c in 0..<k { centres.append((0..<d).map { j in Double((c * 7 + j * 3) % 11) * 20 + Double(c) * 15 }) }
    var data: [Double] = [], truth: [Int] = []
    for i in 0..<(k * perBlob) {
        let c = i % k
        truth.append(c)
        for j in 0..<d { data.append(centres[c][j] + spread * normal()) }
    }
    return (data, truth)
}

/// true if the two labelings are identical up to a permutation of label names.
func samePartition(_ a: [Int], _ b: [Int]) -> Bool {
    guard a.count == b.count else { return false }
    var ab: [Int: Int] = [:], ba: [Int: Int] = [:]
    for i in 0..<a.count {
        if let m = ab[a[i]], m != b[i] { return false }
        if let m = ba[b[i]], m != a[i] { return false }
        ab[a[i]] = b[i]; ba[b[i]] = a[i]
    }
    return true
}

final class ClusterTests: XCTestCase {
    func testTransforms() {
        var x = [0.0, 5, -5, 500]
        Transform.arcsinh(&x, cofactor: 5)
        XCTAssertEqual(x[0], 0); XCTAssertEqual(x[1], asinh(1.0), accuracy: 1e-15)
        XCTAssertEqual(x[2], -asinh(1.0), accuracy: 1e-15); XCTAssertEqual(x[3], asinh(100.0), accuracy: 1e-12)
        var cols = [[1.0, 2, 3, 4], [7.0, 7, 7, 7]]
        Transform.zscore(columns: &cols)
        let sd = (1.25).squareRoot()
        XCTAssertEqual(cols[0][0], -1.5 / sd, accuracy: 1e-12)
        XCTAssertEqual(cols[0][3], 1.5 / sd, accuracy: 1e-12)
        XCTAssertEqual(cols[1], [0, 0, 0, 0])
        XCTAssertEqual(Transform.rowMajor(columns: [[1, 2], [3, 4]]), [1, 3, 2, 4])
    }

    func testBlobsRecoveredExactly() {
        for (k, d) in [(3, 2), (5, 4), (8, 10)] {
            let (data, truth) = blobs(k: k, perBlob: 60, d: d, spread: 1.0, seed: UInt64(k))
            let r = KMeans.fit(data, n: truth.count, d: d, k: k, seed: 42)
            XCTAssertTrue(samePartition(r.labels, truth), "k=\(k)")
            XCTAssertEqual(r.centroids.count, k)
            // inertia equals the direct sum of squared distances to the cluster means
            XCTAssertEqual(r.inertia, KMeans.inertia(data, n: truth.count, d: d, labels: r.labels, k: k), accuracy: 1e-6 * r.inertia)
        }
    }

    func testDeterminismAndBaseline() {
        let (data, truth) = blobs(k: 6, perBlob: 50, d: 3, spread: 6.0, seed: 3)
        let n = truth.count
        let a = KMeans.fit(data, n: n, d: 3, k: 6, seed: 7)
        let b = KMeans.fit(data, n: n, d: 3, k: 6, seed: 7)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertEqual(a.inertia, b.inertia)
        XCTAssertEqual(a.centroids, b.centroids)
        // random-init baseline: Lloyd from k random points, several seeds
        var g = SplitMix64(seed: 99)
        for _ in 0..<10 {
            var idx = Set<Int>()
            while idx.count < 6 { idx.insert(Int(g.next() % UInt64(n))) }
            let init0 = idx.sorted().map { Array(data[$0 * 3 ..< $0 * 3 + 3]) }
            let base = KMeans.lloyd(data, n: n, d: 3, initial: init0)
            XCTAssertLessThanOrEqual(a.inertia, base.inertia * (1 + 1e-9))
        }
    }

    func testDegenerateInputs() {
        // n < k
        let r = KMeans.fit([1, 1, 5, 5], n: 2, d: 2, k: 5)
        XCTAssertEqual(r.centroids.count, 2)
        XCTAssertNotEqual(r.labels[0], r.labels[1])
        XCTAssertEqual(r.inertia, 0)
        // duplicates only: 3 distinct points, k = 4
        let dup: [Double] = [0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 4, 4]
        let r2 = KMeans.fit(dup, n: 6, d: 2, k: 4)
        XCTAssertEqual(r2.centroids.count, 3)
        XCTAssertEqual(r2.inertia, 0)
        XCTAssertEqual(Set(r2.labels).count, 3)
        // empty cluster during Lloyd: two initial centroids far from all data -> re-seeded
        let line: [Double] = [0, 1, 2, 10, 11, 12]
        let r3 = KMeans.lloyd(line, n: 6, d: 1, initial: [[1], [100], [200]])
        XCTAssertEqual(Set(r3.labels).count, 3)
        XCTAssertEqual(ClusterProfile.means(line, n: 6, d: 1, labels: r3.labels, k: 3).counts.filter { $0 == 0 }.count, 0)
        // single point, empty
        XCTAssertEqual(KMeans.fit([3, 4], n: 1, d: 2, k: 3).labels, [0])
        XCTAssertEqual(KMeans.fit([], n: 0, d: 2, k: 3).labels, [])
    }

    func testClusterMeans() {
        let data: [Double] = [1, 10, 3, 20, 5, 30]
        let (counts, means) = ClusterProfile.means(data, n: 3, d: 2, labels: [0, 0, 2], k: 3)
        XCTAssertEqual(counts, [2, 0, 1])
        XCTAssertEqual(means, [[2, 15], [0, 0], [5, 30]])
        XCTAssertEqual(ClusterProfile.means(columns: [[1, 3, 5], [10, 20, 30]], labels: [0, 0, 2], k: 3).means, means)
    }

    /// Real per-cell table (scimap 33-plex example, Tests/Data/scimap-33plex/PROVENANCE.md).
    func testRealCellTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.appendingPathComponent("Tests/Data/scimap-33plex/example_data.csv")
        let text = try String(contentsOf: url, encoding: .utf8)
        var lines = text.split(whereSeparator: \.isNewline)
        let header = lines.removeFirst().split(separator: ",").map(String.init)
        guard let end = header.firstIndex(of: "X_position") else { return XCTFail("no X_position column") }
        let markers = Array(1..<end)   // columns between CellID and X_position
        var cols = [[Double]](repeating: [], count: markers.count)
        for line in lines {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            for (j, c) in markers.enumerated() { cols[j].append(Double(f[c])!) }
        }
        let n = cols[0].count, d = markers.count
        XCTAssertGreaterThan(n, 1000)
        for j in 0..<d { Transform.arcsinh(&cols[j], cofactor: 5) }
        Transform.zscore(columns: &cols)
        let data = Transform.rowMajor(columns: cols)
        let a = KMeans.fit(data, n: n, d: d, k: 8, seed: 1)
        let b = KMeans.fit(data, n: n, d: d, k: 8, seed: 1)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertEqual(a.inertia, b.inertia)
        let (counts, means) = ClusterProfile.means(data, n: n, d: d, labels: a.labels, k: 8)
        XCTAssertEqual(counts.count, 8)
        XCTAssertTrue(counts.allSatisfy { $0 > 0 }, "\(counts)")
        XCTAssertEqual(means.count, 8)
        // random assignment baseline (k random groups); total variance is n*d after z-scoring
        var g = SplitMix64(seed: 5)
        let random = (0..<n).map { _ in Int(g.next() % 8) }
        let baseline = KMeans.inertia(data, n: n, d: d, labels: random, k: 8)
        XCTAssertLessThan(a.inertia, 0.7 * baseline, "kmeans \(a.inertia) vs random \(baseline)")
        print("real table: n=\(n) d=\(d) inertia=\(a.inertia) random=\(baseline) iters=\(a.iterations) sizes=\(counts)")
    }
}
