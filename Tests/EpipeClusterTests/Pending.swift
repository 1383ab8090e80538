import XCTest
final class EpipeClusterTestsPending: XCTestCase {}
