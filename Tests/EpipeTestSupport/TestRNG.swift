/// A seeded generator for tests (SplitMix64): the same sequence on every machine, so generated
/// test data and floors measured on it are reproducible.
public struct TestRNG: RandomNumberGenerator {
    public var s: UInt64
    public init(s: UInt64) { self.s = s }
    public mutating func next() -> UInt64 {
        s &+= 0x9E37_79B9_7F4A_7C15
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
