import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoise

struct DenoiseTool: StageTool {
    let stage = "denoise"
    let flags: [String: JSONValue?]

    static let defaults: [String: JSONValue] = [
        "hot-pixels": "auto", "median": false, "rolling-ball": 50, "light-background": false, "tophat": "off",
        "gaussian": 0, "blanks": "auto", "blank-pattern": .string(MarkerTable.defaultBlankPattern),
        "flatfield": "off", "darkfield": 0, "channels": "all", "float": false, "band": "auto", "per-channel": .object([:]),
    ]

    /// The settings `recipe(for:)` reads per channel.
    static let perChannelKeys: Set<String> = ["hot-pixels", "median", "rolling-ball", "light-background", "tophat", "gaussian", "flatfield", "blanks"]

    func params(for job: Job) throws -> [String: JSONValue] {
        var p = mergeParams(job, defaults: Self.defaults, flags: flags)
        // A key nobody reads (a typo in job.json) is refused, not ignored.
        if let k = p.keys.sorted().first(where: { Self.defaults[$0] == nil }) {
            throw EpipeError.badInput("denoise param \(k): unknown; known: \(Self.defaults.keys.sorted().joined(separator: ", "))")
        }
        for (ch, o) in (p["per-channel"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let o = o.objectValue else { throw EpipeError.badInput("denoise param per-channel \(ch): expected an object of settings, got \(o)") }
            if let k = o.keys.sorted().first(where: { !Self.perChannelKeys.contains($0) }) {
                throw EpipeError.badInput("denoise param per-channel \(ch): \(k) is not a per-channel setting; per channel: \(Self.perChannelKeys.sorted().joined(separator: ", "))")
            }
        }
        // A background method given explicitly replaces the default one.
        if flags["tophat"] != nil, flags["tophat"]! != nil, flags["rolling-ball"] == nil || flags["rolling-ball"]! == nil,
           job.spec.params["denoise"]?["rolling-ball"] == nil { p["rolling-ball"] = "off" }
        // Validate everything a user can type, once, with one clear line.
        _ = try recipe(for: "", params: p, dtype: .uint16, hasBlanks: false)
        if let b = p["band"], b.stringValue != "auto", (b.intValue ?? 0) < 16 { throw EpipeError.badInput("denoise param band: expected auto or >= 16 rows, got \(b)") }
        return p
    }

    func flatfieldFile(_ p: [String: JSONValue]) -> String? {
        guard let f = p["flatfield"]?.stringValue, !["off", "auto", "false", "none"].contains(f.lowercased()) else { return nil }
        return f
    }
    func darkfieldFile(_ p: [String: JSONValue]) -> String? {
        guard let f = p["darkfield"]?.stringValue, Double(f) == nil, !["off", "none"].contains(f.lowercased()) else { return nil }
        return f
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        var refs = [FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes)]
        if let m = job.spec.markers, let path = markersPath(job) { refs.append(FileRef(path: m, sha256: try Digest.sha256(file: path).hex)) }
        for f in [flatfieldFile(params), darkfieldFile(params)].compactMap({ $0 }) {
            guard Files.exists(f) else { throw EpipeError.badInput("\(f): flat-field/dark-field file not found; give a TIFF path, auto or off") }
            let (h, n) = try Digest.sha256(file: f)
            refs.append(FileRef(path: "file://" + Files.canonical(f), sha256: h, bytes: n))
        }
        return refs
    }

