import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment
import EpipeDenoise

struct SegmentTool: StageTool {
    let stage = "segment"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
        let p = mergeParams(job, defaults: ["nuclear": "auto", "nucleus-diameter": "auto", "expand": "auto", "min-area": "auto", "split": true, "smooth": "auto", "tile": 1024, "threshold-method": "global", "nuclei-mask": "none", "cells-mask": "none",
                                                 "membrane": "none", "cell-max-distance": "auto"], flags: flags)
        for k in ["nucleus-diameter", "expand", "min-area", "cell-max-distance"] {
            if let v = p[k], v.stringValue != "auto", (v.doubleValue ?? -1) < 0 { throw EpipeError.badInput("segment param \(k): expected a number >= 0 or auto, got \(v)") }
        }
        return p
    }

    /// The denoised image when the job has that stage, else the raw scan.
    func imageInput(_ job: Job) throws -> (path: String, ref: FileRef) {
        if job.spec.stages.contains("denoise") {
            let r = try upstream(job, "denoise", ["denoise/image.ome.tif"])[0]
            return (try job.path(r.path), r)
        }
        return (try rawPath(job), FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes))
    }

    /// An imported label mask (Cellpose, Mesmer, StarDist, ...) given for nuclei or cells, if any.
    func maskFile(_ p: [String: JSONValue], _ key: String) -> String? {
        guard let f = p[key]?.stringValue, !["none", "off", ""].contains(f.lowercased()) else { return nil }
        return f
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        var refs = [try imageInput(job).ref]
        for k in ["nuclei-mask", "cells-mask"] {
            guard let f = maskFile(params, k) else { continue }
            guard Files.exists(f) else { throw EpipeError.badInput("\(f): \(k) not found; give a uint32/uint16 label TIFF") }
            let (hx, n) = try Digest.sha256(file: f)
            refs.append(FileRef(path: "file://" + Files.canonical(f), sha256: hx, bytes: n))
        }
        return refs
    }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p = ctx.params
        let (imgPath, _) = try imageInput(ctx.job)
        let reader = try ImageReader(path: imgPath, markersCSV: ctx.job.spec.markers.map { String($0.dropFirst(7)) })
        let info = reader.info
        let w = info.width, h = info.height, C = info.channels
        let nucSpec = p["nuclear"]?.stringValue ?? "auto"
        let nuc = nucSpec == "auto" ? guessNuclear(info.channelNames) : try channelIndex(nucSpec, names: info.channelNames, what: "--nuclear")
        var diameter = p["nucleus-diameter"]?.doubleValue ?? 0
        if diameter <= 0 { diameter = info.physicalSizeX.map { max(4, min(60, 7.0 / $0)) } ?? 12 }
        let expand = p["expand"]?.intValue ?? Int((diameter * 0.5).rounded())
        let minArea = p["min-area"]?.intValue ?? max(4, Int(0.1 * Double.pi * diameter * diameter / 4))
        var np = NucleiParams()
        np.nucleusDiameter = diameter; np.minArea = minArea
        np.splitTouching = p["split"]?.boolValue ?? true
        if let sm = p["smooth"]?.doubleValue { np.smoothSigma = sm }
        switch p["threshold-method"]?.stringValue ?? "global" {
        case "global": np.thresholdMethod = .global
        case "adaptive", "local": np.thresholdMethod = .adaptive
        default: throw EpipeError.badInput("segment param threshold-method: expected global or adaptive")
        }
        ctx.log.detail("nuclear channel \(info.channelNames[nuc]) (#\(nuc)), diameter \(diameter) px, expand \(expand) px, min area \(minArea) px")
        // Whole cells: membrane watershed when membrane channels are given, else expansion by `expand`.
        // (a string "CD45,CD3" from the flag, or a list of names/indices in job.json params)
        let memSpec = p["membrane"]?.arrayValue.map { $0.map { $0.stringValue ?? $0.intValue.map(String.init) ?? "?" }.joined(separator: ",") }
            ?? p["membrane"]?.stringValue ?? p["membrane"]?.intValue.map(String.init) ?? "none"
        let memChannels: [Int] = ["none", "off", ""].contains(memSpec.lowercased()) ? [] : try memSpec.split(separator: ",").map {
            try channelIndex(String($0).trimmingCharacters(in: .whitespaces), names: info.channelNames, what: "--membrane")
        }
        let cellMaxDistance = p["cell-max-distance"]?.doubleValue ?? Double(expand)
        let cellParams = CellParams(maxDistance: cellMaxDistance, minGrowth: min(cellMaxDistance, diameter / 3))
        let cellContext = Segmenter.cellContextRows(cellParams)
        if !memChannels.isEmpty {
            ctx.log.detail("cells: membrane watershed on \(memChannels.map { info.channelNames[$0] }.joined(separator: "+")), max distance \(cellMaxDistance) px, \(cellContext) context rows")
        }

        // Imported masks replace our nuclei and/or cells; ids are kept (MCMICRO: cell i holds nucleus i).
        func openMask(_ key: String) throws -> ImageReader? {
            guard let f = maskFile(p, key) else { return nil }
            let r = try ImageReader(path: f)
            guard r.info.width == w, r.info.height == h else {
                throw EpipeError.badInput("\(f): \(key) is \(r.info.width)x\(r.info.height), the image is \(w)x\(h); give the mask made from this image")
            }
            return r
        }
        let nucMask = try openMask("nuclei-mask"), cellMask = try openMask("cells-mask")
        let tile = max(256, p["tile"]?.intValue ?? 1024)
        // Objects must fit in the overlap for seams to stitch: several nucleus diameters plus the cell growth.
        let overlap = min(tile, max(32, Int((4 * diameter).rounded(.up)) + 2 * expand))
        let grid = TileGrid(width: w, height: h, tile: tile, overlap: overlap)
        let prog = ctx.progress("segment", total: 1 + grid.rows, unit: "steps")

        // 1. One threshold for the slide: Otsu of the smoothed nuclear channel, streamed in bands.
        var np0 = np
        if np0.threshold == nil {
            let smooth = DenoisePlan(np.smoothSigma > 0 ? [.gaussian(sigma: np.smoothSigma)] : [])
            var hist = Histogram16()
            let bandRows = 512
            var y0 = 0
            while y0 < h {
                let rows = min(bandRows, h - y0)
                let lo = max(0, y0 - smooth.halo), hi = min(h, y0 + rows + smooth.halo)
                let raw = try reader.readRows(channel: nuc, y0: lo, count: hi - lo)
                var sm: [Float]
                if smooth.ops.isEmpty {
                    let a0 = (y0 - lo) * w, a1 = (y0 - lo + rows) * w
                    sm = Array(raw[a0..<a1])
                } else {
                    let top = y0 - lo, bottom = hi - y0 - rows
                    sm = raw.withUnsafeBufferPointer { smooth.apply(band: $0, width: w, haloTop: top, rows: rows, haloBottom: bottom, y0: y0, imageHeight: h).values }
                }
                sm.withUnsafeBufferPointer { hist.add($0) }
                y0 += rows
            }
            np0.threshold = SlideThreshold.otsu(counts: hist.bins)
        }
        let threshold = np0.threshold!
        let params0 = np0
        // Membrane channels: per-channel levels (median, 99.5th percentile) for the slide, streamed in bands,
        // so every band normalises alike.
        var memLevels: [MembraneLevels] = []
        for c in memChannels {
            var hist = Histogram16()
            var y0 = 0
            while y0 < h {
                let rows = min(512, h - y0)
                try reader.readRows(channel: c, y0: y0, count: rows).withUnsafeBufferPointer { hist.add($0) }
                y0 += rows
            }
            memLevels.append(MembraneLevels.of(counts: hist.bins))
        }
        prog.advance()

        // 2. Nuclei tile by tile; cells by growing nuclei band by band; quantification streamed.
        let nucPath = try ctx.output("nuclei.tif"), cellPath = try ctx.output("cells.tif")
        let wn = try ImageWriter(path: nucPath, width: w, height: h, channelNames: ["nuclei"], pixelType: .uint32,
                                 physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let wc = try ImageWriter(path: cellPath, width: w, height: h, channelNames: ["cells"], pixelType: .uint32,
                                 physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let cellAcc = CellAccumulator(channels: C), nucAcc = CellAccumulator(channels: C)
        let qc = SegmentQC(width: w, height: h)
        var cache: (y0: Int, h: Int, rows: [Float])? = nil
        var pending: [(y0: Int, rows: Int, labels: [UInt32])] = []
        var segmented = 0
        /// Finishes the oldest pending band: grow its nuclei into cells with context rows from its
        /// neighbours (`expand` rows for expansion, `cellContext` rows for the membrane watershed;
        /// pending bands are whole tile rows, >= 256 rows), write both masks, quantify every channel in sub-bands.
        var maxId: UInt32 = 0
        func finish(_ k: Int) throws {
            var band = pending[k]
            var cells = band.labels
            if let cm = cellMask {
                cells = try cm.readRowsUInt32(channel: 0, y0: band.y0, count: band.rows)
                // Our nuclei take the id of the imported cell they lie in (pixels outside any cell are dropped).
                if nucMask == nil { for i in 0..<cells.count { band.labels[i] = band.labels[i] != 0 ? cells[i] : 0 } }
            } else if !memChannels.isEmpty && cellMaxDistance > 0 {
                let top = k > 0 ? min(cellContext, pending[k - 1].rows) : 0
                let bottom = k + 1 < pending.count ? min(cellContext, pending[k + 1].rows) : 0
                let wh = top + band.rows + bottom
                var win = [UInt32](); win.reserveCapacity(wh * w)
                if top > 0 { win += pending[k - 1].labels[((pending[k - 1].rows - top) * w)...] }
                win += band.labels
                if bottom > 0 { win += pending[k + 1].labels[0..<(bottom * w)] }
                var membrane = [Float](repeating: 0, count: wh * w)   // one marker plane read at a time
                for (c, lv) in zip(memChannels, memLevels) {
                    Segmenter.addMembrane(try reader.readRows(channel: c, y0: band.y0 - top, count: wh), levels: lv, into: &membrane)
                }
                let grown = Segmenter.cells(nuclei: win, membrane: membrane, width: w, height: wh, params: cellParams)
                cells = Array(grown[(top * w)..<((top + band.rows) * w)])
            } else if expand > 0 {
                let top = k > 0 ? min(expand, pending[k - 1].rows) : 0
                let bottom = k + 1 < pending.count ? min(expand, pending[k + 1].rows) : 0
                var win = [UInt32](); win.reserveCapacity((top + band.rows + bottom) * w)
                if top > 0 { win += pending[k - 1].labels[((pending[k - 1].rows - top) * w)...] }
                win += band.labels
                if bottom > 0 { win += pending[k + 1].labels[0..<(bottom * w)] }
                let grown = Segmenter.expandParallel(win, width: w, height: top + band.rows + bottom, distance: expand)
                cells = Array(grown[(top * w)..<((top + band.rows) * w)])
            }
            for l in cells where l > maxId { maxId = l }
            for l in band.labels where l > maxId { maxId = l }
            guard maxId < 200_000_000 else { throw EpipeError.badInput("label mask has id \(maxId); relabel it to 1...N (at most 200 million cells)") }
            try wn.writeRows(channel: 0, y0: band.y0, count: band.rows, band.labels)
            try wc.writeRows(channel: 0, y0: band.y0, count: band.rows, cells)
            for l in cells where l != 0 { segmented += 1 }
            var sy = 0
            while sy < band.rows {
                let n = min(256, band.rows - sy)
                let planes = try (0..<C).map { try reader.readRows(channel: $0, y0: band.y0 + sy, count: n) }
                let lo = sy * w, hi = (sy + n) * w
                try withBuffers(planes) { bufs in
                    cells[lo..<hi].withUnsafeBufferPointer { cellAcc.add(labels: $0, y0: band.y0 + sy, rows: n, width: w, channels: bufs) }
                    band.labels[lo..<hi].withUnsafeBufferPointer { nucAcc.add(labels: $0, y0: band.y0 + sy, rows: n, width: w, channels: bufs) }
                }
                qc.add(nuclear: planes[nuc], nuclei: Array(band.labels[lo..<hi]), cells: Array(cells[lo..<hi]), y0: band.y0 + sy, rows: n)
                sy += n
            }
        }
        let labeller = TiledLabeller(width: w, height: h, tile: tile, overlap: overlap) { plane, tw, th in
            Segmenter.nuclei(plane, width: tw, height: th, params: params0).labels
        }
        func emitBand(_ y0: Int, _ rows: Int, _ labels: [UInt32]) throws {
            pending.append((y0, rows, labels))
            if pending.count >= 2 { try finish(pending.count - 2) }
            if pending.count > 2 { pending.removeFirst() }
            prog.advance()
        }
        if let nm = nucMask {
            for r in 0..<grid.rows {
                let b = grid.band(r)
                try emitBand(b.y0, b.rows, try nm.readRowsUInt32(channel: 0, y0: b.y0, count: b.rows))
            }
        } else {
            _ = try labeller.run(read: { x0, y0, ww, hh in
                if cache == nil || cache!.y0 != y0 || cache!.h != hh { cache = (y0, hh, try reader.readRows(channel: nuc, y0: y0, count: hh)) }
                let rows = cache!.rows
                var out = [Float](repeating: 0, count: ww * hh)
                for r in 0..<hh { for x in 0..<ww { out[r * ww + x] = rows[r * w + x0 + x] } }
                return out
            }, emit: { y0, rows, labels in try emitBand(y0, rows, labels) })
        }
        if !pending.isEmpty { try finish(pending.count - 1) }
        try wn.finish(); try wc.finish()
        let count = Int(maxId)
        let shape = cellAcc.table(count: count)
        let nucT = nucAcc.table(count: count)
        let cellMeans = shape.means, nucMeans = nucT.means
        let seg = (count: count, threshold: threshold)
        let names = info.channelNames
        var header = ["CellID"] + names
        header += ["X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation"]
        header += names.map { $0 + "_nucleus" }
        var table = CSVTable(header: header)
        table.rows.reserveCapacity(seg.count)
        var areas: [Int] = []
        for i in 0..<shape.ids.count where shape.area[i] > 0 {
            var r = [String(shape.ids[i])]
            for c in 0..<C { r.append(CSVTable.num(cellMeans[c][i], digits: 3)) }
            r += [CSVTable.num(shape.centroidX[i]), CSVTable.num(shape.centroidY[i]), String(shape.area[i]),
                  CSVTable.num(shape.majorAxis[i]), CSVTable.num(shape.minorAxis[i]), CSVTable.num(shape.eccentricity[i]),
                  CSVTable.num(shape.solidity[i]), CSVTable.num(shape.extent[i]), CSVTable.num(shape.orientation[i])]
            for c in 0..<C { r.append(CSVTable.num(nucMeans[c][i], digits: 3)) }
            table.rows.append(r); areas.append(shape.area[i])
        }
        let csvPath = try ctx.output("cells.csv")
        try table.write(csvPath)

        // QC: outlines on the nuclear channel (a full-resolution crop and the whole slide), area histogram.
        var outputs = [nucPath, cellPath, csvPath]
        let q1 = try ctx.qc("overlay-crop.png"); try qc.crop().write(q1); outputs.append(q1)
        let q2 = try ctx.qc("overlay-thumbnail.png"); try qc.thumbnail().write(q2); outputs.append(q2)
        let sorted = areas.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        if !sorted.isEmpty {
            let maxA = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            let nb = 40, bw = max(1, (maxA + nb - 1) / nb)
            var hist = [Int](repeating: 0, count: nb)
            for a in sorted { hist[min(nb - 1, a / bw)] += 1 }
            let hm = hist.max() ?? 1
            var hc = Canvas(width: nb * 12 + 20, height: 220)
            for (i, v) in hist.enumerated() { let bh = 200 * v / max(hm, 1); hc.rect(10 + i * 12, 210 - bh, 10, bh, (31, 119, 180)) }
            hc.rect(10 + min(nb - 1, median / bw) * 12 + 4, 5, 2, 205, (214, 39, 40))
            hc.text("cell area (px), 0 to \(maxA); median \(median)", x: 10, y: 4, color: (0, 0, 0), box: nil)
            let q3 = try ctx.qc("area-histogram.png"); try hc.write(q3); outputs.append(q3)
        }
        var metrics: [String: JSONValue] = ["cells": .number(Double(table.rows.count)), "median_area_px": .number(Double(median)),
                                            "threshold": .number(Double(seg.threshold)), "nuclear_channel": .string(info.channelNames[nuc]),
                                            "nucleus_diameter_px": .number(diameter), "fraction_segmented": .number((Double(segmented) / Double(w * h) * 1e4).rounded() / 1e4),
                                            "nuclei_without_cell_fraction": 0, "warnings": .array(table.rows.isEmpty ? ["no cells found"] : [])]
        metrics["cell_method"] = .string(cellMask != nil ? "imported" : !memChannels.isEmpty && cellMaxDistance > 0 ? "membrane-watershed" : expand > 0 ? "expansion" : "nuclei")
        if cellMask == nil && !memChannels.isEmpty {
            metrics["membrane_channels"] = .array(memChannels.map { .string(info.channelNames[$0]) })
            metrics["cell_max_distance_px"] = .number(cellMaxDistance)
        } else if cellMask == nil {
            metrics["expand_px"] = .number(Double(expand))
        }
        if let px = info.physicalSizeX { metrics["cells_per_mm2"] = .number((Double(table.rows.count) / (Double(w * h) * px * px * 1e-6)).rounded()) }
        prog.finish()
        return StageResult(outputs: outputs, metrics: metrics)
    }
}

