import Foundation
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoise
import EpipeKernels

/// The denoise stage for the runner: its params, inputs, the whole run, a part and the merge (the
/// executable, epipe-denoise, is its flags).
public struct DenoiseTool: PartedStageTool {
    public let stage = "denoise"
    let flags: [String: Setting?]
    let perChannelFlags: [String: [String: Setting]]
    public init(flags: [String: Setting?], perChannelFlags: [String: [String: Setting]]) { self.flags = flags; self.perChannelFlags = perChannelFlags }

    /// The one params struct: defaults, job.json params.denoise, flags; validated; recorded in the manifest.
    func settings(for job: Job) throws -> DenoiseParams {
        let jp = job.spec.params[stage] ?? [:]
        var layer: [String: Setting?] = [:], perChannel: [String: [String: Setting]] = [:]
        for (k, v) in jp where k != "per-channel" { layer[k] = try Self.setting(v, k) }
        for (ch, o) in jp["per-channel"]?.objectValue ?? [:] {
            guard let o = o.objectValue else { throw EpipeError.badInput("denoise param per-channel \(ch): expected an object of settings, got \(o)") }
            perChannel[ch] = try o.compactMapValues { try Self.setting($0, "per-channel \(ch)") }
        }
        do { return try DenoiseParams.merged(job: layer, jobPerChannel: perChannel, flags: flags, perChannelFlags: perChannelFlags) }
        catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
    }
    static func setting(_ v: JSONValue, _ k: String) throws -> Setting? {
        switch v {
        case .number(let d): return .number(d)
        case .string(let s): return .word(s)
        case .bool(let b): return .flag(b)
        case .null: return nil
        default: throw EpipeError.badInput("denoise param \(k): expected a number, a word or true/false, got \(v)")
        }
    }
    public func params(for job: Job) throws -> [String: JSONValue] { try record(settings(for: job)) }

