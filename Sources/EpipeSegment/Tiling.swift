import Foundation
import Dispatch
import EpipeKernels

/// A slide cut into core tiles of `tile` x `tile` px (the last column/row may be smaller), each
/// read with `overlap` px of context on every side, clamped at the image edge.
/// Tile rows ("bands") are the unit of streaming output of `TiledLabeller`.
public struct TileGrid: Sendable, Equatable {
    public let width: Int, height: Int, tile: Int, overlap: Int
    /// Number of tile columns / rows.
    public let columns: Int, rows: Int

    public init(width: Int, height: Int, tile: Int, overlap: Int) {
        precondition(width >= 0 && height >= 0 && tile > 0 && overlap >= 0, "bad grid")
        precondition(overlap <= tile, "overlap must not exceed the tile size")
        self.width = width; self.height = height; self.tile = tile; self.overlap = overlap
        columns = (width + tile - 1) / tile
        rows = (height + tile - 1) / tile
    }

    /// Core rectangle of tile (column, row): the pixels this tile owns.
    public func core(column c: Int, row r: Int) -> (x0: Int, y0: Int, w: Int, h: Int) {
        let x0 = c * tile, y0 = r * tile
        return (x0, y0, Swift.min(tile, width - x0), Swift.min(tile, height - y0))
    }

    /// Window read for tile (column, row): the core grown by `overlap` on every side, clamped.
    public func window(column c: Int, row r: Int) -> (x0: Int, y0: Int, w: Int, h: Int) {
        let k = core(column: c, row: r)
        let x0 = Swift.max(0, k.x0 - overlap), y0 = Swift.max(0, k.y0 - overlap)
        let x1 = Swift.min(width, k.x0 + k.w + overlap), y1 = Swift.min(height, k.y0 + k.h + overlap)
        return (x0, y0, x1 - x0, y1 - y0)
    }

    /// Rows of band (tile row) r: [y0, y0 + rows).
    public func band(_ r: Int) -> (y0: Int, rows: Int) {
        (r * tile, Swift.min(tile, height - r * tile))
    }
}

/// Tile-by-tile labelling of a slide with bounded memory.
///
/// **Stitching rule.** Each tile's window (core + `overlap` context, clamped at the image edge)
/// is segmented independently by the `segment` closure. The *anchor* of an object is its first
/// pixel in raster order (lowest y, then lowest x) in the tile's labels. An object is kept iff
/// its anchor lies in the tile's core; a kept object is painted with all its pixels, including
/// those in the overlap (i.e. in neighbouring cores). Since the anchor is the topmost pixel, a
/// kept object only reaches *down* (by at most `overlap` rows) into the next band, never up,
/// so band r is final once tile row r has been painted. Objects cut by the top of a window are
/// never kept there (their anchor is on the window's first row, which is outside the core),
/// so they are kept by the tile above, which sees them whole.
///
/// Where several kept objects claim a pixel: the object from the tile that owns the pixel
/// (whose core contains it) wins; if none of the claimants is from the owning tile, the one
/// with the earliest anchor (raster order) wins. This is independent of painting order, hence
/// of thread timing. An object never loses its anchor pixel (only its own tile can own it and
/// labels of one tile are disjoint), so every kept object survives with >= 1 pixel; a loser of
/// a conflict may be left with a few pixels or a disconnected remnant (seam pixels only).
///
/// **Ids.** Final ids are 1...N in raster order of anchors, which are also the objects' first
/// pixels in the stitched image: the same numbering as `Segmenter.nuclei` (raster order of
/// first pixel), so where tiles agree with the whole-image run the label images are identical.
///
/// **Limits.** An object is handled correctly only if it lies within its tile's window with
/// enough context for the segmentation: `overlap` must exceed the largest object diameter plus
/// the segmentation's context radius (smoothing ~3 sigma, clump size for the watershed seeding,
/// hole filling...). Larger objects are cut at the window edge. Segmentation that is global
/// (e.g. a per-image Otsu threshold) must be made slide-wide by the caller (closure with a fixed
/// threshold), otherwise tiles disagree at seams. Where two tiles segment an object differently
/// near a seam, it may be duplicated (two anchors in two cores, split at the core boundary) or
/// dropped (anchor in neither core).
///
/// **Memory.** One label buffer of (tile + overlap) x width UInt32 (band + carry rows reached
/// by objects reaching down), the emitted band (tile x width), plus the working set of the
/// tiles in flight (at most one per core, each (tile + 2 overlap)^2 px through the closure).
/// Nothing scales with the image height.
public final class TiledLabeller: @unchecked Sendable {
    public let grid: TileGrid
    let segment: @Sendable (_ plane: [Float], _ w: Int, _ h: Int) -> [UInt32]