@main
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-segment",
        abstract: "Segment nuclei and whole cells and quantify every channel per cell, tile by tile.",
        discussion: """
        Nuclei, on the nuclear channel (--nuclear, default DAPI/Hoechst/DNA by name): one Otsu threshold \
        for the slide (from a histogram of the smoothed channel, streamed in bands; --threshold-method \
        adaptive adds a local-mean test for uneven slides), a permissive mask, seeds from h-maxima of the \
        log intensity plus a distance term, seeded watershed, then each object keeps the pixels above half \
        its own peak and a second pass finds dim nuclei beside bright ones; holes filled, objects under \
        --min-area dropped. Defaults follow --nucleus-diameter (default 7 µm at the image's pixel size, else \
        12 px). The slide is cut into --tile px tiles read with an overlap of about 4 diameters; an object \
        belongs to the tile holding its first pixel, so a nucleus cut by a seam is one cell with one id and \
        the result does not depend on the tile size. Cells: without --membrane, each nucleus grown by \
        --expand px without overlap (nearest nucleus wins). With --membrane NAME[,NAME...] (channel names or \
        indices), a seeded watershed from the nuclei of the membrane image (each channel normalised by its \
        slide median and 99.5th percentile, then summed; Gaussian sigma 0.5; low values flood first, plus a \
        distance term so cells without membrane signal split half-way): boundaries settle on bright membrane, \
        a pixel joins a nucleus only within --cell-max-distance px of it (default --expand), and dim pixels \
        farther than a third of a diameter from every nucleus stay background; bands are grown with \
        2 x --cell-max-distance + 2 rows of context (the whole-image result on generated slides). On \
        generated slides this beats expansion in object F1 and mean IoU of the cells. Writes segment/nuclei.tif and segment/cells.tif (uint32 labels), \
        segment/cells.csv (MCQuant columns: CellID, one mean per marker, X_centroid, Y_centroid, Area, \
        MajorAxisLength, MinorAxisLength, Eccentricity, Solidity, Extent, Orientation, <marker>_nucleus) \
        and QC overlays and an area histogram in segment/qc/. Memory ~ tile x width, not the slide.
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Nuclear channel by name or index (default: DAPI/Hoechst/DNA by name, else 0).") var nuclear: String?
    @Option(name: .long, help: "Expected nucleus diameter in pixels (default: 7 µm at the image's pixel size, else 12).") var nucleusDiameter: Double?
    @Option(name: .long, help: "Grow nuclei into cells by this many pixels (default: half the nucleus diameter).") var expand: Int?
    @Option(name: .long, help: "Membrane channel(s) for whole cells, by name or index, comma-separated (summed after normalisation). Default: none = expansion by --expand.") var membrane: String?
    @Option(name: .long, help: "With --membrane: a cell pixel lies within this many pixels of its nucleus (default: --expand).") var cellMaxDistance: Double?
    @Option(name: .long, help: "Drop nuclei smaller than this many pixels.") var minArea: Int?
    @Option(name: .long, help: "Split touching nuclei by watershed (true/false). Default true.") var split: Bool?
    @Option(name: .long, help: "Threshold: global (one Otsu value for the slide) or adaptive (local, for uneven slides).") var thresholdMethod: String?
    @Option(name: .long, help: "Tile size in px for slide-scale segmentation (memory ~ tile x width). Default 1024.") var tile: Int?
    @Option(name: .long, help: "Import a label mask instead of segmenting: nuclei=FILE, cells=FILE, or FILE for cells (may repeat).") var mask: [String] = []

    func maskFlag(_ kind: String) throws -> JSONValue? {
        var found: JSONValue? = nil
        for m in mask {
            let parts = m.split(separator: "=", maxSplits: 1).map(String.init)
            let (k, f) = parts.count == 2 && ["nuclei", "cells"].contains(parts[0]) ? (parts[0], parts[1]) : ("cells", m)
            if k == kind { found = .string(Files.canonical(f)) }
        }
        return found
    }

    func run() throws {
        let tool = SegmentTool(flags: ["nuclear": nuclear.map { .string($0) }, "nucleus-diameter": nucleusDiameter.map { .number($0) },
                                       "expand": expand.map { .number(Double($0)) }, "min-area": minArea.map { .number(Double($0)) },
                                       "split": split.map { .bool($0) }, "threshold-method": thresholdMethod.map { .string($0) },
                                       "tile": tile.map { .number(Double($0)) },
                                       "membrane": membrane.map { .string($0) }, "cell-max-distance": cellMaxDistance.map { .number($0) },
                                       "nuclei-mask": try maskFlag("nuclei"), "cells-mask": try maskFlag("cells")])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}

/// Calls `body` with unsafe views of several arrays at once.
func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    var bufs: [UnsafeBufferPointer<Float>] = []
    func go(_ i: Int) throws -> R {
        if i == arrays.count { return try body(bufs) }
        return try arrays[i].withUnsafeBufferPointer { b in bufs.append(b); return try go(i + 1) }
    }
    return try go(0)
}

/// Collects what the QC pictures need while bands stream by: a full-resolution crop at the slide's
/// centre (nuclear channel and both masks) and a sampled thumbnail of the nuclear channel and nuclei.
final class SegmentQC {
    let w: Int, h: Int, side: Int, cx0: Int, cy0: Int
    var cropPlane: [Float], cropNuc: [UInt32], cropCell: [UInt32]
    let f: Int, tw: Int, th: Int
    var thumb: [Float], thumbLab: [UInt32]
    init(width: Int, height: Int) {
        w = width; h = height
        side = min(512, width, height); cx0 = (width - side) / 2; cy0 = (height - side) / 2
        cropPlane = [Float](repeating: 0, count: side * side); cropNuc = [UInt32](repeating: 0, count: side * side); cropCell = cropNuc
        f = max(1, Int((Double(max(width, height)) / 1024).rounded(.up)))
        tw = (width + f - 1) / f; th = (height + f - 1) / f
        thumb = [Float](repeating: 0, count: tw * th); thumbLab = [UInt32](repeating: 0, count: tw * th)
    }
    func add(nuclear: [Float], nuclei: [UInt32], cells: [UInt32], y0: Int, rows: Int) {
        for r in 0..<rows {
            let y = y0 + r
            if y >= cy0 && y < cy0 + side {
                for x in 0..<side { let i = (y - cy0) * side + x, s = r * w + cx0 + x; cropPlane[i] = nuclear[s]; cropNuc[i] = nuclei[s]; cropCell[i] = cells[s] }
            }
            if y % f == 0 && y / f < th {
                for tx in 0..<tw { let s = r * w + min(w - 1, tx * f); thumb[(y / f) * tw + tx] = nuclear[s]; thumbLab[(y / f) * tw + tx] = nuclei[s] }
            }
        }
    }
    static func outline(_ cv: inout Canvas, _ lab: [UInt32], _ w: Int, _ h: Int, _ color: (UInt8, UInt8, UInt8)) {
        for y in 0..<h { for x in 0..<w {
            let l = lab[y * w + x]
            guard l != 0 else { continue }
            if (x > 0 && lab[y * w + x - 1] != l) || (x + 1 < w && lab[y * w + x + 1] != l) || (y > 0 && lab[(y - 1) * w + x] != l) || (y + 1 < h && lab[(y + 1) * w + x] != l) {
                cv.set(x, y, color)
            }
        } }
    }
    func crop() -> Canvas {
        let st = Preview.stretch(cropPlane, width: side, height: side, maxSide: side)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        SegmentQC.outline(&cv, cropCell, side, side, (255, 0, 255)); SegmentQC.outline(&cv, cropNuc, side, side, (0, 255, 0))
        cv.text("nuclei", x: 4, y: 4, color: (0, 255, 0)); cv.text("cells", x: 48, y: 4, color: (255, 0, 255))
        return cv
    }
    func thumbnail() -> Canvas {
        let st = Preview.stretch(thumb, width: tw, height: th, maxSide: 1024)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        SegmentQC.outline(&cv, thumbLab, tw, th, (0, 255, 0))
        return cv
    }
}
