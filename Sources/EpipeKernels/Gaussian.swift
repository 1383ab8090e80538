import Foundation

/// The Gaussian of every module: radius `ceil(3 sigma)`, weights `exp(-i^2 / (2 sigma^2))`
/// normalised to sum 1, separable (vertical pass, then horizontal), Float accumulation in
/// symmetric pairs, edge replication. `blur` is `FilterPlan([.gaussian(sigma:)])` on a whole
/// plane, so a plane blurred here and a band blurred by a plan agree bit for bit.
public enum Gaussian {
    /// `ceil(3 * sigma)` (0 for sigma <= 0).
    @inlinable public static func radius(sigma: Double) -> Int {
        sigma > 0 ? Int((3 * sigma).rounded(.up)) : 0
    }

    /// Normalised 1-D kernel of length 2r+1 (`[1]` for sigma <= 0).
    public static func kernel(sigma: Double) -> [Float] {
        let r = radius(sigma: sigma)
        guard r > 0 else { return [1] }
        var k = [Double](repeating: 0, count: 2 * r + 1)
        var s = 0.0
        for i in -r...r { let v = exp(-Double(i * i) / (2 * sigma * sigma)); k[i + r] = v; s += v }
        return k.map { Float($0 / s) }
    }

    /// Separable Gaussian of a whole plane, edge replicate. sigma <= 0 copies.
    public static func blur(_ src: UnsafeBufferPointer<Float>, width: Int, height: Int, sigma: Double,
                            into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= width * height && dst.count >= width * height)
        guard width > 0, height > 0 else { return }
        _ = FilterPlan([.gaussian(sigma: sigma)]).apply(band: src, width: width, haloTop: 0, rows: height, haloBottom: 0,
                                                        y0: 0, imageHeight: height, into: dst)
    }

    /// Array convenience for `blur(_:width:height:sigma:into:)`.
    public static func blur(_ src: [Float], width: Int, height: Int, sigma: Double) -> [Float] {
        precondition(src.count >= width * height)
        return src.withUnsafeBufferPointer {
            FilterPlan([.gaussian(sigma: sigma)]).apply(band: $0, width: width, haloTop: 0, rows: height, haloBottom: 0,
                                                        y0: 0, imageHeight: height).values
        }
    }
}
