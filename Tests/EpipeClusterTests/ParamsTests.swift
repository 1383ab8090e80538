import XCTest
import Foundation
@testable import EpipeCluster

final class ParamsTests: XCTestCase {
    func decode(_ json: String) throws -> ClusterParams { try JSONDecoder().decode(ClusterParams.self, from: Data(json.utf8)) }
    func message(_ json: String) -> String {
        do { _ = try decode(json); return "" } catch { return String(describing: error) }
    }

    func testDefaultsAndRoundTrip() throws {
        XCTAssertEqual(try decode("{}"), ClusterParams())
        let p = ClusterParams(method: .flowsom, k: 3, transform: .log1p, cofactor: 150, clip: 99, markers: "CD3, CD20", seed: 9, neighbors: 30,
                              resolution: 0.5, knn: .approx, weights: .none, som: "7x5", gates: "/g.csv", workflow: "/w.csv", names: "/n.csv")
        XCTAssertEqual(try JSONDecoder().decode(ClusterParams.self, from: JSONEncoder().encode(p)), p)
        XCTAssertEqual(p.somGrid?.x, 7); XCTAssertEqual(p.somGrid?.y, 5)
        // What the manifest records: every key.
        let o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ClusterParams())) as! [String: Any]
        XCTAssertEqual(Set(o.keys), Set(ClusterParams.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(ClusterParams().method, .leiden, "the default method")
    }

    func testLenientForms() throws {
        XCTAssertEqual(try decode(#"{"k": "4", "cofactor": "2.5", "seed": 7.0}"#), ClusterParams(k: 4, cofactor: 2.5, seed: 7))
        XCTAssertEqual(try decode(#"{"method": "KMeans", "transform": "log1p", "knn": "exact"}"#), ClusterParams(method: .kmeans, transform: .log1p, knn: .exact))
        XCTAssertEqual(try decode(#"{"markers": ["CD3", "CD20"]}"#).markerNames, ["CD3", "CD20"], "job.json may give a list")
        XCTAssertNil(try decode(#"{"markers": "auto"}"#).markerNames)
        XCTAssertEqual(try decode(#"{"markers": " CD3 ,CD20"}"#).markerNames, ["CD3", "CD20"])
    }

    func testRefusedWithOneLine() {
        for (json, want) in [(#"{"k": 0}"#, "k: expected a whole number in 1...1000, got 0"), (#"{"k": 2.5}"#, "k: "), (#"{"k": 1e30}"#, "k: "),
                             (#"{"k": "eight"}"#, "k: "), (#"{"seed": -1}"#, "seed: expected a whole number >= 0, got -1"), (#"{"seed": 1e30}"#, "seed: "),
                             (#"{"cofactor": 0}"#, "cofactor: expected a number > 0"), (#"{"cofactor": true}"#, "cofactor: "),
                             (#"{"markers": ""}"#, "markers: "), (#"{"markers": "CD3,,CD20"}"#, "markers: "), (#"{"markers": 3}"#, "markers: "),
                             (#"{"method": "louvain"}"#, "method: expected one of kmeans, leiden, flowsom, rules, got \"louvain\""),
                             (#"{"transform": "log"}"#, "transform: expected one of arcsinh, log1p, none"), (#"{"clip": 50}"#, "clip: expected a percentile in (50, 100], got 50"),
                             (#"{"clip": 101}"#, "clip: "), (#"{"neighbors": 1}"#, "neighbors: expected a whole number in 2...200, got 1"),
                             (#"{"resolution": 0}"#, "resolution: expected a number > 0, got 0"), (#"{"knn": "hnsw"}"#, "knn: expected one of auto, exact, approx"), (#"{"weights": "umap"}"#, "weights: expected one of jaccard, none"),
                             (#"{"som": "10"}"#, "som: expected <x>x<y>"), (#"{"som": "0x4"}"#, "som: "), (#"{"gates": 3}"#, "gates: expected a string"),
                             (#"{"method": "rules"}"#, "workflow: method rules needs a phenotype workflow CSV"),
                             (#"{"kk": 3}"#, "kk: unknown parameter; known: method, k, transform, cofactor, clip, markers, seed, neighbors, resolution, knn, weights, som, gates, workflow, names")] {
            let m = message(json)
            XCTAssertTrue(m.hasPrefix(want), "\(json): \(m)")
            XCTAssertFalse(m.contains("\n"), m)
        }
    }

    func testMarkerSelection() {
        let header = ["CellID", "DAPI", "CD3", "Hoechst2", "BG_488", "CD20", "X_centroid", "Area", "DAPI_nucleus", "CD3_nucleus"]
        XCTAssertEqual(ClusterParams.markerColumns(header: header), ["DAPI", "CD3", "Hoechst2", "BG_488", "CD20"])
        XCTAssertEqual(ClusterParams().selectMarkers(header: header).markers, ["CD3", "CD20"])
        XCTAssertEqual(ClusterParams().selectMarkers(header: ["CellID", "DAPI", "Area"]).markers, ["DAPI"], "all of them when auto would leave none")
        let named = ClusterParams(markers: "DAPI,CD99").selectMarkers(header: header)
        XCTAssertEqual(named.markers, ["DAPI", "CD99"]); XCTAssertEqual(named.missing, ["CD99"])
    }

    func testRunAndPhenotypes() throws {
        // Two populations: marker A high in the first half, B in the second.
        let n = 40
        let a = (0..<n).map { $0 < n / 2 ? 500.0 + Double($0) : 5.0 }, b = (0..<n).map { $0 < n / 2 ? 5.0 : 400.0 + Double($0) }
        for method in [ClusterParams.Method.kmeans, .leiden, .flowsom] {
            let r = try Clustering.run(columns: [a, b], markers: ["A", "B"], params: ClusterParams(method: method, k: 2, clip: 100, seed: 1, neighbors: 15, som: "3x3"))
            XCTAssertEqual(r.k, 2, "\(method)")
            XCTAssertTrue(samePartition(r.labels, (0..<n).map { $0 < n / 2 ? 0 : 1 }), "\(method)")
            XCTAssertEqual(r.counts, [20, 20])
            XCTAssertEqual(Set(r.phenotypes), ["c\(r.labels[0]) A+", "c\(r.labels[n - 1]) B+"])
            XCTAssertEqual(r.means[r.labels[0]][0], (0..<20).map { asinh((500.0 + Double($0)) / 5) }.reduce(0, +) / 20, accuracy: 1e-12)
            XCTAssertEqual(r.quality.name, method == .leiden ? "modularity" : "silhouette")
            XCTAssertGreaterThan(r.quality.value, 0.49, "\(method): two clean groups (modularity of two equal parts: 0.5)")
        }
        // k is capped by the number of cells; no cells -> one empty cluster.
        XCTAssertEqual(try Clustering.run(columns: [[1, 2, 3]], markers: ["A"], params: ClusterParams(method: .kmeans, k: 8)).k, 3)
        let empty = try Clustering.run(columns: [[]], markers: ["A"], params: ClusterParams())
        XCTAssertEqual(empty.k, 1); XCTAssertEqual(empty.counts, [0]); XCTAssertEqual(empty.phenotypes, ["c0 low"])
        XCTAssertEqual(Clustering.phenotype(cluster: 3, zMeans: [0.2, 1.5, 0.9, 0.7], markers: ["A", "B", "C", "D"]), "c3 B+ C+")
        XCTAssertEqual(Clustering.phenotype(cluster: 0, zMeans: [0.2, 0.4], markers: ["A", "B"]), "c0 low")
    }
}
