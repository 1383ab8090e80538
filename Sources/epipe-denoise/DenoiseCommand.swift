import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoise
import EpipeKernels

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
        if !perChannelFlags.isEmpty { perChannel = perChannelFlags }   // flags win, as a whole
        // A background method given explicitly replaces the default one.
        let tophatOnly = (flags["tophat"] ?? nil) != nil && (flags["rolling-ball"] ?? nil) == nil && jp["rolling-ball"] == nil
        do { return try DenoiseParams.merged([layer, flags], perChannel: perChannel, explicitTophat: tophatOnly) }
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
    static func json(_ p: DenoiseParams) throws -> [String: JSONValue] { try JSONDecoder().decode([String: JSONValue].self, from: JSONEncoder().encode(p)) }
    static func decode(_ p: [String: JSONValue]) throws -> DenoiseParams { try JSONDecoder().decode(DenoiseParams.self, from: JSONEncoder().encode(p)) }

    func params(for job: Job) throws -> [String: JSONValue] { try Self.json(settings(for: job)) }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        let p = try Self.decode(params)
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
        let p = try Self.decode(ctx.params)
        let markersPath = markersPath(ctx.job)
        let reader = try ImageReader(path: try rawPath(ctx.job), markersCSV: markersPath)
        let info = reader.info
        let w = info.width, h = info.height, C = info.channels
        let names = info.channelNames
        let mt = try MarkerTable(names: names, csvPath: markersPath, blankPattern: p.blankPattern.string)

        // Which channels to process; blanks are never processed as markers.
        var selected = [Bool](repeating: true, count: C)
        if let want = p.channelList {
            let idx = try want.map { try channelIndex($0, names: names, what: "--channels") }
            selected = (0..<C).map { idx.contains($0) }
        }
        let blankIdx = (0..<C).filter { mt.blank[$0] }
        let autoHot: Float? = info.pixelType == .uint8 ? 13 : (info.pixelType == .float32 ? nil : 3277)   // 5% of the type's range
        let recipes: [ChannelRecipe]
        do { recipes = try p.recipes(names: names, isBlank: mt.blank, selected: selected, autoHotPixels: autoHot) }
        catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
        if p.blanksRequired && blankIdx.isEmpty {
            throw EpipeError.badInput("--blanks: no blank channels found (no name matches \(p.blankPattern.string), no blank/background column in markers.csv)")
        }
        // Blank signal per marker channel: explicit MCMICRO background column, else interpolated by cycle.
        let blankWeights = Blanks.weights(recipes: recipes, cycles: mt.cycles, isBlank: mt.blank,
                                          background: mt.background.map { b in b.flatMap { names.firstIndex(of: $0) } })
        let outType: PixelType = p.writesFloat ? .float32 : info.pixelType
        let bandRows = p.bandRows ?? DenoiseStream.autoBandRows(width: w, channels: C)
        let bands = (h + bandRows - 1) / bandRows

        // Illumination models: from a given flat-field TIFF, or estimated from the image (a first pass).
        var dark = [Float](repeating: 0, count: C)
        if let d = p.darkfieldConstant { dark = [Float](repeating: d, count: C) }
        // A dark-field image is subtracted pixel by pixel (channel c: its plane c, or its last), read band by band.
        var darkReader: ImageReader? = nil
        if let df = p.darkfieldFile {
            let r = try ImageReader(path: df)
            guard r.info.width == w, r.info.height == h else { throw EpipeError.badInput("\(df): dark-field is \(r.info.width)x\(r.info.height), the image is \(w)x\(h)") }
            darkReader = r
            ctx.log.detail("dark-field from \(df) (\(r.info.channels) plane\(r.info.channels == 1 ? "" : "s"))")
        }
        var flat = [FlatField?](repeating: nil, count: C)
        let flatC = (0..<C).filter { recipes[$0].flatfield }
        if let ff = p.flatfieldFile, !flatC.isEmpty {
            let r = try ImageReader(path: ff)
            guard r.info.width == w, r.info.height == h else { throw EpipeError.badInput("\(ff): flat-field is \(r.info.width)x\(r.info.height), the image is \(w)x\(h)") }
            for c in flatC { flat[c] = FlatField.fromImage(try r.readChannel(min(c, r.info.channels - 1)), width: w, height: h) }
        } else if !flatC.isEmpty {
            let prog0 = ctx.progress("flat-field model", total: bands, unit: "bands")
            let est = try DenoiseStream.estimateFlatFields(width: w, height: h, channels: flatC, bandRows: bandRows,
                                                           read: { try reader.readRows(channel: $0, y0: $1, count: $2) }, bandDone: { prog0.advance() })
            for (c, f) in est { flat[c] = f }
        }
        let darkR = darkReader
        let stream = DenoiseStream(width: w, height: h, recipes: recipes,
                                   illumination: (0..<C).map { Illumination(flat: flat[$0], dark: dark[$0], darkImage: darkR != nil) },
                                   blankWeights: blankWeights, blankChannels: blankIdx, bandRows: bandRows)
        let halo = stream.halo

        let outPath = try ctx.output("image.ome.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: h, channelNames: names, pixelType: outType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY,
                                     pyramidLevels: ImageWriter.suggestedPyramidLevels(width: w, height: h))
        let prog = ctx.progress("denoise", total: bands, unit: "bands")
        let state = (0..<C).map { _ in ChannelState(width: w, height: h) }
        let readDark: (@Sendable (Int, Int, Int) throws -> [Float])? = darkR.map { r in
            { @Sendable c, y0, n in try r.readRows(channel: min(c, r.info.channels - 1), y0: y0, count: n) }
        }
        let input: @Sendable (Int, Int, Int, UnsafeBufferPointer<Float>) -> Void = { c, y0, rows, band in
            state[c].before.add(band); state[c].thumbB.add(rows: band, y0: y0, count: rows)
        }
        let emit: @Sendable (Int, Int, Int, [Float]) throws -> Void = { c, y0, rows, out in
            out.withUnsafeBufferPointer { o in state[c].after.add(o); state[c].thumbA.add(rows: o, y0: y0, count: rows) }
            try writer.writeRows(channel: c, y0: y0, count: rows, out)
        }
        let res = try stream.run(read: { c, y0, n in try reader.readRows(channel: c, y0: y0, count: n) }, readDark: readDark,
                                 input: input, emit: emit, bandDone: { prog.advance() })
        let before = state.map { $0.before }, after = state.map { $0.after }, hot = res.hot
        let focus = res.focus, thumbsB = state.map { $0.thumbB }, thumbsA = state.map { $0.thumbA }
        try writer.finish()
        prog.finish()

        // QC: per channel a before | after thumbnail, and a contact sheet of all channels after.
        var outputs = [outPath]
        var perChannel: [String: JSONValue] = [:]
        var warnings: [JSONValue] = []
        let tw = thumbsA[0].width, th = thumbsA[0].height
        let cols = min(C, 4), rowsN = (C + cols - 1) / cols
        var sheet = Canvas(width: cols * (tw + 4), height: rowsN * (th + 4), fill: (0, 0, 0))
        for c in 0..<C {
            let name = names[c]
            let sb = Preview.stretch(thumbsB[c].plane, width: tw, height: th)
            let sa = Preview.stretch(thumbsA[c].plane, width: tw, height: th)
            var pair = Canvas(width: sb.width + sa.width + 4, height: max(sb.height, sa.height), fill: (0, 0, 0))
            pair.blit(Canvas(gray: sb.pixels, width: sb.width, height: sb.height), at: 0, 0)
            pair.blit(Canvas(gray: sa.pixels, width: sa.width, height: sa.height), at: sb.width + 4, 0)
            pair.text("\(name) before", x: 4, y: 4, scale: 2)
            pair.text("after", x: sb.width + 8, y: 4, scale: 2)
            let qp = try ctx.qc("\(c)-\(Names.sanitize(name))-before-after.png")
            try pair.write(qp); outputs.append(qp)
            sheet.blit(Canvas(gray: sa.pixels, width: sa.width, height: sa.height), at: (c % cols) * (tw + 4), (c / cols) * (th + 4))
            sheet.text(name, x: (c % cols) * (tw + 4) + 4, y: (c / cols) * (th + 4) + 4, scale: 2)
            let bg0 = before[c].percentile(10), bg1 = after[c].percentile(10)
            let sig0 = before[c].percentile(99)
            let sbr = (sig0 + 1) / (bg0 + 1)
            let sat = before[c].saturatedFraction
            let r = recipes[c]
            perChannel[name] = ["background_before": .number(bg0), "background_after": .number(bg1),
                                "p99_before": .number(sig0), "p99_after": .number(after[c].percentile(99)),
                                "signal_to_background": .number((sbr * 100).rounded() / 100),
                                "saturated_fraction": .number(sat), "hot_pixels_replaced": .number(Double(hot[c])),
                                "focus": .number((focus[c].normalized * 1e4).rounded() / 1e4),
                                "blank": .bool(mt.blank[c]), "processed": .bool(!r.isIdentity),
                                "mean_before": .number(before[c].mean), "mean_after": .number(after[c].mean)]
            if mt.blank[c] { continue }
            if sat > 0.05 { warnings.append(.string("\(name): \(Int((sat * 100).rounded()))% of pixels saturated")) }
            else if before[c].percentile(99.9) <= before[c].percentile(0.1) { warnings.append(.string("\(name): channel is empty (flat)")) }
            else if sbr < 1.5 { warnings.append(.string("\(name): low signal-to-background \(String(format: "%.2f", sbr))")) }
        }
        let sp = try ctx.qc("contact-sheet.png")
        try sheet.write(sp); outputs.append(sp)
        for wmsg in warnings { if let s = wmsg.stringValue { ctx.log.warn("\(ctx.job.spec.name): \(s)") } }
        let recipeDesc: [JSONValue] = recipes.enumerated().map { c, r in
            .string("\(names[c]): " + (mt.blank[c] ? "blank (kept as is)" : r.isIdentity ? "unchanged" :
                ([r.hotPixels.map { "hot-pixels \($0)" }, r.flatfield ? "flat-field" : nil, r.blanks ? "blank subtraction" : nil,
                  r.median ? "median 3x3" : nil, r.rollingBall.map { "rolling-ball \($0)" + (r.lightBackground ? " light" : "") },
                  r.tophat.map { "top-hat \($0)" }, r.gaussian > 0 ? "gaussian \(r.gaussian)" : nil].compactMap { $0 }.joined(separator: ", "))))
        }
        return StageResult(outputs: outputs, metrics: ["width": .number(Double(w)), "height": .number(Double(h)), "channels": .number(Double(C)),
                                                       "band_rows": .number(Double(bandRows)), "halo": .number(Double(halo)),
                                                       "recipe": .array(recipeDesc), "per_channel": .object(perChannel), "warnings": .array(warnings)])
    }
}

/// What one channel's pictures and histograms accumulate while the bands stream by; touched by one thread at a time.
final class ChannelState: @unchecked Sendable {
    var before = Histogram16(), after = Histogram16()
    let thumbB: Thumbnail, thumbA: Thumbnail
    init(width: Int, height: Int) {
        thumbB = Thumbnail(srcWidth: width, srcHeight: height, maxSide: 512)
        thumbA = Thumbnail(srcWidth: width, srcHeight: height, maxSide: 512)
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
        var per: [String: [String: Setting]] = [:]
        for cp in channelParam {
            guard let colon = cp.firstIndex(of: ":"), let eq = cp[colon...].firstIndex(of: "=") else {
                throw EpipeError.badInput("--channel-param \(cp): expected NAME:key=value, e.g. DAPI:rolling-ball=off")
            }
            per[String(cp[..<colon]), default: [:]][String(cp[cp.index(after: colon)..<eq])] = Setting(typed: String(cp[cp.index(after: eq)...]))
        }
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
