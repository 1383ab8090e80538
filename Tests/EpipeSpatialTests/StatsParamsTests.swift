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
        // What the manifest records: exactly the keys the flags are named after.
        let o = try JSONSerialization.jsonObject(with: JSONEncoder().encode(StatsParams())) as! [String: Any]
        XCTAssertEqual(Set(o.keys), Set(StatsParams.CodingKeys.allCases.map(\.rawValue)))
        XCTAssertEqual(o["label"] as? String, "phenotype")
    }

    func testRefusedWithOneLine() {
        for (json, want) in [(#"{"lable": "cluster"}"#, "lable: unknown parameter; known: label"),
                             (#"{"label": 3}"#, "label: expected a column name"), (#"{"label": ["a"]}"#, "label: expected a column name"),
                             (#"{"label": null}"#, "label: expected a column name"), (#"{"label": " "}"#, "label: expected a column name")] {
            let m = message(json)
            XCTAssertTrue(m.hasPrefix(want), "\(json): \(m)")
            XCTAssertFalse(m.contains("\n"), m)
        }
    }
}
