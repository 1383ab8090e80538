import Foundation
import Dispatch
import EpipeKernels
@testable import EpipeSegment

// Reference implementations the tests hold the shipped code against (moved out of the product:
// nothing in Sources calls them). Each is the simple, whole-image form of a streamed or
// parallel kernel.

extension Segmenter {
    /// Reference implementation of `seedPixels` (union-find over all mask pixels in decreasing f).
    static func seedPixelsUnionFind(_ f: [Float], mask: [Bool], width w: Int, height h: Int, h hmin: Float, minDistance: Double,
                           components cc: [UInt32], componentCount ncc: Int) -> [Int] {
        let n = w * h
        precondition(f.count == n && mask.count == n && cc.count == n && n < Int(Int32.max), "Int32 pixel indices")
        guard ncc > 0 else { return [] }
        // pixels grouped by component (raster order inside)
        var start = [Int](repeating: 0, count: ncc + 2)
        for i in 0..<n { start[Int(cc[i]) + 1] += 1 }
        for c in 0...ncc { start[c + 1] += start[c] }
        var list = [Int32](repeating: 0, count: n - start[1])
        var pos = start
        for i in 0..<n where cc[i] != 0 { let c = Int(cc[i]); list[pos[c] - start[1]] = Int32(i); pos[c] += 1 }
        let base = start[1]
        let bounds = componentChunks(start: start, count: ncc, total: n - base)
        let parent = UnsafeMutablePointer<Int32>.allocate(capacity: n)   // -1: not yet processed
        let peak = UnsafeMutablePointer<Int32>.allocate(capacity: n)     // for roots: peak pixel
        let dynamic = UnsafeMutablePointer<Float>.allocate(capacity: n)  // per peak pixel
        parent.initialize(repeating: -1, count: n)
        defer { parent.deallocate(); peak.deallocate(); dynamic.deallocate() }
        var results = [[Int]](repeating: [], count: bounds.count - 1)
        let P = UnsafeShared(parent), PK = UnsafeShared(peak), DY = UnsafeShared(dynamic)
        let F = UnsafeShared(f), L = UnsafeShared(list), ST = UnsafeShared(start)
        let md2 = minDistance * minDistance
        results.withUnsafeMutableBufferPointer { Rb in
            let R = UnsafeShared(Rb)
            DispatchQueue.concurrentPerform(iterations: bounds.count - 1) { chunk in
                let parent = P.value, peak = PK.value, dynamic = DY.value
                @inline(__always) func find(_ x: Int32) -> Int32 {
                    var r = x
                    while parent[Int(r)] != r { r = parent[Int(r)] }
                    var c = x
                    while parent[Int(c)] != r { let nx = parent[Int(c)]; parent[Int(c)] = r; c = nx }
                    return r
                }
                var keys: [UInt64] = []
                var scratch: [UInt64] = []
                var peaks: [Int] = []
                var kept: [Int] = []
                var out: [Int] = []
                F.value.withUnsafeBufferPointer { Fp in
                    for c in bounds[chunk]..<bounds[chunk + 1] {
                        keys.removeAll(keepingCapacity: true)
                        for k in (ST.value[c] - base)..<(ST.value[c + 1] - base) {
                            let p = L.value[k]
                            keys.append(UInt64(~Fp[Int(p)].sortKey) << 32 | UInt64(UInt32(p)))
                        }
                        Segmenter.sortKeysByHigh32(&keys, scratch: &scratch)
                        peaks.removeAll(keepingCapacity: true)
                        for key in keys {
                            let p = Int(key & 0xffff_ffff)
                            let fp = Fp[p]
                            parent[p] = Int32(p)
                            var root: Int32 = -1
                            let x = p % w, y = p / w
                            let y0 = y > 0 ? -1 : 0, y1 = y + 1 < h ? 1 : 0
                            let x0 = x > 0 ? -1 : 0, x1 = x + 1 < w ? 1 : 0
                            for dy in y0...y1 {
                                for dx in x0...x1 {
                                    let q = p + dy * w + dx
                                    if q == p || parent[q] < 0 { continue }
                                    let rq = find(Int32(q))
                                    if root < 0 { root = rq; continue }
                                    if rq == root { continue }
                                    let pa = Int(peak[Int(root)]), pb = Int(peak[Int(rq)])
                                    let aWins = Fp[pa] > Fp[pb] || (Fp[pa] == Fp[pb] && pa < pb)
                                    let win = aWins ? root : rq, lose = aWins ? rq : root
                                    let lp = Int(peak[Int(lose)])
                                    dynamic[lp] = Fp[lp] - fp
                                    parent[Int(lose)] = win
                                    root = win
                                }
                            }
                            if root < 0 { peak[p] = Int32(p); dynamic[p] = .infinity; peaks.append(p) }
                            else { parent[p] = root }
                        }
                        // peaks were created in decreasing order of f (ties: lower index first)
                        kept.removeAll(keepingCapacity: true)
                        for p in peaks where dynamic[p] >= hmin { Segmenter.keepApart(p, &kept, width: w, minDistance2: md2) }
                        out.append(contentsOf: kept)
                    }
                }
                R.value[chunk] = out
            }
        }
        return results.flatMap { $0 }
    }

