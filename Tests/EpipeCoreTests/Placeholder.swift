import XCTest
final class EpipeCorePlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
