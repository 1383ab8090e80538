import XCTest
import EpipeKernels

/// The bounded producer/consumer hand-off between two threads.
final class HandoffTests: XCTestCase {
    func testHandoffOrderErrorsAndCancel() throws {
        struct Boom: Error {}
        // every item arrives, in order, while the producer runs ahead by at most `capacity`
        var got: [Int] = []
        try Handoff<Int>(capacity: 2).run(produce: { out in for i in 0..<1000 { try out.put(i) } }, consume: { got.append($0) })
        XCTAssertEqual(got, Array(0..<1000))
        // a producer error reaches the consumer after the items already produced
        got = []
        XCTAssertThrowsError(try Handoff<Int>(capacity: 3).run(produce: { out in
            for i in 0..<5 { try out.put(i) }
            throw Boom()
        }, consume: { got.append($0) })) { XCTAssertTrue($0 is Boom) }
        XCTAssertEqual(got, Array(0..<5))
        // a consumer error stops the producer (its put throws) and is rethrown
        final class Count: @unchecked Sendable { var n = 0 }
        let produced = Count()
        XCTAssertThrowsError(try Handoff<Int>(capacity: 1).run(produce: { out in
            for i in 0..<1_000_000 { try out.put(i); produced.n += 1 }
        }, consume: { if $0 == 10 { throw Boom() } })) { XCTAssertTrue($0 is Boom) }
        XCTAssertLessThan(produced.n, 100)
    }
}
