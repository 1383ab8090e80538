import Foundation
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment
import EpipeKernels

/// The segment stage for the runner: its params, inputs, the whole run, a part and the merge (the
/// executable, epipe-segment, is its flags).
extension ImageReader: PlaneReader {}

public struct SegmentTool: PartedStageTool {
    public let stage = "segment"
    let flags: [String: JSONValue?]
    public init(flags: [String: JSONValue?]) { self.flags = flags }

    public func params(for job: Job) throws -> [String: JSONValue] {
        let (p, record) = try typedParams(job, defaults: SegmentParams(), flags: flags)
        // channel names too, when the image can be read already (else the run reports what is missing);
        // checked here, before the stage starts, so that a bad value leaves the last run's manifest alone
        // (not for a raw scan still in an s3:// store: it is fetched only when the stage runs)
        let remote = !job.spec.stages.contains("denoise") && job.spec.raw.uri.hasPrefix("s3://")
        if !remote, let path = try? imagePath(job), let r = try? ImageReader(path: path, markersCSV: markers(job)) {
            if p.nuclear != "auto" { _ = try channelIndices(p.nuclear, names: r.info.channelNames, what: "--nuclear") }
            _ = try channelIndices(p.membrane, names: r.info.channelNames, what: "--membrane")
        }
        return record
    }

    func markers(_ job: Job) -> String? { markersPath(job) }