    /// Resolves one channel's recipe: global params overlaid by per-channel[name].
    func recipe(for name: String, params: [String: JSONValue], dtype: PixelType, hasBlanks: Bool) throws -> ChannelRecipe {
        var p = params
        if let pc = params["per-channel"]?.objectValue, let o = pc[name]?.objectValue { for (k, v) in o { p[k] = v } }
        func off(_ v: JSONValue?) -> Bool { guard let s = v?.stringValue?.lowercased() else { return v == nil || v == .null } ; return ["off", "false", "none", "0", "no"].contains(s) }
        func bad(_ k: String, _ want: String) -> EpipeError { EpipeError.badInput("denoise param \(k)\(name.isEmpty ? "" : " for \(name)"): expected \(want), got \(p[k].map { "\($0)" } ?? "nothing")") }
        var r = ChannelRecipe()
        if !off(p["hot-pixels"]) {
            if p["hot-pixels"]?.stringValue == "auto" {
                // 5% of the type's range: a stuck or hot pixel is far above its neighbours' median.
                r.hotPixels = dtype == .uint8 ? 13 : (dtype == .float32 ? nil : 3277)
            } else {
                guard let t = p["hot-pixels"]?.doubleValue, t > 0 else { throw bad("hot-pixels", "a threshold > 0, auto or off") }
                r.hotPixels = Float(t)
            }
        }
        func flag(_ k: String) throws -> Bool {
            guard let v = p[k], v != .null else { return false }
            guard let b = v.boolValue else { throw bad(k, "true or false") }
            return b
        }
        r.median = try flag("median")
        if !off(p["rolling-ball"]) {
            guard let v = p["rolling-ball"]?.doubleValue, v >= 1, v <= 1000 else { throw bad("rolling-ball", "a radius in 1...1000 px or off") }
            r.rollingBall = v
        }
        r.lightBackground = try flag("light-background")
        if !off(p["tophat"]) {
            guard let v = p["tophat"]?.intValue, v >= 1, v <= 1000 else { throw bad("tophat", "a radius in 1...1000 px or off") }
            r.tophat = v
        }
        if r.tophat != nil && r.rollingBall != nil { throw EpipeError.badInput("denoise: both --rolling-ball and --tophat are on\(name.isEmpty ? "" : " for \(name)"); choose one background method (the other =off)") }
        guard let g = p["gaussian"]?.doubleValue ?? (off(p["gaussian"]) ? 0 : nil), g >= 0, g <= 50 else { throw bad("gaussian", "a sigma in 0...50") }
        r.gaussian = g
        let ff = p["flatfield"]?.stringValue?.lowercased() ?? "off"
        r.flatfield = !["off", "false", "none"].contains(ff)
        // The flat-field file is global: per channel it is only switched on or off.
        if p["flatfield"] != params["flatfield"], !["off", "false", "none", "on", "true", "auto"].contains(ff) {
            throw bad("flatfield", "on, off or auto per channel (the flat-field file is set for all channels)")
        }
        let bl = p["blanks"]?.stringValue?.lowercased() ?? "auto"
        r.blanks = bl == "auto" ? hasBlanks : try flag("blanks")
        return r
    }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p = ctx.params
        let markersPath = markersPath(ctx.job)
        let reader = try ImageReader(path: try rawPath(ctx.job), markersCSV: markersPath)
        let info = reader.info
        let w = info.width, h = info.height, C = info.channels
        let names = info.channelNames
        let mt = try MarkerTable(names: names, csvPath: markersPath, blankPattern: p["blank-pattern"]?.stringValue ?? MarkerTable.defaultBlankPattern)

        // Which channels to process; blanks are never processed as markers.
        var selected = [Bool](repeating: true, count: C)
        if let cs = p["channels"]?.stringValue, cs != "all" {
            let want = cs.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            let idx = try want.map { try channelIndex($0, names: names, what: "--channels") }
            selected = (0..<C).map { idx.contains($0) }
        }
        let blankIdx = (0..<C).filter { mt.blank[$0] }
        let recipes = try (0..<C).map { c -> ChannelRecipe in
            // Blank channels are only flat-field corrected (like the markers they are subtracted from), never filtered.
            if mt.blank[c] { var r = ChannelRecipe(); r.flatfield = try recipe(for: names[c], params: p, dtype: info.pixelType, hasBlanks: false).flatfield; return r }
            guard selected[c] else { return ChannelRecipe() }
            return try recipe(for: names[c], params: p, dtype: info.pixelType, hasBlanks: !blankIdx.isEmpty)
        }
        let anyBlanks = recipes.contains { $0.blanks }
        if (p["blanks"]?.boolValue ?? false) && blankIdx.isEmpty {
            throw EpipeError.badInput("--blanks: no blank channels found (no name matches \(p["blank-pattern"]?.stringValue ?? ""), no blank/background column in markers.csv)")
        }
        // Blank signal per marker channel: explicit MCMICRO background column, else interpolated by cycle.
        var blankWeights = [[(channel: Int, weight: Float)]](repeating: [], count: C)
        if anyBlanks {
            let cycles = mt.cycles ?? Array(0..<C)
            let byCycle = Blanks.weights(cycles: cycles, isBlank: mt.blank)
            for c in 0..<C where recipes[c].blanks {
                if let b = mt.background[c], let j = names.firstIndex(of: b) { blankWeights[c] = [(j, 1)] } else { blankWeights[c] = byCycle[c] }
            }
        }
        let outType: PixelType = (p["float"]?.boolValue ?? false) ? .float32 : info.pixelType
        var bandRows = p["band"]?.intValue ?? 0
        if bandRows <= 0 { bandRows = DenoiseStream.autoBandRows(width: w, channels: C) }
        let bands = (h + bandRows - 1) / bandRows

