import Foundation
import Dispatch
import EpipeKernels

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

    /// `fillHoles` for holes whose bounding box is at most `maxSpan` px wide and high: a dark
    /// nucleolus is filled, a lumen ringed by nuclei is not (and the result stays local, so a
    /// tiled run equals the whole image).
    public static func fillHoles(_ mask: inout [Bool], width w: Int, height h: Int, maxSpan: Int) {
        var filled = mask
        fillHoles(&filled, width: w, height: h)
        var seen = [Bool](repeating: false, count: w * h)
        var stack: [Int32] = [], region: [Int32] = []
        for s in 0..<(w * h) where filled[s] && !mask[s] && !seen[s] {
            seen[s] = true; stack = [Int32(s)]; region.removeAll(keepingCapacity: true)
            var x0 = s % w, x1 = x0, y0 = s / w, y1 = y0
            while let q = stack.popLast() {
                region.append(q)
                let i = Int(q), x = i % w, y = i / w
                x0 = Swift.min(x0, x); x1 = Swift.max(x1, x); y0 = Swift.min(y0, y); y1 = Swift.max(y1, y)
                if x > 0 && !mask[i - 1] && !seen[i - 1] { seen[i - 1] = true; stack.append(Int32(i - 1)) }
                if x + 1 < w && !mask[i + 1] && !seen[i + 1] { seen[i + 1] = true; stack.append(Int32(i + 1)) }
                if y > 0 && !mask[i - w] && !seen[i - w] { seen[i - w] = true; stack.append(Int32(i - w)) }
                if y + 1 < h && !mask[i + w] && !seen[i + w] { seen[i + w] = true; stack.append(Int32(i + w)) }
            }
            if x1 - x0 < maxSpan && y1 - y0 < maxSpan { for q in region { mask[Int(q)] = true } }
        }
    }

    /// Expands labels by up to `distance` px (Euclidean) into background; each background pixel
    /// within `distance` of some label takes the label of its nearest labelled pixel, like skimage
    /// expand_labels. Ties (several labelled pixels at the same distance) go to the leftmost, then
    /// the uppermost of them, so the result is fully determined.
    ///
    /// Bounded search, O(pixels x (2 distance + 1)): a column pass finds, for every pixel, the
    /// nearest labelled pixel in its own column within `distance` rows (the upper one on a tie);
    /// then every background pixel compares those of the 2 distance + 1 columns around it (the
    /// nearest labelled pixel overall is the column-nearest of its own column). Columns, then
    /// rows, in parallel.
    /// With `rows`, only those rows of the result are computed and returned (a band grown with
    /// context rows above and below, without copying the whole window out).
    public static func expand(_ labels: [UInt32], width w: Int, height h: Int, distance d: Int, rows: Range<Int>? = nil) -> [UInt32] {
        precondition(labels.count == w * h)
        let rr = rows ?? 0..<h
        precondition(rr.lowerBound >= 0 && rr.upperBound <= h, "rows outside the image")
        guard d > 0, w > 0, h > 0 else { return Array(labels[(rr.lowerBound * w)..<(rr.upperBound * w)]) }
        let n = w * h
        let none = Int16.max
        let D = Swift.min(d, Int(Int16.max) - 1)
        var out = rows == nil ? labels : Array(labels[(rr.lowerBound * w)..<(rr.upperBound * w)])
        let outY0 = rr.lowerBound
        // dy[i]: signed row offset to the nearest labelled pixel of column x within D rows, or none
        let dy = UnsafeMutablePointer<Int16>.allocate(capacity: n)
        defer { dy.deallocate() }
        let parts = n >= 1 << 15 ? 2 : 1
        let DY = UnsafeShared(dy), L = UnsafeShared(labels)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let xa = w * part / parts, xb = w * (part + 1) / parts, m = xb - xa
            guard m > 0 else { return }
            let dy = DY.value
            L.value.withUnsafeBufferPointer { lab in
                let last = UnsafeMutablePointer<Int>.allocate(capacity: m)
                defer { last.deallocate() }
                last.initialize(repeating: Int.min / 2, count: m)
                for y in 0..<h {          // nearest above (or here)
                    let row = y * w + xa
                    for x in 0..<m {
                        if lab[row + x] != 0 { last[x] = y }
                        let up = y - last[x]
                        dy[row + x] = up <= D ? Int16(-up) : none
                    }
                }
                last.update(repeating: Int.max / 2, count: m)
                for y in stride(from: h - 1, through: 0, by: -1) {   // nearest below, if strictly nearer
                    let row = y * w + xa
                    for x in 0..<m {
                        if lab[row + x] != 0 { last[x] = y }
                        let down = last[x] - y
                        if down <= D {
                            let cur = dy[row + x]
                            if cur == none || down < -Int(cur) { dy[row + x] = Int16(down) }
                        }
                    }
                }
            }
        }
        let oh = rr.count
        let rparts = oh >= 64 ? 2 : 1
        out.withUnsafeMutableBufferPointer { ob in
            let O = UnsafeShared(ob.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: rparts) { part in
                let ya = outY0 + oh * part / rparts, yb = outY0 + oh * (part + 1) / rparts
                let dy = DY.value, o = O.value - outY0 * w
                let lim = D * D
                L.value.withUnsafeBufferPointer { lab in
                    for y in ya..<yb {
                        let row = y * w
                        for x in 0..<w where lab[row + x] == 0 {
                            var best = lim + 1, bx = 0, by = 0
                            let x0 = Swift.max(0, x - D), x1 = Swift.min(w - 1, x + D)
                            for xx in x0...x1 {
                                let c = dy[row + xx]
                                if c == none { continue }
                                let ddx = xx - x, ddy = Int(c)
                                let d2 = ddx * ddx + ddy * ddy
                                if d2 < best { best = d2; bx = xx; by = y + ddy }
                            }
                            if best <= lim { o[row + x] = lab[by * w + bx] }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Exact Euclidean distance transforms (Felzenszwalb & Huttenlocher 2012).
public enum DistanceTransform {
    /// For every pixel, squared Euclidean distance to the nearest pixel where `isFeature` is true,
    /// plus that feature pixel's index (-1 and +inf when there are no features).
    /// Ties: the nearest row within a column is the upper one, then the leftmost envelope site.
    public static func featureTransform(_ isFeature: [Bool], width w: Int, height h: Int) -> (dist2: [Double], nearest: [Int32]) {
        let n = w * h
        precondition(isFeature.count == n && n < Int(Int32.max), "Int32 pixel indices")
        var dist2 = [Double](repeating: .infinity, count: n)
        var nearest = [Int32](repeating: -1, count: n)
        isFeature.withUnsafeBufferPointer { F in
            dist2.withUnsafeMutableBufferPointer { D in
                nearest.withUnsafeMutableBufferPointer { N in
                    core(F, invert: false, w: w, h: h, dist: nil, dist2: D.baseAddress, nearest: N.baseAddress)
                }
            }
        }
        return (dist2, nearest)
    }

    /// Euclidean distance of every foreground pixel to the nearest background pixel (0 on
    /// background). With no background pixel at all, foreground distance is +inf.
    public static func edt(_ mask: [Bool], width: Int, height: Int) -> [Float] {
        let n = width * height
        precondition(mask.count == n && n < Int(Int32.max), "Int32 pixel indices")
        var out = [Float](repeating: .infinity, count: n)
        mask.withUnsafeBufferPointer { F in
            out.withUnsafeMutableBufferPointer { O in
                core(F, invert: true, w: width, h: height, dist: O.baseAddress, dist2: nil, nearest: nil)
            }
        }
        return out
    }

    /// Felzenszwalb-Huttenlocher: column pass (nearest feature row, two sweeps), then per-row
    /// lower envelope of parabolas. Features are pixels with `F[i] != invert`. Outputs (any
    /// subset): Euclidean distance, squared distance, nearest feature index. Rows with no
    /// feature in their whole column set are left untouched (callers pre-fill +inf / -1).
    static func core(_ F: UnsafeBufferPointer<Bool>, invert: Bool, w: Int, h: Int,
                     dist: UnsafeMutablePointer<Float>?, dist2: UnsafeMutablePointer<Double>?, nearest: UnsafeMutablePointer<Int32>?) {
        let n = w * h
        guard n > 0 else { return }
        let colNear = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { colNear.deallocate() }
        let parts = n >= 1 << 16 ? 2 : 1
        let FS = UnsafeShared(F), CS = UnsafeShared(colNear)
        // column pass, columns split between threads; sweeps are row-major inside a range
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let xa = w * part / parts, xb = w * (part + 1) / parts
            let F = FS.value, C = CS.value
            let m = xb - xa
            guard m > 0 else { return }
            let last = UnsafeMutablePointer<Int32>.allocate(capacity: m)
            defer { last.deallocate() }
            last.initialize(repeating: -1, count: m)
            for y in 0..<h {
                let row = y * w + xa
                for x in 0..<m {
                    if F[row + x] != invert { last[x] = Int32(y) }
                    C[row + x] = last[x]
                }
            }
            last.update(repeating: -1, count: m)
            for y in stride(from: h - 1, through: 0, by: -1) {
                let row = y * w + xa
                for x in 0..<m {
                    if F[row + x] != invert { last[x] = Int32(y) }
                    let l = Int(last[x])
                    if l >= 0 {
                        let c = Int(C[row + x])
                        if c < 0 || l - y < y - c { C[row + x] = Int32(l) }
                    }
                }
            }
        }
        let DS = UnsafeShared(dist), D2 = UnsafeShared(dist2), NS = UnsafeShared(nearest)
        let rparts = h >= 64 ? 2 : 1
        DispatchQueue.concurrentPerform(iterations: rparts) { p in
            let C = CS.value
            let y0 = h * p / rparts, y1 = h * (p + 1) / rparts
            let f = UnsafeMutablePointer<Double>.allocate(capacity: w)
            let v = UnsafeMutablePointer<Int>.allocate(capacity: w)
            let z = UnsafeMutablePointer<Double>.allocate(capacity: w + 1)
            defer { f.deallocate(); v.deallocate(); z.deallocate() }
            for y in y0..<y1 {
                var k = -1
                let row = y * w
                for q in 0..<w {
                    let c = Int(C[row + q])
                    if c < 0 { continue }
                    let d = Double(c - y)
                    let fq = d * d
                    f[q] = fq
                    if k < 0 { k = 0; v[0] = q; z[0] = -.infinity; z[1] = .infinity; continue }
                    var s: Double
                    while true {
                        let pp = v[k]
                        s = ((fq + Double(q * q)) - (f[pp] + Double(pp * pp))) / Double(2 * (q - pp))
                        if s <= z[k] && k > 0 { k -= 1 } else { break }
                    }
                    k += 1; v[k] = q; z[k] = s; z[k + 1] = .infinity
                }
                if k < 0 { continue }   // no feature reachable in this row
                var j = 0
                for q in 0..<w {
                    while z[j + 1] < Double(q) { j += 1 }
                    let pp = v[j]
                    let dx = Double(q - pp)
                    let d2 = dx * dx + f[pp]
                    if let o = DS.value { o[row + q] = Float(d2.squareRoot()) }
                    if let o = D2.value { o[row + q] = d2 }
                    if let o = NS.value { o[row + q] = Int32(Int(C[row + pp]) * w + pp) }
                }
            }
        }
    }
}

extension Segmenter {
    /// Calls `body(q)` for every pixel q of the 3 x 3 window around pixel p (p included), clipped
    /// at the image's edges, in raster order: the 8-neighbourhood of the floods.
    @inline(__always)
    static func window3x3(_ p: Int, width w: Int, height h: Int, _ body: (Int) -> Void) {
        let x = p % w, y = p / w
        let ya = y > 0 ? -1 : 0, yb = y + 1 < h ? 1 : 0
        let xa = x > 0 ? -1 : 0, xb = x + 1 < w ? 1 : 0
        for dy in ya...yb { for dx in xa...xb { body(p + dy * w + dx) } }
    }

    /// `window3x3` that also passes each pixel's column and row.
    @inline(__always)
    static func window3x3(_ p: Int, width w: Int, height h: Int, _ body: (_ q: Int, _ x: Int, _ y: Int) -> Void) {
        let x = p % w, y = p / w
        let ya = y > 0 ? -1 : 0, yb = y + 1 < h ? 1 : 0
        let xa = x > 0 ? -1 : 0, xb = x + 1 < w ? 1 : 0
        for dy in ya...yb { for dx in xa...xb { body(p + dy * w + dx, x + dx, y + dy) } }
    }
}
