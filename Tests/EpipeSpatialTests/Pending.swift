import XCTest
final class EpipeSpatialTestsPending: XCTestCase {}