    /// The denoised image when the job has that stage, else the raw scan: its record (no download)
    /// and, when the stage runs, its local path (a raw scan in an s3:// store is fetched then).
    func imageRef(_ job: Job) throws -> FileRef {
        if job.spec.stages.contains("denoise") { return try upstream(job, "denoise", ["denoise/image.ome.tif"])[0] }
        return FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes)
    }
    func imagePath(_ job: Job) throws -> String {
        job.spec.stages.contains("denoise") ? try job.path(try imageRef(job).path) : try rawPath(job)
    }

    public func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        let p: SegmentParams = try decodeParams(params)
        var refs = [try imageRef(job)]
        for (k, f) in [("nuclei-mask", p.nucleiMask), ("cells-mask", p.cellsMask)] {
            guard let f = SegmentParams.maskPath(f) else { continue }
            _ = try openMask(f, k, job: job)   // checked before the stage starts: a wrong mask leaves the last run alone
            let (hx, n) = try Digest.sha256(file: f)
            refs.append(FileRef(path: "file://" + Files.canonical(f), sha256: hx, bytes: n))
        }
        return refs
    }

    /// An imported label mask (Cellpose, Mesmer, StarDist, ...), of the image's size.
    func openMask(_ f: String, _ key: String, job: Job) throws -> ImageReader {
        guard Files.exists(f) else { throw EpipeError.badInput("\(f): \(key) not found; give a uint32/uint16 label TIFF") }
        let m = try ImageReader(path: f), img = try ImageReader(path: imagePath(job))
        guard img.info.width == m.info.width, img.info.height == m.info.height else {
            throw EpipeError.badInput("\(f): \(key) is \(m.info.width)x\(m.info.height), the image is \(img.info.width)x\(img.info.height); give the mask made from this image")
        }
        return m
    }

    /// Merge mode (`--merge`): `run` assembles the parts instead of labelling the slide.
    public var merging = false
    public var keepParts = false

    /// The image and the channels the params name.
    struct Slide {
        var p: SegmentParams
        var imgPath: String
        var open: @Sendable () throws -> PlaneReader
        var info: ImageInfo
        var nucs: [Int], memChannels: [Int]
        var nucName: String
    }

    /// What the whole slide decides before any tile is labelled: the nucleus diameter (and what the
    /// manifest says about it), the nuclear threshold and the membrane channels' levels. The parts
    /// of a slide share them through parts/shared.json.
    struct Facts: Codable {
        var diameter: Double
        var metrics: [String: JSONValue]
        var threshold: Float
        var membrane: [MembraneLevels]
    }

    func slide(_ ctx: StageContext) throws -> Slide {
        let p: SegmentParams = try decodeParams(ctx.params)
        let imgPath = try imagePath(ctx.job), markersCSV = markers(ctx.job)
        let open: @Sendable () throws -> PlaneReader = { try ImageReader(path: imgPath, markersCSV: markersCSV) }
        let info = try ImageReader(path: imgPath, markersCSV: markersCSV).info
        let names = info.channelNames
        // One or several nuclear channels (e.g. DAPI,Hoechst or one DNA channel per cycle): several are averaged.
        let nucs = p.nuclear == "auto" ? [guessNuclear(names)] : try channelIndices(p.nuclear, names: names, what: "--nuclear")
        guard !nucs.isEmpty else { throw EpipeError.badInput("--nuclear: give a channel name or index (or several, comma-separated)") }
        let memChannels = try channelIndices(p.membrane, names: names, what: "--membrane")
        return Slide(p: p, imgPath: imgPath, open: open, info: info, nucs: nucs, memChannels: memChannels,
                     nucName: nucs.map { names[$0] }.joined(separator: "+"))
    }

    func facts(_ ctx: StageContext, _ s: Slide) throws -> Facts {
        let w = s.info.width, h = s.info.height
        var metrics: [String: JSONValue] = ["nucleus_diameter_source": "flag"]
        var diameter = s.p.nucleusDiameter ?? 0
        if diameter <= 0 {
            let choice = try DiameterChoice.measure(open: s.open, channels: s.nucs, width: w, height: h, pixelSize: s.info.physicalSizeX)
            ctx.log.info(choice.message)
            diameter = choice.diameter
            metrics["nucleus_diameter_source"] = .string(choice.source)
            for (k, v) in choice.numbers { metrics[k] = .number(v) }
            if let e = choice.estimate { metrics["nucleus_diameter_method"] = .string(e.method) }
        }
        let plan = s.p.plan(diameter: diameter, width: w, membrane: !s.memChannels.isEmpty)
        // One threshold for the slide and each membrane channel's levels, streamed in bands.
        let integral = s.info.pixelType == .uint8 || s.info.pixelType == .uint16
        let threshold = try SlideScan.threshold(open: s.open, channels: s.nucs, plan: plan.nuclei.signalPlan, width: w, height: h, integral: integral)
        let levels = try s.memChannels.map { try SlideScan.membraneLevels(open: s.open, channel: $0, width: w, height: h, integral: integral) }
        return Facts(diameter: diameter, metrics: metrics, threshold: threshold, membrane: levels)
    }

    /// The facts of a slide cut in parts: computed once, by the first part, into parts/shared.json.
    func sharedFacts(_ ctx: StageContext, _ s: Slide) throws -> Facts {
        try PartSet.shared(job: ctx.job, stage: stage, params: ctx.params, inputs: ctx.inputs, Facts.self) { try facts(ctx, s) }
    }

    func config(_ s: Slide, _ f: Facts) -> (SegmentPlan, SlidePipeline.Config) {
        let plan = s.p.plan(diameter: f.diameter, width: s.info.width, membrane: !s.memChannels.isEmpty)
        var cfg = SlidePipeline.Config(width: s.info.width, height: s.info.height, channels: s.info.channels, nuclearChannels: s.nucs, nuclei: plan.nuclei, growth: plan.growth,
                                       tile: plan.tile, overlap: plan.overlap, grace: env("EPIPE_SEGMENT_GRACE"), subRows: env("EPIPE_SEGMENT_SUBROWS"))
        cfg.nuclei.threshold = f.threshold
        cfg.membraneChannels = s.memChannels
        cfg.membraneLevels = f.membrane
        cfg.stats = s.p.cellStats
        return (plan, cfg)
    }

    public func run(_ ctx: StageContext) throws -> StageResult {
        let s = try slide(ctx)
        if merging { return try merge(ctx, s) }
        var timer = LapTimer()
        let f = try facts(ctx, s)
        timer.lap("threshold")
        return try segment(ctx, s, f, timer: timer, nucleiBands: nil)
    }

    /// Nuclei, cells, masks, the table, QC pictures and metrics of the whole slide; the nuclei from
    /// `nucleiBands` when the parts labelled them.
    func segment(_ ctx: StageContext, _ s: Slide, _ f: Facts, timer t: LapTimer, nucleiBands: ((Int, Int) throws -> [UInt32])?) throws -> StageResult {
        var timer = t
        let p = s.p, info = s.info, w = info.width, h = info.height, names = info.channelNames
        let (plan, cfg) = config(s, f)
        var metrics = f.metrics
        let diameter = f.diameter
        ctx.log.detail("nuclear channel \(s.nucName) (#\(s.nucs.map(String.init).joined(separator: ","))), diameter \(diameter) px, expand \(plan.expand) px, min area \(plan.nuclei.minArea) px")
        if case .membrane(_, let context) = plan.growth {
            ctx.log.detail("cells: membrane watershed on \(s.memChannels.map { names[$0] }.joined(separator: "+")), max distance \(plan.cellMaxDistance) px, \(context) context rows")
        }
        let nucMask = try SegmentParams.maskPath(p.nucleiMask).map { try openMask($0, "nuclei-mask", job: ctx.job) }
        let cellMask = try SegmentParams.maskPath(p.cellsMask).map { try openMask($0, "cells-mask", job: ctx.job) }
        let grid = TileGrid(width: w, height: h, tile: plan.tile, overlap: plan.overlap)
        let prog = ctx.progress("segment", total: 1 + grid.rows, unit: "steps")
        prog.advance()

        // Nuclei tile by tile, cells band by band, masks written and cells quantified as bands pass.
        let nucPath = try ctx.output("nuclei.tif"), cellPath = try ctx.output("cells.tif"), csvPath = try ctx.output("cells.csv")
        func writer(_ path: String, _ name: String) throws -> ImageWriter {
            try ImageWriter(path: path, width: w, height: h, channelNames: [name], pixelType: .uint32, physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        }
        let wn = try writer(nucPath, "nuclei"), wc = try writer(cellPath, "cells")
        let csv = try AtomicStreamWriter(path: csvPath)
        let statNames = cfg.stats.names
        try csv.write(CellsCSV.header(names, stats: statNames))
        var readBack: [Bool: ImageReader] = [:]
        var io = SlidePipeline.IO(open: s.open, writeMasks: { y0, n, nuc, cells in
            try wn.writeRows(channel: 0, y0: y0, count: n, nuc); try wc.writeRows(channel: 0, y0: y0, count: n, cells)
        }, writeRows: { try csv.write(CellsCSV.format($0, channels: info.channels, stats: statNames)) },
           finishMasks: { try wn.finish(); try wc.finish() },
           readBack: { cells, y0, n in
            if readBack[cells] == nil { readBack[cells] = try ImageReader(path: cells ? cellPath : nucPath) }
            return try readBack[cells]!.readRowsUInt32(channel: 0, y0: y0, count: n)
        })
        if let nucMask { io.nucleiMask = { try nucMask.readRowsUInt32(channel: 0, y0: $0, count: $1) } }
        if let cellMask { io.cellsMask = { try cellMask.readRowsUInt32(channel: 0, y0: $0, count: $1) } }
        io.nucleiBands = nucleiBands
        io.bandDone = { () -> Void in prog.advance() }
        io.log = { (m: String) -> Void in ctx.log.detail(m) }
        let run: SlidePipeline.Summary
        do { run = try SlidePipeline.run(cfg, io: io) } catch let e as SlidePipeline.LabelTooLarge { throw EpipeError.badInput(e.description) }
        timer.lap("nuclei, cells, masks and quantification")
        try CSVRows.finish(csv, path: csvPath, corrections: run.corrections, channels: info.channels, stats: statNames, joiner: run.joiner, log: ctx.log)
        ctx.log.detail("quantification: at most \(run.peakOpenCells) cells and \(run.peakOpenNuclei) nuclei open, \(run.joiner.peakHeld) rows held")
        timer.lap("table")

        // QC pictures and metrics.
        let qc = try SegmentPictures.write(run.qc, areas: run.joiner.areas, ctx: ctx, image: s.open, nuclear: s.nucs, nuclei: nucPath, cells: cellPath)
        let cellCount = run.joiner.areas.count
        let fraction = (Double(run.segmented) / Double(w * h) * 1e4).rounded() / 1e4
        let without = (run.joiner.withoutCellFraction * 1e4).rounded() / 1e4
        var more: [String: JSONValue] = [:]
        more["cells"] = .number(Double(cellCount)); more["median_area_px"] = .number(Double(run.joiner.areas.median))
        more["threshold"] = .number(Double(cfg.nuclei.threshold!)); more["nuclear_channel"] = .string(s.nucName)
        more["nucleus_diameter_px"] = .number(diameter); more["fraction_segmented"] = .number(fraction)
        more["nuclei_without_cell_fraction"] = .number(without)
        let none = "no cells found: no nucleus in channel \(s.nucName) above the threshold \(cfg.nuclei.threshold!); check --nuclear (the DNA channel) and that the slide has tissue"
        more["warnings"] = .array(cellCount == 0 ? [.string(none)] : [])
        if cellCount == 0 { ctx.log.warn("\(ctx.job.spec.name): \(none)") }
        more["cell_method"] = .string(cellMask != nil ? "imported" : plan.cellMethod)
        metrics.merge(more) { a, _ in a }
        if cellMask == nil && !s.memChannels.isEmpty {
            metrics["membrane_channels"] = .array(s.memChannels.map { .string(names[$0]) })
            metrics["cell_max_distance_px"] = .number(plan.cellMaxDistance)
        } else if cellMask == nil {
            metrics["expand_px"] = .number(Double(plan.expand))
        }
        if let px = info.physicalSizeX { metrics["pixel_size_um"] = .number(px) }
        if let px = info.physicalSizeX { metrics["cells_per_mm2"] = .number((Double(cellCount) / (Double(w * h) * px * px * 1e-6)).rounded()) }
        timer.lap("QC")
        ctx.log.detail("timings: " + timer.text)
        prog.finish()
        return StageResult(outputs: [nucPath, cellPath, csvPath] + qc, metrics: metrics)
    }

    /// Part `index` of `count` (`--tiles N --tile I`): the nuclei of a contiguous range of the whole
    /// run's tile rows (`SegmentParts`), written as parts/I/nuclei.tif (its rows, the part's own ids);
    /// the manifest's metrics record its tile rows, rows and object counts for the merge. The
    /// diameter, threshold and membrane levels come from parts/shared.json (the first part computes them).
    public func runPart(_ ctx: StageContext, index: Int, count: Int) throws -> StageResult {
        let s = try slide(ctx)
        if SegmentParams.maskPath(s.p.nucleiMask) != nil {
            throw EpipeError.badInput("--tiles: the nuclei come from an imported mask (--mask nuclei=...); there is nothing to split: run epipe-segment without --tiles")
        }
        let f = try sharedFacts(ctx, s)
        let (_, cfg) = config(s, f)
        let grid = TileGrid(width: cfg.width, height: cfg.height, tile: cfg.tile, overlap: cfg.overlap)
        guard let part = SegmentParts.part(grid: grid, index: index, count: count) else {
            throw EpipeError.badInput("--tiles \(count): the slide has \(grid.rows) tile row\(grid.rows == 1 ? "" : "s") of \(grid.tile) px; use at most \(grid.rows) parts (or a smaller --tile)")
        }
        let outPath = try ctx.output("nuclei.tif")
        let writer = try ImageWriter(path: outPath, width: cfg.width, height: part.rows.count, channelNames: ["nuclei"], pixelType: .uint32)
        let prog = ctx.progress("nuclei", total: part.tileRows.count, unit: "tile rows")
        let counts = try SegmentParts.label(cfg, part: part, reader: try s.open(), emit: { y0, n, labels in
            try writer.writeRows(channel: 0, y0: y0 - part.rows.lowerBound, count: n, labels)
        }, bandDone: { prog.advance() })
        try writer.finish()
        prog.finish()
        ctx.log.detail("part \(index)/\(count): tile rows \(part.tileRows), \(counts.own) nuclei (lead row \(counts.lead))")
        var metrics: [String: JSONValue] = [:]
        metrics["tile_rows"] = .array([JSONValue(part.tileRows.lowerBound), JSONValue(part.tileRows.upperBound)])
        metrics["rows"] = .array([JSONValue(part.rows.lowerBound), JSONValue(part.rows.upperBound)])
        metrics["counts"] = try JSONValue(encoding: counts)
        metrics["tile"] = JSONValue(cfg.tile); metrics["overlap"] = JSONValue(cfg.overlap)
        return StageResult(outputs: [outPath], metrics: metrics)
    }

    /// `--merge`: the parts' nuclei, their ids mapped to the whole run's, band by band into the whole
    /// run's pipeline (cells grown, masks written, every channel quantified per cell, QC): the same
    /// outputs as a single run. Memory as the whole run's.
    func merge(_ ctx: StageContext, _ s: Slide) throws -> StageResult {
        let set = try PartSet.forMerge(job: ctx.job, stage: stage, params: ctx.params, inputs: ctx.inputs)
        var timer = LapTimer()
        let f = try sharedFacts(ctx, s)
        let (_, cfg) = config(s, f)
        let grid = TileGrid(width: cfg.width, height: cfg.height, tile: cfg.tile, overlap: cfg.overlap)
        var parts: [(part: SegmentParts.Part, counts: SegmentParts.Counts, reader: ImageReader)] = []
        for i in 0..<set.count {
            let m = set.manifest(i)!
            guard let part = SegmentParts.part(grid: grid, index: i, count: set.count),
                  let cj = m.metrics["counts"], let counts = try? JSONDecoder().decode(SegmentParts.Counts.self, from: JSON.encode(cj, pretty: false)),
                  let o = m.outputs.first(where: { $0.path.hasSuffix("/nuclei.tif") }) else {
                throw EpipeError.failed("\(set.manifestPath(i)): not a part of this slide's tile grid; rerun: epipe-segment --force --tiles \(set.count) --tile \(i) \(ctx.job.dir)")
            }
            let r = try ImageReader(path: try ctx.job.path(o.path))
            guard r.info.width == cfg.width, r.info.height == part.rows.count else {
                throw EpipeError.failed("\(ctx.job.dir)/\(o.path): \(r.info.width)x\(r.info.height), expected \(cfg.width)x\(part.rows.count); rerun the part with --force")
            }
            parts.append((part, counts, r))
        }
        guard let offsets = SegmentParts.offsets(parts.map { $0.counts }) else {
            throw EpipeError.failed("\(PartSet.dir(ctx.job, stage)): the parts' seams disagree (a part's lead row differs from the last tile row of the part before); rerun the parts with --force")
        }
        ctx.log.info("\(ctx.job.spec.name): merging \(set.count) parts (\(parts.map { $0.counts.own }.reduce(0, +)) nuclei)")
        let P = parts
        return try segment(ctx, s, f, timer: timer, nucleiBands: { y0, n in
            let tr = y0 / grid.tile
            guard let i = P.firstIndex(where: { $0.part.tileRows.contains(tr) }) else { throw EpipeError.failed("row \(y0): in no part") }
            let (part, counts, r) = P[i]
            var labels = try r.readRowsUInt32(channel: 0, y0: y0 - part.rows.lowerBound, count: n)
            let off = offsets[i]
            labels.withUnsafeMutableBufferPointer { b in for k in 0..<b.count { b[k] = SegmentParts.globalId(b[k], counts: counts, offset: off) } }
            return labels
        })
    }

    /// A test override from the environment (EPIPE_SEGMENT_GRACE, EPIPE_SEGMENT_SUBROWS: the repair path and small sub-bands).
    func env(_ key: String) -> Int? { ProcessInfo.processInfo.environment[key].flatMap { Int($0) } }
}

