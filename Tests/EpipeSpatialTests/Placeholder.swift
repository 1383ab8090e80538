import XCTest
final class EpipeSpatialPlaceholderTests: XCTestCase { func testBuilds() { XCTAssertTrue(true) } }
