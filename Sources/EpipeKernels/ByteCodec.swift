/// A little-endian binary encoding of integers, doubles and arrays of them, for accumulators that
/// travel between processes exactly (a part's histograms and per-row sums for the merge): doubles
/// go as their bit patterns, so a value read back is the value written.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func int(_ v: Int) { var x = UInt64(bitPattern: Int64(v)); for _ in 0..<8 { bytes.append(UInt8(x & 0xFF)); x >>= 8 } }
    public mutating func double(_ v: Double) { int(Int(Int64(bitPattern: v.bitPattern))) }
    public mutating func ints(_ v: [Int]) { int(v.count); for x in v { int(x) } }
    public mutating func doubles(_ v: [Double]) { int(v.count); for x in v { double(x) } }
}

public struct ByteReader {
    public struct Truncated: Error, CustomStringConvertible { public init() {}; public var description: String { "truncated or damaged accumulator file" } }
    let bytes: [UInt8]
    var at = 0
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var atEnd: Bool { at == bytes.count }
    public mutating func int() throws -> Int {
        guard at + 8 <= bytes.count else { throw Truncated() }
        var x: UInt64 = 0
        for k in 0..<8 { x |= UInt64(bytes[at + k]) << (8 * UInt64(k)) }
        at += 8
        return Int(Int64(bitPattern: x))
    }
    public mutating func double() throws -> Double { Double(bitPattern: UInt64(bitPattern: Int64(try int()))) }
    public mutating func ints() throws -> [Int] {
        let n = try int(); guard n >= 0, n <= (bytes.count - at) / 8 else { throw Truncated() }
        return try (0..<n).map { _ in try int() }
    }
    public mutating func doubles() throws -> [Double] {
        let n = try int(); guard n >= 0, n <= (bytes.count - at) / 8 else { throw Truncated() }
        return try (0..<n).map { _ in try double() }
    }
}
