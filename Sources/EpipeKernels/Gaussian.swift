import Foundation

/// The Gaussian of every module: radius `ceil(3 sigma)`, weights `exp(-i^2 / (2 sigma^2))`
/// normalised to sum 1, separable (vertical pass, then horizontal), Float accumulation in
/// symmetric pairs, edge replication. `blur` equals `FilterPlan([.gaussian(sigma:)])` on a whole
/// plane bit for bit, so a plane blurred here and a band blurred by a plan agree.
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

    /// Separable Gaussian of a whole plane, edge replicate. sigma <= 0 copies. `dst` must not
    /// overlap `src`.
    ///
    /// The same arithmetic as the plan's Gaussian (`Filters.gaussVertical`, then
    /// `Filters.gaussHorizontal`, hence the same bits), without the plan's padded copy of the
    /// plane: interior rows read the source in place, the `r` rows at each edge a window of
    /// clamped rows; a column beyond the edge has the vertical sum of the edge column.
    public static func blur(_ src: UnsafeBufferPointer<Float>, width w: Int, height h: Int, sigma: Double,
                            into dst: UnsafeMutableBufferPointer<Float>) {
        precondition(src.count >= w * h && dst.count >= w * h)
        guard w > 0, h > 0 else { return }
        let k = kernel(sigma: sigma)
        let r = k.count / 2
        if r == 0 { dst.baseAddress!.update(from: src.baseAddress!, count: w * h); return }
        let kp = UnsafeMutablePointer<Float>.allocate(capacity: k.count)
        defer { kp.deallocate() }
        for i in 0..<k.count { kp[i] = k[i] }
        let S = UnsafeShared(src.baseAddress!), D = SharedPointer(dst.baseAddress!), K = UnsafeShared(UnsafePointer(kp))
        parallelChunks(h, minChunk: 16, cost: w * (r + 1)) { a, b in
            let src = S.value, kp = K.value
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: w + 2 * r)
            defer { tmp.deallocate() }
            var window: UnsafeMutablePointer<Float>? = nil
            defer { window?.deallocate() }
            for y in a..<b {
                let top: UnsafePointer<Float>
                if y >= r && y + r < h {
                    top = src + (y - r) * w
                } else {
                    let win = window ?? .allocate(capacity: (2 * r + 1) * w)
                    window = win
                    for j in 0...(2 * r) {
                        let yy = Swift.min(Swift.max(y - r + j, 0), h - 1)
                        (win + j * w).update(from: src + yy * w, count: w)
                    }
                    top = UnsafePointer(win)
                }
                Filters.gaussVertical(tmp + r, top, w, w, r, kp)
                let first = tmp[r], last = tmp[r + w - 1]
                for j in 0..<r { tmp[j] = first; tmp[r + w + j] = last }
                Filters.gaussHorizontal(D.pointer + y * w, tmp, w, r, kp)
            }
        }
    }

    /// Array convenience for `blur(_:width:height:sigma:into:)`.
    public static func blur(_ src: [Float], width: Int, height: Int, sigma: Double) -> [Float] {
        precondition(src.count >= width * height)
        let n = width > 0 && height > 0 ? width * height : 0
        return [Float](unsafeUninitializedCapacity: n) { buf, count in
            src.withUnsafeBufferPointer { blur($0, width: width, height: height, sigma: sigma, into: buf) }
            count = n
        }
    }
}
