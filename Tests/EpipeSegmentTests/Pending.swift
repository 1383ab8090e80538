import XCTest
final class EpipeSegmentTestsPending: XCTestCase {}
