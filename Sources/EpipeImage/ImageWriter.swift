import Foundation
import CZlib
import CDeflate
import EpipeKernels

/// Writes a tiled BigTIFF (OME-TIFF by default): one page (IFD) per channel, Adobe deflate,
/// horizontal predictor (2) for integer types (none for float32), tiles of `tileSize` (edge tiles zero padded).
///
/// Rows of each channel must arrive in increasing y order; channels may be interleaved band by band.
/// A tile row is compressed (tiles in parallel) and appended to the file as soon as it is complete and
/// its turn has come: the file's layout is canonical, tile row by tile row of level 0 and, within one,
/// channel by channel (each channel's pyramid tiles with the level-0 tile row that completed them),
/// whatever order the channels' rows arrive in from several threads. So the same rows give the same
/// bytes, however they were split into calls (band size, parts of a slide merged). Compressed tile rows
/// that arrive ahead of their turn wait in memory (at most the rows written ahead of the slowest
/// channel); memory is otherwise at most one partial tile row per channel that currently has one. IFDs are written
/// at the end by `finish()`, which fsyncs the temporary file and renames it into place.
///
/// With `pyramidLevels > 0`, each page also gets that many 2x-reduced levels as SubIFDs
/// (NewSubfileType=1, OME-TIFF 6 pyramid layout read by Bio-Formats/QuPath, tifffile, napari),
/// built on the fly (2x2 mean; nearest for uint32 label masks) with one tile row buffered per level.
/// Memory: at most one partial tile row per channel and level; band heights that are multiples of
/// `tileSize` keep only a small pool of tile-row buffers.
public final class ImageWriter: @unchecked Sendable {
    public let path: String
    public let width: Int
    public let height: Int
    public let channels: Int
    public let pixelType: PixelType
    public let tileSize: Int
    public let channelNames: [String]
    /// zlib level used for tiles (1 fastest ... 9 smallest).
    public var compressionLevel: Int32 = 4

    private let physicalSizeX: Double?
    private let physicalSizeY: Double?
    private let ome: Bool
    private let tmpPath: String
    private var fd: Int32
    private var fileEnd: UInt64 = 16
    private var finished = false
    private var aborted = false
    private let lock = NSLock()

    public let pyramidLevels: Int

    private struct Level {
        let width: Int
        let height: Int
        let tilesAcross: Int
        let tilesDown: Int
        let rowBytesPadded: Int   // tilesAcross * tileSize * bps
    }
    private let lv: [Level]
    private let bps: Int
    private let usePredictor: Bool

    private struct Chan {
        var nextRow = 0
        var buf: UnsafeMutableRawPointer? = nil   // one tile row: tileSize x rowBytesPadded
        var bufRows = 0
        var offsets: [UInt64]
        var counts: [UInt64]
        var pending: UnsafeMutableRawPointer? = nil   // a row waiting for its pair (to build the next level)
        var hasPending = false
    }
    private var chans: [[Chan]]                        // [level][channel]
    /// Level-0 rows of each channel fully processed (pyramid and flushes included).
    private var rowsDone: [Int]
    /// The next (level-0 tile row, channel) whose tiles go to the file; later ones wait in `held`.
    private var commitEpoch = 0, commitChannel = 0
    private var held: [[(epoch: Int, level: Int, index: Int, bytes: [UInt8])]]
    private var freeBufs: [[UnsafeMutableRawPointer]]  // per level
    private var rowScratch: [UnsafeMutableRawPointer]  // per level: one downsampled row

    // per-worker scratch for parallel tile compression
    private let slots: Int
    private var compressors: [OpaquePointer] = []
    private var compressorLevel: Int32 = -1
    private let tileBytes: Int
    private let compBound: Int
    private let scratch: UnsafeMutableRawPointer      // slots * tileBytes
    private let compBuf: UnsafeMutableRawPointer      // slots * compBound
    private let compLen: UnsafeMutablePointer<Int>    // slots
    private let compStatus: UnsafeMutablePointer<Int32>

