import Foundation
import CTIFF
import CTIFFShim

/// Reads multi-channel TIFF / BigTIFF / OME-TIFF images band by band through libtiff.
///
/// Channels are the full-resolution pages (one page per channel), or the samples of a
/// multi-sample page (planar separate or contig). Reduced-resolution pages (NewSubfileType bit 0)
/// and pages of another size or type are skipped; SubIFDs are never visited.
/// Memory is bounded by the decoded strip/tile rows kept in a small LRU cache (`cacheLimitBytes`);
/// one strip or row of tiles decodes to at most `maxBandBytes`, and a sparse one (no stored bytes)
/// costs one zero row.
/// Thread-safe (calls are serialized by an internal lock); use one reader per thread for parallel reads.
public final class ImageReader: @unchecked Sendable {
    public let info: ImageInfo
    public let path: String

    /// Rows per strip or tile row of the first channel's page: reading bands that are multiples of
    /// this (aligned at 0) decodes every strip/tile exactly once even with many channels interleaved.
    public var preferredBandHeight: Int { pages[channelLoc[0].page].bandHeight }

    /// Byte limit for decoded strip/tile rows kept across calls: the last band of each channel,
    /// least recently used dropped first when over the limit. At least one band is always kept.
    public var cacheLimitBytes: Int {
        get { lock.lock(); defer { lock.unlock() }; return _cacheLimit }
        set { lock.lock(); _cacheLimit = newValue; evict(); lock.unlock() }
    }

    enum Kind { case u8, u16, u32, i8, i16, i32, f32, f64 }

    struct Page {
        var dir: UInt32
        var tiled: Bool
        var tileW: Int
        var tileH: Int
        var rowsPerStrip: Int
        var spp: Int
        var separate: Bool
        /// samples interleaved in one decoded row (spp when contig, 1 when separate)
        var stride: Int { separate ? 1 : spp }
        var bandHeight: Int { tiled ? tileH : rowsPerStrip }
    }

    struct BandKey: Hashable { var page: Int; var plane: Int; var index: Int }

    final class Band {
        let ptr: UnsafeMutableRawPointer
        let bytes: Int          // capacity
        var y0: Int
        var rows: Int
        var rowBytes: Int
        /// Bytes from one row to the next: rowBytes, or 0 when the band has no stored bytes (a
        /// sparse strip or row of tiles) and every row is the one zero row at `ptr`.
        var rowStride: Int
        var stamp: UInt64 = 0
        init(bytes: Int, y0: Int, rows: Int, rowBytes: Int, rowStride: Int) {
            self.bytes = max(bytes, 1)
            ptr = UnsafeMutableRawPointer.allocate(byteCount: self.bytes, alignment: 64)
            self.y0 = y0
            self.rows = rows
            self.rowBytes = rowBytes
            self.rowStride = rowStride
        }
        deinit { ptr.deallocate() }
    }

    private let handle: OpaquePointer
    private let tif: OpaquePointer
    private let lock = NSLock()
    private let kind: Kind
    private let bytesPerSample: Int
    private let pages: [Page]
    private let channelLoc: [(page: Int, sample: Int)]
    private var currentDir: UInt32 = 0
    private var cache: [BandKey: Band] = [:]
    private var cacheBytes = 0
    private var clock: UInt64 = 0
    private var _cacheLimit = 256 << 20
    private var tileScratch: UnsafeMutableRawPointer?
    private var tileScratchBytes = 0

    /// Bytes of decoded pixels the reader holds for one strip or one row of tiles: the most a
    /// header may ask it to decode at once (`maxBandBytes` of `init`).
    public static let defaultMaxBandBytes = 1 << 30
    /// How many times its size a file may decode to in one strip or row of tiles (see init).
    static let maxExpansion = 65536

