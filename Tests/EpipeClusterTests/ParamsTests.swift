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
        let p = ClusterParams(k: 3, cofactor: 150, markers: "CD3, CD20", seed: 9)
        XCTAssertEqual(try JSONDecoder().decode(ClusterParams.self, from: JSONEncoder().encode(p)), p)
        // What the manifest records: exactly the four keys.
        let o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ClusterParams())) as! [String: Any]
        XCTAssertEqual(Set(o.keys), ["k", "cofactor", "markers", "seed"])
    }

    func testLenientForms() throws {
        XCTAssertEqual(try decode(#"{"k": "4", "cofactor": "2.5", "seed": 7.0}"#), ClusterParams(k: 4, cofactor: 2.5, seed: 7))
        XCTAssertEqual(try decode(#"{"markers": ["CD3", "CD20"]}"#).markerNames, ["CD3", "CD20"], "job.json may give a list")
        XCTAssertNil(try decode(#"{"markers": "auto"}"#).markerNames)
        XCTAssertEqual(try decode(#"{"markers": " CD3 ,CD20"}"#).markerNames, ["CD3", "CD20"])
    }

    func testRefusedWithOneLine() {
        for (json, want) in [(#"{"k": 0}"#, "k: expected a whole number in 1...1000, got 0"), (#"{"k": 2.5}"#, "k: "), (#"{"k": 1e30}"#, "k: "),
                             (#"{"k": "eight"}"#, "k: "), (#"{"seed": -1}"#, "seed: expected a whole number >= 0, got -1"), (#"{"seed": 1e30}"#, "seed: "),
                             (#"{"cofactor": 0}"#, "cofactor: expected a number > 0"), (#"{"cofactor": true}"#, "cofactor: "),
                             (#"{"markers": ""}"#, "markers: "), (#"{"markers": "CD3,,CD20"}"#, "markers: "), (#"{"markers": 3}"#, "markers: "),
                             (#"{"kk": 3}"#, "kk: unknown parameter; known: k, cofactor, markers, seed")] {
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

    func testRunAndPhenotypes() {
        // Two populations: marker A high in the first half, B in the second.
        let n = 40
        let a = (0..<n).map { $0 < n / 2 ? 500.0 + Double($0) : 5.0 }, b = (0..<n).map { $0 < n / 2 ? 5.0 : 400.0 + Double($0) }
        let r = Clustering.run(columns: [a, b], markers: ["A", "B"], params: ClusterParams(k: 2, seed: 1))
        XCTAssertEqual(r.k, 2)
        XCTAssertTrue(samePartition(r.labels, (0..<n).map { $0 < n / 2 ? 0 : 1 }))
        XCTAssertEqual(r.counts, [20, 20])
        XCTAssertEqual(Set(r.phenotypes), ["c\(r.labels[0]) A+", "c\(r.labels[n - 1]) B+"])
        XCTAssertEqual(r.asinhMeans[r.labels[0]][0], (0..<20).map { asinh((500.0 + Double($0)) / 5) }.reduce(0, +) / 20, accuracy: 1e-12)
        // k is capped by the number of cells; no cells -> one empty cluster.
        XCTAssertEqual(Clustering.run(columns: [[1, 2, 3]], markers: ["A"], params: ClusterParams(k: 8)).k, 3)
        let empty = Clustering.run(columns: [[]], markers: ["A"], params: ClusterParams())
        XCTAssertEqual(empty.k, 1); XCTAssertEqual(empty.counts, [0]); XCTAssertEqual(empty.phenotypes, ["c0 low"])
        XCTAssertEqual(Clustering.phenotype(cluster: 3, zMeans: [0.2, 1.5, 0.9, 0.7], markers: ["A", "B", "C", "D"]), "c3 B+ C+")
        XCTAssertEqual(Clustering.phenotype(cluster: 0, zMeans: [0.2, 0.4], markers: ["A", "B"]), "c0 low")
    }
}