    public init(path: String, width: Int, height: Int, channelNames: [String], pixelType: PixelType,
                tileSize: Int = 256, physicalSizeX: Double? = nil, physicalSizeY: Double? = nil, ome: Bool = true,
                pyramidLevels: Int = 0) throws {
        func fail(_ m: String) -> ImageError { ImageError(path: path, message: m, isBadInput: false) }
        guard width > 0, height > 0, width <= 4_000_000_000, height <= 4_000_000_000 else {
            throw fail("cannot write an image of \(width) x \(height) pixels; width and height must be positive")
        }
        guard !channelNames.isEmpty else { throw fail("no channels to write; pass at least one channel name") }
        guard tileSize >= 16, tileSize % 16 == 0, tileSize <= 4096 else {
            throw fail("tile size \(tileSize) is invalid; use a multiple of 16 between 16 and 4096 (default 256)")
        }
        guard pyramidLevels >= 0, pyramidLevels <= 20 else {
            throw fail("pyramidLevels \(pyramidLevels) is invalid; use 0...20 (see ImageWriter.suggestedPyramidLevels)")
        }
        self.path = path
        self.pyramidLevels = pyramidLevels
        self.width = width
        self.height = height
        self.channels = channelNames.count
        self.channelNames = channelNames
        self.pixelType = pixelType
        self.tileSize = tileSize
        self.physicalSizeX = physicalSizeX
        self.physicalSizeY = physicalSizeY
        self.ome = ome
        bps = pixelType.byteCount
        // Predictor 2 for integers (tifffile decodes it with numpy alone). No floating-point predictor (3):
        // tifffile needs imagecodecs for it and other readers lack it, so float32 tiles are plain deflate.
        usePredictor = pixelType != .float32
        var levels: [Level] = []
        var lw = width, lh = height
        for _ in 0...pyramidLevels {
            let ta = (lw + tileSize - 1) / tileSize, td = (lh + tileSize - 1) / tileSize
            levels.append(Level(width: lw, height: lh, tilesAcross: ta, tilesDown: td, rowBytesPadded: ta * tileSize * pixelType.byteCount))
            lw = (lw + 1) / 2; lh = (lh + 1) / 2
        }
        lv = levels
        chans = levels.map { l in
            (0..<channelNames.count).map { _ in
                Chan(offsets: [UInt64](repeating: 0, count: l.tilesAcross * l.tilesDown),
                     counts: [UInt64](repeating: 0, count: l.tilesAcross * l.tilesDown))
            }
        }
        freeBufs = levels.map { _ in [] }
        rowsDone = [Int](repeating: 0, count: channelNames.count)
        held = channelNames.map { _ in [] }
        rowScratch = levels.map { UnsafeMutableRawPointer.allocate(byteCount: $0.width * pixelType.byteCount, alignment: 64) }
        let tilesAcross = levels[0].tilesAcross
        slots = min(tilesAcross, max(2, ProcessInfo.processInfo.activeProcessorCount * 4))
        tileBytes = tileSize * tileSize * bps
        let initialLevel: Int32 = 4   // compressionLevel's default; a later change re-creates the compressors
        compressors = (0..<slots).map { _ in libdeflate_alloc_compressor(initialLevel)! }
        compressorLevel = initialLevel
        compBound = Int(libdeflate_zlib_compress_bound(compressors[0], tileBytes))
        scratch = UnsafeMutableRawPointer.allocate(byteCount: slots * tileBytes, alignment: 64)
        compBuf = UnsafeMutableRawPointer.allocate(byteCount: slots * compBound, alignment: 64)
        compLen = UnsafeMutablePointer<Int>.allocate(capacity: slots)
        compStatus = UnsafeMutablePointer<Int32>.allocate(capacity: slots)

        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        tmpPath = TempFiles.name(for: dir + "/" + url.lastPathComponent)
        fd = open(tmpPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd >= 0 { TempFiles.created(tmpPath) }
        if fd < 0 {
            let e = String(cString: strerror(errno))
            // fully initialized: deinit runs after this throw and frees the buffers
            throw fail("cannot create temporary file in \(dir) (\(e)); check that the folder exists and is writable")
        }
        // BigTIFF header; first IFD offset patched by finish()
        var hdr = [UInt8](repeating: 0, count: 16)
        hdr[0] = 0x49; hdr[1] = 0x49; hdr[2] = 43; hdr[4] = 8
        try writeAt(hdr, offset: 0)   // on failure deinit aborts (closes, unlinks) and frees
    }

    deinit {
        if !finished { abortLocked() }
        for l in chans { for c in l { c.buf?.deallocate(); c.pending?.deallocate() } }
        for l in freeBufs { for b in l { b.deallocate() } }
        for r in rowScratch { r.deallocate() }
        scratch.deallocate(); compBuf.deallocate(); compLen.deallocate(); compStatus.deallocate()
        for c in compressors { libdeflate_free_compressor(c) }
    }

    private func err(_ m: String) -> ImageError { ImageError(path: path, message: m, isBadInput: false) }

    // MARK: - public writes

    public func writeRows(channel: Int, y0: Int, count: Int, _ src: UnsafeBufferPointer<Float>) throws {
        lock.lock(); defer { lock.unlock() }
        try check(channel: channel, y0: y0, count: count, srcCount: src.count)
        guard count > 0, let base = src.baseAddress else { return }
        let pt = pixelType, w = width
        try putRows(channel: channel, count: count) { r, dst in
            ImageWriter.convertFloatRow(pt, base + r * w, dst, w)
        }
    }

    public func writeRows(channel: Int, y0: Int, count: Int, _ src: [Float]) throws {
        try src.withUnsafeBufferPointer { try writeRows(channel: channel, y0: y0, count: count, $0) }
    }

    public func writeRows(channel: Int, y0: Int, count: Int, _ src: UnsafeBufferPointer<UInt32>) throws {
        lock.lock(); defer { lock.unlock() }
        try check(channel: channel, y0: y0, count: count, srcCount: src.count)
        guard count > 0, let base = src.baseAddress else { return }
        let pt = pixelType, w = width
        try putRows(channel: channel, count: count) { r, dst in
            ImageWriter.convertU32Row(pt, base + r * w, dst, w)
        }
    }

    public func writeRows(channel: Int, y0: Int, count: Int, _ src: [UInt32]) throws {
        try src.withUnsafeBufferPointer { try writeRows(channel: channel, y0: y0, count: count, $0) }
    }

    private func check(channel: Int, y0: Int, count: Int, srcCount: Int) throws {
        guard !finished, !aborted, fd >= 0 else { throw err("writer is already finished or aborted; create a new ImageWriter") }
        guard channel >= 0, channel < channels else {
            throw err("channel \(channel) out of range (writer has \(channels) channels); use 0..<\(channels)")
        }
        guard count >= 0, y0 + count <= height else {
            throw err("rows \(y0)..<\(y0 + count) out of range (image has \(height) rows); write rows inside the image")
        }
        guard y0 == chans[0][channel].nextRow else {
            throw err("channel \(channel): rows must be written in order, expected y0=\(chans[0][channel].nextRow) but got \(y0); write each channel's rows top to bottom without gaps")
        }
        guard srcCount == count * width else {
            throw err("source has \(srcCount) values but \(count) rows of width \(width) need \(count * width); pass exactly count*width values")
        }
    }

    /// Copies `count` rows (converted by `fill(rowIndex, dst)`) into the channel's level-0 tile-row
    /// buffer, feeding the pyramid and flushing each completed tile row.
    private func putRows(channel c: Int, count: Int, _ fill: (Int, UnsafeMutableRawPointer) -> Void) throws {
        for r in 0..<count {
            let dst = rowSlot(level: 0, channel: c)
            fill(r, dst)
            try rowAdded(level: 0, channel: c, row: dst)
            rowsDone[c] += 1
        }
        try commitReady()
    }

    /// Whether channel c is past level-0 tile row e.
    private func passed(_ e: Int, _ c: Int) -> Bool { rowsDone[c] >= min(lv[0].height, (e + 1) * tileSize) }

    /// Writes the held tiles of every (tile row, channel) whose turn has come, in canonical order.
    private func commitReady() throws {
        while commitEpoch < lv[0].tilesDown && passed(commitEpoch, commitChannel) {
            let c = commitChannel
            while let h = held[c].first, h.epoch == commitEpoch {
                try h.bytes.withUnsafeBytes { try place(level: h.level, channel: c, index: h.index, $0) }
                held[c].removeFirst()
            }
            commitChannel += 1
            if commitChannel == channels { commitChannel = 0; commitEpoch += 1 }
        }
    }

    /// Appends one compressed tile to the file.
    private func place(level L: Int, channel c: Int, index idx: Int, _ bytes: UnsafeRawBufferPointer) throws {
        let off = fileEnd
        try writeAt(bytes, offset: off)
        chans[L][c].offsets[idx] = off
        chans[L][c].counts[idx] = UInt64(bytes.count)
        fileEnd = off + UInt64(bytes.count)
    }

    /// Where the next row of (level, channel) goes in its tile-row buffer.
    private func rowSlot(level L: Int, channel c: Int) -> UnsafeMutableRawPointer {
        let rbp = lv[L].rowBytesPadded
        if chans[L][c].buf == nil {
            if let b = freeBufs[L].popLast() {
                chans[L][c].buf = b
            } else {
                let b = UnsafeMutableRawPointer.allocate(byteCount: tileSize * rbp, alignment: 64)
                memset(b, 0, tileSize * rbp)   // padding columns stay zero forever
                chans[L][c].buf = b
            }
            chans[L][c].bufRows = 0
        }
        return chans[L][c].buf! + chans[L][c].bufRows * rbp
    }

    /// A row was stored at rowSlot(level, channel): build the next level, flush a full tile row.
    private func rowAdded(level L: Int, channel c: Int, row: UnsafeMutableRawPointer) throws {
        chans[L][c].bufRows += 1
        chans[L][c].nextRow += 1
        let last = chans[L][c].nextRow == lv[L].height
        if L + 1 < lv.count {
            let w = lv[L].width
            if !chans[L][c].hasPending {
                if chans[L][c].pending == nil {
                    chans[L][c].pending = UnsafeMutableRawPointer.allocate(byteCount: w * bps, alignment: 64)
                }
                memcpy(chans[L][c].pending!, row, w * bps)
                chans[L][c].hasPending = true
                if last {   // odd height: the last row pairs with itself
                    try emitReduced(level: L, channel: c, a: UnsafeRawPointer(chans[L][c].pending!), b: UnsafeRawPointer(chans[L][c].pending!))
                }
            } else {
                try emitReduced(level: L, channel: c, a: UnsafeRawPointer(chans[L][c].pending!), b: UnsafeRawPointer(row))
            }
        }
        if chans[L][c].bufRows == tileSize || last {
            try flushTileRow(level: L, channel: c)
        }
    }

    private func emitReduced(level L: Int, channel c: Int, a: UnsafeRawPointer, b: UnsafeRawPointer) throws {
        chans[L][c].hasPending = false
        let dst = rowSlot(level: L + 1, channel: c)
        ImageWriter.reduceRows(pixelType, a, b, dst, widthIn: lv[L].width, widthOut: lv[L + 1].width)
        try rowAdded(level: L + 1, channel: c, row: dst)
    }

    private func flushTileRow(level L: Int, channel c: Int) throws {
        guard let buf = chans[L][c].buf else { return }
        let rowBytesPadded = lv[L].rowBytesPadded, tilesAcross = lv[L].tilesAcross, height = lv[L].height
        let rows = chans[L][c].bufRows
        let ty = (chans[L][c].nextRow - 1) / tileSize
        if rows < tileSize {   // last tile row: zero the rows below the image
            memset(buf + rows * rowBytesPadded, 0, (tileSize - rows) * rowBytesPadded)
        }
        let ts = tileSize, bps = self.bps, rbp = rowBytesPadded, tb = tileBytes, cb = compBound
        let pred = usePredictor, pt = pixelType
        if compressorLevel != compressionLevel {
            let level = max(0, min(12, compressionLevel))
            let fresh = (0..<slots).compactMap { _ in libdeflate_alloc_compressor(level) }
            guard fresh.count == slots else { fresh.forEach { libdeflate_free_compressor($0) }; throw err("cannot set up compression level \(level)") }
            compressors.forEach { libdeflate_free_compressor($0) }
            compressors = fresh; compressorLevel = compressionLevel
        }
        let comps = UnsafeShared(compressors)
        let src = UnsafeShared(UnsafeRawPointer(buf))
        let scr = UnsafeShared(scratch), cbuf = UnsafeShared(compBuf)
        let clen = UnsafeShared(compLen), cst = UnsafeShared(compStatus)
        // the level-0 tile row this flush belongs to; its turn, or wait
        let epoch = (chans[0][c].nextRow - 1) / tileSize
        try commitReady()
        let now = epoch == commitEpoch && c == commitChannel
        var tx0 = 0
        while tx0 < tilesAcross {
            let n = min(slots, tilesAcross - tx0)
            let first = tx0
            let work: @Sendable (Int) -> Void = { i in
                let tx = first + i
                let tile = scr.value + i * tb
                for r in 0..<ts {
                    memcpy(tile + r * ts * bps, src.value + r * rbp + tx * ts * bps, ts * bps)
                }
                if pred { ImageWriter.horizontalDifference(pt, tile, rows: ts, cols: ts) }
                let dlen = libdeflate_zlib_compress(comps.value[i], tile, tb, cbuf.value + i * cb, cb)
                cst.value[i] = dlen > 0 ? Z_OK : Z_BUF_ERROR
                clen.value[i] = dlen
            }
            if n > 1 {
                DispatchQueue.concurrentPerform(iterations: n, execute: work)
            } else {
                work(0)
            }
            for i in 0..<n {
                guard compStatus[i] == Z_OK else {
                    throw err("zlib compression failed (code \(compStatus[i])); retry, or check free memory")
                }
                let idx = ty * tilesAcross + first + i
                let tile = UnsafeRawBufferPointer(start: compBuf + i * cb, count: compLen[i])
                if now { try place(level: L, channel: c, index: idx, tile) }
                else { held[c].append((epoch, L, idx, [UInt8](tile))) }
            }
            tx0 += n
        }
        if L == 0 { Fault.point("output-chunk") }
        chans[L][c].bufRows = 0
        if chans[L][c].nextRow == height {
            buf.deallocate()
            chans[L][c].buf = nil
            chans[L][c].pending?.deallocate()
            chans[L][c].pending = nil
        } else if rows == tileSize {
            // band ended at a tile-row boundary: hand the buffer to a pool so that only channels with
            // partial rows hold one (rows are fully overwritten before the next flush)
            freeBufs[L].append(buf)
            chans[L][c].buf = nil
            while freeBufs[L].count > 2 { freeBufs[L].removeFirst().deallocate() }
        }
    }

    // MARK: - finish / abort

    public func finish() throws {
        lock.lock(); defer { lock.unlock() }
        guard !finished, !aborted, fd >= 0 else { throw err("writer is already finished or aborted; create a new ImageWriter") }
        for (c, ch) in chans[0].enumerated() where ch.nextRow != height {
            abortLocked()
            throw err("channel \(c) (\(channelNames[c])) has \(ch.nextRow) of \(height) rows; write all rows of every channel before finish()")
        }
        do { try commitReady() } catch { abortLocked(); throw error }
        precondition(held.allSatisfy { $0.isEmpty }, "tiles left unwritten")
        do {
            try writeIFDs()
            guard fsync(fd) == 0 else { throw err("fsync failed (\(String(cString: strerror(errno)))); check the disk") }
            close(fd); fd = -1
            Fault.point("temp-written")
            guard rename(tmpPath, path) == 0 else {
                throw err("cannot rename temporary file into place (\(String(cString: strerror(errno)))); check permissions of the folder")
            }
            TempFiles.finished(tmpPath)
            Fault.point("renamed")
            let dir = (path as NSString).deletingLastPathComponent
            let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
            finished = true
        } catch {
            abortLocked()
            throw error
        }
    }

    /// Removes the temporary file. deinit without finish() also aborts.
    public func abort() {
        lock.lock(); defer { lock.unlock() }
        abortLocked()
    }

    private func abortLocked() {
        if finished || aborted { return }
        aborted = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(tmpPath)
        TempFiles.finished(tmpPath)
    }

    private func writeIFDs() throws {
        let desc: String? = ome ? OMEXML.make(name: (path as NSString).lastPathComponent, width: width, height: height,
                                              channelNames: channelNames, pixelType: pixelType,
                                              physicalSizeX: physicalSizeX, physicalSizeY: physicalSizeY) : nil
        var prevNextField: UInt64 = 8   // header field holding the first IFD offset
        for c in 0..<channels {
            var subs: [UInt64] = []
            for L in 1..<lv.count {
                subs.append(try writeIFD(level: L, channel: c, description: nil, subIFDs: []).offset)
            }
            let (off, nextField) = try writeIFD(level: 0, channel: c, description: c == 0 ? desc : nil, subIFDs: subs)
            try writeAt(le64(off), offset: prevNextField)
            prevNextField = nextField
        }
    }

    /// Writes one IFD (and its out-of-line values); returns its offset and the offset of its next-IFD field.
    private func writeIFD(level L: Int, channel c: Int, description: String?, subIFDs: [UInt64]) throws -> (offset: UInt64, nextField: UInt64) {
        let g = lv[L]
        let nTiles = g.tilesAcross * g.tilesDown
        var entries: [(tag: UInt16, type: UInt16, count: UInt64, value: [UInt8])] = []
        func align() { fileEnd = (fileEnd + 7) & ~7 }
        func external(_ bytes: [UInt8]) throws -> [UInt8] {
            if bytes.count <= 8 { return bytes + [UInt8](repeating: 0, count: 8 - bytes.count) }
            align()
            let off = fileEnd
            try writeAt(bytes, offset: off)
            fileEnd += UInt64(bytes.count)
            return le64(off)
        }
        func short(_ tag: UInt16, _ v: UInt16) { entries.append((tag, 3, 1, le16(v) + [UInt8](repeating: 0, count: 6))) }
        func long(_ tag: UInt16, _ v: UInt32) { entries.append((tag, 4, 1, le32(v) + [0, 0, 0, 0])) }
        long(254, L == 0 ? 0 : 1)
        long(256, UInt32(g.width))
        long(257, UInt32(g.height))
        short(258, UInt16(bps * 8))
        short(259, 8)
        short(262, 1)
        if let description {
            var bytes = Array(description.utf8); bytes.append(0)
            entries.append((270, 2, UInt64(bytes.count), try external(bytes)))
        }
        short(277, 1)
        short(284, 1)
        if usePredictor { short(317, pixelType == .float32 ? 3 : 2) }
        long(322, UInt32(tileSize))
        long(323, UInt32(tileSize))
        var offBytes = [UInt8](); offBytes.reserveCapacity(nTiles * 8)
        for v in chans[L][c].offsets { offBytes += le64(v) }
        entries.append((324, 16, UInt64(nTiles), try external(offBytes)))
        var cntBytes = [UInt8](); cntBytes.reserveCapacity(nTiles * 8)
        for v in chans[L][c].counts { cntBytes += le64(v) }
        entries.append((325, 16, UInt64(nTiles), try external(cntBytes)))
        if !subIFDs.isEmpty {
            var b = [UInt8]()
            for o in subIFDs { b += le64(o) }
            entries.append((330, 18, UInt64(subIFDs.count), try external(b)))   // SubIFDs, type IFD8
        }
        short(339, pixelType == .float32 ? 3 : 1)
        entries.sort { $0.tag < $1.tag }
        align()
        let ifdOff = fileEnd
        var ifd = le64(UInt64(entries.count))
        for e in entries { ifd += le16(e.tag) + le16(e.type) + le64(e.count) + e.value }
        ifd += le64(0)
        try writeAt(ifd, offset: ifdOff)
        fileEnd += UInt64(ifd.count)
        return (ifdOff, ifdOff + UInt64(ifd.count) - 8)
    }

    /// Pyramid levels that bring the longer side down to at most one tile.
    public static func suggestedPyramidLevels(width: Int, height: Int, tileSize: Int = 256) -> Int {
        var n = 0, side = max(width, height)
        while side > tileSize && n < 20 { side = (side + 1) / 2; n += 1 }
        return n
    }

    // MARK: - low level

    private func writeAt(_ bytes: [UInt8], offset: UInt64) throws {
        try bytes.withUnsafeBytes { try writeAt($0, offset: offset) }
    }

    private func writeAt(_ buf: UnsafeRawBufferPointer, offset: UInt64) throws {
        let e = FileIO.writeAll(fd, buf, offset: Int64(offset))
        if e != 0 { throw err("write failed (\(String(cString: strerror(e)))); check free disk space") }
    }

    private func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    private func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }

