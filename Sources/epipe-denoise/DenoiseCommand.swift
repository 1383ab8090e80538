import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoise

struct DenoiseTool: StageTool {
    let stage = "denoise"
    let flags: [String: Setting?]
    let perChannelFlags: [String: [String: Setting]]

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
    func params(for job: Job) throws -> [String: JSONValue] { try record(settings(for: job)) }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
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

    func run(_ ctx: StageContext) throws -> StageResult {
        let p: DenoiseParams = try decodeParams(ctx.params)
        let markersPath = markersPath(ctx.job)
        let reader = try ImageReader(path: try rawPath(ctx.job), markersCSV: markersPath)
        let info = reader.info, w = info.width, h = info.height, names = info.channelNames
        let mt = try MarkerTable(names: names, csvPath: markersPath, blankPattern: p.blankPattern.string)
        let selected = try p.channelList?.map { try channelIndex($0, names: names, what: "--channels") }
        let autoHot: Float? = info.pixelType == .uint8 ? 13 : (info.pixelType == .float32 ? nil : 3277)   // 5% of the type's range
        let setup: DenoiseSetup
        do {
            setup = try DenoiseSetup(params: p, names: names, isBlank: mt.blank, cycles: mt.cycles,
                                     background: mt.background.map { b in b.flatMap { names.firstIndex(of: $0) } },
                                     selected: selected, autoHotPixels: autoHot, width: w)
        } catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
        // A dark-field image is subtracted pixel by pixel (channel c: its plane c, or its last), read band by band.
        let darkR = try p.darkfieldFile.map { try sideImage($0, what: "dark-field", width: w, height: h) }
        if let r = darkR { ctx.log.detail("dark-field from \(p.darkfieldFile!) (\(r.info.channels) plane\(r.info.channels == 1 ? "" : "s"))") }
        let flatR = setup.flatChannels.isEmpty ? nil : try p.flatfieldFile.map { try sideImage($0, what: "flat-field", width: w, height: h) }
        let illumination = try setup.illumination(
            width: w, height: h, dark: p.darkfieldConstant, darkImage: darkR != nil,
            flatPlane: flatR.map { r in { c in try r.readChannel(min(c, r.info.channels - 1)) } },
            read: { try reader.readRows(channel: $0, y0: $1, count: $2) },
            estimating: { bands in let prog = ctx.progress("flat-field model", total: bands, unit: "bands"); return { prog.advance() } })
        let stream = setup.stream(width: w, height: h, illumination: illumination)

        let outPath = try ctx.output("image.ome.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: h, channelNames: names, pixelType: p.writesFloat ? .float32 : info.pixelType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY,
                                     pyramidLevels: ImageWriter.suggestedPyramidLevels(width: w, height: h))
        let prog = ctx.progress("denoise", total: stream.bands, unit: "bands")
        let hist = names.map { _ in ChannelHistograms() }, thumbs = BeforeAfter(channels: names.count, width: w, height: h)
        let res = try stream.run(
            read: { c, y0, n in try reader.readRows(channel: c, y0: y0, count: n) },
            readDark: darkR.map { r in { @Sendable c, y0, n in try r.readRows(channel: min(c, r.info.channels - 1), y0: y0, count: n) } },
            input: { c, y0, rows, band in hist[c].addBefore(band); thumbs.before[c].add(rows: band, y0: y0, count: rows) },
            emit: { c, y0, rows, out in
                out.withUnsafeBufferPointer { o in hist[c].addAfter(o); thumbs.after[c].add(rows: o, y0: y0, count: rows) }
                try writer.writeRows(channel: c, y0: y0, count: rows, out)
            }, bandDone: { prog.advance() })
        try writer.finish()
        prog.finish()

        // QC: per channel a before | after thumbnail, and a contact sheet of all channels after.
        var outputs = [outPath]
        for (c, name) in names.enumerated() {
            outputs.append(try ctx.qc("\(c)-\(Names.sanitize(name))-before-after.png"))
            try thumbs.pair(c, name: name).write(outputs.last!)
        }
        outputs.append(try ctx.qc("contact-sheet.png"))
        try thumbs.contactSheet(names: names).write(outputs.last!)
        let metrics = DenoiseMetrics(stream: stream, result: res, histograms: hist, names: names, isBlank: mt.blank)
        for wmsg in metrics.warnings { ctx.log.warn("\(ctx.job.spec.name): \(wmsg)") }
        return StageResult(outputs: outputs, metrics: try JSONValue(encoding: metrics).objectValue ?? [:])
    }
}

