import XCTest
final class EpipeSynthPlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
