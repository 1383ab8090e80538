import Foundation
import Dispatch
import EpipeDenoise

/// Parameters of the classic nucleus segmentation recipe.
///
/// Pipeline of `Segmenter.nuclei`:
/// 1. Gaussian smoothing of the nuclear plane with `smoothSigma` (0 = off).
/// 2. Otsu threshold on the smoothed plane; foreground = smoothed > threshold.
/// 3. Optional hole filling (`fillHoles`).
/// 4. If `splitTouching`: exact Euclidean distance transform of the foreground, smoothed with
///    `distanceSmoothSigma`; seeds are the regional maxima whose dynamic (height above the
///    saddle to a higher maximum) is >= `seedH`, thinned so that no two seeds of one connected
///    component are closer than `seedMinDistance` (higher seed wins); then a seeded watershed
///    (priority flood, 8-connected, highest distance first) restricted to the foreground.
///    Otherwise: 8-connected components of the foreground.
/// 5. Objects smaller than `minArea` px are removed; labels are renumbered 1...N in raster
///    order of each object's first pixel.
public struct NucleiParams: Codable, Sendable, Equatable {
    public var smoothSigma: Double = 1.5
    public var minArea: Int = 20
    public var fillHoles: Bool = true
    public var splitTouching: Bool = true
    /// Typical nucleus diameter in px; drives the splitting parameters below.
    public var nucleusDiameter: Double = 12

    public init(smoothSigma: Double = 1.5, minArea: Int = 20, fillHoles: Bool = true,
                splitTouching: Bool = true, nucleusDiameter: Double = 12) {
        self.smoothSigma = smoothSigma
        self.minArea = minArea
        self.fillHoles = fillHoles
        self.splitTouching = splitTouching
        self.nucleusDiameter = nucleusDiameter
    }

    /// Minimum dynamic of a distance maximum to seed its own nucleus: max(0.5, 0.1 * diameter) px.
    public var seedH: Double { Swift.max(0.5, 0.1 * nucleusDiameter) }
    /// Minimum distance between two seeds in one component: max(1, 0.25 * diameter) px.
    public var seedMinDistance: Double { Swift.max(1, 0.25 * nucleusDiameter) }
    /// Gaussian sigma applied to the distance map before seeding/flooding: min(1, diameter / 12).
    public var distanceSmoothSigma: Double { Swift.min(1, nucleusDiameter / 12) }
}

public enum Segmenter {
    /// Nuclear plane -> labels 1...N (0 background); see `NucleiParams` for the recipe.
    public static func nuclei(_ plane: [Float], width: Int, height: Int, params: NucleiParams) -> (labels: [UInt32], count: Int, threshold: Float) {
        precondition(plane.count == width * height)
        let n = width * height
        guard n > 0 else { return ([], 0, 0) }
        let smooth = params.smoothSigma > 0 ? Denoise.gaussian(plane, width: width, height: height, sigma: params.smoothSigma) : plane
        let t = Threshold.otsu(smooth)
        var mask = [Bool](repeating: false, count: n)
        smooth.withUnsafeBufferPointer { s in
            mask.withUnsafeMutableBufferPointer { m in for i in 0..<n { m[i] = s[i] > t } }
        }
        if params.fillHoles { fillHoles(&mask, width: width, height: height) }
        var labels: [UInt32]
        if params.splitTouching {
            labels = splitByDistance(mask, width: width, height: height, params: params)
        } else {
            labels = connectedComponents(mask, width: width, height: height).labels
        }
        let count = removeSmallAndRelabel(&labels, minArea: params.minArea)
        return (labels, count, t)
    }

