import XCTest
final class EpipeImagePlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