    /// Opens `path`. Refuses (throws ImageError) before any large allocation when the header is
    /// implausible: zero/absurd dimensions, width*height*channels > maxPixels, strips/tiles past the
    /// end of the file, a strip or row of tiles that decodes to more than `maxBandBytes` (a read
    /// decodes one at a time, so a 100-byte file claiming one 100000 x 100000 strip would otherwise
    /// have it allocate 20 GB), unsupported sample formats, or files that are empty, not TIFF, or
    /// truncated.
    public init(path: String, maxPixels: Int = 20_000_000_000, maxBandBytes: Int = ImageReader.defaultMaxBandBytes, markersCSV: String? = nil) throws {
        self.path = path
        func fail(_ m: String) -> ImageError { ImageError(path: path, message: m) }

        // --- cheap checks on the raw file -------------------------------------------------
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = String(cString: strerror(errno))
            throw fail("cannot open (\(e)); check the path")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw fail("is a directory, not an image file; pass the path of a .tif/.ome.tif file")
        }
        let fileSize = UInt64(max(0, Int64(st.st_size)))
        if fileSize == 0 {
            throw fail("empty file (0 bytes); the copy or export was interrupted, re-copy or re-export the image")
        }
        let magic = try ImageReader.readPrefix(path: path, count: 16)
        guard ImageReader.isTIFFMagic(magic) else {
            let looksText = !magic.isEmpty && magic.allSatisfy { ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
            let what = looksText ? "not a TIFF file (it looks like text; first bytes are not II*/MM*)" : "not a TIFF file (first bytes are not II*/MM*)"
            throw fail("\(what); check the path or re-export the image as TIFF")
        }
        if fileSize < 16 {
            throw fail("truncated TIFF (\(fileSize) bytes, too short for a header); re-copy or re-export the image")
        }

        // the chain of image directories must end inside the file: libtiff stops quietly at a next-
        // directory offset past the end, which would drop the channels of a file cut short
        if let problem = ImageReader.directoryChainProblem(path: path, fileSize: fileSize) { throw fail(problem) }

        // --- libtiff --------------------------------------------------------------------
        guard let h = epipe_tiff_open(path, "rm", 4 << 30) else { throw fail("out of memory opening TIFF; retry") }
        guard let t = epipe_tiff_tif(h) else {
            let msg = String(cString: epipe_tiff_error(h))
            epipe_tiff_close(h)
            throw fail("cannot read TIFF header/directory (libtiff: \(msg)); the file is probably truncated or corrupt, re-copy or re-export it")
        }
        handle = h
        tif = t
        // From here on deinit closes the handle only once init completes; close manually on failure.
        var ok = false
        defer { if !ok { epipe_tiff_close(h) } }
        func libtiffMsg() -> String {
            let s = String(cString: epipe_tiff_error(h))
            return s.isEmpty ? "" : " (libtiff: \(s))"
        }

        let nDirs = Int(TIFFNumberOfDirectories(t))
        if nDirs <= 0 { throw fail("TIFF has no image directory\(libtiffMsg()); re-export the image") }
        if nDirs > 100_000 { throw fail("TIFF claims \(nDirs) pages, which is absurd; the file is probably corrupt, re-export it") }

        func u16(_ tag: Int32, _ def: UInt16) -> UInt16 {
            var v: UInt16 = 0
            return epipe_tiff_get_u16(t, UInt32(tag), &v) != 0 ? v : def
        }
        func u32(_ tag: Int32, _ def: UInt32) -> UInt32 {
            var v: UInt32 = 0
            return epipe_tiff_get_u32(t, UInt32(tag), &v) != 0 ? v : def
        }

        var pagesAcc: [Page] = []
        var locs: [(page: Int, sample: Int)] = []
        var width = 0, height = 0, bits = 0, format = 0
        var kindAcc: Kind = .u16
        var description: String?
        var resX: Double?, resY: Double?
        // PerkinElmer/Akoya QPI: each page describes itself (channel name, image type)
        var qpiFile = false
        var qpiPages: [QPIPage?] = []           // per channel page, when qpiFile
        for d in 0..<nDirs {
            guard TIFFSetDirectory(t, UInt32(d)) != 0 else {
                if d == 0 { throw fail("cannot read the first TIFF directory\(libtiffMsg()); the file is corrupt, re-export it") }
                throw fail("cannot read TIFF page \(d)\(libtiffMsg()); the file is probably truncated, re-copy or re-export it")
            }
            let w = Int(u32(TIFFTAG_IMAGEWIDTH, 0))
            let hgt = Int(u32(TIFFTAG_IMAGELENGTH, 0))
            let subfile = u32(TIFFTAG_SUBFILETYPE, 0)
            let b = Int(u16(TIFFTAG_BITSPERSAMPLE, 1))
            let fmt = Int(u16(TIFFTAG_SAMPLEFORMAT, 1))
            let spp = Int(u16(TIFFTAG_SAMPLESPERPIXEL, 1))
            let planar = u16(TIFFTAG_PLANARCONFIG, UInt16(PLANARCONFIG_CONTIG))
            let comp = u16(TIFFTAG_COMPRESSION, 1)
            var pageDescription: String?
            var dp: UnsafePointer<CChar>? = nil
            if epipe_tiff_get_string(t, UInt32(TIFFTAG_IMAGEDESCRIPTION), &dp) != 0, let dp { pageDescription = String(cString: dp) }
            if d == 0 { qpiFile = pageDescription.map(QPI.looksLikeQPI) ?? false }
            // a page whose QPI XML is malformed gives nil: kept by its geometry alone, named chN
            let qpi = qpiFile ? pageDescription.flatMap(QPI.parse) : nil
            // QPTIFF: thumbnail, pyramid levels, overview, label and macro pages are not channels
            if let qpi, !qpi.isFullResolution { continue }
            if pagesAcc.isEmpty {
                if w <= 0 || hgt <= 0 {
                    throw fail("image has zero size (\(w) x \(hgt) pixels); the header is corrupt, re-export the image")
                }
                if w > 10_000_000 || hgt > 10_000_000 {
                    throw fail("image claims \(w) x \(hgt) pixels, which is absurd; the header is corrupt, re-export the image")
                }
                if spp <= 0 || spp > 4096 {
                    throw fail("image claims \(spp) samples per pixel; the header is corrupt, re-export the image")
                }
                let (px, o1) = w.multipliedReportingOverflow(by: hgt)
                let (tot, o2) = px.multipliedReportingOverflow(by: spp)
                if o1 || o2 || tot > maxPixels {
                    throw fail("image is \(w) x \(hgt) x \(spp) samples = \(o1 || o2 ? "too many" : String(tot)) pixels, over the limit of \(maxPixels); check the file or raise maxPixels")
                }
                let photometric = Int(u16(TIFFTAG_PHOTOMETRIC, 1))
                // RGB with its samples in separate planes is read as channels (a 3-plex written so);
                // interleaved RGB is a colour picture
                if let colour = ImageReader.colourModel(photometric), photometric != 2 || planar != UInt16(PLANARCONFIG_SEPARATE) {
                    throw fail("is \(colour) image (photometric \(photometric)), not one grayscale plane per marker; export the channels as a multi-page grayscale (OME-)TIFF")
                }
                guard let k = ImageReader.kind(bits: b, format: fmt) else {
                    throw fail("unsupported pixel format (\(b) bits per sample, sample format \(fmt)); convert to 8/16/32-bit unsigned or 32-bit float")
                }
                kindAcc = k
                width = w; height = hgt; bits = b; format = fmt
                if d == 0 { description = pageDescription }
                var rx: Float = 0, ry: Float = 0
                if u16(TIFFTAG_RESOLUTIONUNIT, 2) == 3,
                   epipe_tiff_get_float(t, UInt32(TIFFTAG_XRESOLUTION), &rx) != 0, rx > 0,
                   epipe_tiff_get_float(t, UInt32(TIFFTAG_YRESOLUTION), &ry) != 0, ry > 0 {
                    resX = 1e4 / Double(rx); resY = 1e4 / Double(ry)
                }
            } else {
                // not a channel: reduced-resolution page, other size or other type
                if subfile & 1 != 0 || w != width || hgt != height || b != bits || fmt != format { continue }
                if spp <= 0 || spp > 4096 { continue }
            }
            if TIFFIsCODECConfigured(comp) == 0 {
                throw fail("page \(d) uses compression \(comp), which this libtiff cannot decode; re-export with deflate, LZW, zstd or no compression")
            }
            let tiled = TIFFIsTiled(t) != 0
            var tw = 0, th = 0, rps = 0
            if tiled {
                tw = Int(u32(TIFFTAG_TILEWIDTH, 0)); th = Int(u32(TIFFTAG_TILELENGTH, 0))
                if tw <= 0 || th <= 0 || tw > 65536 || th > 65536 {
                    throw fail("page \(d) has absurd tile size \(tw) x \(th); the header is corrupt, re-export the image")
                }
            } else {
                var r: UInt32 = 0
                _ = epipe_tiff_get_u32_defaulted(t, UInt32(TIFFTAG_ROWSPERSTRIP), &r)
                rps = Int(min(UInt64(r == 0 ? UInt32.max : r), UInt64(hgt)))
            }
            let pg = Page(dir: UInt32(d), tiled: tiled, tileW: tw, tileH: th, rowsPerStrip: rps,
                          spp: spp, separate: planar == UInt16(PLANARCONFIG_SEPARATE) && spp > 1)
            pagesAcc.append(pg)
            for s in 0..<spp { locs.append((pagesAcc.count - 1, s)) }
            if qpiFile { qpiPages.append(spp == 1 ? qpi : nil) }
            let (tot, o) = width.multipliedReportingOverflow(by: height * locs.count)
            if o || tot > maxPixels {
                throw fail("image is \(width) x \(height) x \(locs.count)+ channels, over the limit of \(maxPixels) pixels; check the file or raise maxPixels")
            }
        }

        if locs.isEmpty {
            throw fail("no full-resolution channel page (every page is a QPI thumbnail, pyramid level, overview or label image); open the full-resolution QPTIFF or component image")
        }

        // --- OME-XML -------------------------------------------------------------------
        let ome = description.flatMap { OMEXML.parse($0) }
        if let ome, let c = ome.sizeC, c > 0, c < locs.count, pagesAcc.allSatisfy({ $0.spp == 1 }) {
            // pages hold Z/T planes or further OME images too: keep the (z=0, t=0) plane of each
            // channel of the first image
            // (sizes from the XML: a product past Int.max is not this file's plane count)
            let z = max(ome.sizeZ ?? 1, 1), tt = max(ome.sizeT ?? 1, 1)
            let (cz, o1) = c.multipliedReportingOverflow(by: z)
            let (planes, o2) = cz.multipliedReportingOverflow(by: tt)
            if !o1 && !o2 && planes < locs.count { locs = Array(locs.prefix(planes)) }
            if !o1 && !o2 && planes == locs.count {
                let order = Array((ome.dimensionOrder ?? "XYCZT").uppercased().dropFirst(2))
                // planes of one channel come before the next: Z and/or T when named before C (each
                // letter once: "XYZZC" is a malformed order, not Z twice)
                var strideC = 1, seen = Set<Character>()
                for dch in order {
                    if dch == "C" { break }
                    if seen.insert(dch).inserted { strideC *= (dch == "Z" ? z : (dch == "T" ? tt : 1)) }
                }
                locs = (0..<c).map { locs[$0 * strideC] }
            }
        }
        let nChan = locs.count

        // --- strips/tiles must lie inside the file, and decode to a bounded band -----------
        let usedPages = Set(locs.map { $0.page })
        for pi in usedPages.sorted() {
            let pg = pagesAcc[pi]
            let pix = pg.stride * (bits / 8)
            let (rowBytes, o1) = width.multipliedReportingOverflow(by: pix)
            let (bandBytes, o2) = rowBytes.multipliedReportingOverflow(by: pg.bandHeight)
            let tileBytes = pg.tiled ? pg.tileW * pg.tileH * pix : 0
            let what = pg.tiled ? "a row of its \(pg.tileW) x \(pg.tileH) tiles" : "one strip of \(pg.rowsPerStrip) rows"
            if o1 || o2 || max(bandBytes, tileBytes) > maxBandBytes {
                let size = o1 || o2 ? "more than \(Int.max) bytes" : ImageReader.gb(max(bandBytes, tileBytes))
                throw fail("page \(pg.dir) decodes \(what) x \(width) pixels at once (\(size)), more than the \(ImageReader.gb(maxBandBytes)) epipe decodes at a time; the header is probably corrupt, else re-export the image tiled (e.g. 512 x 512 tiles)")
            }
            guard TIFFSetDirectory(t, pg.dir) != 0 else {
                throw fail("cannot re-read TIFF page \(pg.dir)\(libtiffMsg()); the file is corrupt, re-export it")
            }
            let n = pg.tiled ? TIFFNumberOfTiles(t) : TIFFNumberOfStrips(t)
            let bandsPerPlane = (height + pg.bandHeight - 1) / pg.bandHeight
            let across = pg.tiled ? (width + pg.tileW - 1) / pg.tileW : 1
            let expected = bandsPerPlane * across * (pg.separate ? pg.spp : 1)
            if Int(n) < expected {
                throw fail("page \(pg.dir) has \(n) \(pg.tiled ? "tiles" : "strips") but needs \(expected); the file is corrupt, re-export it")
            }
            var stored = false
            for i in 0..<n {
                var err: Int32 = 0
                let off = TIFFGetStrileOffsetWithErr(t, i, &err)
                if err != 0 { throw fail("cannot read \(pg.tiled ? "tile" : "strip") offsets of page \(pg.dir)\(libtiffMsg()); the file is corrupt, re-export it") }
                let bc = TIFFGetStrileByteCountWithErr(t, i, &err)
                if err != 0 { throw fail("cannot read \(pg.tiled ? "tile" : "strip") byte counts of page \(pg.dir)\(libtiffMsg()); the file is corrupt, re-export it") }
                if bc > 0 && (off > fileSize || bc > fileSize - off) {
                    throw fail("page \(pg.dir) \(pg.tiled ? "tile" : "strip") \(i) ends at byte \(off &+ bc) but the file has only \(fileSize) bytes (truncated); re-copy or re-export the image")
                }
                // no bytes (a sparse strip reads as zeros) is offset 0, or one inside the file: past
                // its end the data is missing, not empty
                if bc == 0 && off > fileSize {
                    throw fail("page \(pg.dir) \(pg.tiled ? "tile" : "strip") \(i) starts at byte \(off) but the file has only \(fileSize) bytes (truncated); re-copy or re-export the image")
                }
                stored = stored || bc > 0
            }
            // a band with stored bytes is decoded whole: no codec epipe meets expands data 65536-fold
            // (deflate at most ~1032, zstd ~32000 on zeros), so a small file claiming more is corrupt
            // (a sparse band costs one zero row, whatever it claims)
            let (expandable, o3) = Int(clamping: fileSize).multipliedReportingOverflow(by: ImageReader.maxExpansion)
            if stored && !o3 && max(bandBytes, tileBytes) > expandable {
                throw fail("page \(pg.dir) decodes \(what) x \(width) pixels at once (\(ImageReader.gb(max(bandBytes, tileBytes)))), more than a \(fileSize)-byte file holds even compressed \(ImageReader.maxExpansion) to 1; the header is corrupt, re-export the image")
            }
        }

        // --- names ---------------------------------------------------------------------
        var names: [String]? = nil
        if let ome, ome.channelNames.count == nChan, ome.channelNames.contains(where: { $0 != nil }) {
            names = ome.channelNames.enumerated().map { $0.element ?? "ch\($0.offset)" }
        }
        let qpiNames = ome == nil && qpiFile && qpiPages.count == nChan ? qpiPages.map { $0?.channelName } : []
        if names == nil, qpiNames.contains(where: { $0 != nil }) {
            names = QPI.uniqueNames(qpiNames)
        }
        if names == nil, let csv = markersCSV {
            let m = try Markers.read(csvPath: csv)
            guard m.count == nChan else {
                throw ImageError(path: csv, message: "lists \(m.count) markers but \(path) has \(nChan) channels; make marker_name have one line per channel")
            }
            names = m
        }
        if names == nil {
            let beside = (path as NSString).deletingLastPathComponent
            let csv = (beside.isEmpty ? "." : beside) + "/markers.csv"
            if FileManager.default.fileExists(atPath: csv), let m = try? Markers.read(csvPath: csv), m.count == nChan {
                names = m
            }
        }

        // QPI: the XML's pixel size (first full-resolution page) before the resolution tags
        let qpiPixel = qpiFile ? qpiPages.first.flatMap { $0?.pixelSizeMicrons } : nil

        let pt: PixelType
        switch kindAcc {
        case .u8: pt = .uint8
        case .u16: pt = .uint16
        case .u32: pt = .uint32
        default: pt = .float32
        }
        info = ImageInfo(width: width, height: height, channels: nChan, pixelType: pt,
                         channelNames: names ?? (0..<nChan).map { "ch\($0)" },
                         physicalSizeX: ome?.physicalSizeX ?? (ome == nil ? qpiPixel ?? resX : nil),
                         physicalSizeY: ome?.physicalSizeY ?? (ome == nil ? qpiPixel ?? resY : nil))
        kind = kindAcc
        bytesPerSample = bits / 8
        pages = pagesAcc
        channelLoc = locs
        currentDir = TIFFCurrentDirectory(t)
        epipe_tiff_clear_error(h)
        ok = true
    }

