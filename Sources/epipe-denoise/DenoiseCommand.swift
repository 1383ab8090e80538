import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeDenoiseStage
import EpipeDenoise
import EpipeKernels

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
    @OptionGroup var parts: PartOptions
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
        let mode = try parts.mode(tool: "epipe-denoise", common: common)
        let per: [String: [String: Setting]]
        do { per = try DenoiseParams.perChannel(flags: channelParam) } catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
        var tool = DenoiseTool(flags: ["hot-pixels": hotPixels.map(Setting.init(typed:)), "median": median.map { .flag($0) },
                                       "rolling-ball": rollingBall.map(Setting.init(typed:)), "light-background": lightBackground ? .flag(true) : nil,
                                       "tophat": tophat.map(Setting.init(typed:)), "blanks": blanks.map { .word($0) }, "blank-pattern": blankPattern.map { .word($0) },
                                       "flatfield": flatfield.map { .word($0) }, "darkfield": darkfield.map(Setting.init(typed:)),
                                       "gaussian": gaussian.map { .number($0) }, "channels": channels.map { .word($0) },
                                       "float": float ? .flag(true) : nil, "band": band.map(Setting.init(typed:))],
                               perChannelFlags: per)
        tool.merging = mode == .merge
        tool.keepParts = parts.keepParts
        var part: (index: Int, count: Int)? = nil
        if case .part(let i, let n) = mode { part = (i, n) }
        let code = StageRunner(tool: tool, options: common, part: part).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
