import Foundation
import EpipeCore
import EpipeImage

/// Builds a downsampled (area-average) copy of a plane while it streams by in bands.
public final class Thumbnail {
    public let width: Int, height: Int, factor: Int
    let srcW: Int
    var sum: [Double]
    var cnt: [Int32]
    public init(srcWidth: Int, srcHeight: Int, maxSide: Int = 1024) {
        factor = max(1, Int((Double(max(srcWidth, srcHeight)) / Double(maxSide)).rounded(.up)))
        width = (srcWidth + factor - 1) / factor; height = (srcHeight + factor - 1) / factor
        srcW = srcWidth
        sum = [Double](repeating: 0, count: width * height); cnt = [Int32](repeating: 0, count: width * height)
    }
    public func add(rows: UnsafeBufferPointer<Float>, y0: Int, count: Int) {
        let f = factor, tw = width, w = srcW
        sum.withUnsafeMutableBufferPointer { sp in
            cnt.withUnsafeMutableBufferPointer { cp in
                for r in 0..<count {
                    let ty = (y0 + r) / f
                    guard ty < height else { break }
                    let src = rows.baseAddress! + r * w
                    let dst = sp.baseAddress! + ty * tw, cd = cp.baseAddress! + ty * tw
                    var x = 0, tx = 0
                    while x < w {
                        let end = min(w, x + f)
                        var acc = 0.0
                        for i in x..<end { acc += Double(src[i]) }
                        dst[tx] += acc; cd[tx] += Int32(end - x)
                        x = end; tx += 1
                    }
                }
            }
        }
    }
    public func add(rows: [Float], y0: Int, count: Int) { rows.withUnsafeBufferPointer { add(rows: $0, y0: y0, count: count) } }
    /// The thumbnail rows that source rows `r` fall in, and their sums and counts so far (a part of the
    /// slide hands them to the merge, which `add`s them to its own thumbnail).
    public func state(rows r: Range<Int>) -> (rows: Range<Int>, sum: [Double], cnt: [Int]) {
        guard !r.isEmpty else { return (0..<0, [], []) }
        let t = (r.lowerBound / factor)..<Swift.min(height, (r.upperBound - 1) / factor + 1)
        let span = (t.lowerBound * width)..<(t.upperBound * width)
        return (t, Array(sum[span]), cnt[span].map { Int($0) })
    }
    public func add(state s: (rows: Range<Int>, sum: [Double], cnt: [Int])) {
        let o = s.rows.lowerBound * width
        for i in 0..<s.sum.count { sum[o + i] += s.sum[i]; cnt[o + i] += Int32(s.cnt[i]) }
    }
    public var plane: [Float] { (0..<sum.count).map { cnt[$0] > 0 ? Float(sum[$0] / Double(cnt[$0])) : 0 } }
}