    /// Distance-transform seeded watershed of a binary mask (step 4 of `NucleiParams`).
    public static func splitByDistance(_ mask: [Bool], width: Int, height: Int, params: NucleiParams) -> [UInt32] {
        let n = width * height
        var dist = DistanceTransform.edt(mask, width: width, height: height)
        for i in 0..<n where dist[i].isInfinite { dist[i] = Float(width + height) }
        if params.distanceSmoothSigma > 0 {
            dist = Denoise.gaussian(dist, width: width, height: height, sigma: params.distanceSmoothSigma)
            for i in 0..<n where !mask[i] { dist[i] = 0 }
        }
        let seeds = seedPixels(dist, mask: mask, width: width, height: height, h: Float(params.seedH), minDistance: params.seedMinDistance)
        var markers = [UInt32](repeating: 0, count: n)
        for (k, p) in seeds.enumerated() { markers[p] = UInt32(k + 1) }
        return watershed(dist, markers: markers, mask: mask, width: width, height: height, highFirst: true)
    }

    /// Seeds = one pixel per regional maximum of `f` (within `mask`, 8-connected) whose dynamic
    /// is >= h (the global maximum of each component always qualifies), then greedy thinning
    /// by `minDistance` within each connected component, highest first. Returns pixel indices.
    public static func seedPixels(_ f: [Float], mask: [Bool], width w: Int, height h: Int, h hmin: Float, minDistance: Double) -> [Int] {
        let n = w * h
        // sort foreground pixels by value descending (packed keys; ties by index descending)
        var keys = [UInt64]()
        keys.reserveCapacity(n / 2)
        for i in 0..<n where mask[i] { keys.append(UInt64(Swift.max(f[i], 0).bitPattern) << 32 | UInt64(i)) }
        keys.sort()
        var parent = [Int32](repeating: -1, count: n)   // -1: unprocessed
        var peak = [Int32](repeating: -1, count: n)     // for roots: peak pixel
        var dynamic = [Float](repeating: -1, count: n)  // per peak pixel: dynamic (inf for survivors)
        func find(_ x: Int32) -> Int32 {
            var r = x
            while parent[Int(r)] != r { r = parent[Int(r)] }
            var c = x
            while parent[Int(c)] != r { let nx = parent[Int(c)]; parent[Int(c)] = r; c = nx }
            return r
        }
        var peaks: [Int] = []
        for kk in stride(from: keys.count - 1, through: 0, by: -1) {
            let p = Int(keys[kk] & 0xffff_ffff)
            let fp = f[p]
            parent[p] = Int32(p)
            var root = Int32(p)
            var hasRoot = false
            let x = p % w, y = p / w
            for dy in -1...1 {
                let yy = y + dy
                if yy < 0 || yy >= h { continue }
                for dx in -1...1 {
                    let xx = x + dx
                    if (dx == 0 && dy == 0) || xx < 0 || xx >= w { continue }
                    let q = yy * w + xx
                    if parent[q] < 0 || q == p { continue }
                    let rq = find(Int32(q))
                    if !hasRoot { root = rq; hasRoot = true; parent[p] = rq; continue }
                    if rq == root { continue }
                    // merge two components at level fp: the lower peak dies
                    let pa = Int(peak[Int(root)]), pb = Int(peak[Int(rq)])
                    let aWins = f[pa] > f[pb] || (f[pa] == f[pb] && pa < pb)
                    let (win, lose) = aWins ? (root, rq) : (rq, root)
                    let lp = Int(peak[Int(lose)])
                    dynamic[lp] = f[lp] - fp
                    parent[Int(lose)] = win
                    root = win
                }
            }
            if !hasRoot { peak[p] = Int32(p); peaks.append(p) }
            else if parent[p] != root { parent[p] = root }
        }
        // survivors
        var compOf = [Int32](repeating: -1, count: n)
        var kept: [Int] = []
        var candidates: [Int] = []
        for p in peaks {
            if dynamic[p] < 0 { dynamic[p] = .infinity }
            if dynamic[p] >= hmin { candidates.append(p) }
        }
        // order by height desc, then index
        candidates.sort { f[$0] != f[$1] ? f[$0] > f[$1] : $0 < $1 }
        var perComp: [Int32: [Int]] = [:]
        let md2 = minDistance * minDistance
        for p in candidates {
            let c = find(Int32(p))
            compOf[p] = c
            var ok = true
            if let list = perComp[c] {
                let px = Double(p % w), py = Double(p / w)
                for q in list {
                    let dx = px - Double(q % w), dy = py - Double(q / w)
                    if dx * dx + dy * dy < md2 { ok = false; break }
                }
            }
            if ok { kept.append(p); perComp[c, default: []].append(p) }
        }
        return kept
    }

