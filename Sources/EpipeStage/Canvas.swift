import Foundation
import EpipeCore
import EpipeImage

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
