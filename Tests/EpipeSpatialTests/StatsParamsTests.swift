import XCTest
import Foundation
@testable import EpipeSpatial

/// StatsParams: the defaults, what the manifest records, and the one-line refusals.
final class StatsParamsTests: XCTestCase {
    func decode(_ json: String) throws -> StatsParams { try JSONDecoder().decode(StatsParams.self, from: Data(json.utf8)) }
    func message(_ json: String) -> String {
        do { _ = try decode(json); return "" } catch { return String(describing: error) }
    }

    func testDefaultsAndRecord() throws {
        XCTAssertEqual(try decode("{}"), StatsParams())
        XCTAssertEqual(StatsParams().label, "phenotype")
        XCTAssertEqual(try decode(#"{"label": "cluster"}"#).label, "cluster")
        let p = StatsParams(label: "cell type")
        XCTAssertEqual(try JSONDecoder().decode(StatsParams.self, from: JSONEncoder().encode(p)), p)
        // What the manifest records: the keys the flags are named after (the optional ones when given).
        let o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(StatsParams())) as! [String: Any]
        XCTAssertEqual(Set(o.keys), Set(StatsParams.CodingKeys.allCases.map(\.rawValue)).subtracting(["radius", "radius-um", "pixel-size", "max-edge"]))
        XCTAssertEqual(o["label"] as? String, "phenotype"); XCTAssertEqual(o["graph"] as? String, "knn"); XCTAssertEqual(o["k"] as? Int, 6)
        XCTAssertEqual(o["perms"] as? Int, 1000); XCTAssertEqual(o["neighborhoods"] as? Int, 10); XCTAssertEqual(o["window"] as? Int, 10)
        let r = StatsParams(graph: .radius, radiusUm: 20, pixelSize: 0.5)
        XCTAssertEqual(try JSONDecoder().decode(StatsParams.self, from: JSONEncoder().encode(r)), r)
        XCTAssertEqual(try r.radiusPixels(imagePixelSize: 0.25), 40, "the flag's pixel size wins")
        XCTAssertEqual(try StatsParams(graph: .radius, radiusUm: 20).radiusPixels(imagePixelSize: 0.25), 80, "else the image's")
        XCTAssertThrowsError(try StatsParams(graph: .radius, radiusUm: 20).radiusPixels(imagePixelSize: nil))
        XCTAssertEqual(try decode(#"{"graph": "Delaunay", "max-edge": "40"}"#).maxEdge, 40)
    }

    func testRefusedWithOneLine() {
        for (json, want) in [(#"{"lable": "cluster"}"#, "lable: unknown parameter; known: label"),
                             (#"{"label": 3}"#, "label: expected a column name"), (#"{"label": ["a"]}"#, "label: expected a column name"),
                             (#"{"label": null}"#, "label: expected a column name"), (#"{"label": " "}"#, "label: expected a column name"),
                             (#"{"graph": "voronoi"}"#, "graph: expected one of knn, radius, delaunay"), (#"{"k": 0}"#, "k: expected a whole number in 1...100"),
                             (#"{"k": 2.5}"#, "k: expected a whole number"), (#"{"graph": "radius"}"#, "radius: --graph radius needs"),
                             (#"{"graph": "radius", "radius": -3}"#, "radius: expected a number > 0"),
                             (#"{"graph": "radius", "radius": 3, "radius-um": 2}"#, "radius: give radius (px) or radius-um"),
                             (#"{"radius": 30}"#, "radius: only --graph radius"), (#"{"max-edge": 30}"#, "max-edge: only --graph delaunay"),
                             (#"{"perms": -1}"#, "perms: expected a whole number in 0...100000"), (#"{"window": 1}"#, "window: expected"),
                             (#"{"neighborhoods": 101}"#, "neighborhoods: expected"), (#"{"x": ""}"#, "x: expected a column name")] {
            let m = message(json)
            XCTAssertTrue(m.hasPrefix(want), "\(json): \(m)")
            XCTAssertFalse(m.contains("\n"), m)
        }
    }
}
