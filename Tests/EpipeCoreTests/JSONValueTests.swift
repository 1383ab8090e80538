import XCTest
import Foundation
@testable import EpipeCore

/// JSONValue(encoding:): a library's Encodable struct as the JSON value a manifest records.
final class JSONValueTests: XCTestCase {
    struct Metrics: Encodable {
        var count = 3, mean = 0.1 + 0.2, ok = true, name = "CD3", list = [1.5, .infinity], nested = ["a": Double.nan]
        enum CodingKeys: String, CodingKey { case count, mean = "mean_value", ok, name, list, nested }
    }

    func testEncodingIsTheStructsJSON() throws {
        let v = try JSONValue(encoding: Metrics())
        XCTAssertEqual(v["count"], .number(3)); XCTAssertEqual(v["ok"], .bool(true)); XCTAssertEqual(v["name"], .string("CD3"))
        XCTAssertEqual(v["mean_value"], .number(0.1 + 0.2), "doubles round-trip exactly")
        // Non-finite numbers become null, as .number(.infinity) is written.
        XCTAssertEqual(v["list"], .array([.number(1.5), .null])); XCTAssertEqual(v["nested"], .object(["a": .null]))
        XCTAssertEqual(JSON.line(JSONValue.number(.infinity)), JSON.line(JSONValue.null))
    }
}