    // MARK: - conversion and predictor (hot loops)

    static func convertFloatRow(_ pt: PixelType, _ s: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        switch pt {
        case .uint8:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n {
                let v = s[i]
                d[i] = v > 0 ? (v < 255 ? UInt8((v + 0.5).rounded(.down)) : 255) : 0
            }
        case .uint16:
            let d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n {
                let v = s[i]
                d[i] = (v > 0 ? (v < 65535 ? UInt16((v + 0.5).rounded(.down)) : 65535) : 0).littleEndian
            }
        case .uint32:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n {
                let v = Double(s[i])
                d[i] = (v > 0 ? (v < 4_294_967_295 ? UInt32((v + 0.5).rounded(.down)) : .max) : 0).littleEndian
            }
        case .float32:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { d[i] = s[i].bitPattern.littleEndian }
        }
    }

    static func convertU32Row(_ pt: PixelType, _ s: UnsafePointer<UInt32>, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        switch pt {
        case .uint8:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { d[i] = UInt8(min(s[i], 255)) }
        case .uint16:
            let d = dst.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { d[i] = UInt16(min(s[i], 65535)).littleEndian }
        case .uint32:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { d[i] = s[i].littleEndian }
        case .float32:
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { d[i] = Float(s[i]).bitPattern.littleEndian }
        }
    }

