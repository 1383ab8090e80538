import XCTest
final class EpipeClusterPlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
