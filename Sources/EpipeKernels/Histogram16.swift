
/// A histogram of uint16-range values, for exact percentiles over a streamed plane.
public struct Histogram16 {
    public var bins = [Int](repeating: 0, count: 65536)
    public var n = 0
    public var sum = 0.0
    public init() {}
    /// Counts the values; returns their sum (added to `sum`).
    @discardableResult
    public mutating func add(_ v: UnsafeBufferPointer<Float>) -> Double {
        var s = 0.0
        bins.withUnsafeMutableBufferPointer { b in
            let bp = b.baseAddress!
            for x in v {
                let c = x < 0 ? 0 : (x > 65535 ? 65535 : x)
                bp[Int(c + 0.5)] += 1
                s += Double(x)
            }
        }
        sum += s
        n += v.count
        return s
    }
    /// Adds another histogram's counts (e.g. of another part of the image).
    public mutating func merge(_ o: Histogram16) {
        bins.withUnsafeMutableBufferPointer { b in o.bins.withUnsafeBufferPointer { ob in for i in 0..<65536 { b[i] += ob[i] } } }
        n += o.n; sum += o.sum
    }
    public func percentile(_ p: Double) -> Double {
        guard n > 0 else { return 0 }
        let target = Int((p / 100 * Double(n - 1)).rounded())
        var acc = 0
        for (i, c) in bins.enumerated() { acc += c; if acc > target { return Double(i) } }
        return 65535
    }
    public var mean: Double { n > 0 ? sum / Double(n) : 0 }
    public var saturatedFraction: Double { n > 0 ? Double(bins[65535]) / Double(n) : 0 }
}