    /// One row of the next pyramid level from two rows (a above b) in storage format (little endian):
    /// 2x2 mean (rounded) for uint8/uint16/float32, top-left sample for uint32 (label masks).
    static func reduceRows(_ pt: PixelType, _ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer,
                           widthIn: Int, widthOut: Int) {
        switch pt {
        case .uint8:
            let p = a.assumingMemoryBound(to: UInt8.self), q = b.assumingMemoryBound(to: UInt8.self)
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for j in 0..<widthOut {
                let x0 = 2 * j, x1 = min(2 * j + 1, widthIn - 1)
                let s = UInt32(p[x0]) + UInt32(p[x1]) + UInt32(q[x0]) + UInt32(q[x1])
                d[j] = UInt8((s + 2) >> 2)
            }
        case .uint16:
            let p = a.assumingMemoryBound(to: UInt16.self), q = b.assumingMemoryBound(to: UInt16.self)
            let d = dst.assumingMemoryBound(to: UInt16.self)
            for j in 0..<widthOut {
                let x0 = 2 * j, x1 = min(2 * j + 1, widthIn - 1)
                let s = UInt32(UInt16(littleEndian: p[x0])) + UInt32(UInt16(littleEndian: p[x1]))
                      + UInt32(UInt16(littleEndian: q[x0])) + UInt32(UInt16(littleEndian: q[x1]))
                d[j] = UInt16((s + 2) >> 2).littleEndian
            }
        case .uint32:
            let p = a.assumingMemoryBound(to: UInt32.self)
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for j in 0..<widthOut { d[j] = p[2 * j] }
        case .float32:
            let p = a.assumingMemoryBound(to: UInt32.self), q = b.assumingMemoryBound(to: UInt32.self)
            let d = dst.assumingMemoryBound(to: UInt32.self)
            for j in 0..<widthOut {
                let x0 = 2 * j, x1 = min(2 * j + 1, widthIn - 1)
                let s = Float(bitPattern: UInt32(littleEndian: p[x0])) + Float(bitPattern: UInt32(littleEndian: p[x1]))
                      + Float(bitPattern: UInt32(littleEndian: q[x0])) + Float(bitPattern: UInt32(littleEndian: q[x1]))
                d[j] = (s * 0.25).bitPattern.littleEndian
            }
        }
    }

