import Foundation
import Dispatch
import EpipeDenoise

extension Segmenter {
    /// 8-connected component labelling of `mask`. Labels are 1...count in raster order of each
    /// component's first pixel (like skimage.measure.label); 0 is background.
    public static func connectedComponents(_ mask: [Bool], width: Int, height: Int) -> (labels: [UInt32], count: Int) {
        precondition(mask.count == width * height)
        var labels = [UInt32](repeating: 0, count: width * height)
        var parent: [UInt32] = [0]
        @inline(__always) func find(_ x: UInt32, _ p: inout [UInt32]) -> UInt32 {
            var r = x
            while p[Int(r)] != r { r = p[Int(r)] }
            var c = x
            while p[Int(c)] != r { let n = p[Int(c)]; p[Int(c)] = r; c = n }
            return r
        }
        @inline(__always) func union(_ a: UInt32, _ b: UInt32, _ p: inout [UInt32]) -> UInt32 {
            let ra = find(a, &p), rb = find(b, &p)
            if ra == rb { return ra }
            if ra < rb { p[Int(rb)] = ra; return ra } else { p[Int(ra)] = rb; return rb }
        }
        mask.withUnsafeBufferPointer { m in
            labels.withUnsafeMutableBufferPointer { L in
                for y in 0..<height {
                    let row = y * width
                    for x in 0..<width where m[row + x] {
                        var cur: UInt32 = 0
                        // previously visited neighbours: W, NW, N, NE
                        if x > 0, L[row + x - 1] != 0 { cur = L[row + x - 1] }
                        if y > 0 {
                            let up = row - width
                            if x > 0, L[up + x - 1] != 0 { cur = cur == 0 ? L[up + x - 1] : union(cur, L[up + x - 1], &parent) }
                            if L[up + x] != 0 { cur = cur == 0 ? L[up + x] : union(cur, L[up + x], &parent) }
                            if x + 1 < width, L[up + x + 1] != 0 { cur = cur == 0 ? L[up + x + 1] : union(cur, L[up + x + 1], &parent) }
                        }
                        if cur == 0 {
                            cur = UInt32(parent.count)
                            parent.append(cur)
                        }
                        L[row + x] = cur
                    }
                }
                // resolve: roots are minimal provisional labels = raster order of first pixel
                var final = [UInt32](repeating: 0, count: parent.count)
                var next: UInt32 = 0
                for i in 1..<parent.count {
                    let r = find(UInt32(i), &parent)
                    if r == UInt32(i) { next += 1; final[i] = next } else { final[i] = final[Int(r)] }
                }
                for i in 0..<L.count where L[i] != 0 { L[i] = final[Int(L[i])] }
                parent = [next]
            }
        }
        return (labels, Int(parent[0]))
    }

    /// Fills holes: background regions (4-connected, the dual of 8-connected foreground) that do
    /// not touch the image border become foreground (like scipy binary_fill_holes).
    public static func fillHoles(_ mask: inout [Bool], width: Int, height: Int) {
        precondition(mask.count == width * height)
        guard width > 0, height > 0 else { return }
        precondition(width * height < Int(Int32.max), "Int32 pixel indices")
        var outside = [Bool](repeating: false, count: width * height)
        var stack: [Int32] = []
        func push(_ i: Int) { if !mask[i] && !outside[i] { outside[i] = true; stack.append(Int32(i)) } }
        for x in 0..<width { push(x); push((height - 1) * width + x) }
        for y in 0..<height { push(y * width); push(y * width + width - 1) }
        while let s = stack.popLast() {
            let i = Int(s), x = i % width, y = i / width
            if x > 0 { push(i - 1) }
            if x + 1 < width { push(i + 1) }
            if y > 0 { push(i - width) }
            if y + 1 < height { push(i + width) }
        }
        for i in 0..<mask.count where !mask[i] && !outside[i] { mask[i] = true }
    }

    /// Expands labels by up to `distance` px (Euclidean) into background; each background pixel
    /// within `distance` of some label takes the label of its nearest labelled pixel (exact
    /// Euclidean feature transform; ties broken deterministically), like skimage expand_labels.
    public static func expand(_ labels: [UInt32], width: Int, height: Int, distance: Int) -> [UInt32] {
        precondition(labels.count == width * height)
        guard distance > 0 else { return labels }
        let (d2, nearest) = DistanceTransform.featureTransform(labels.map { $0 != 0 }, width: width, height: height)
        var out = labels
        let lim = Double(distance * distance)
        for i in 0..<out.count where out[i] == 0 {
            if d2[i] <= lim, nearest[i] >= 0 { out[i] = labels[Int(nearest[i])] }
        }
        return out
    }
}

