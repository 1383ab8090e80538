import XCTest
import EpipeKernels

final class PartSplitTests: XCTestCase {
    func testEveryUnitInOnePartInOrder() {
        for units in 1...40 {
            for parts in 1...units {
                let s = PartSplit(units: units, parts: parts)!
                var next = 0
                for i in 0..<parts {
                    let r = s.range(i)
                    XCTAssertEqual(r.lowerBound, next); XCTAssertFalse(r.isEmpty)
                    XCTAssertLessThanOrEqual(r.count, units / parts + 1); XCTAssertGreaterThanOrEqual(r.count, units / parts)
                    for u in r { XCTAssertEqual(s.part(of: u), i) }
                    next = r.upperBound
                }
                XCTAssertEqual(next, units)
            }
        }
        XCTAssertNil(PartSplit(units: 3, parts: 4))
        XCTAssertNil(PartSplit(units: 3, parts: 0))
        XCTAssertEqual(PartSplit(units: 6, parts: 3)!.rows(2, unitRows: 256, height: 1500), 1024..<1500)
    }
}