    deinit {
        cache.removeAll()
        tileScratch?.deallocate()
        epipe_tiff_close(handle)
    }

    /// Bytes as "1.5 GB" for messages.
    static func gb(_ n: Int) -> String { String(format: "%.1f GB", Double(n) / 1e9) }

    static func kind(bits: Int, format: Int) -> Kind? {
        switch (bits, format) {
        case (8, 1), (8, 4): return .u8
        case (16, 1), (16, 4): return .u16
        case (32, 1), (32, 4): return .u32
        case (8, 2): return .i8
        case (16, 2): return .i16
        case (32, 2): return .i32
        case (32, 3): return .f32
        case (64, 3): return .f64
        default: return nil
        }
    }

    /// A colour photometric interpretation (palette, RGB, CMYK, YCbCr, CIE Lab) by name; nil for
    /// grayscale (min-is-black/white) and others read as planes.
    static func colourModel(_ photometric: Int) -> String? {
        switch photometric {
        case 2: return "an RGB colour"
        case 3: return "a palette-colour"
        case 5: return "a CMYK colour"
        case 6: return "a YCbCr colour"
        case 8, 9, 10: return "a CIE Lab colour"
        default: return nil
        }
    }

    /// Walks the chain of image directories (classic and BigTIFF) without libtiff: nil when every
    /// directory and the chain's end lie inside the file, else what is wrong ("truncated ...").
    /// Stops after 100,000 directories or at a loop (libtiff refuses those itself).
    static func directoryChainProblem(path: String, fileSize: UInt64) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: 16)
        guard pread(fd, &head, 16, 0) == 16 || fileSize < 16 else { return nil }
        let little = head[0] == 0x49
        func value(_ b: ArraySlice<UInt8>) -> UInt64 {
            var v: UInt64 = 0
            for (i, x) in (little ? Array(b) : Array(b.reversed())).enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            return v
        }
        let big = value(head[2..<4]) == 43
        var off = big ? value(head[8..<16]) : value(head[4..<8])
        let countBytes = big ? 8 : 2, entryBytes: UInt64 = big ? 20 : 12, nextBytes = big ? 8 : 4
        var seen = Set<UInt64>(), page = 0
        while off != 0 && page < 100_000 {
            if !seen.insert(off).inserted { return nil }
            let (end, o) = off.addingReportingOverflow(UInt64(countBytes))
            if o || end > fileSize {
                return page == 0 ? "truncated TIFF: its first image directory lies past the end of the file (\(fileSize) bytes); re-copy or re-export the image"
                    : "truncated TIFF: image directory \(page) starts at byte \(off) but the file has only \(fileSize) bytes (pages after \(page - 1) are missing); re-copy or re-export the image"
            }
            var buf = [UInt8](repeating: 0, count: countBytes)
            guard pread(fd, &buf, countBytes, off_t(off)) == countBytes else { return nil }
            let n = value(buf[...])
            let (body, o2) = n.multipliedReportingOverflow(by: entryBytes)
            let (next, o3) = end.addingReportingOverflow(body)
            if o2 || o3 || next + UInt64(nextBytes) > fileSize {
                return "truncated TIFF: image directory \(page) (at byte \(off), \(n) entries) runs past the end of the file (\(fileSize) bytes); re-copy or re-export the image"
            }
            var nb = [UInt8](repeating: 0, count: nextBytes)
            guard pread(fd, &nb, nextBytes, off_t(next)) == nextBytes else { return nil }
            off = value(nb[...]); page += 1
        }
        return nil
    }

    static func isTIFFMagic(_ b: [UInt8]) -> Bool {
        guard b.count >= 4 else { return false }
        if b[0] == 0x49 && b[1] == 0x49 && (b[2] == 42 || b[2] == 43) && b[3] == 0 { return true }
        if b[0] == 0x4D && b[1] == 0x4D && b[2] == 0 && (b[3] == 42 || b[3] == 43) { return true }
        return false
    }

    static func readPrefix(path: String, count: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ImageError(path: path, message: "cannot open (\(String(cString: strerror(errno)))); check the path and permissions")
        }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, count) }
        return n > 0 ? Array(buf[0..<n]) : []
    }

    // MARK: - reading

    private func err(_ m: String) -> ImageError { ImageError(path: path, message: m) }

    private func checkArgs(channel: Int, y0: Int, count: Int, dstCount: Int) throws {
        guard channel >= 0 && channel < info.channels else {
            throw err("channel \(channel) out of range (image has \(info.channels) channels); use 0..<\(info.channels)")
        }
        guard y0 >= 0, count >= 0, y0 + count <= info.height else {
            throw err("rows \(y0)..<\(y0 + count) out of range (image has \(info.height) rows); request rows inside the image")
        }
        guard dstCount >= count * info.width else {
            throw err("destination holds \(dstCount) values but \(count) rows need \(count * info.width); pass a larger buffer")
        }
    }

    /// rows [y0, y0+count) of one channel, converted to Float, into dst (count*width floats)
    public func readRows(channel: Int, y0: Int, count: Int, into dst: UnsafeMutableBufferPointer<Float>) throws {
        lock.lock(); defer { lock.unlock() }
        try checkArgs(channel: channel, y0: y0, count: count, dstCount: dst.count)
        guard count > 0, let base = dst.baseAddress else { return }
        let w = info.width
        let kind = self.kind
        try forEachRow(channel: channel, y0: y0, count: count) { src, stride, r in
            ImageReader.convertRowFloat(kind: kind, src: src, stride: stride, n: w, dst: base + r * w)
        }
        if kind == .f32 || kind == .f64 { try checkFinite(UnsafeBufferPointer(start: base, count: count * w), channel: channel, x0: 0, y0: y0, width: w) }
    }

    /// Float images: a NaN or infinite pixel (or a 64-bit value beyond Float's range) is refused with
    /// where it is; every filter downstream would spread it.
    private func checkFinite(_ v: UnsafeBufferPointer<Float>, channel: Int, x0: Int, y0: Int, width: Int) throws {
        for i in 0..<v.count where !v[i].isFinite {
            throw err("channel \(channel) has a \(v[i].isNaN ? "NaN" : "infinite") pixel value at x \(x0 + i % width), y \(y0 + i / width); the export wrote invalid floats: replace them (e.g. with 0) or re-export the image")
        }
    }

    public func readRows(channel: Int, y0: Int, count: Int) throws -> [Float] {
        guard count >= 0 else { try checkArgs(channel: channel, y0: y0, count: count, dstCount: 0); return [] }
        let n = count * info.width
        return try [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            try readRows(channel: channel, y0: y0, count: count, into: buf)
            initialized = n
        }
    }

    /// rows [y0, y0+count) of one channel as UInt32 (label masks). Integer types are widened
    /// (negatives clamp to 0); floats are rounded and clamped.
    public func readRowsUInt32(channel: Int, y0: Int, count: Int, into dst: UnsafeMutableBufferPointer<UInt32>) throws {
        lock.lock(); defer { lock.unlock() }
        try checkArgs(channel: channel, y0: y0, count: count, dstCount: dst.count)
        guard count > 0, let base = dst.baseAddress else { return }
        let w = info.width
        let kind = self.kind
        try forEachRow(channel: channel, y0: y0, count: count) { src, stride, r in
            ImageReader.convertRowU32(kind: kind, src: src, stride: stride, n: w, dst: base + r * w)
        }
    }

    public func readRowsUInt32(channel: Int, y0: Int, count: Int) throws -> [UInt32] {
        guard count >= 0 else { try checkArgs(channel: channel, y0: y0, count: count, dstCount: 0); return [] }
        let n = count * info.width
        return try [UInt32](unsafeUninitializedCapacity: n) { buf, initialized in
            try readRowsUInt32(channel: channel, y0: y0, count: count, into: buf)
            initialized = n
        }
    }

    /// The window [x0, x0 + width) x [y0, y0 + height) of one channel, converted to Float
    /// (row-major). Tiled pages decode only the tiles the window touches (a 1024 px window of a
    /// 50,000 px wide slide decodes 1/49 of its rows' data); striped pages decode whole rows.
    /// The band cache of `readRows` is not used.
    public func readWindow(channel: Int, x0: Int, y0: Int, width ww: Int, height hh: Int) throws -> [Float] {
        let v = try window(channel: channel, x0: x0, y0: y0, width: ww, height: hh, zero: 0, ImageReader.convertRowFloat,
                           rows: { try self.readRows(channel: channel, y0: y0, count: hh) })
        if kind == .f32 || kind == .f64 { try v.withUnsafeBufferPointer { try checkFinite($0, channel: channel, x0: x0, y0: y0, width: max(1, ww)) } }
        return v
    }

    /// `readWindow` as UInt32 (label masks; conversion as `readRowsUInt32`).
    public func readWindowUInt32(channel: Int, x0: Int, y0: Int, width ww: Int, height hh: Int) throws -> [UInt32] {
        try window(channel: channel, x0: x0, y0: y0, width: ww, height: hh, zero: 0, ImageReader.convertRowU32,
                   rows: { try self.readRowsUInt32(channel: channel, y0: y0, count: hh) })
    }

    /// Shared by the window reads: each run of a decoded tile row inside the window is converted
    /// by `convert`; striped pages (or a full-width window) read whole rows by `rows` and cut them.
    private func window<T>(channel: Int, x0: Int, y0: Int, width ww: Int, height hh: Int, zero: T,
                           _ convert: (Kind, UnsafeRawPointer, Int, Int, UnsafeMutablePointer<T>) -> Void,
                           rows: () throws -> [T]) throws -> [T] {
        guard x0 >= 0, ww >= 0, x0 + ww <= info.width else {
            throw err("columns \(x0)..<\(x0 + ww) out of range (image has \(info.width) columns); request columns inside the image")
        }
        guard channel >= 0 && channel < info.channels else {
            try checkArgs(channel: channel, y0: y0, count: hh, dstCount: hh * info.width); return []
        }
        let loc = channelLoc[channel]
        let pg = pages[loc.page]
        var out = [T](repeating: zero, count: max(0, ww * hh))
        if !pg.tiled || ww == info.width {
            let whole = try rows()
            for r in 0..<hh { for x in 0..<ww { out[r * ww + x] = whole[r * info.width + x0 + x] } }
            return out
        }
        lock.lock(); defer { lock.unlock() }
        try checkArgs(channel: channel, y0: y0, count: hh, dstCount: hh * info.width)
        guard ww > 0, hh > 0 else { return out }
        let plane = pg.separate ? loc.sample : 0
        let sampleOffset = (pg.separate ? 0 : loc.sample) * bytesPerSample
        try setDir(pg.dir)
        let tw = pg.tileW, th = pg.tileH
        let (scratch, tileBytes, pix) = tileBuffer(pg)
        let kind = self.kind
        try out.withUnsafeMutableBufferPointer { O in
        var ty = (y0 / th) * th
        while ty < y0 + hh {
            var tx = (x0 / tw) * tw
            while tx < x0 + ww {
                let tile = TIFFComputeTile(tif, UInt32(tx), UInt32(ty), 0, UInt16(plane))
                let ra = max(y0, ty), rb = min(y0 + hh, ty + th)      // rows of the window in this tile
                let ca = max(x0, tx), cb = min(x0 + ww, tx + tw)      // its columns
                if TIFFGetStrileByteCount(tif, tile) != 0 {           // (a sparse tile reads as zeros)
                    let got = Int(TIFFReadEncodedTile(tif, tile, scratch, tmsize_t(tileBytes)))
                    if got < tileBytes { throw decodeError("tile \(tile) of page \(pg.dir)", got: got, want: tileBytes) }
                    for y in ra..<rb {
                        convert(kind, UnsafeRawPointer(scratch) + ((y - ty) * tw + (ca - tx)) * pix + sampleOffset, pg.stride, cb - ca,
                                O.baseAddress! + (y - y0) * ww + (ca - x0))
                    }
                }
                tx += tw
            }
            ty += th
        }
        }
        return out
    }

    public func readChannel(_ c: Int) throws -> [Float] {
        try readRows(channel: c, y0: 0, count: info.height)
    }

    public func readChannelUInt32(_ c: Int) throws -> [UInt32] {
        try readRowsUInt32(channel: c, y0: 0, count: info.height)
    }

    /// Calls body(rowStart, sampleStride, rowIndexInRequest) for each requested row. Lock held.
    private func forEachRow(channel: Int, y0: Int, count: Int,
                            _ body: (UnsafeRawPointer, Int, Int) -> Void) throws {
        let loc = channelLoc[channel]
        let pg = pages[loc.page]
        let sampleOffset = (pg.separate ? 0 : loc.sample) * bytesPerSample
        var y = y0
        let end = y0 + count
        while y < end {
            let band = try band(pageIndex: loc.page, plane: pg.separate ? loc.sample : 0, y: y)
            let stop = min(end, band.y0 + band.rows)
            var p = UnsafeRawPointer(band.ptr) + (y - band.y0) * band.rowStride + sampleOffset
            for r in (y - y0)..<(stop - y0) {
                body(p, pg.stride, r)
                p += band.rowStride
            }
            y = stop
        }
    }

    private func setDir(_ d: UInt32) throws {
        if currentDir == d { return }
        guard TIFFSetDirectory(tif, d) != 0 else {
            let m = String(cString: epipe_tiff_error(handle))
            epipe_tiff_clear_error(handle)
            throw err("cannot read TIFF page \(d) (libtiff: \(m)); the file may have changed or be corrupt, re-copy it")
        }
        currentDir = d
    }

    private func band(pageIndex: Int, plane: Int, y: Int) throws -> Band {
        let pg = pages[pageIndex]
        let bh = pg.bandHeight
        let key = BandKey(page: pageIndex, plane: plane, index: y / bh)
        clock &+= 1
        if let b = cache[key] { b.stamp = clock; return b }
        try setDir(pg.dir)
        let by0 = key.index * bh
        let rows = min(bh, info.height - by0)
        let rowBytes = info.width * pg.stride * bytesPerSample
        // a band with no stored bytes (sparse) is one zero row, however many rows it claims
        let sparse = isSparse(pg, plane: plane, y0: by0)
        let need = sparse ? rowBytes : rows * rowBytes
        // only the last band of each plane is kept (reads go top to bottom): reuse its memory
        var reuse: Band? = nil
        for k in cache.keys where k.page == key.page && k.plane == key.plane {
            let old = cache.removeValue(forKey: k)!
            cacheBytes -= old.bytes
            if old.bytes >= need { reuse = old }
        }
        let band: Band
        if let reuse {
            band = reuse
            band.y0 = by0; band.rows = rows; band.rowBytes = rowBytes; band.rowStride = sparse ? 0 : rowBytes
        } else {
            band = Band(bytes: need, y0: by0, rows: rows, rowBytes: rowBytes, rowStride: sparse ? 0 : rowBytes)
        }
        if sparse {
            memset(band.ptr, 0, rowBytes)
        } else if pg.tiled {
            try decodeTiles(pg, plane: plane, band: band)
        } else {
            let strip = TIFFComputeStrip(tif, UInt32(by0), UInt16(plane))
            let want = rows * rowBytes
            let got = Int(TIFFReadEncodedStrip(tif, strip, band.ptr, tmsize_t(want)))
            if got < want {
                throw decodeError("strip \(strip) of page \(pg.dir)", got: got, want: want)
            }
        }
        band.stamp = clock
        cache[key] = band
        cacheBytes += band.bytes
        evict()
        return band
    }

    /// No strip or tile of the band at row `y0` has stored bytes (a sparse file: they read as zeros).
    private func isSparse(_ pg: Page, plane: Int, y0: Int) -> Bool {
        guard pg.tiled else { return TIFFGetStrileByteCount(tif, TIFFComputeStrip(tif, UInt32(y0), UInt16(plane))) == 0 }
        var x = 0
        while x < info.width {
            if TIFFGetStrileByteCount(tif, TIFFComputeTile(tif, UInt32(x), UInt32(y0), 0, UInt16(plane))) != 0 { return false }
            x += pg.tileW
        }
        return true
    }

    private func decodeError(_ what: String, got: Int, want: Int) -> ImageError {
        let m = String(cString: epipe_tiff_error(handle))
        epipe_tiff_clear_error(handle)
        let detail = m.isEmpty ? "decoded \(max(got, 0)) of \(want) bytes" : "libtiff: \(m)"
        return err("cannot decode \(what) (\(detail)); the file is corrupt or truncated, re-copy or re-export it")
    }

    /// The scratch buffer for one decoded tile of `pg` (grown when needed), the tile's bytes and
    /// the bytes per pixel.
    private func tileBuffer(_ pg: Page) -> (UnsafeMutableRawPointer, Int, Int) {
        let pix = pg.stride * bytesPerSample
        let tileBytes = pg.tileW * pg.tileH * pix
        if tileScratchBytes < tileBytes || tileScratch == nil {
            tileScratch?.deallocate()
            tileScratch = UnsafeMutableRawPointer.allocate(byteCount: max(tileBytes, 1), alignment: 64)
            tileScratchBytes = max(tileBytes, 1)
        }
        return (tileScratch!, tileBytes, pix)
    }

    private func decodeTiles(_ pg: Page, plane: Int, band: Band) throws {
        let tw = pg.tileW
        let (scratch, tileBytes, pix) = tileBuffer(pg)
        let w = info.width
        var x = 0
        while x < w {
            let tile = TIFFComputeTile(tif, UInt32(x), UInt32(band.y0), 0, UInt16(plane))
            let cols = min(tw, w - x)
            if TIFFGetStrileByteCount(tif, tile) == 0 {
                for r in 0..<band.rows { memset(band.ptr + r * band.rowBytes + x * pix, 0, cols * pix) }
            } else {
                let got = Int(TIFFReadEncodedTile(tif, tile, scratch, tmsize_t(tileBytes)))
                if got < tileBytes {
                    throw decodeError("tile \(tile) of page \(pg.dir)", got: got, want: tileBytes)
                }
                for r in 0..<band.rows {
                    memcpy(band.ptr + r * band.rowBytes + x * pix, scratch + r * tw * pix, cols * pix)
                }
            }
            x += tw
        }
    }

    private func evict() {
        while cacheBytes > _cacheLimit && cache.count > 1 {
            guard let oldest = cache.min(by: { $0.value.stamp < $1.value.stamp }) else { break }
            cacheBytes -= oldest.value.bytes
            cache.removeValue(forKey: oldest.key)
        }
    }

    /// Drops all cached decoded rows.
    public func clearCache() {
        lock.lock(); defer { lock.unlock() }
        cache.removeAll()
        cacheBytes = 0
    }

    // MARK: - conversion (hot loops)

    @inline(__always)
    static func convertRowFloat(kind: Kind, src: UnsafeRawPointer, stride: Int, n: Int, dst: UnsafeMutablePointer<Float>) {
        switch kind {
        case .u8:
            let s = src.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .u16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .u32:
            let s = src.assumingMemoryBound(to: UInt32.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .i8:
            let s = src.assumingMemoryBound(to: Int8.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .i16:
            let s = src.assumingMemoryBound(to: Int16.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .i32:
            let s = src.assumingMemoryBound(to: Int32.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        case .f32:
            let s = src.assumingMemoryBound(to: Float.self)
            if stride == 1 { dst.update(from: s, count: n) } else { for i in 0..<n { dst[i] = s[i * stride] } }
        case .f64:
            let s = src.assumingMemoryBound(to: Double.self)
            for i in 0..<n { dst[i] = Float(s[i * stride]) }
        }
    }

    @inline(__always)
    static func convertRowU32(kind: Kind, src: UnsafeRawPointer, stride: Int, n: Int, dst: UnsafeMutablePointer<UInt32>) {
        switch kind {
        case .u8:
            let s = src.assumingMemoryBound(to: UInt8.self)
            for i in 0..<n { dst[i] = UInt32(s[i * stride]) }
        case .u16:
            let s = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<n { dst[i] = UInt32(s[i * stride]) }
        case .u32:
            let s = src.assumingMemoryBound(to: UInt32.self)
            if stride == 1 { dst.update(from: s, count: n) } else { for i in 0..<n { dst[i] = s[i * stride] } }
        case .i8:
            let s = src.assumingMemoryBound(to: Int8.self)
            for i in 0..<n { dst[i] = UInt32(max(Int32(s[i * stride]), 0)) }
        case .i16:
            let s = src.assumingMemoryBound(to: Int16.self)
            for i in 0..<n { dst[i] = UInt32(max(Int32(s[i * stride]), 0)) }
        case .i32:
            let s = src.assumingMemoryBound(to: Int32.self)
            for i in 0..<n { dst[i] = UInt32(max(s[i * stride], 0)) }
        case .f32:
            let s = src.assumingMemoryBound(to: Float.self)
            for i in 0..<n { dst[i] = floatToU32(Double(s[i * stride])) }
        case .f64:
            let s = src.assumingMemoryBound(to: Double.self)
            for i in 0..<n { dst[i] = floatToU32(s[i * stride]) }
        }
    }

    @inline(__always)
    static func floatToU32(_ v: Double) -> UInt32 {
        if !(v > 0) { return 0 }           // also NaN
        if v >= 4_294_967_295 { return .max }
        return UInt32(v.rounded())
    }
}