/// Exact Euclidean distance transforms (Felzenszwalb & Huttenlocher 2012).
public enum DistanceTransform {
    /// For every pixel, squared Euclidean distance to the nearest pixel where `isFeature` is true,
    /// plus that feature pixel's index (-1 and +inf when there are no features).
    public static func featureTransform(_ isFeature: [Bool], width w: Int, height h: Int) -> (dist2: [Double], nearest: [Int32]) {
        let n = w * h
        precondition(isFeature.count == n && n < Int(Int32.max), "Int32 pixel indices")
        // column pass (row-major sweeps): nearest feature row per pixel, ties to the upper one
        var colNear = [Int32](repeating: -1, count: n)
        isFeature.withUnsafeBufferPointer { F in
            colNear.withUnsafeMutableBufferPointer { C in
                var last = [Int32](repeating: -1, count: w)
                for y in 0..<h {
                    let row = y * w
                    for x in 0..<w {
                        if F[row + x] { last[x] = Int32(y) }
                        C[row + x] = last[x]
                    }
                }
                for x in 0..<w { last[x] = -1 }
                for y in stride(from: h - 1, through: 0, by: -1) {
                    let row = y * w
                    for x in 0..<w {
                        if F[row + x] { last[x] = Int32(y) }
                        let l = Int(last[x])
                        if l >= 0 {
                            let c = Int(C[row + x])
                            if c < 0 || l - y < y - c { C[row + x] = Int32(l) }
                        }
                    }
                }
            }
        }
        var dist2 = [Double](repeating: .infinity, count: n)
        var nearest = [Int32](repeating: -1, count: n)
        let C = UnsafeShared(colNear)
        dist2.withUnsafeMutableBufferPointer { dp in
            nearest.withUnsafeMutableBufferPointer { np in
                let D = UnsafeShared(dp), N = UnsafeShared(np)
                let parts = h >= 64 ? 2 : 1
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    let y0 = h * p / parts, y1 = h * (p + 1) / parts
                    var f = [Double](repeating: 0, count: w)
                    var v = [Int](repeating: 0, count: w)
                    var z = [Double](repeating: 0, count: w + 1)
                    for y in y0..<y1 {
                        var any = false
                        for x in 0..<w {
                            let c = Int(C.value[y * w + x])
                            if c < 0 { f[x] = .infinity } else { let d = Double(c - y); f[x] = d * d; any = true }
                        }
                        guard any else { continue }
                        // lower envelope of parabolas over finite sites
                        var k = -1
                        for q in 0..<w where f[q].isFinite {
                            if k < 0 { k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity; continue }
                            var s: Double
                            while true {
                                let p = v[k]
                                s = ((f[q] + Double(q * q)) - (f[p] + Double(p * p))) / Double(2 * (q - p))
                                if s <= z[k] && k > 0 { k -= 1 } else { break }
                            }
                            if s <= z[k] { // k == 0 and new parabola dominates entirely
                                v[0] = q; z[0] = -.infinity; z[1] = .infinity
                            } else {
                                k += 1; v[k] = q; z[k] = s; z[k + 1] = .infinity
                            }
                        }
                        var j = 0
                        for q in 0..<w {
                            while z[j + 1] < Double(q) { j += 1 }
                            let p = v[j]
                            let dx = Double(q - p)
                            D.value[y * w + q] = dx * dx + f[p]
                            N.value[y * w + q] = Int32(Int(C.value[y * w + p]) * w + p)
                        }
                    }
                }
            }
        }
        return (dist2, nearest)
    }

    /// Euclidean distance of every foreground pixel to the nearest background pixel (0 on
    /// background). With no background pixel at all, foreground distance is +inf.
    public static func edt(_ mask: [Bool], width: Int, height: Int) -> [Float] {
        let (d2, _) = featureTransform(mask.map { !$0 }, width: width, height: height)
        return d2.map { Float($0.squareRoot()) }
    }
}