    /// TIFF Predictor=2 on a tile (in place), little-endian samples.
    static func horizontalDifference(_ pt: PixelType, _ tile: UnsafeMutableRawPointer, rows: Int, cols: Int) {
        switch pt {
        case .uint8:
            let p = tile.assumingMemoryBound(to: UInt8.self)
            for r in 0..<rows {
                let row = p + r * cols
                var i = cols - 1
                while i > 0 { row[i] = row[i] &- row[i - 1]; i -= 1 }
            }
        case .uint16:
            let p = tile.assumingMemoryBound(to: UInt16.self)
            for r in 0..<rows {
                let row = p + r * cols
                var i = cols - 1
                while i > 0 {
                    row[i] = (UInt16(littleEndian: row[i]) &- UInt16(littleEndian: row[i - 1])).littleEndian
                    i -= 1
                }
            }
        case .uint32:
            let p = tile.assumingMemoryBound(to: UInt32.self)
            for r in 0..<rows {
                let row = p + r * cols
                var i = cols - 1
                while i > 0 {
                    row[i] = (UInt32(littleEndian: row[i]) &- UInt32(littleEndian: row[i - 1])).littleEndian
                    i -= 1
                }
            }
        case .float32:
            // Predictor=3 (Adobe floating point): per row, bytes regrouped most significant first,
            // then byte-wise horizontal differencing
            let rowBytes = cols * 4
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { tmp in
                let t = tmp.baseAddress!.assumingMemoryBound(to: UInt8.self)
                for r in 0..<rows {
                    let row = (tile + r * rowBytes).assumingMemoryBound(to: UInt8.self)
                    let src = (tile + r * rowBytes).assumingMemoryBound(to: UInt32.self)
                    for i in 0..<cols {
                        let v = UInt32(littleEndian: src[i])
                        t[i] = UInt8(truncatingIfNeeded: v >> 24)
                        t[cols + i] = UInt8(truncatingIfNeeded: v >> 16)
                        t[2 * cols + i] = UInt8(truncatingIfNeeded: v >> 8)
                        t[3 * cols + i] = UInt8(truncatingIfNeeded: v)
                    }
                    row[0] = t[0]
                    for i in 1..<rowBytes { row[i] = t[i] &- t[i - 1] }
                }
            }
        }
    }
}
