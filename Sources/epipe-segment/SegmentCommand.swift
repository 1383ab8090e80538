import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment
import EpipeKernels

extension ImageReader: PlaneReader {}

struct SegmentTool: StageTool {
    let stage = "segment"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
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

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
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

    func run(_ ctx: StageContext) throws -> StageResult {
        let p: SegmentParams = try decodeParams(ctx.params)
        let imgPath = try imagePath(ctx.job), markersCSV = markers(ctx.job)
        let open: @Sendable () throws -> PlaneReader = { try ImageReader(path: imgPath, markersCSV: markersCSV) }
        let info = try ImageReader(path: imgPath, markersCSV: markersCSV).info
        let w = info.width, h = info.height, names = info.channelNames
        // One or several nuclear channels (e.g. DAPI,Hoechst or one DNA channel per cycle): several are averaged.
        let nucs = p.nuclear == "auto" ? [guessNuclear(names)] : try channelIndices(p.nuclear, names: names, what: "--nuclear")
        guard !nucs.isEmpty else { throw EpipeError.badInput("--nuclear: give a channel name or index (or several, comma-separated)") }
        let memChannels = try channelIndices(p.membrane, names: names, what: "--membrane")
        let nucName = nucs.map { names[$0] }.joined(separator: "+")
        var metrics: [String: JSONValue] = ["nucleus_diameter_source": "flag"]
        var diameter = p.nucleusDiameter ?? 0
        if diameter <= 0 {
            let choice = try DiameterChoice.measure(open: open, channels: nucs, width: w, height: h, pixelSize: info.physicalSizeX)
            ctx.log.info(choice.message)
            diameter = choice.diameter
            metrics["nucleus_diameter_source"] = .string(choice.source)
            for (k, v) in choice.numbers { metrics[k] = .number(v) }
            if let e = choice.estimate { metrics["nucleus_diameter_method"] = .string(e.method) }
        }
        let plan = p.plan(diameter: diameter, width: w, membrane: !memChannels.isEmpty)
        ctx.log.detail("nuclear channel \(nucName) (#\(nucs.map(String.init).joined(separator: ","))), diameter \(diameter) px, expand \(plan.expand) px, min area \(plan.nuclei.minArea) px")
        if case .membrane(_, let context) = plan.growth {
            ctx.log.detail("cells: membrane watershed on \(memChannels.map { names[$0] }.joined(separator: "+")), max distance \(plan.cellMaxDistance) px, \(context) context rows")
        }
        let nucMask = try SegmentParams.maskPath(p.nucleiMask).map { try openMask($0, "nuclei-mask", job: ctx.job) }
        let cellMask = try SegmentParams.maskPath(p.cellsMask).map { try openMask($0, "cells-mask", job: ctx.job) }
        let grid = TileGrid(width: w, height: h, tile: plan.tile, overlap: plan.overlap)
        let prog = ctx.progress("segment", total: 1 + grid.rows, unit: "steps")
        var timer = LapTimer()

        // 1. One threshold for the slide and each membrane channel's levels, streamed in bands.
        let integral = info.pixelType == .uint8 || info.pixelType == .uint16
        var cfg = SlidePipeline.Config(width: w, height: h, channels: info.channels, nuclearChannels: nucs, nuclei: plan.nuclei, growth: plan.growth,
                                       tile: plan.tile, overlap: plan.overlap, grace: env("EPIPE_SEGMENT_GRACE"), subRows: env("EPIPE_SEGMENT_SUBROWS"))
        cfg.nuclei.threshold = try SlideScan.threshold(open: open, channels: nucs, plan: plan.nuclei.signalPlan, width: w, height: h, integral: integral)
        cfg.membraneChannels = memChannels
        cfg.membraneLevels = try memChannels.map { try SlideScan.membraneLevels(open: open, channel: $0, width: w, height: h, integral: integral) }
        cfg.stats = p.cellStats
        timer.lap("threshold")
        prog.advance()

        // 2. Nuclei tile by tile, cells band by band, masks written and cells quantified as bands pass.
        let nucPath = try ctx.output("nuclei.tif"), cellPath = try ctx.output("cells.tif"), csvPath = try ctx.output("cells.csv")
        func writer(_ path: String, _ name: String) throws -> ImageWriter {
            try ImageWriter(path: path, width: w, height: h, channelNames: [name], pixelType: .uint32, physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        }
        let wn = try writer(nucPath, "nuclei"), wc = try writer(cellPath, "cells")
        let csv = try AtomicStreamWriter(path: csvPath)
        let statNames = cfg.stats.names
        try csv.write(CellsCSV.header(names, stats: statNames))
        var readBack: [Bool: ImageReader] = [:]
        var io = SlidePipeline.IO(open: open, writeMasks: { y0, n, nuc, cells in
            try wn.writeRows(channel: 0, y0: y0, count: n, nuc); try wc.writeRows(channel: 0, y0: y0, count: n, cells)
        }, writeRows: { try csv.write(CellsCSV.format($0, channels: info.channels, stats: statNames)) },
           finishMasks: { try wn.finish(); try wc.finish() },
           readBack: { cells, y0, n in
            if readBack[cells] == nil { readBack[cells] = try ImageReader(path: cells ? cellPath : nucPath) }
            return try readBack[cells]!.readRowsUInt32(channel: 0, y0: y0, count: n)
        })
        if let nucMask { io.nucleiMask = { try nucMask.readRowsUInt32(channel: 0, y0: $0, count: $1) } }
        if let cellMask { io.cellsMask = { try cellMask.readRowsUInt32(channel: 0, y0: $0, count: $1) } }
        io.bandDone = { prog.advance() }
        io.log = { ctx.log.detail($0) }
        let run: SlidePipeline.Summary
        do { run = try SlidePipeline.run(cfg, io: io) } catch let e as SlidePipeline.LabelTooLarge { throw EpipeError.badInput(e.description) }
        timer.lap("nuclei, cells, masks and quantification")
        try CSVRows.finish(csv, path: csvPath, corrections: run.corrections, channels: info.channels, stats: statNames, joiner: run.joiner, log: ctx.log)
        ctx.log.detail("quantification: at most \(run.peakOpenCells) cells and \(run.peakOpenNuclei) nuclei open, \(run.joiner.peakHeld) rows held")
        timer.lap("table")

        // 3. QC pictures and metrics.
        let qc = try SegmentPictures.write(run.qc, areas: run.joiner.areas, ctx: ctx, image: open, nuclear: nucs, nuclei: nucPath, cells: cellPath)
        let cellCount = run.joiner.areas.count
        metrics.merge(["cells": .number(Double(cellCount)), "median_area_px": .number(Double(run.joiner.areas.median)),
                       "threshold": .number(Double(cfg.nuclei.threshold!)), "nuclear_channel": .string(nucName), "nucleus_diameter_px": .number(diameter),
                       "fraction_segmented": .number((Double(run.segmented) / Double(w * h) * 1e4).rounded() / 1e4),
                       "nuclei_without_cell_fraction": .number((run.joiner.withoutCellFraction * 1e4).rounded() / 1e4),
                       "warnings": .array(cellCount == 0 ? ["no cells found"] : []),
                       "cell_method": .string(cellMask != nil ? "imported" : plan.cellMethod)]) { a, _ in a }
        if cellMask == nil && !memChannels.isEmpty {
            metrics["membrane_channels"] = .array(memChannels.map { .string(names[$0]) })
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

    /// A test override from the environment (EPIPE_SEGMENT_GRACE, EPIPE_SEGMENT_SUBROWS: the repair path and small sub-bands).
    func env(_ key: String) -> Int? { ProcessInfo.processInfo.environment[key].flatMap { Int($0) } }
}

@main
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-segment",
        abstract: "Segment nuclei and whole cells and quantify every channel per cell, tile by tile.",
        discussion: discussion)

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
