import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoise

struct DenoiseTool: StageTool {
    let stage = "denoise"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
        let p = mergeParams(job, defaults: ["median": true, "gaussian": 1.0, "band": 512], flags: flags)
        guard (p["gaussian"]?.doubleValue ?? -1) >= 0, (p["gaussian"]?.doubleValue ?? 0) <= 50 else { throw EpipeError.badInput("denoise param gaussian: must be a sigma in 0...50") }
        guard (p["band"]?.intValue ?? 0) >= 16 else { throw EpipeError.badInput("denoise param band: must be at least 16 rows") }
        return p
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] {
        var refs = [FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes)]
        if let m = job.spec.markers { refs.append(FileRef(path: m, sha256: try Digest.sha256(file: String(m.dropFirst(7))).hex)) }
        return refs
    }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p = ctx.params
        let recipe = DenoiseRecipe(median3: p["median"]?.boolValue ?? true, gaussianSigma: p["gaussian"]?.doubleValue ?? 1)
        let bandRows = p["band"]?.intValue ?? 512
        let reader = try ImageReader(path: try rawPath(ctx.job), markersCSV: ctx.job.spec.markers.map { String($0.dropFirst(7)) })
        let info = reader.info
        let w = info.width, h = info.height, C = info.channels
        let outType: PixelType = info.pixelType == .float32 ? .float32 : (info.pixelType == .uint8 ? .uint8 : .uint16)
        let outPath = try ctx.output("image.ome.tif")
        let writer = try ImageWriter(path: outPath, width: w, height: h, channelNames: info.channelNames, pixelType: outType,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
        let halo = recipe.halo
        let bands = (h + bandRows - 1) / bandRows
        let prog = ctx.progress("denoise", total: bands * C, unit: "bands")
        var before = [Histogram16](repeating: Histogram16(), count: C), after = before
        let thumbsB = (0..<C).map { _ in Thumbnail(srcWidth: w, srcHeight: h, maxSide: 512) }
        let thumbsA = (0..<C).map { _ in Thumbnail(srcWidth: w, srcHeight: h, maxSide: 512) }
        let br = BandReader(reader)
        for b in 0..<bands {
            let y0 = b * bandRows, rows = min(bandRows, h - y0)
            // Read every channel's band (one reader), filter them on both cores, write in order.
            var ins: [[Float]] = []
            for c in 0..<C { ins.append(try br.band(channel: c, y0: y0, rows: rows, halo: halo)) }
            let outs = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: C)
            outs.initialize(repeating: [])
            let box = UnsafeSendable(outs)
            let inBox = UnsafeSendable(ins)
            DispatchQueue.concurrentPerform(iterations: C) { c in
                inBox.value[c].withUnsafeBufferPointer { band in
                    box.value[c] = Denoise.apply(recipe, band: band, width: w, haloTop: halo, rows: rows, haloBottom: halo)
                }
            }
            for c in 0..<C {
                ins[c].withUnsafeBufferPointer { band in
                    let interior = UnsafeBufferPointer(rebasing: band[(halo * w)..<((halo + rows) * w)])
                    before[c].add(interior); thumbsB[c].add(rows: interior, y0: y0, count: rows)
                }
                outs[c].withUnsafeBufferPointer { o in after[c].add(o); thumbsA[c].add(rows: o, y0: y0, count: rows) }
                try writer.writeRows(channel: c, y0: y0, count: rows, outs[c])
                prog.advance()
            }
            outs.deinitialize(); outs.deallocate()
        }
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
            let name = info.channelNames[c]
            let sb = Preview.stretch(thumbsB[c].plane, width: tw, height: th)
            let sa = Preview.stretch(thumbsA[c].plane, width: tw, height: th)
            var pair = Canvas(width: sb.width + sa.width + 4, height: max(sb.height, sa.height), fill: (0, 0, 0))
            pair.blit(Canvas(gray: sb.pixels, width: sb.width, height: sb.height), at: 0, 0)
            pair.blit(Canvas(gray: sa.pixels, width: sa.width, height: sa.height), at: sb.width + 4, 0)
            let qp = try ctx.qc("\(c)-\(Names.sanitize(name))-before-after.png")
            try pair.write(qp); outputs.append(qp)
            sheet.blit(Canvas(gray: sa.pixels, width: sa.width, height: sa.height), at: (c % cols) * (tw + 4), (c / cols) * (th + 4))
            let bg0 = before[c].percentile(10), bg1 = after[c].percentile(10)
            let sig = after[c].percentile(99)
            let sbr = (sig + 1) / (bg1 + 1)
            let sat = before[c].saturatedFraction
            perChannel[name] = ["background_before": .number(bg0), "background_after": .number(bg1),
                                "p99_after": .number(sig), "signal_to_background": .number((sbr * 100).rounded() / 100),
                                "saturated_fraction": .number(sat), "mean_before": .number(before[c].mean), "mean_after": .number(after[c].mean)]
            if before[c].percentile(99.9) == 0 { warnings.append(.string("\(name): channel is empty")) }
            else if sat > 0.05 { warnings.append(.string("\(name): \(Int(sat * 100))% of pixels saturated")) }
            else if sbr < 1.5 { warnings.append(.string("\(name): low signal-to-background \(String(format: "%.2f", sbr))")) }
        }
        let sp = try ctx.qc("contact-sheet.png")
        try sheet.write(sp); outputs.append(sp)
        for wmsg in warnings { if let s = wmsg.stringValue { ctx.log.warn("\(ctx.job.spec.name): \(s)") } }
        return StageResult(outputs: outputs, metrics: ["width": .number(Double(w)), "height": .number(Double(h)), "channels": .number(Double(C)),
                                                       "per_channel": .object(perChannel), "warnings": .array(warnings)])
    }
}

struct UnsafeSendable<T>: @unchecked Sendable { var value: T; init(_ v: T) { value = v } }

@main
struct DenoiseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-denoise",
        abstract: "Denoise each channel of a job's raw scan: median 3x3, then Gaussian smoothing, in row bands.",
        discussion: """
        Reads the job's raw image by row bands (memory ~ band x width x channels), writes \
        denoise/image.ome.tif (tiled BigTIFF OME-TIFF, input dtype and channel names kept), per-channel \
        QC metrics in denoise/manifest.json and before/after pictures in denoise/qc/. Per-job params come \
        from job.json params.denoise; flags given here win.

          epipe-denoise ROOT/jobs/<id>
          epipe-ingest scans/ | epipe-denoise | epipe-segment
          epipe-denoise --root ROOT --drain
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Median 3x3 on (true) or off (false). Default true.") var median: Bool?
    @Option(name: .long, help: "Gaussian sigma in pixels, 0 for none. Default 1.") var gaussian: Double?
    @Option(name: .long, help: "Rows per band. Default 512.") var band: Int?

    func run() throws {
        let tool = DenoiseTool(flags: ["median": median.map { .bool($0) }, "gaussian": gaussian.map { .number($0) }, "band": band.map { .number(Double($0)) }])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