    /// Single-queue reference implementation of `watershed` (same result, one thread).
    static func watershedGlobal(_ f: [Float], markers: [UInt32], mask: [Bool], width w: Int, height h: Int, highFirst: Bool) -> [UInt32] {
        let n = w * h
        precondition(f.count == n && markers.count == n && mask.count == n && n < Int(Int32.max), "Int32 pixel indices")
        var out = markers
        // every pixel is pushed at most once (labelled when pushed)
        var heap = MinHeap(capacity: n)
        defer { heap.deallocate() }
        var age: UInt64 = 0
        @inline(__always) func key(_ v: Float) -> UInt64 { UInt64(highFirst ? ~v.sortKey : v.sortKey) << 32 }
        f.withUnsafeBufferPointer { F in
            mask.withUnsafeBufferPointer { M in
                out.withUnsafeMutableBufferPointer { O in
                    for i in 0..<n where O[i] != 0 { heap.push(key(F[i]) | (age & 0xffff_ffff), Int32(i)); age += 1 }
                    while heap.count > 0 {
                        let p = Int(heap.pop())
                        let lab = O[p]
                        let x = p % w, y = p / w
                        let y0 = y > 0 ? -1 : 0, y1 = y + 1 < h ? 1 : 0
                        let x0 = x > 0 ? -1 : 0, x1 = x + 1 < w ? 1 : 0
                        for dy in y0...y1 {
                            for dx in x0...x1 {
                                let q = p + dy * w + dx
                                if O[q] != 0 || !M[q] { continue }
                                O[q] = lab
                                heap.push(key(F[q]) | (age & 0xffff_ffff), Int32(q)); age += 1
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

extension Quantify {
    /// Per label 1...count: area, centroid (pixel centres, x = column, y = row), shape from
    /// second central moments as skimage regionprops (major/minor = 4 sqrt(eigenvalue),
    /// eccentricity = sqrt(1 - l2/l1), orientation = angle in radians between the row axis and
    /// the major axis in (-pi/2, pi/2]), extent = area / bbox area, solidity = area / convex
    /// area where the convex area counts pixels whose centres lie in the convex hull of the
    /// object's pixel centres (so a rectangle has solidity exactly 1), and channel means.
    /// Labels > count are ignored. Cells with area 0 get zeros.
    static func cells(labels: [UInt32], count: Int, width: Int, height: Int, channels: [[Float]]) -> CellTable {
        precondition(labels.count == width * height)
        let n = count
        var area = [Int](repeating: 0, count: n + 1)
        var sx = [Double](repeating: 0, count: n + 1), sy = sx
        var minX = [Int](repeating: Int.max, count: n + 1), maxX = [Int](repeating: -1, count: n + 1)
        var minY = minX, maxY = maxX
        // row extents: runs (label, y, xmin, xmax), appended in raster order
        var runIndex = [Int32](repeating: -1, count: n + 1)
        var lastRow = [Int32](repeating: -1, count: n + 1)
        var runLabel: [Int32] = [], runY: [Int32] = [], runMin: [Int32] = [], runMax: [Int32] = []
        labels.withUnsafeBufferPointer { L in
            for y in 0..<height {
                let row = y * width
                for x in 0..<width {
                    let l = Int(L[row + x])
                    if l == 0 || l > n { continue }
                    area[l] += 1; sx[l] += Double(x); sy[l] += Double(y)
                    if x < minX[l] { minX[l] = x }
                    if x > maxX[l] { maxX[l] = x }
                    if y < minY[l] { minY[l] = y }
                    maxY[l] = y
                    if lastRow[l] != Int32(y) {
                        lastRow[l] = Int32(y)
                        runIndex[l] = Int32(runLabel.count)
                        runLabel.append(Int32(l)); runY.append(Int32(y)); runMin.append(Int32(x)); runMax.append(Int32(x))
                    } else {
                        runMax[Int(runIndex[l])] = Int32(x)   // pixels of a row arrive in increasing x
                    }
                }
            }
        }
        var cx = [Double](repeating: 0, count: n + 1), cy = cx
        for l in 1...max(n, 1) where l <= n && area[l] > 0 { cx[l] = sx[l] / Double(area[l]); cy[l] = sy[l] / Double(area[l]) }
        // second central moments
        var mxx = [Double](repeating: 0, count: n + 1), myy = mxx, mxy = mxx
        labels.withUnsafeBufferPointer { L in
            for y in 0..<height {
                let row = y * width
                for x in 0..<width {
                    let l = Int(L[row + x])
                    if l == 0 || l > n { continue }
                    let dx = Double(x) - cx[l], dy = Double(y) - cy[l]
                    mxx[l] += dx * dx; myy[l] += dy * dy; mxy[l] += dx * dy
                }
            }
        }
        // group runs by label (stable counting sort keeps increasing y)
        var start = [Int](repeating: 0, count: n + 2)
        for l in runLabel { start[Int(l) + 1] += 1 }
        for l in 0..<(n + 1) { start[l + 1] += start[l] }
        var order = [Int](repeating: 0, count: runLabel.count)
        var fill = start
        for (i, l) in runLabel.enumerated() { order[fill[Int(l)]] = i; fill[Int(l)] += 1 }

        var t = CellTable(ids: (0..<n).map { UInt32($0 + 1) }, area: Array(area.dropFirst()),
                          centroidX: Array(cx.dropFirst()), centroidY: Array(cy.dropFirst()),
                          majorAxis: [Double](repeating: 0, count: n), minorAxis: [Double](repeating: 0, count: n),
                          eccentricity: [Double](repeating: 0, count: n), solidity: [Double](repeating: 0, count: n),
                          extent: [Double](repeating: 0, count: n), orientation: [Double](repeating: 0, count: n),
                          means: [])
        var hull: [(Double, Double)] = []
        var pts: [(Double, Double)] = []
        var rowLo: [Double] = [], rowHi: [Double] = []
        for l in 1..<(n + 1) where area[l] > 0 {
            let m0 = Double(area[l])
            let a = mxx[l] / m0, b = -mxy[l] / m0, c = myy[l] / m0
            let disc = (((a - c) / 2) * ((a - c) / 2) + b * b).squareRoot()
            let l1 = max(0, (a + c) / 2 + disc), l2 = max(0, (a + c) / 2 - disc)
            t.majorAxis[l - 1] = 4 * l1.squareRoot()
            t.minorAxis[l - 1] = 4 * l2.squareRoot()
            t.eccentricity[l - 1] = l1 == 0 ? 0 : (1 - l2 / l1).squareRoot()
            t.orientation[l - 1] = a - c == 0 ? (b < 0 ? Double.pi / 4 : -Double.pi / 4) : 0.5 * atan2(-2 * b, c - a)
            t.extent[l - 1] = m0 / Double((maxX[l] - minX[l] + 1) * (maxY[l] - minY[l] + 1))
            // convex hull of row-extreme pixel centres, points as (y, x), sorted lexicographically
            pts.removeAll(keepingCapacity: true)
            for k in start[l]..<start[l + 1] {
                let r = order[k]
                pts.append((Double(runY[r]), Double(runMin[r])))
                if runMax[r] != runMin[r] { pts.append((Double(runY[r]), Double(runMax[r]))) }
            }
            convexHull(pts, into: &hull)
            let convex = hullPixelCount(hull, y0: minY[l], rows: maxY[l] - minY[l] + 1, lo: &rowLo, hi: &rowHi)
            t.solidity[l - 1] = convex > 0 ? min(1, m0 / Double(convex)) : 1
        }
        t.means = means(labels: labels, count: count, channels: channels)
        return t
    }

    /// Mean of each channel per label 1...count ([channel][label-1]); labels 0 and > count ignored,
    /// empty labels get 0. Channels are processed in parallel.
    static func means(labels: [UInt32], count: Int, channels: [[Float]]) -> [[Double]] {
        var area = [Int](repeating: 0, count: count + 1)
        for v in labels where Int(v) <= count { area[Int(v)] += 1 }
        var result = [[Double]](repeating: [], count: channels.count)
        let A = UnsafeShared(area), Lb = UnsafeShared(labels), Ch = UnsafeShared(channels)
        result.withUnsafeMutableBufferPointer { R in
            let RS = UnsafeShared(R)
            DispatchQueue.concurrentPerform(iterations: channels.count) { c in
                let ch = Ch.value[c]
                precondition(ch.count == Lb.value.count, "channel size mismatch")
                var sums = [Double](repeating: 0, count: count + 1)
                ch.withUnsafeBufferPointer { v in
                    Lb.value.withUnsafeBufferPointer { L in
                        sums.withUnsafeMutableBufferPointer { S in
                            for i in 0..<L.count {
                                let l = Int(L[i])
                                if l <= count { S[l] += Double(v[i]) }
                            }
                        }
                    }
                }
                var m = [Double](repeating: 0, count: count)
                for l in 1..<(count + 1) where A.value[l] > 0 { m[l - 1] = sums[l] / Double(A.value[l]) }
                RS.value[c] = m
            }
        }
        return result
    }
}