    public func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        let p: DenoiseParams = try decodeParams(params)
        var refs = [FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes)]
        if let m = job.spec.markers, let path = markersPath(job) { refs.append(FileRef(path: m, sha256: try Digest.sha256(file: path).hex)) }
        for f in [p.flatfieldFile, p.darkfieldFile].compactMap({ $0 }) {
            guard Files.exists(f) else { throw EpipeError.badInput("\(f): flat-field/dark-field file not found; give a TIFF path, auto or off") }
            let (h, n) = try Digest.sha256(file: f)
            refs.append(FileRef(path: "file://" + Files.canonical(f), sha256: h, bytes: n))
        }
        return refs
    }

    /// Merge mode (`--merge`): `run` assembles the parts instead of streaming the slide.
    public var merging = false
    public var keepParts = false

    /// What the whole run and a part share: the image, its recipes, and the band stream.
    struct Prepared {
        var p: DenoiseParams
        var reader: ImageReader
        var info: ImageInfo
        var isBlank: [Bool]
        var setup: DenoiseSetup
        var darkR: ImageReader?
        var stream: DenoiseStream
    }

    /// Opens the raw image, resolves the recipes and the illumination models (the flat-field
    /// estimated from the whole slide goes through `flat`, which a part shares with the others).
    func prepare(_ ctx: StageContext, flat share: (() throws -> [FlatField?]) throws -> [FlatField?] = { try $0() }) throws -> Prepared {
        let p: DenoiseParams = try decodeParams(ctx.params)
        let markersPath = markersPath(ctx.job)
        let reader = try ImageReader(path: try rawPath(ctx.job), markersCSV: markersPath)
        let info = reader.info, w = info.width, h = info.height, names = info.channelNames
        let (mt, setup) = try recipes(p, info: info, markersPath: markersPath)
        // A dark-field image is subtracted pixel by pixel (channel c: its plane c, or its last), read band by band.
        let darkR = try p.darkfieldFile.map { try sideImage($0, what: "dark-field", width: w, height: h) }
        if let r = darkR { ctx.log.detail("dark-field from \(p.darkfieldFile!) (\(r.info.channels) plane\(r.info.channels == 1 ? "" : "s"))") }
        let flatR = setup.flatChannels.isEmpty ? nil : try p.flatfieldFile.map { try sideImage($0, what: "flat-field", width: w, height: h) }
        let compute = {
            try setup.flatFields(width: w, height: h, flatPlane: flatR.map { r in { c in try r.readChannel(min(c, r.info.channels - 1)) } },
                                 read: { try reader.readRows(channel: $0, y0: $1, count: $2) },
                                 estimating: { bands in let prog = ctx.progress("flat-field model", total: bands, unit: "bands"); return { prog.advance() } })
        }
        let flat = setup.estimatesFlatFields(given: flatR != nil) ? try share(compute) : try compute()
        let illumination = setup.illumination(flat: flat, dark: p.darkfieldConstant, darkImage: darkR != nil)
        return Prepared(p: p, reader: reader, info: info, isBlank: mt.blank, setup: setup, darkR: darkR,
                        stream: setup.stream(width: w, height: h, illumination: illumination))
    }

    func recipes(_ p: DenoiseParams, info: ImageInfo, markersPath: String?) throws -> (MarkerTable, DenoiseSetup) {
        let names = info.channelNames
        let mt = try MarkerTable(names: names, csvPath: markersPath, blankPattern: p.blankPattern.string)
        let selected = try p.channelList?.map { try channelIndex($0, names: names, what: "--channels") }
        let autoHot: Float? = info.pixelType == .uint8 ? 13 : (info.pixelType == .float32 ? nil : 3277)   // 5% of the type's range
        do {
            return (mt, try DenoiseSetup(params: p, names: names, isBlank: mt.blank, cycles: mt.cycles,
                                         background: mt.background.map { b in b.flatMap { names.firstIndex(of: $0) } },
                                         selected: selected, autoHotPixels: autoHot, width: info.width))
        } catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
    }

    /// Streams bands `bands` (default all) of the slide into `writer` (rows from `rowOffset`: a part
    /// writes its strip from its first row), filling the histograms and thumbnails.
    func stream(_ pr: Prepared, ctx: StageContext, bands: Range<Int>? = nil, writer: ImageWriter, rowOffset: Int = 0,
                hist: [ChannelHistograms], thumbs: BeforeAfter) throws -> DenoiseStream.Result {
        let reader = pr.reader, stream = pr.stream
        let prog = ctx.progress("denoise", total: bands?.count ?? stream.bands, unit: "bands")
        let res = try stream.run(bands: bands,
            read: { c, y0, n in try reader.readRows(channel: c, y0: y0, count: n) },
            readDark: pr.darkR.map { r in { @Sendable c, y0, n in try r.readRows(channel: min(c, r.info.channels - 1), y0: y0, count: n) } },
            input: { c, y0, rows, band in hist[c].addBefore(band); thumbs.before[c].add(rows: band, y0: y0, count: rows) },
            emit: { c, y0, rows, out in
                out.withUnsafeBufferPointer { o in hist[c].addAfter(o); thumbs.after[c].add(rows: o, y0: y0, count: rows) }
                try writer.writeRows(channel: c, y0: y0 - rowOffset, count: rows, out)
            }, bandDone: { prog.advance() })
        try writer.finish()
        prog.finish()
        return res
    }

    public func run(_ ctx: StageContext) throws -> StageResult {
        if merging { return try merge(ctx) }
        let pr = try prepare(ctx)
        let info = pr.info, w = info.width, h = info.height, names = info.channelNames
        let outPath = try ctx.output("image.ome.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: h, channelNames: names, pixelType: pr.p.writesFloat ? .float32 : info.pixelType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY,
                                     pyramidLevels: ImageWriter.suggestedPyramidLevels(width: w, height: h))
        let hist = names.map { _ in ChannelHistograms() }, thumbs = BeforeAfter(channels: names.count, width: w, height: h)
        let res = try stream(pr, ctx: ctx, writer: writer, hist: hist, thumbs: thumbs)
        return try finish(ctx, outPath: outPath, stream: pr.stream, result: res, hist: hist, thumbs: thumbs, names: names, isBlank: pr.isBlank)
    }

    /// QC pictures and metrics of the whole slide.
    func finish(_ ctx: StageContext, outPath: String, stream: DenoiseStream, result res: DenoiseStream.Result, hist: [ChannelHistograms],
                thumbs: BeforeAfter, names: [String], isBlank: [Bool]) throws -> StageResult {
        // QC: per channel a before | after thumbnail, and a contact sheet of all channels after.
        var outputs = [outPath]
        for (c, name) in names.enumerated() {
            outputs.append(try ctx.qc("\(c)-\(Names.sanitize(name))-before-after.png"))
            try thumbs.pair(c, name: name).write(outputs.last!)
        }
        outputs.append(try ctx.qc("contact-sheet.png"))
        try thumbs.contactSheet(names: names).write(outputs.last!)
        let metrics = DenoiseMetrics(stream: stream, result: res, histograms: hist, names: names, isBlank: isBlank)
        for wmsg in metrics.warnings { ctx.log.warn("\(ctx.job.spec.name): \(wmsg)") }
        return StageResult(outputs: outputs, metrics: try JSONValue(encoding: metrics).objectValue ?? [:])
    }

    /// Part `index` of `count` (`--tiles N --tile I`): a contiguous range of the whole run's bands,
    /// each read with its halo, so its rows are exactly the whole run's. Writes parts/I/image.tif (its
    /// strip of rows), state.bin (the metrics' accumulators) and thumbs.bin (its thumbnail rows); the
    /// manifest's metrics record the image's geometry and the part's bands and rows. The flat-field
    /// estimated from the whole slide is computed once, by the first part, into parts/shared.json.
    public func runPart(_ ctx: StageContext, index: Int, count: Int) throws -> StageResult {
        let pr = try prepare(ctx) { compute in
            try PartSet.shared(job: ctx.job, stage: stage, params: ctx.params, inputs: ctx.inputs, [FlatField?].self, compute: compute)
        }
        let info = pr.info, w = info.width, h = info.height, names = info.channelNames
        guard let split = PartSplit(units: pr.stream.bands, parts: count) else {
            throw EpipeError.badInput("--tiles \(count): the slide has \(pr.stream.bands) band\(pr.stream.bands == 1 ? "" : "s") of \(pr.stream.bandRows) rows; use at most \(pr.stream.bands) parts (or a smaller --band)")
        }
        let bands = split.range(index), rows = split.rows(index, unitRows: pr.stream.bandRows, height: h)
        let outPath = try ctx.output("image.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: rows.count, channelNames: names, pixelType: pr.p.writesFloat ? .float32 : info.pixelType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let hist = names.map { _ in ChannelHistograms() }, thumbs = BeforeAfter(channels: names.count, width: w, height: h)
        let res = try stream(pr, ctx: ctx, bands: bands, writer: writer, rowOffset: rows.lowerBound, hist: hist, thumbs: thumbs)
        let statePath = try ctx.output("state.bin"), thumbsPath = try ctx.output("thumbs.bin")
        try AtomicFile.write(Data(DenoisePartState(rows: rows, result: res, histograms: hist).encode()), to: statePath)
        try AtomicFile.write(Data(thumbs.encode(rows: rows)), to: thumbsPath)
        var imageInfo = info; imageInfo.pixelType = pr.p.writesFloat ? .float32 : info.pixelType
        var metrics: [String: JSONValue] = [:]
        metrics["bands"] = .array([JSONValue(bands.lowerBound), JSONValue(bands.upperBound)])
        metrics["rows"] = .array([JSONValue(rows.lowerBound), JSONValue(rows.upperBound)])
        metrics["image"] = try JSONValue(encoding: imageInfo)
        metrics["input_type"] = .string(info.pixelType.rawValue)
        return StageResult(outputs: [outPath, statePath, thumbsPath], metrics: metrics)
    }

    /// `--merge`: the parts' strips, in order, into one OME-TIFF written exactly as the whole run
    /// writes it (same rows, same writer: byte-identical), their accumulators into the whole run's
    /// metrics, their thumbnail rows into its QC pictures. Does not read the raw image.
    func merge(_ ctx: StageContext) throws -> StageResult {
        let set = try PartSet.forMerge(job: ctx.job, stage: stage, params: ctx.params, inputs: ctx.inputs)
        let parts = (0..<set.count).map { set.manifest($0)! }
        let p: DenoiseParams = try decodeParams(ctx.params)
        guard let image = parts[0].metrics["image"], var info = try? JSONDecoder().decode(ImageInfo.self, from: JSON.encode(image, pretty: false)),
              let inType = parts[0].metrics["input_type"]?.stringValue.flatMap(PixelType.init(rawValue:)) else {
            throw EpipeError.failed("\(set.manifestPath(0)): no image geometry in its metrics; rerun the part with --force")
        }
        let outType = info.pixelType
        info.pixelType = inType
        let w = info.width, h = info.height, names = info.channelNames
        let (mt, setup) = try recipes(p, info: info, markersPath: markersPath(ctx.job))
        let stream = setup.stream(width: w, height: h, illumination: names.map { _ in Illumination() })
        let outPath = try ctx.output("image.ome.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: h, channelNames: names, pixelType: outType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY,
                                     pyramidLevels: ImageWriter.suggestedPyramidLevels(width: w, height: h))
        let thumbs = BeforeAfter(channels: names.count, width: w, height: h)
        var states: [DenoisePartState] = []
        let prog = ctx.progress("merge", total: stream.bands, unit: "bands")
        var y = 0
        for i in 0..<set.count {
            func file(_ name: String) throws -> String {
                guard let o = parts[i].outputs.first(where: { $0.path.hasSuffix("/" + name) }) else {
                    throw EpipeError.failed("\(set.manifestPath(i)): lists no \(name); rerun: epipe-denoise --force --tiles \(set.count) --tile \(i) \(ctx.job.dir)")
                }
                return try ctx.job.path(o.path)
            }
            let st = try DenoisePartState(decoding: [UInt8](try Files.read(try file("state.bin"))))
            guard st.rows.lowerBound == y, st.hot.count == names.count else {
                throw EpipeError.failed("\(set.dir(i)): rows \(st.rows) do not follow row \(y); rerun the parts with one --tiles")
            }
            try thumbs.add(encoded: [UInt8](try Files.read(try file("thumbs.bin"))))
            let r = try ImageReader(path: try file("image.tif"))
            guard r.info.width == w, r.info.height == st.rows.count, r.info.channels == names.count else {
                throw EpipeError.failed("\(set.dir(i))/image.tif: \(r.info.width)x\(r.info.height), expected \(w)x\(st.rows.count)")
            }
            var ly = 0
            while ly < st.rows.count {
                let n = min(stream.bandRows, st.rows.count - ly)
                for c in 0..<names.count { try writer.writeRows(channel: c, y0: y + ly, count: n, try r.readRows(channel: c, y0: ly, count: n)) }
                ly += n
                prog.advance()
            }
            y = st.rows.upperBound
            states.append(st)
        }
        guard y == h else { throw EpipeError.failed("\(PartSet.dir(ctx.job, stage)): the parts cover rows 0..<\(y) of \(h); rerun the parts with one --tiles") }
        try writer.finish()
        prog.finish()
        let merged = DenoisePartState.merge(states, width: w, height: h)
        ctx.log.info("\(ctx.job.spec.name): merged \(set.count) parts")
        return try finish(ctx, outPath: outPath, stream: stream, result: merged.result, hist: merged.histograms, thumbs: thumbs, names: names, isBlank: mt.blank)
    }
}