@main
struct DenoiseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-denoise",
        abstract: "Correct a job's raw scan: hot pixels, flat-field, blank cycles, background, smoothing.",
        discussion: """
        Per channel, in this order: hot-pixel removal (a pixel more than THRESHOLD above the median of \
        its 3x3 neighbourhood takes that median), flat-field correction (divide by a given flat-field \
        TIFF or a model estimated from the image's low percentiles, after subtracting a dark-field: \
        corrected = (raw - dark) / flat, the dark a constant or a dark-frame TIFF, per pixel), \
        blank-cycle subtraction (blank channels by name or markers.csv, interpolated by cycle_number, or \
        MCMICRO's background column), median 3x3, background subtraction (ImageJ rolling ball, or white \
        top-hat with a disk), Gaussian smoothing. The default recipe, sensible for CODEX/CyCIF: hot pixels \
        (5% of the type's range), blank subtraction when blank channels exist, rolling ball radius 50; no \
        smoothing. Streams row bands with a halo, so memory ~ band x width x channels. Writes \
        denoise/image.ome.tif (input dtype unless --float), per-channel metrics and warnings in the manifest, \
        before/after pictures and a contact sheet in denoise/qc/. Per-job params: job.json params.denoise, \
        with "per-channel": {"DAPI": {"rolling-ball": "off"}}; flags given here win.

          epipe-denoise ROOT/jobs/<id>
          epipe-denoise --tophat 50 --gaussian 2 --median true ROOT/jobs/<id>
          epipe-denoise --root ROOT --drain
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Hot-pixel threshold above the 3x3 median: a number, auto or off.") var hotPixels: String?
    @Option(name: .long, help: "Median 3x3 (true/false). Default false.") var median: Bool?
    @Option(name: .long, help: "Rolling-ball background radius in px, or off. Default 50.") var rollingBall: String?
    @Flag(name: .long, help: "Rolling ball for a light background.") var lightBackground = false
    @Option(name: .long, help: "White top-hat with a disk of this radius in px (replaces the rolling ball), or off.") var tophat: String?
    @Option(name: .long, help: "Blank-cycle subtraction: auto (when blank channels exist), true or false.") var blanks: String?
    @Option(name: .long, help: "Regular expression for blank channel names.") var blankPattern: String?
    @Option(name: .long, help: "Flat-field: off, auto (estimated from the image) or a TIFF path.") var flatfield: String?
    @Option(name: .long, help: "Dark-field: a constant, or a TIFF path subtracted pixel by pixel (plane c for channel c, else its last plane), before the flat-field.") var darkfield: String?
    @Option(name: .long, help: "Gaussian sigma in px, 0 for none. Default 0.") var gaussian: Double?
    @Option(name: .long, help: "Comma-separated channels to process (others are copied unchanged). Default all.") var channels: String?
    @Option(name: .long, help: "Per-channel setting NAME:key=value (may repeat), e.g. DAPI:rolling-ball=off.") var channelParam: [String] = []
    @Flag(name: .long, help: "Write float32 instead of the input's type.") var float = false
    @Option(name: .long, help: "Rows per band, or auto (~384 MiB of bands).") var band: String?

    func run() throws {
        let per: [String: [String: Setting]]
        do { per = try DenoiseParams.perChannel(flags: channelParam) } catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
        let tool = DenoiseTool(flags: ["hot-pixels": hotPixels.map(Setting.init(typed:)), "median": median.map { .flag($0) },
                                       "rolling-ball": rollingBall.map(Setting.init(typed:)), "light-background": lightBackground ? .flag(true) : nil,
                                       "tophat": tophat.map(Setting.init(typed:)), "blanks": blanks.map { .word($0) }, "blank-pattern": blankPattern.map { .word($0) },
                                       "flatfield": flatfield.map { .word($0) }, "darkfield": darkfield.map(Setting.init(typed:)),
                                       "gaussian": gaussian.map { .number($0) }, "channels": channels.map { .word($0) },
                                       "float": float ? .flag(true) : nil, "band": band.map(Setting.init(typed:))],
                               perChannelFlags: per)
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