    /// `segment(tilePlane, tileWidth, tileHeight)` -> labels of that tile (0 = background; any
    /// positive ids, each object one id). It is called concurrently from several threads.
    public init(width: Int, height: Int, tile: Int, overlap: Int,
                segment: @escaping @Sendable (_ plane: [Float], _ w: Int, _ h: Int) -> [UInt32]) {
        grid = TileGrid(width: width, height: height, tile: tile, overlap: overlap)
        self.segment = segment
    }

    /// Per-band mutable state shared by the workers (guarded by `lock`).
    private final class RowState: @unchecked Sendable {
        let lock = NSLock()
        var error: Error?
        var anchors: [Int] = []          // temp id (firstId + k) -> global anchor index
    }

    /// Runs over the slide in tile rows (tiles of one row in parallel). `read(x0, y0, w, h)`
    /// returns that window of the input channel (row-major floats); it is called from worker
    /// threads but never concurrently (serialised by a lock). `emit(y0, rows, labels)` receives
    /// the final global labels band by band (bands = core tile rows, in order, on the calling
    /// thread), ids 1...N unique over the slide. Returns N.
    ///
    /// `tileRows` (default all) runs only those tile rows, ids from 1. A part of a slide
    /// (`--tiles N --tile I`) that starts one tile row early (the lead row, whose bands it discards)
    /// gets for its own tile rows exactly the labels of the whole run, less a constant: the objects
    /// of tile rows above the lead row never reach below it (`overlap <= tile`), and the lead row's
    /// objects are those of the whole run (an object's fate depends only on its tile's window), so
    /// the pixels they carry into the part's first band and the conflicts there are the same. The
    /// whole run's ids are the part's minus the lead row's count plus the objects of the tile rows
    /// before the part's (see `SegmentParts`).
    public func run(tileRows: Range<Int>? = nil, read: (Int, Int, Int, Int) throws -> [Float], emit: (Int, Int, [UInt32]) throws -> Void) throws -> Int {
        let g = grid, W = g.width, T = g.tile, ov = g.overlap
        guard W > 0 && g.height > 0 else { return 0 }
        precondition((T + ov) * W < Int(Int32.max), "band too large")
        let bufRows = T + ov
        let buf = UnsafeMutablePointer<UInt32>.allocate(capacity: bufRows * W)
        buf.initialize(repeating: 0, count: bufRows * W)
        defer { buf.deallocate() }
        var firstId: UInt32 = 1          // first id of the current band's objects
        var prevFirst: UInt32 = 1        // first id of the previous band's objects
        var prevAnchors: [Int] = []      // their anchors, sorted (final id = prevFirst + k)
        let seg = segment
        let rowRange = tileRows ?? 0..<g.rows
        precondition(rowRange.lowerBound >= 0 && rowRange.upperBound <= g.rows, "tile rows out of range")
        for r in rowRange {
            let (by0, bh) = g.band(r)
            let st = RowState()
            let B = UnsafeShared(buf)
            let PA = UnsafeShared(prevAnchors)
            let fid = firstId, pfid = prevFirst
            try withoutActuallyEscaping(read) { rd in
                let RD = UnsafeShared(rd)
                DispatchQueue.concurrentPerform(iterations: g.columns) { c in
                    let win = g.window(column: c, row: r), core = g.core(column: c, row: r)
                    st.lock.lock()
                    if st.error != nil { st.lock.unlock(); return }
                    var plane: [Float]
                    do { plane = try RD.value(win.x0, win.y0, win.w, win.h) } catch { st.error = error; st.lock.unlock(); return }
                    st.lock.unlock()
                    precondition(plane.count == win.w * win.h, "read returned a wrong-sized window")
                    let labels = seg(plane, win.w, win.h)
                    plane = []
                    precondition(labels.count == win.w * win.h, "segment returned a wrong-sized label image")
                    // anchors (first pixel) of each label
                    var maxL: UInt32 = 0
                    for v in labels where v > maxL { maxL = v }
                    if maxL == 0 { return }
                    var first = [Int32](repeating: -1, count: Int(maxL) + 1)
                    labels.withUnsafeBufferPointer { L in
                        for i in 0..<L.count { let l = Int(L[i]); if l != 0 && first[l] < 0 { first[l] = Int32(i) } }
                    }
                    // kept labels (anchor in the core), in label order
                    var keptLocal: [Int] = []
                    for l in 1...Int(maxL) where first[l] >= 0 {
                        let i = Int(first[l]), gx = win.x0 + i % win.w, gy = win.y0 + i / win.w
                        if gx >= core.x0 && gx < core.x0 + core.w && gy >= core.y0 && gy < core.y0 + core.h { keptLocal.append(l) }
                    }
                    if keptLocal.isEmpty { return }
                    st.lock.lock()
                    defer { st.lock.unlock() }
                    let base = st.anchors.count
                    var map = [UInt32](repeating: 0, count: Int(maxL) + 1)
                    for (k, l) in keptLocal.enumerated() {
                        let i = Int(first[l])
                        st.anchors.append((win.y0 + i / win.w) * W + win.x0 + i % win.w)
                        map[l] = fid + UInt32(base + k)
                    }
                    let anchors = st.anchors, prev = PA.value
                    @inline(__always) func anchor(_ id: UInt32) -> Int {
                        id >= fid ? anchors[Int(id - fid)] : prev[Int(id - pfid)]
                    }
                    let buf = B.value
                    labels.withUnsafeBufferPointer { L in
                        for ly in 0..<win.h {
                            let gy = win.y0 + ly
                            let row = (gy - by0) * W
                            let pr = gy / T
                            for lx in 0..<win.w {
                                let t = map[Int(L[ly * win.w + lx])]
                                if t == 0 { continue }
                                let gx = win.x0 + lx
                                precondition(gy >= by0, "kept object above its anchor")
                                let bi = row + gx
                                let e = buf[bi]
                                if e == 0 || (pr == r && gx / T == c) { buf[bi] = t; continue }
                                let ae = anchor(e)
                                if ae / W / T == pr && (ae % W) / T == gx / T { continue }   // existing is the owner
                                if anchor(t) < ae { buf[bi] = t }
                            }
                        }
                    }
                }
            }
            if let e = st.error { throw e }
            // final ids in raster order of anchors
            let k = st.anchors.count
            let order = (0..<k).sorted { st.anchors[$0] < st.anchors[$1] }
            var perm = [UInt32](repeating: 0, count: k)
            for (rank, t) in order.enumerated() { perm[t] = firstId + UInt32(rank) }
            let used = Swift.min(bufRows, g.height - by0)
            if k > 0 {
                for i in 0..<(used * W) where buf[i] >= firstId { buf[i] = perm[Int(buf[i] - firstId)] }
            }
            try emit(by0, bh, Array(UnsafeBufferPointer(start: buf, count: bh * W)))
            // carry the rows below the band (reached by this band's objects) to the top
            let carry = used - bh
            if carry > 0 { (buf).update(from: buf + bh * W, count: carry * W) }
            (buf + carry * W).update(repeating: 0, count: (bufRows - carry) * W)
            prevAnchors = order.map { st.anchors[$0] }
            prevFirst = firstId
            firstId += UInt32(k)
        }
        return Int(firstId - 1)
    }

    /// Convenience: whole image in memory -> (labels, N) (for tests and small images).
    public func run(plane: [Float]) -> (labels: [UInt32], count: Int) {
        let g = grid
        precondition(plane.count == g.width * g.height)
        var out = [UInt32](repeating: 0, count: g.width * g.height)
        let n = try! run(read: { x0, y0, w, h in
            var p = [Float](repeating: 0, count: w * h)
            for y in 0..<h { for x in 0..<w { p[y * w + x] = plane[(y0 + y) * g.width + x0 + x] } }
            return p
        }, emit: { y0, rows, lab in
            out.replaceSubrange((y0 * g.width)..<((y0 + rows) * g.width), with: lab)
        })
        return (out, n)
    }
}
