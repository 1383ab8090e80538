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
    public var plane: [Float] { (0..<sum.count).map { cnt[$0] > 0 ? Float(sum[$0] / Double(cnt[$0])) : 0 } }
}

/// A histogram of uint16-range values, for exact percentiles over a streamed plane.
public struct Histogram16 {
    public var bins = [Int](repeating: 0, count: 65536)
    public var n = 0
    public var sum = 0.0
    public init() {}
    public mutating func add(_ v: UnsafeBufferPointer<Float>) {
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

/// A tiny RGB canvas for QC pictures.
public struct Canvas {
    public let width: Int, height: Int
    public var pixels: [UInt8]
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
    }
    public init(gray: [UInt8], width: Int, height: Int) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = gray[i]; pixels[3 * i + 1] = gray[i]; pixels[3 * i + 2] = gray[i] }
    }
    public mutating func set(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 3 * (y * width + x); pixels[i] = c.0; pixels[i + 1] = c.1; pixels[i + 2] = c.2
    }
    public mutating func rect(_ x0: Int, _ y0: Int, _ w: Int, _ h: Int, _ c: (UInt8, UInt8, UInt8)) {
        let ya = max(0, y0), yb = min(height, y0 + h), xa = max(0, x0), xb = min(width, x0 + w)
        guard ya < yb, xa < xb else { return }   // empty or off the canvas (ranges are unchecked in release)
        for y in ya..<yb { for x in xa..<xb { set(x, y, c) } }
    }
    /// Places another canvas at (x0, y0).
    public mutating func blit(_ o: Canvas, at x0: Int, _ y0: Int) {
        for y in 0..<o.height { for x in 0..<o.width { let i = 3 * (y * o.width + x); set(x0 + x, y0 + y, (o.pixels[i], o.pixels[i + 1], o.pixels[i + 2])) } }
    }
    public func write(_ path: String) throws { try PNG.writeRGB(path: path, width: width, height: height, pixels: pixels) }

    /// A categorical colour (tab20-like) for index i.
    public static func color(_ i: Int) -> (UInt8, UInt8, UInt8) {
        let p: [(UInt8, UInt8, UInt8)] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229)]
        return p[((i % p.count) + p.count) % p.count]
    }
    /// Blue-white-red for a z value in [-2, 2].
    public static func diverging(_ z: Double) -> (UInt8, UInt8, UInt8) {
        let t = max(-1, min(1, z / 2))
        if t >= 0 { let v = UInt8(255 * (1 - t)); return (255, v, v) }
        let v = UInt8(255 * (1 + t)); return (v, v, 255)
    }
}

/// Resolves a channel given by name (case-insensitive) or index.
public func channelIndex(_ spec: String, names: [String], what: String) throws -> Int {
    if let i = Int(spec), i >= 0, i < names.count { return i }
    if let i = names.firstIndex(where: { $0.caseInsensitiveCompare(spec) == .orderedSame }) { return i }
    throw EpipeError.badInput("\(what) \"\(spec)\": no such channel; channels are \(names.joined(separator: ","))")
}

/// The nuclear stain by its usual names, else channel 0.
public func guessNuclear(_ names: [String]) -> Int {
    let keys = ["dapi", "hoechst", "dna", "nuclear", "nuclei", "h3342", "draq5", "sytox", "ir191", "ir193"]
    for k in keys { if let i = names.firstIndex(where: { $0.lowercased().hasPrefix(k) || $0.lowercased().contains(k) }) { return i } }
    return 0
}