        // Illumination models: from a given flat-field TIFF, or estimated from the image (a first pass).
        var dark = [Float](repeating: 0, count: C)
        if let d = p["darkfield"]?.doubleValue { dark = [Float](repeating: Float(d), count: C) }
        // A dark-field image is subtracted pixel by pixel (channel c: its plane c, or its last), read band by band.
        var darkReader: ImageReader? = nil
        if let df = darkfieldFile(p) {
            let r = try ImageReader(path: df)
            guard r.info.width == w, r.info.height == h else { throw EpipeError.badInput("\(df): dark-field is \(r.info.width)x\(r.info.height), the image is \(w)x\(h)") }
            darkReader = r
            ctx.log.detail("dark-field from \(df) (\(r.info.channels) plane\(r.info.channels == 1 ? "" : "s"))")
        }
        var flat = [FlatField?](repeating: nil, count: C)
        let flatC = (0..<C).filter { recipes[$0].flatfield }
        if let ff = flatfieldFile(p), !flatC.isEmpty {
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
        TIFF or a model estimated from the image's low percentiles, after subtracting a dark-field), \
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
    @Option(name: .long, help: "Dark-field: a constant or a TIFF path, subtracted before the flat-field.") var darkfield: String?
    @Option(name: .long, help: "Gaussian sigma in px, 0 for none. Default 0.") var gaussian: Double?
    @Option(name: .long, help: "Comma-separated channels to process (others are copied unchanged). Default all.") var channels: String?
    @Option(name: .long, help: "Per-channel setting NAME:key=value (may repeat), e.g. DAPI:rolling-ball=off.") var channelParam: [String] = []
    @Flag(name: .long, help: "Write float32 instead of the input's type.") var float = false
    @Option(name: .long, help: "Rows per band, or auto (~384 MiB of bands).") var band: String?

    func run() throws {
        var per: [String: JSONValue] = [:]
        for cp in channelParam {
            guard let colon = cp.firstIndex(of: ":"), let eq = cp[colon...].firstIndex(of: "=") else {
                throw EpipeError.badInput("--channel-param \(cp): expected NAME:key=value, e.g. DAPI:rolling-ball=off")
            }
            let ch = String(cp[..<colon]), key = String(cp[cp.index(after: colon)..<eq]), val = String(cp[cp.index(after: eq)...])
            var o = per[ch]?.objectValue ?? [:]
            o[key] = Double(val).map { .number($0) } ?? .string(val)
            per[ch] = .object(o)
        }
        func num(_ s: String?) -> JSONValue? { s.map { Double($0).map { .number($0) } ?? .string($0) } }
        let tool = DenoiseTool(flags: ["hot-pixels": num(hotPixels), "median": median.map { .bool($0) }, "rolling-ball": num(rollingBall),
                                       "light-background": lightBackground ? .bool(true) : nil, "tophat": num(tophat), "blanks": blanks.map { .string($0) },
                                       "blank-pattern": blankPattern.map { .string($0) }, "flatfield": flatfield.map { .string($0) },
                                       "darkfield": num(darkfield), "gaussian": gaussian.map { .number($0) }, "channels": channels.map { .string($0) },
                                       "per-channel": per.isEmpty ? nil : .object(per), "float": float ? .bool(true) : nil, "band": num(band)])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
