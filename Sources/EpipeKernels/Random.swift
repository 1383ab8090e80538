/// SplitMix64 (Steele, Lea & Flood 2014; the generator of Java's SplittableRandom): a 64-bit
/// state advanced by a fixed odd increment, each output the state passed through a bijective
/// mixer. Deterministic on every machine; the generator of k-means seeding, of the synthetic
/// slides' per-object draws and of the tests' data.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    @inlinable public init(seed: UInt64) { state = seed }

    @inlinable @inline(__always) public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mixState(state)
    }

    /// Uniform in [0, 1): the top 53 bits of `next()`.
    @inlinable @inline(__always) public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A stateless 64-bit hash: the first output of `SplitMix64(seed: v)`. For values derived
    /// from a position or an index (`hash(a ^ b * odd)`) rather than from a sequence.
    @inlinable @inline(__always) public static func hash(_ v: UInt64) -> UInt64 {
        mixState(v &+ 0x9E37_79B9_7F4A_7C15)
    }

    /// The output mixer (Stafford's variant 13 of the MurmurHash3 finaliser).
    @inlinable @inline(__always) static func mixState(_ s: UInt64) -> UInt64 {
        var z = s
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
