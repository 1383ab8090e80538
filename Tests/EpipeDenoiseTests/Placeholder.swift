import XCTest
final class EpipeDenoisePlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
