import XCTest
import Foundation
@testable import EpipeDenoise

/// DenoiseParams: defaults < job.json < flags, validated once, round-trips through JSON as the manifest records it.
final class ParamsTests: XCTestCase {
    func testMergeValidateAndRecord() throws {
        let d = try DenoiseParams.merged([])
        XCTAssertEqual(d, DenoiseParams())
        let r0 = try d.recipe(for: "CD3", autoHotPixels: 3277, hasBlanks: true)
        XCTAssertEqual(r0.hotPixels, 3277); XCTAssertEqual(r0.rollingBall, 50); XCTAssertTrue(r0.blanks)
        // job.json, then flags win; per-channel overlays one channel
        let p = try DenoiseParams.merged([["gaussian": 2, "rolling-ball": "off"], ["gaussian": 1.5, "median": nil]],
                                         perChannel: ["DAPI": ["gaussian": "off", "median": "true"]])
        XCTAssertEqual(p.gaussian, 1.5)
        XCTAssertEqual(try p.recipe(for: "CD3", autoHotPixels: nil, hasBlanks: false).gaussian, 1.5)
        let dapi = try p.recipe(for: "DAPI", autoHotPixels: nil, hasBlanks: false)
        XCTAssertEqual(dapi.gaussian, 0); XCTAssertTrue(dapi.median); XCTAssertNil(dapi.rollingBall)
        XCTAssertEqual(try DenoiseParams.merged([["tophat": 5]], explicitTophat: true).rollingBall, "off")
        // the record is JSON with the flags' names, and reads back the same
        let data = try JSONEncoder().encode(p)
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(Set(obj.keys), Set(DenoiseParams.keys))
        XCTAssertEqual(try JSONDecoder().decode(DenoiseParams.self, from: data), p)
        // files and constants
        XCTAssertEqual(try DenoiseParams.merged([["darkfield": "dark.tif", "flatfield": "auto"]]).darkfieldFile, "dark.tif")
        XCTAssertNil(try DenoiseParams.merged([["darkfield": 20]]).darkfieldFile)
        XCTAssertEqual(try DenoiseParams.merged([["darkfield": 20]]).darkfieldConstant, 20)
        // refused, with one line naming the setting
        for (layer, per, word) in [(["rolling_ball": Setting.number(3)], [String: [String: Setting]](), "rolling_ball"),
                                   (["band": 8], [:], "band"), (["median": "maybe"], [:], "median"), (["float": "x"], [:], "float"),
                                   (["tophat": 5], [:], "choose one"), ([:], ["CD3": ["darkfield": 5]], "darkfield"),
                                   (["gaussian": -1], [:], "gaussian")] as [([String: Setting?], [String: [String: Setting]], String)] {
            XCTAssertThrowsError(try DenoiseParams.merged([layer], perChannel: per)) { e in
                XCTAssertTrue("\(e)".contains(word), "\(e)"); XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        XCTAssertThrowsError(try DenoiseParams.merged([["flatfield": "a.tif"]], perChannel: ["CD3": ["flatfield": "b.tif"]]).recipe(for: "CD3", autoHotPixels: nil, hasBlanks: false))
    }
}