    /// Seeded watershed by priority flood (Meyer), 8-connected, restricted to `mask`.
    /// With `highFirst` the highest values of `f` flood first (i.e. the watershed of -f).
    /// Equal priorities are processed in insertion order. Pixels not reachable from any marker stay 0.
    public static func watershed(_ f: [Float], markers: [UInt32], mask: [Bool], width w: Int, height h: Int, highFirst: Bool) -> [UInt32] {
        let n = w * h
        var out = markers
        var heap = MinHeap()
        var age: UInt64 = 0
        @inline(__always) func key(_ v: Float) -> UInt64 {
            // order-preserving map of Float to UInt32
            let b = v.bitPattern
            var u = (b & 0x8000_0000) != 0 ? ~b : (b | 0x8000_0000)
            if highFirst { u = ~u }
            return UInt64(u) << 32
        }
        for i in 0..<n where out[i] != 0 { heap.push(key(f[i]) | (age & 0xffff_ffff), Int32(i)); age += 1 }
        while let (_, pi) = heap.pop() {
            let p = Int(pi)
            let lab = out[p]
            let x = p % w, y = p / w
            for dy in -1...1 {
                let yy = y + dy
                if yy < 0 || yy >= h { continue }
                for dx in -1...1 {
                    let xx = x + dx
                    if xx < 0 || xx >= w { continue }
                    let q = yy * w + xx
                    if out[q] != 0 || !mask[q] { continue }
                    out[q] = lab
                    heap.push(key(f[q]) | (age & 0xffff_ffff), Int32(q)); age += 1
                }
            }
        }
        return out
    }

    /// Removes labels with area < minArea and renumbers the rest 1...N in raster order of first
    /// pixel. Returns N.
    @discardableResult
    public static func removeSmallAndRelabel(_ labels: inout [UInt32], minArea: Int) -> Int {
        var maxL: UInt32 = 0
        for v in labels where v > maxL { maxL = v }
        var area = [Int](repeating: 0, count: Int(maxL) + 1)
        for v in labels { area[Int(v)] += 1 }
        var map = [UInt32](repeating: UInt32.max, count: Int(maxL) + 1)
        map[0] = 0
        var next: UInt32 = 0
        labels.withUnsafeMutableBufferPointer { L in
            for i in 0..<L.count {
                let v = Int(L[i])
                if v == 0 { continue }
                if map[v] == UInt32.max {
                    if area[v] >= minArea { next += 1; map[v] = next } else { map[v] = 0 }
                }
                L[i] = map[v]
            }
        }
        return Int(next)
    }
}

/// Binary min-heap of (UInt64 key, Int32 payload).
struct MinHeap {
    var keys: [UInt64] = []
    var vals: [Int32] = []
    var isEmpty: Bool { keys.isEmpty }
    mutating func push(_ k: UInt64, _ v: Int32) {
        keys.append(k); vals.append(v)
        var i = keys.count - 1
        while i > 0 {
            let p = (i - 1) >> 1
            if keys[p] <= k { break }
            keys[i] = keys[p]; vals[i] = vals[p]
            i = p
        }
        keys[i] = k; vals[i] = v
    }
    mutating func pop() -> (UInt64, Int32)? {
        guard let top = keys.first else { return nil }
        let tv = vals[0]
        let lk = keys.removeLast(), lv = vals.removeLast()
        let n = keys.count
        if n > 0 {
            var i = 0
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                var c = l
                if l + 1 < n && keys[l + 1] < keys[l] { c = l + 1 }
                if keys[c] >= lk { break }
                keys[i] = keys[c]; vals[i] = vals[c]
                i = c
            }
            keys[i] = lk; vals[i] = lv
        }
        return (top, tv)
    }
}
