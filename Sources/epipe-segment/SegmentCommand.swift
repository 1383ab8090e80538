import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment
import EpipeDenoise
import EpipeKernels

struct SegmentTool: StageTool {
    let stage = "segment"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
        var p = mergeParams(job, defaults: ["nuclear": "auto", "nucleus-diameter": "auto", "expand": "auto", "min-area": "auto", "split": true, "smooth": "auto", "tile": "auto", "threshold-method": "global", "nuclei-mask": "none", "cells-mask": "none", "stats": "none",
                                            "membrane": "none", "cell-max-distance": "auto", "seeds": "blend", "seed-h": "auto", "seed-min-distance": "auto"], flags: flags)
        for k in ["nucleus-diameter", "expand", "min-area", "cell-max-distance", "seed-h", "seed-min-distance"] {
            if let v = p[k], v.stringValue != "auto", (v.doubleValue ?? -1) < 0 { throw EpipeError.badInput("segment param \(k): expected a number >= 0 or auto, got \(v)") }
        }
        p["stats"] = .string(try statsParam(p).list)
        // checked here, before the stage starts, so that a bad value leaves the last run's manifest alone
        guard ["global", "adaptive", "local"].contains(p["threshold-method"]?.stringValue ?? "global") else {
            throw EpipeError.badInput("segment param threshold-method: expected global or adaptive")
        }
        guard ["blend", "intensity", "distance"].contains(p["seeds"]?.stringValue ?? "blend") else {
            throw EpipeError.badInput(seedsError)
        }
        // channel names too, when the image can be read already (else the run reports what is missing)
        if let path = try? imageInput(job).path, let r = try? ImageReader(path: path, markersCSV: job.spec.markers.map { String($0.dropFirst(7)) }) {
            for (k, flag) in [("nuclear", "--nuclear"), ("membrane", "--membrane")] {
                let spec = p[k]?.arrayValue.map { $0.map { $0.stringValue ?? $0.intValue.map(String.init) ?? "?" }.joined(separator: ",") }
                    ?? p[k]?.stringValue ?? p[k]?.intValue.map(String.init) ?? "auto"
                if ["auto", "none", "off", ""].contains(spec.lowercased()) { continue }
                for c in spec.split(separator: ",") { _ = try channelIndex(String(c).trimmingCharacters(in: .whitespaces), names: r.info.channelNames, what: flag) }
            }
        }
        return p
    }

    /// Extra statistics per marker (`--stats median,std,sum`).
    func statsParam(_ p: [String: JSONValue]) throws -> CellStats {
        let raw = p["stats"]?.stringValue ?? "none"
        let (st, bad) = CellStats.parse(raw)
        guard bad.isEmpty else {
            throw EpipeError.badInput("segment param stats: unknown \(bad.joined(separator: ", ")) in \"\(raw)\"; expected a comma-separated list of median, std, sum (or none)")
        }
        return st
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
            // the size is checked here, before the stage starts, so a wrong mask leaves the last run alone
            let m = try ImageReader(path: f)
            if let img = try? ImageReader(path: imageInput(job).path), img.info.width != m.info.width || img.info.height != m.info.height {
                throw EpipeError.badInput("\(f): \(k) is \(m.info.width)x\(m.info.height), the image is \(img.info.width)x\(img.info.height); give the mask made from this image")
            }
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
        // One or several nuclear channels (e.g. DAPI,Hoechst or one DNA channel per cycle): several are averaged.
        let nucList = p["nuclear"]?.arrayValue.map { $0.map { $0.stringValue ?? $0.intValue.map(String.init) ?? "?" }.joined(separator: ",") } ?? nucSpec
        let nucs: [Int] = nucList == "auto" ? [guessNuclear(info.channelNames)] : try nucList.split(separator: ",").map {
            try channelIndex(String($0).trimmingCharacters(in: .whitespaces), names: info.channelNames, what: "--nuclear")
        }
        guard !nucs.isEmpty else { throw EpipeError.badInput("--nuclear: give a channel name or index (or several, comma-separated)") }
        let nucName = nucs.map { info.channelNames[$0] }.joined(separator: "+")
        // The nucleus diameter: given (flag or job.json); else measured on the nuclear channel (a
        // bounded sample of the slide) and used when there is no pixel size, or when it is confident
        // and near the prior of 8 µm at the pixel size (NucleusDiameter.choose); else that prior; else 12 px.
        var diameter = p["nucleus-diameter"]?.doubleValue ?? 0
        var diameterMetrics: [String: JSONValue] = ["nucleus_diameter_source": "flag"]
        if diameter <= 0 {
            let t0 = Date()
            let prior = info.physicalSizeX.map { max(4, min(60, NucleusDiameter.priorMicrons / $0)) }
            let sample = try diameterSample(path: imgPath, markersCSV: ctx.job.spec.markers.map { String($0.dropFirst(7)) }, channels: nucs, width: w, height: h)
            let e = NucleusDiameter.estimate(tiles: sample.map { ($0.plane, $0.w, $0.h) })
            let (d, source) = NucleusDiameter.choose(prior: prior, estimate: e)
            diameter = (d * 10).rounded() / 10
            diameterMetrics = ["nucleus_diameter_source": .string(source)]
            if let prior { diameterMetrics["nucleus_diameter_prior_px"] = .number((prior * 10).rounded() / 10) }
            let priorText = prior.map { "\(CSVTable.num($0, digits: 1)) px (\(CSVTable.num(NucleusDiameter.priorMicrons, digits: 0)) µm at the pixel size)" }
            if let e {
                diameterMetrics["nucleus_diameter_method"] = .string(e.method)
                diameterMetrics["nucleus_diameter_estimate_px"] = .number((e.diameter * 10).rounded() / 10)
                diameterMetrics["nucleus_diameter_objects"] = .number(Double(e.objects))
                diameterMetrics["nucleus_diameter_confidence"] = .number((e.confidence * 100).rounded() / 100)
                let found = "\(CSVTable.num(e.diameter, digits: 1)) px estimated (\(e.method), \(e.objects) nuclei in \(sample.count) window(s) of the nuclear channel, confidence \(CSVTable.num(e.confidence, digits: 2)), \(CSVTable.num(Date().timeIntervalSince(t0), digits: 1)) s)"
                if source == "estimated" {
                    let low = e.confidence < 0.3 ? "; low confidence, give --nucleus-diameter if the nuclei look wrong" : ""
                    ctx.log.info("nucleus diameter \(found)\(priorText.map { "; the pixel size's prior was \($0)" } ?? "")\(low)")
                } else {
                    ctx.log.info("nucleus diameter \(priorText ?? "12 px"); the image's own estimate, \(found), is \(e.confidence < NucleusDiameter.trustConfidence ? "not confident enough" : "too far from it") (give --nucleus-diameter if the nuclei look wrong)")
                }
            } else {
                ctx.log.info("nucleus diameter \(priorText ?? "12 px"): no nuclei to measure in the nuclear channel (give --nucleus-diameter if the nuclei look wrong)")
            }
        }
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
        switch p["seeds"]?.stringValue ?? "blend" {
        case "blend": np.split = .blend
        case "intensity": np.split = .intensity
        case "distance": np.split = .distance
        default: throw EpipeError.badInput(seedsError)
        }
        np.seedHOverride = p["seed-h"]?.doubleValue
        np.seedMinDistanceOverride = p["seed-min-distance"]?.doubleValue
        ctx.log.detail("nuclear channel \(nucName) (#\(nucs.map(String.init).joined(separator: ","))), diameter \(diameter) px, expand \(expand) px, min area \(minArea) px")
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
        let growth: CellGrowth = !memChannels.isEmpty && cellMaxDistance > 0 ? .membrane(cellParams, context: cellContext)
            : expand > 0 ? .expansion(distance: expand) : .nuclei
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
        // Bands are whole tile rows across the slide, so memory goes with tile x width: wide slides
        // get shorter tiles (1024 up to 16k px wide, then down to 512), at some cost in overlap.
        let tile = max(256, p["tile"]?.intValue ?? (w <= 16384 ? 1024 : max(512, (16384 * 1024 / w) / 128 * 128)))
        // Objects must fit in the overlap for seams to stitch: several nucleus diameters plus the cell growth.
        let overlap = min(tile, max(32, Int((4 * diameter).rounded(.up)) + 2 * expand))
        let grid = TileGrid(width: w, height: h, tile: tile, overlap: overlap)
        let prog = ctx.progress("segment", total: 1 + grid.rows, unit: "steps")

        // 1. One threshold for the slide: Otsu of the smoothed nuclear channel, streamed in bands.
        var clock = Date()
        var timings: [String] = []
        func lap(_ what: String) { timings.append(what + " " + CSVTable.num(Date().timeIntervalSince(clock), digits: 1) + " s"); clock = Date() }
        var np0 = np
        let markersCSV = ctx.job.spec.markers.map { String($0.dropFirst(7)) }
        // Histograms have 65536 integer levels: float (and uint32) images are mapped onto them from
        // their range on the slide (one more pass), so a float32 image in [0, 1] thresholds like its uint16 twin.
        let integral = info.pixelType == .uint8 || info.pixelType == .uint16
        func levelsMap(_ chans: [Int]) throws -> (offset: Float, scale: Float)? {
            if integral { return nil }
            let r = try slideRange(path: imgPath, markersCSV: markersCSV, channels: chans, width: w, height: h)
            return (r.min, r.max > r.min ? 65535 / (r.max - r.min) : 1)
        }
        if np0.threshold == nil {
            let map = try levelsMap(nucs)
            let hist = try slideHistogram(path: imgPath, markersCSV: markersCSV, channels: nucs, plan: np.signalPlan, width: w, height: h, map: map)
            let bin = SlideThreshold.otsu(counts: hist.bins)
            np0.threshold = map.map { bin / $0.scale + $0.offset } ?? bin
        }
        let threshold = np0.threshold!
        lap("threshold")
        let params0 = np0
        // Membrane channels: per-channel levels (median, 99.5th percentile) for the slide, streamed in bands,
        // so every band normalises alike.
        var memLevels: [MembraneLevels] = []
        for c in memChannels {
            let map = try levelsMap([c])
            let hist = try slideHistogram(path: imgPath, markersCSV: markersCSV, channels: [c], plan: DenoisePlan([]), width: w, height: h, map: map)
            var lv = MembraneLevels.of(counts: hist.bins)
            if let m = map { lv = MembraneLevels(low: lv.low / m.scale + m.offset, high: lv.high / m.scale + m.offset) }
            memLevels.append(lv)
        }
        prog.advance()

        // 2. Nuclei tile by tile; cells by growing nuclei band by band; quantification streamed.
        let nucPath = try ctx.output("nuclei.tif"), cellPath = try ctx.output("cells.tif")
        let wn = try ImageWriter(path: nucPath, width: w, height: h, channelNames: ["nuclei"], pixelType: .uint32,
                                 physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let wc = try ImageWriter(path: cellPath, width: w, height: h, channelNames: ["cells"], pixelType: .uint32,
                                 physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let stats = try statsParam(p)
        // Per-cell quantification streamed: a cell's row is computed when the bands are past it,
        // joined with its nucleus's row, and written in increasing CellID (see `CellRowJoiner`).
        // A cell closes a nucleus diameter of rows after its last row: labels with a few empty rows
        // inside (split nuclei) stay open instead of going through the repair pass.
        // (EPIPE_SEGMENT_GRACE overrides it, for tests of the repair path.)
        let grace = ProcessInfo.processInfo.environment["EPIPE_SEGMENT_GRACE"].flatMap { Int($0) } ?? Int(diameter.rounded(.up))
        let cellAcc = CellAccumulator(channels: C, stats: stats, retain: false, grace: grace)
        let nucAcc = CellAccumulator(channels: C, stats: stats, retain: false, grace: grace)
        var match = NucleusCellMatch()
        let joiner = CellRowJoiner()
        // imported masks: ids in any order, rows held until the end; ours: raster order of the nuclei
        let importedIds = nucMask != nil || cellMask != nil
        let csvPath = try ctx.output("cells.csv")
        let csvOut = try AtomicStreamWriter(path: csvPath)
        let names = info.channelNames
        var header = ["CellID"] + names
        header += ["X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation"]
        header += names.map { $0 + "_nucleus" }
        // Extra statistics after the existing columns, named as MCQuant's intensity_props
        // (<marker>_intensity_median, ...); the nucleus compartment with the _nucleus suffix.
        let statNames = stats.names
        for sname in statNames { header += names.map { "\($0)_intensity_\(sname)" } + names.map { "\($0)_intensity_\(sname)_nucleus" } }
        try csvOut.write(header.map(CSVTable.quote).joined(separator: ",") + "\n")
        var seenReopened = (0, 0)
        /// After a sub-band: the rows the joiner can release, written.
        func releaseRows() throws {
            joiner.reopened(Array(cellAcc.reopened[seenReopened.0...]) + Array(nucAcc.reopened[seenReopened.1...]))
            seenReopened = (cellAcc.reopened.count, nucAcc.reopened.count)
            guard !importedIds else { return }
            let m = match
            let out = joiner.release(upTo: UInt32(nucAcc.maxId), isOpen: { cellAcc.status($0) == .open || nucAcc.status($0) == .open },
                                     isReopened: { cellAcc.status($0) == .reopened || nucAcc.status($0) == .reopened }, covered: { m.isCovered($0) })
            try csvOut.write(CSVRows.format(out, channels: C, stats: statNames))
        }
        // Quantification sub-bands: all channels of one sub-band in memory (~128 MiB); with the
        // median, open cells' values add at most (sub-band + tallest cell) rows x width x channels.
        // (EPIPE_SEGMENT_SUBROWS overrides it, for tests.)
        let subRows = ProcessInfo.processInfo.environment["EPIPE_SEGMENT_SUBROWS"].flatMap { Int($0) }.map { max(1, $0) } ?? QuantPlan.subBandRows(width: w, channels: C)
        let qc = SegmentQC(width: w, height: h)
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
            } else {
                cells = try BandCells.grow(band.labels, rows: band.rows, y0: band.y0, width: w, above: k > 0 ? pending[k - 1].labels : nil,
                                           below: k + 1 < pending.count ? pending[k + 1].labels : nil, growth: growth) { y0, n in
                    var membrane = [Float](repeating: 0, count: n * w)   // one marker plane read at a time
                    for (c, lv) in zip(memChannels, memLevels) { Segmenter.addMembrane(try reader.readRows(channel: c, y0: y0, count: n), levels: lv, into: &membrane) }
                    return membrane
                }
            }
            for l in cells where l > maxId { maxId = l }
            for l in band.labels where l > maxId { maxId = l }
            guard maxId < 200_000_000 else { throw EpipeError.badInput("label mask has id \(maxId); relabel it to 1...N (at most 200 million cells)") }
            try wn.writeRows(channel: 0, y0: band.y0, count: band.rows, band.labels)
            try wc.writeRows(channel: 0, y0: band.y0, count: band.rows, cells)
            for l in cells where l != 0 { segmented += 1 }
            var sy = 0
            while sy < band.rows {
                let n = min(subRows, band.rows - sy)
                let planes = try (0..<C).map { try reader.readRows(channel: $0, y0: band.y0 + sy, count: n) }
                let lo = sy * w, hi = (sy + n) * w
                withBuffers(planes) { bufs in
                    let cr = cells[lo..<hi].withUnsafeBufferPointer { cellAcc.add(labels: $0, y0: band.y0 + sy, rows: n, width: w, channels: bufs) }
                    band.labels[lo..<hi].withUnsafeBufferPointer { nb in
                        joiner.add(cells: cr, nuclei: nucAcc.add(labels: nb, y0: band.y0 + sy, rows: n, width: w, channels: bufs))
                        cells[lo..<hi].withUnsafeBufferPointer { match.add(nuclei: nb, cells: $0) }
                    }
                }
                try releaseRows()
                qc.add(nuclear: meanOf(planes, channels: nucs), nuclei: Array(band.labels[lo..<hi]), cells: Array(cells[lo..<hi]), y0: band.y0 + sy, rows: n)
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
        // Nuclei (or the imported mask) are produced band by band on their own thread, with their
        // own reader, while this thread grows, writes and quantifies the bands already done.
        typealias Band = (y0: Int, rows: Int, labels: [UInt32])
        let nucReader = nucMask == nil ? try ImageReader(path: imgPath, markersCSV: markersCSV) : reader
        let shared = UnsafeShared((labeller: labeller, nucReader: nucReader, nucMask: nucMask, grid: grid))
        try Handoff<Band>(capacity: 1).run(produce: { out in
            let s = shared.value
            if let nm = s.nucMask {
                for r in 0..<s.grid.rows {
                    let b = s.grid.band(r)
                    try out.put((b.y0, b.rows, try nm.readRowsUInt32(channel: 0, y0: b.y0, count: b.rows)))
                }
                return
            }
            var cache: (y0: Int, h: Int, rows: [Float])? = nil
            _ = try s.labeller.run(read: { x0, y0, ww, hh in
                if cache == nil || cache!.y0 != y0 || cache!.h != hh { cache = (y0, hh, try readMean(s.nucReader, channels: nucs, y0: y0, count: hh)) }
                var out = [Float](repeating: 0, count: ww * hh)
                cache!.rows.withUnsafeBufferPointer { src in
                    out.withUnsafeMutableBufferPointer { dst in
                        for r in 0..<hh { for x in 0..<ww { dst[r * ww + x] = src[r * w + x0 + x] } }
                    }
                }
                return out
            }, emit: { y0, rows, labels in try out.put((y0, rows, labels)) })
        }, consume: { b in try emitBand(b.y0, b.rows, b.labels) })
        if !pending.isEmpty { try finish(pending.count - 1) }
        try wn.finish(); try wc.finish()
        lap("nuclei, cells, masks and quantification")
        joiner.add(cells: cellAcc.finish(), nuclei: nucAcc.finish())
        try releaseRows()
        // Labels whose rows are not contiguous (closed, then back): that compartment recomputed from
        // the rows read once more; rows released too early (redo): both compartments.
        let redo = joiner.redo
        let cellSet = Set(cellAcc.reopened).union(redo), nucSet = Set(nucAcc.reopened).union(redo)
        if !cellSet.isEmpty || !nucSet.isEmpty {
            let r1 = cellAcc.beginRepair(extra: Array(redo), firstRow: { joiner.heldMinY($0, cells: true) })
            let r2 = nucAcc.beginRepair(extra: Array(redo), firstRow: { joiner.heldMinY($0, cells: false) })
            joiner.beginRepair(cells: cellSet, nuclei: nucSet)
            let lo = min(r1?.lowerBound ?? Int.max, r2?.lowerBound ?? Int.max), hi = max(r1?.upperBound ?? 0, r2?.upperBound ?? 0)
            ctx.log.detail("quantification: \(cellSet.count) cells and \(nucSet.count) nuclei in labels in separate parts or out of order (\(redo.count)); reading rows \(lo)..<\(hi) again")
            let cr = try ImageReader(path: cellPath), nr = try ImageReader(path: nucPath)
            var y = lo
            while y < hi {
                let n = min(subRows, hi - y)
                // the part of [y, y + n) inside each compartment's range
                func part(_ r: Range<Int>?, _ acc: CellAccumulator) -> Range<Int>? {
                    guard let r, acc.repairRows.contains(where: { $0.overlaps(y..<(y + n)) }) else { return nil }
                    let c = r.clamped(to: y..<(y + n)); return c.isEmpty ? nil : c
                }
                let p1 = part(r1, cellAcc), p2 = part(r2, nucAcc)
                if p1 != nil || p2 != nil {
                    let cl = p1 == nil ? [] : try cr.readRowsUInt32(channel: 0, y0: y, count: n)
                    let nl = p2 == nil ? [] : try nr.readRowsUInt32(channel: 0, y0: y, count: n)
                    let planes = try (0..<C).map { try reader.readRows(channel: $0, y0: y, count: n) }
                    func feed(_ acc: CellAccumulator, _ lab: [UInt32], _ p: Range<Int>?) -> [CellRow] {
                        guard let p else { return [] }
                        let a = (p.lowerBound - y) * w, b = (p.upperBound - y) * w
                        return withBuffers(planes) { bufs in
                            lab[a..<b].withUnsafeBufferPointer {
                                acc.repair(labels: $0, y0: p.lowerBound, rows: p.count, width: w, channels: bufs.map { UnsafeBufferPointer(rebasing: $0[a..<b]) })
                            }
                        }
                    }
                    joiner.repaired(cells: feed(cellAcc, cl, p1), nuclei: feed(nucAcc, nl, p2))
                }
                y += n
            }
            joiner.repaired(cells: cellAcc.endRepair(), nuclei: nucAcc.endRepair())
        }
        let m = match
        try csvOut.write(CSVRows.format(joiner.releaseAll(covered: { m.isCovered($0) }), channels: C, stats: statNames))
        let fixes = joiner.corrections(covered: { m.isCovered($0) })
        if fixes.isEmpty {
            try csvOut.commit()
        } else {
            // rows written before their final values: the file once more with those rows replaced
            ctx.log.detail("quantification: \(fixes.count) rows replaced in cells.csv")
            try csvOut.close()
            let out = try AtomicStreamWriter(path: csvPath)
            let areaCol = 1 + C + 2
            try CSVRows.replace(from: csvOut.temporaryPath, into: out, rows: fixes, channels: C, stats: statNames) { old in
                if let a = Int(old.split(separator: ",", omittingEmptySubsequences: false)[areaCol]) { joiner.forgetArea(a) }
            }
            try out.commit()
            csvOut.abort()
        }
        ctx.log.detail("quantification: at most \(cellAcc.peakOpenCells) cells and \(nucAcc.peakOpenCells) nuclei open, \(joiner.peakHeld) rows held")
        let cellCount = joiner.areas.count
        let seg = (count: Int(maxId), threshold: threshold)
        lap("table")

        // QC: outlines on the nuclear channel (full-resolution crops where the nuclei are, and the
        // whole slide), area histogram.
        var outputs = [nucPath, cellPath, csvPath]
        // crops on both cores, each with its own readers (rows are decoded whole, so this is the QC's main cost)
        let wins = qc.cropWindows()
        let crops = Slots<Canvas>(wins.count), cropErrors = Slots<Error>(wins.count)
        let qcS = UnsafeShared(qc)
        DispatchQueue.concurrentPerform(iterations: wins.count) { k in
            do {
                let imgR = try ImageReader(path: imgPath, markersCSV: markersCSV)
                let nucR = try ImageReader(path: nucPath), cellR = try ImageReader(path: cellPath)
                crops[k] = try qcS.value.crop(wins[k]) { x0, y0, side in
                    (meanOf(try nucs.map { try imgR.readWindow(channel: $0, x0: x0, y0: y0, width: side, height: side) }, channels: Array(0..<nucs.count)),
                     try nucR.readWindowUInt32(channel: 0, x0: x0, y0: y0, width: side, height: side),
                     try cellR.readWindowUInt32(channel: 0, x0: x0, y0: y0, width: side, height: side))
                }
            } catch { cropErrors[k] = error }
        }
        if let e = cropErrors.values.compactMap({ $0 }).first { throw e }
        for (k, cv) in crops.values.enumerated() {
            let q = try ctx.qc("overlay-crop-\(k + 1).png"); try cv!.write(q); outputs.append(q)
        }
        let q2 = try ctx.qc("overlay-thumbnail.png"); try qc.thumbnail().write(q2); outputs.append(q2)
        let areas = joiner.areas
        let median = areas.count == 0 ? 0 : areas.value(atRank: areas.count / 2)
        if areas.count > 0 {
            let maxA = areas.value(atRank: min(areas.count - 1, Int(Double(areas.count) * 0.99)))
            let nb = 40, bw = max(1, (maxA + nb - 1) / nb)
            var hist = [Int](repeating: 0, count: nb)
            for (a, k) in areas.pairs { hist[min(nb - 1, a / bw)] += k }
            let hm = hist.max() ?? 1
            var hc = Canvas(width: nb * 12 + 20, height: 220)
            for (i, v) in hist.enumerated() { let bh = 200 * v / max(hm, 1); hc.rect(10 + i * 12, 210 - bh, 10, bh, (31, 119, 180)) }
            hc.rect(10 + min(nb - 1, median / bw) * 12 + 4, 5, 2, 205, (214, 39, 40))
            hc.text("cell area (px), 0 to \(maxA); median \(median)", x: 10, y: 4, color: (0, 0, 0), box: nil)
            let q3 = try ctx.qc("area-histogram.png"); try hc.write(q3); outputs.append(q3)
        }
        var metrics: [String: JSONValue] = ["cells": .number(Double(cellCount)), "median_area_px": .number(Double(median)),
                                            "threshold": .number(Double(seg.threshold)), "nuclear_channel": .string(nucName),
                                            "nucleus_diameter_px": .number(diameter), "fraction_segmented": .number((Double(segmented) / Double(w * h) * 1e4).rounded() / 1e4),
                                            "nuclei_without_cell_fraction": .number((joiner.withoutCellFraction * 1e4).rounded() / 1e4), "warnings": .array(cellCount == 0 ? ["no cells found"] : [])]
        metrics.merge(diameterMetrics) { a, _ in a }
        metrics["cell_method"] = .string(cellMask != nil ? "imported" : !memChannels.isEmpty && cellMaxDistance > 0 ? "membrane-watershed" : expand > 0 ? "expansion" : "nuclei")
        if cellMask == nil && !memChannels.isEmpty {
            metrics["membrane_channels"] = .array(memChannels.map { .string(info.channelNames[$0]) })
            metrics["cell_max_distance_px"] = .number(cellMaxDistance)
        } else if cellMask == nil {
            metrics["expand_px"] = .number(Double(expand))
        }
        if let px = info.physicalSizeX { metrics["cells_per_mm2"] = .number((Double(cellCount) / (Double(w * h) * px * px * 1e-6)).rounded()) }
        lap("QC")
        ctx.log.detail("timings: " + timings.joined(separator: ", "))
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
        Nuclei, on the nuclear channel (--nuclear, default DAPI/Hoechst/DNA by name; several comma-separated channels are averaged): \
        the channel smoothed (sigma D/12) and its local background removed (white top-hat, disk of radius D), \
        one Otsu threshold of that signal for the slide (a histogram streamed in bands; --threshold-method adaptive \
        also asks each pixel to exceed the mean over 8 D), a permissive mask at \
        half of it (dim nuclei beside bright ones stay), seeds and a watershed on a blend of shape (distance to \
        the mask edge, capped at 0.75 D) and intensity (smoothed at D/8 past the chromatin texture, divided by its \
        maximum within D/2 so dim and bright nuclei weigh alike), seeds at least 0.3 D apart; each nucleus keeps \
        the pixels above 0.3 of its own peak, and a second pass finds dim nuclei beside bright ones (--seeds \
        blend, measured on real nuclei: BBBC039 and DSB-2018; --seeds intensity and --seeds distance are the \
        earlier recipes); objects under --min-area dropped. D is --nucleus-diameter, else estimated once per \
        slide from the nuclear channel, from the whole plane up \
        to 2048 x 2048 px, else from the 4 tiles of 1024 x 1024 px with the most nuclear signal: the scale \
        of the strongest Laplacian-of-Gaussian blobs of the log-contrast image, refined by the sizes of \
        the objects of a first Otsu mask that hold one or two of them; within 20 % of the expert masks' \
        median on 65 of 66 real BBBC039 and DSB-2018 images. With a pixel size, the estimate is used only \
        when it is confident (>= 0.5: many nuclei of similar sizes) and within 0.5-2x the prior of 8 µm at \
        that pixel size; else the prior (tissue of mixed cell types). The manifest's metrics record \
        nucleus_diameter_px and nucleus_diameter_source: flag, estimated, pixel-size or default, with \
        nucleus_diameter_estimate_px, _prior_px, _method, _objects and _confidence. The slide is cut into --tile px tiles read with an overlap of about 4 diameters; an object \
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
        and QC in segment/qc/: a thumbnail of the slide with the nuclei outlined, up to 4 full-resolution \
        crops (overlay-crop-1.png ...) where the nuclei are densest, spread over the slide, and an area \
        histogram. --stats median,std,sum adds, after those columns, <marker>_intensity_median, \
        <marker>_intensity_std (population, as numpy) and <marker>_intensity_sum per cell and the same \
        with _nucleus for the nucleus (MCQuant's --intensity_props names). The median is exact: the \
        values of the cells not finished yet are kept, at most (quantification sub-band + tallest cell + \
        one nucleus diameter) rows x width x channels x 4 bytes; the sub-band shrinks to about 128 MiB of \
        channel data (11 rows for 60 channels x 50000 px). Rows are streamed: a cell's row is written \
        once the bands have passed it, so memory goes with tile x width, not with the slide's height or \
        its number of cells (imported masks, whose ids may come in any order, keep their rows to the end).
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Nuclear channel by name or index, or several comma-separated (averaged) (default: DAPI/Hoechst/DNA by name, else 0).") var nuclear: String?
    @Option(name: .long, help: "Expected nucleus diameter in pixels (default: estimated from the nuclear channel, used when the image has no pixel size or when the estimate is confident and within 0.5-2x 8 µm at the pixel size, else 8 µm at it; the manifest's metrics record nucleus_diameter_px and nucleus_diameter_source: flag, estimated, pixel-size or default).") var nucleusDiameter: Double?
    @Option(name: .long, help: "Grow nuclei into cells by this many pixels (default: half the nucleus diameter).") var expand: Int?
    @Option(name: .long, help: "Membrane channel(s) for whole cells, by name or index, comma-separated (summed after normalisation). Default: none = expansion by --expand.") var membrane: String?
    @Option(name: .long, help: "With --membrane: a cell pixel lies within this many pixels of its nucleus (default: --expand).") var cellMaxDistance: Double?
    @Option(name: .long, help: "Drop nuclei smaller than this many pixels.") var minArea: Int?
    @Option(name: .long, help: "Split touching nuclei by watershed (true/false). Default true.") var split: Bool?
    @Option(name: .long, help: "Threshold: global (one Otsu value for the slide) or adaptive (local, for uneven slides).") var thresholdMethod: String?
    @Option(name: .long, help: "Nucleus recipe: blend (default; shape + neighbourhood-normalised intensity on the background-corrected signal), intensity (h-maxima of the log intensity plus a distance term, tuned on generated slides; over-splits textured chromatin) or distance (h-maxima of the distance transform, the classic recipe).") var seeds: String?
    @Option(name: .long, help: "Splitting control: minimum dynamic of a seed (blend: default 0.08 on a 0...3 scale; intensity: log units, default 0.015; distance: px, default 0.05 x diameter). Higher splits less.") var seedH: Double?
    @Option(name: .long, help: "Splitting control: minimum distance in px between seeds of one clump (default 0.3 x diameter; intensity 0.2 x; distance 0.25 x).") var seedMinDistance: Double?
    @Option(name: .long, help: "Tile size in px for slide-scale segmentation (memory ~ tile x width). Default 1024, down to 512 on slides wider than 16k px.") var tile: Int?
    @Option(name: .long, help: "Import a label mask instead of segmenting: nuclei=FILE, cells=FILE, or FILE for cells (may repeat).") var mask: [String] = []
    @Option(name: .long, help: ArgumentHelp("Extra statistics per marker, comma-separated: median, std, sum. Default none.", valueName: "LIST")) var stats: String?

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
                                       "tile": tile.map { .number(Double($0)) }, "stats": stats.map { .string($0) },
                                       "membrane": membrane.map { .string($0) }, "cell-max-distance": cellMaxDistance.map { .number($0) },
                                       "seeds": seeds.map { .string($0) }, "seed-h": seedH.map { .number($0) }, "seed-min-distance": seedMinDistance.map { .number($0) },
                                       "nuclei-mask": try maskFlag("nuclei"), "cells-mask": try maskFlag("cells")])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}

/// Windows of the nuclear channel (the mean of `channels`) for `NucleusDiameter.estimate`: the
/// whole plane up to 2048 x 2048 px; else up to 4 tiles of 1024 x 1024 px with the most nuclear
/// signal, ranked by the mean of the middle 256 rows of each tile row (one sparse pass in bands,
/// memory ~ 256 rows x width) and read in chunks of 256 rows. Deterministic.
func diameterSample(path: String, markersCSV: String?, channels: [Int], width w: Int, height h: Int) throws -> [(plane: [Float], w: Int, h: Int)] {
    if w * h <= 2048 * 2048 { return [(try readMean(ImageReader(path: path, markersCSV: markersCSV), channels: channels, y0: 0, count: h), w, h)] }
    let side = 1024
    let nx = max(1, w / side), ny = max(1, h / side)
    let tw = min(side, w), th = min(side, h)
    let offX = (w - nx * tw) / 2, offY = (h - ny * th) / 2
    // two readers (a libtiff handle is not shared between threads) decode in parallel
    let workers = 2
    func parallel<T>(_ count: Int, _ body: @escaping @Sendable (ImageReader, Int) throws -> T) throws -> [T] {
        let slots = max(count, 1)
        let out = UnsafeMutablePointer<Result<T, Error>?>.allocate(capacity: slots)
        out.initialize(repeating: nil, count: slots)
        defer { out.deinitialize(count: slots); out.deallocate() }
        let O = UnsafeShared(out)
        DispatchQueue.concurrentPerform(iterations: min(workers, count)) { k in
            let reader: ImageReader
            do { reader = try ImageReader(path: path, markersCSV: markersCSV) } catch {
                for i in stride(from: k, to: count, by: workers) { O.value[i] = .failure(error) }
                return
            }
            for i in stride(from: k, to: count, by: workers) { O.value[i] = Result { try body(reader, i) } }
        }
        return try (0..<count).map { try out[$0]!.get() }
    }
    // the 4 windows with the most nuclear signal, scored on 256 rows through the middle of each
    // (starting at a multiple of 256: the rows of whole 256 px TIFF tiles)
    let scores: [[Double]] = try parallel(ny) { reader, ty in
        let rows = min(256, th), top = offY + ty * th
        let y0 = min(top + th - rows, max(top, (top + th / 2) / 256 * 256))
        let band = try readMean(reader, channels: channels, y0: y0, count: rows)
        return band.withUnsafeBufferPointer { b in
            (0..<nx).map { tx in
                var s = 0.0
                for r in 0..<rows { for x in (offX + tx * tw)..<(offX + (tx + 1) * tw) { let v = b[r * w + x]; if v.isFinite { s += Double(v) } } }
                return s
            }
        }
    }
    let score = scores.flatMap { $0 }
    let best = Array((0..<score.count).sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }.prefix(4))
    return try parallel(best.count) { reader, i in
        let k = best[i]
        let x0 = offX + (k % nx) * tw, y0 = offY + (k / nx) * th
        let planes = try channels.map { try reader.readWindow(channel: $0, x0: x0, y0: y0, width: tw, height: th) }
        return (meanOf(planes, channels: Array(0..<channels.count)), tw, th)
    }
}

/// Rows [y0, y0 + count) of the mean of `channels` (one channel: that channel).
func readMean(_ r: ImageReader, channels: [Int], y0: Int, count n: Int) throws -> [Float] {
    if channels.count == 1 { return try r.readRows(channel: channels[0], y0: y0, count: n) }
    return meanOf(try channels.map { try r.readRows(channel: $0, y0: y0, count: n) }, channels: Array(0..<channels.count))
}

/// The mean of `planes[c]` for c in `channels` (one channel: that plane).
func meanOf(_ planes: [[Float]], channels: [Int]) -> [Float] {
    var out = planes[channels[0]]
    guard channels.count > 1 else { return out }
    for c in channels.dropFirst() {
        out.withUnsafeMutableBufferPointer { o in planes[c].withUnsafeBufferPointer { m in for i in 0..<o.count { o[i] += m[i] } } }
    }
    let k = 1 / Float(channels.count)
    out.withUnsafeMutableBufferPointer { o in for i in 0..<o.count { o[i] *= k } }
    return out
}

/// Smallest and largest value of the mean of `channels` over the slide (bands of 512 rows).
func slideRange(path: String, markersCSV: String?, channels: [Int], width w: Int, height h: Int) throws -> (min: Float, max: Float) {
    let reader = try ImageReader(path: path, markersCSV: markersCSV)
    var lo = Float.infinity, hi = -Float.infinity
    var y0 = 0
    while y0 < h {
        let n = min(512, h - y0)
        for v in try readMean(reader, channels: channels, y0: y0, count: n) where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        y0 += n
    }
    return lo <= hi ? (lo, hi) : (0, 1)
}

let seedsError = "segment param seeds: expected blend (default: shape + normalised intensity), intensity (h-maxima of the log intensity + distance) or distance (h-maxima of the distance transform)"

/// Histogram of the mean of `channels` (usually one) after `plan` (e.g. the segmentation's smoothing) over the whole
/// slide, streamed in bands of 512 rows; the slide's halves run on two threads, each with its own
/// reader (counts do not depend on the split). With `map`, values are mapped to (v - offset) x scale
/// before counting (float images onto the 65536 levels).
func slideHistogram(path: String, markersCSV: String?, channels: [Int], plan: DenoisePlan, width w: Int, height h: Int,
                    map: (offset: Float, scale: Float)? = nil) throws -> Histogram16 {
    let bandRows = 512
    let nb = (h + bandRows - 1) / bandRows
    let parts = nb >= 4 ? 2 : 1
    final class Part: @unchecked Sendable { var hist = Histogram16(); var error: Error? }
    let results = (0..<parts).map { _ in Part() }
    DispatchQueue.concurrentPerform(iterations: parts) { k in
        let out = results[k]
        do {
            let reader = try ImageReader(path: path, markersCSV: markersCSV)
            for b in (nb * k / parts)..<(nb * (k + 1) / parts) {
                let y0 = b * bandRows, rows = min(bandRows, h - y0)
                let lo = max(0, y0 - plan.halo), hi = min(h, y0 + rows + plan.halo)
                var raw = try readMean(reader, channels: channels, y0: lo, count: hi - lo)
                if let m = map { raw.withUnsafeMutableBufferPointer { r in for i in 0..<r.count { r[i] = (r[i] - m.offset) * m.scale } } }
                if plan.ops.isEmpty {
                    raw.withUnsafeBufferPointer { out.hist.add(UnsafeBufferPointer(rebasing: $0[((y0 - lo) * w)..<((y0 - lo + rows) * w)])) }
                } else {
                    let top = y0 - lo, bottom = hi - y0 - rows
                    let sm = raw.withUnsafeBufferPointer { plan.apply(band: $0, width: w, haloTop: top, rows: rows, haloBottom: bottom, y0: y0, imageHeight: h).values }
                    sm.withUnsafeBufferPointer { out.hist.add($0) }
                }
            }
        } catch { out.error = error }
    }
    var hist = Histogram16()
    for r in results {
        if let e = r.error { throw e }
        hist.merge(r.hist)
    }
    return hist
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

/// Collects what the QC pictures need while bands stream by: a sampled thumbnail of the nuclear
/// channel and nuclei, and the number of nuclei (by their first pixel) in each window of a coarse
/// grid of crop candidates. After the stream, `cropWindows` picks up to 4 windows with the most
/// nuclei, spread apart, and `crop` renders one at full resolution from rows read again.
final class SegmentQC {
    let w: Int, h: Int, side: Int
    let nx: Int, ny: Int, offX: Int, offY: Int
    var counts: [Int]
    /// bit per nucleus id: first pixel seen
    var seen: [UInt64] = []
    let f: Int, tw: Int, th: Int
    var thumb: [Float], thumbLab: [UInt32]
    init(width: Int, height: Int) {
        w = width; h = height
        side = min(512, width, height, max(64, min(width, height) / 2))
        nx = max(1, width / side); ny = max(1, height / side)
        offX = (width - nx * side) / 2; offY = (height - ny * side) / 2
        counts = [Int](repeating: 0, count: nx * ny)
        f = max(1, Int((Double(max(width, height)) / 1024).rounded(.up)))
        tw = (width + f - 1) / f; th = (height + f - 1) / f
        thumb = [Float](repeating: 0, count: tw * th); thumbLab = [UInt32](repeating: 0, count: tw * th)
    }
    func add(nuclear: [Float], nuclei: [UInt32], cells: [UInt32], y0: Int, rows: Int) {
        for r in 0..<rows {
            let y = y0 + r
            let gy = (y - offY) / side
            let inY = y >= offY && gy < ny
            for x in 0..<w {
                let l = Int(nuclei[r * w + x])
                if l == 0 { continue }
                let wd = l >> 6
                if wd >= seen.count { seen += [UInt64](repeating: 0, count: max(wd + 1, 2 * seen.count) - seen.count) }
                let bit: UInt64 = 1 << UInt64(l & 63)
                if seen[wd] & bit != 0 { continue }
                seen[wd] |= bit
                let gx = (x - offX) / side
                if inY && x >= offX && gx < nx { counts[gy * nx + gx] += 1 }
            }
            if y % f == 0 && y / f < th {
                for tx in 0..<tw { let s = r * w + min(w - 1, tx * f); thumb[(y / f) * tw + tx] = nuclear[s]; thumbLab[(y / f) * tw + tx] = nuclei[s] }
            }
        }
    }
    /// Up to `k` windows (x0, y0) of side x side px: most nuclei first, each at least `d` grid
    /// steps (Chebyshev) from those chosen, d shrinking from half the grid to 1; windows without
    /// nuclei are not used (the centre window when no window has any). Deterministic.
    func cropWindows(_ k: Int = 4) -> [(x0: Int, y0: Int)] {
        let order = (0..<counts.count).filter { counts[$0] > 0 }.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        var chosen: [Int] = []
        var d = max(1, max(nx, ny) / 2)
        while chosen.count < min(k, order.count) {
            for c in order where chosen.count < k && !chosen.contains(c) {
                if chosen.allSatisfy({ max(abs($0 % nx - c % nx), abs($0 / nx - c / nx)) >= d }) { chosen.append(c) }
            }
            if d == 1 { break }
            d -= 1
        }
        if chosen.isEmpty { chosen = [(ny / 2) * nx + nx / 2] }
        return chosen.map { (offX + ($0 % nx) * side, offY + ($0 / nx) * side) }
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
    /// The window at full resolution: `read(y0, n)` gives full-width rows of the nuclear channel,
    /// the nuclei and the cells (read in chunks of 64 rows, so memory ~ 64 x width).
    func crop(_ win: (x0: Int, y0: Int), read: (Int, Int, Int) throws -> ([Float], [UInt32], [UInt32])) throws -> Canvas {
        let (plane, nucL, cellL) = try read(win.x0, win.y0, side)
        let st = Preview.stretch(plane, width: side, height: side, maxSide: side)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        SegmentQC.outline(&cv, cellL, side, side, (255, 0, 255)); SegmentQC.outline(&cv, nucL, side, side, (0, 255, 0))
        cv.text("nuclei", x: 4, y: 4, color: (0, 255, 0)); cv.text("cells", x: 48, y: 4, color: (255, 0, 255))
        cv.text("x \(win.x0) y \(win.y0)", x: 4, y: side - 14, color: (255, 255, 0))
        return cv
    }
    func thumbnail() -> Canvas {
        let st = Preview.stretch(thumb, width: tw, height: th, maxSide: 1024)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        SegmentQC.outline(&cv, thumbLab, tw, th, (0, 255, 0))
        return cv
    }
}
