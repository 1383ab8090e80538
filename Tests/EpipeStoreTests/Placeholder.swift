import XCTest
final class EpipeStorePlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
