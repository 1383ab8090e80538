import XCTest
final class EpipeSegmentPlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
