import EpipeKernels

/// A seeded generator for tests: the product's SplitMix64, so generated test data and floors
/// measured on it are the same on every machine.
public typealias TestRNG = SplitMix64

extension SplitMix64 {
    public init(s: UInt64) { self.init(seed: s) }
}
