import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSynth

@main
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-synth",
        abstract: "Write synthetic multiplexed slides with ground truth (for demos, tests and benchmarks).",
        discussion: """
        Each slide is a tiled OME-TIFF (uint16, one page per marker, DAPI first) with touching nuclei of \
        varied size, shape and brightness, membrane and cytoplasmic markers, cell types in spatial \
        niches, uneven illumination, background, blur and shot noise. Ground truth goes to --truth: \
        <name>-nuclei.tif and <name>-cells.tif (uint32 labels) and <name>-cells.csv (id, type, x, y). \
        Deterministic from --seed; rendered in row bands, so memory stays flat.

          epipe-synth --out scans --width 2048 --height 2048 --channels 6 --count 4

        The failure modes of real nucleus images are off by default (the output stays the same); \
        --realism hard turns them all on, and each flag below sets one (after the preset):

          epipe-synth --out hard --width 1024 --height 1024 --realism hard
          epipe-synth --out tex --chromatin-texture 0.8 --eight-bit
        """)

    @Option(name: .long, help: "Folder for the slides.") var out: String
    @Option(name: .long, help: "Folder for the ground truth (default: OUT-truth).") var truth: String?
    @Option(name: .long, help: "Width in pixels.") var width: Int = 2048
    @Option(name: .long, help: "Height in pixels.") var height: Int = 2048
    @Option(name: .long, help: "Channels (>= 1; DAPI first).") var channels: Int = 6
    @Option(name: .long, help: "Number of slides (seeds seed, seed+1, ...).") var count: Int = 1
    @Option(name: .long, help: "Seed of the first slide.") var seed: UInt64 = 1
    @Option(name: .long, help: "Mean nucleus diameter in pixels.") var nucleusDiameter: Double = 12
    @Option(name: .long, help: "Name prefix of the slides.") var name: String = "synth"
    @Option(name: .long, help: "Realism preset: none (default) or hard (every option below on).") var realism: String = "none"
    @Option(name: .long, help: "Textured chromatin 0...1: chromocentres and dark nucleoli, several maxima per nucleus (hard: 1).") var chromatinTexture: Double?
    @Flag(name: .long, inversion: .prefixedNo, help: "Nuclear channel quantised to 8 bits with a low signal (0...255 in the uint16 file; hard: on).") var eightBit: Bool?
    @Option(name: .long, help: "Spread of nuclear brightness in decades (95th / 5th percentile; hard: 1.5).") var brightnessDecades: Double?
    @Option(name: .long, help: "Fraction of the area strongly out of focus, 0...1 (hard: 0.25).") var outOfFocus: Double?
    @Option(name: .long, help: "Out-of-focus blur sigma in px (default 0.3 x nucleus diameter).") var outOfFocusSigma: Double?
    @Option(name: .long, help: "Clumps of touching and overlapping nuclei, 0...1 (hard: 1).") var clumping: Double?
    @Option(name: .long, help: "Uneven illumination and background haze, 0...1 (hard: 1).") var unevenIllumination: Double?
    @Option(name: .long, help: "Write a per-cell table of this many cells instead of slides: OUT/NAME.csv (MCQuant columns) and TRUTH/NAME-types.csv.") var cells: Int?
    @Option(name: .long, help: "With --cells: markers in the table.") var markers: Int = 30
    @Option(name: .long, help: "With --cells: cell types.") var types: Int = 10
    @Option(name: .long, help: "With --cells: lognormal spread of marker means (0.35 separate ... 0.8 overlapping).") var spread: Double = 0.5
    @Option(name: .long, help: "With --cells: write positions and cell types instead of markers (OUT/NAME.csv: CellID, X_centroid, Y_centroid, phenotype; TRUTH/NAME-types.csv: CellID, type, niche): uniform (types independent of position) or niches (planted niches of --niches groups of types).") var layout: String?
    @Option(name: .long, help: "With --layout niches: the number of niches.") var niches: Int = 4
    @Flag(name: [.short, .long], help: "No progress on stderr.") var quiet = false

    /// The slide config for seed `seed`: defaults, then the preset, then each realism flag given.
    func config(seed: UInt64) throws -> SynthConfig {
        guard let preset = SynthRealism(rawValue: realism) else {
            throw ValidationError("--realism must be one of \(SynthRealism.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var cfg = SynthConfig(width: width, height: height, channels: channels, seed: seed, nucleusDiameter: nucleusDiameter)
        cfg.apply(preset)
        func unit(_ v: Double?, _ flag: String) throws -> Double? {
            guard let v else { return nil }
            guard v >= 0, v <= 1 else { throw ValidationError("\(flag) must be in 0...1") }
            return v
        }
        if let v = try unit(chromatinTexture, "--chromatin-texture") { cfg.chromatinTexture = v }
        if let v = eightBit { cfg.eightBit = v }
        if let v = brightnessDecades {
            guard v >= 0, v <= 4 else { throw ValidationError("--brightness-decades must be in 0...4") }
            cfg.brightnessDecades = v
        }
        if let v = try unit(outOfFocus, "--out-of-focus") { cfg.outOfFocusFraction = v }
        if let v = outOfFocusSigma {
            guard v >= 0, v <= 100 else { throw ValidationError("--out-of-focus-sigma must be in 0...100") }
            cfg.outOfFocusSigma = v
        }
        if let v = try unit(clumping, "--clumping") { cfg.clumping = v }
        if let v = try unit(unevenIllumination, "--uneven-illumination") { cfg.unevenIllumination = v }
        return cfg
    }

    func run() throws {
        guard width >= 16, height >= 16, width <= 200_000, height <= 200_000 else { throw ValidationError("--width and --height must be in 16...200000") }
        guard channels >= 1, channels <= 512 else { throw ValidationError("--channels must be in 1...512") }
        guard count >= 1 else { throw ValidationError("--count must be >= 1") }
        try Names.validateName(name, what: "--name", path: "epipe-synth")
        _ = try config(seed: seed)   // flags checked before anything is written
        let truthDir = truth ?? (out.hasSuffix("/") ? String(out.dropLast()) : out) + "-truth"
        if let n = cells {
            guard n >= 1, n <= 100_000_000, markers >= 1, markers <= 1000, types >= 1, types <= 1000, spread >= 0, spread <= 3 else {
                throw ValidationError("--cells must be in 1...100000000, --markers and --types in 1...1000, --spread in 0...3")
            }
            try Files.mkdir(out); try Files.mkdir(truthDir)
            let path = out + "/" + name + ".csv"
            if let layout {
                guard SpatialCells.Layout(rawValue: layout) != nil, niches >= 1, niches <= 100 else {
                    throw ValidationError("--layout must be one of \(SpatialCells.Layout.allCases.map(\.rawValue).joined(separator: ", ")); --niches in 1...100")
                }
            }
            let (csv, truthCSV, what): (String, String, String)
            if let layout, let l = SpatialCells.Layout(rawValue: layout) {
                let t = SpatialCells.generate(cells: n, types: types, layout: l, niches: niches, seed: seed)
                (csv, truthCSV, what) = (t.csv(), t.truthCSV(), "\(n) cells, \(types) types, \(l.rawValue) layout")
            } else {
                let t = CellTable.generate(cells: n, markers: markers, types: types, spread: spread, seed: seed)
                (csv, truthCSV, what) = (t.csv(), t.truthCSV(), "\(n) cells x \(markers) markers, \(types) types")
            }
            try AtomicFile.write(truthCSV, to: truthDir + "/" + name + "-types.csv")
            try AtomicFile.write(csv, to: path)
            if !quiet { Term.stderr("epipe-synth: \(path) \(what); truth in \(truthDir)") }
            Term.stdout(path)
            return
        }
        try Files.mkdir(out); try Files.mkdir(truthDir)
        for i in 0..<count {
            let cfg = try config(seed: seed + UInt64(i))
            let slide = SyntheticSlide(cfg)
            let nm = count == 1 ? name : "\(name)-\(String(format: "%02d", i + 1))"
            let img = out + "/" + nm + ".ome.tif"
            let px = cfg.pixelSizeMicrons
            let wi = try ImageWriter(path: img, width: width, height: height, channelNames: slide.channelNames, pixelType: .uint16, physicalSizeX: px, physicalSizeY: px,
                                     pyramidLevels: ImageWriter.suggestedPyramidLevels(width: width, height: height))
            let wn = try ImageWriter(path: truthDir + "/" + nm + "-nuclei.tif", width: width, height: height, channelNames: ["nuclei"], pixelType: .uint32, physicalSizeX: px, physicalSizeY: px)
            let wc = try ImageWriter(path: truthDir + "/" + nm + "-cells.tif", width: width, height: height, channelNames: ["cells"], pixelType: .uint32, physicalSizeX: px, physicalSizeY: px)
            let bandRows = 256
            let bands = (height + bandRows - 1) / bandRows
            let prog = ProgressReporter(label: "\(nm)", total: bands, unit: "bands", quiet: quiet)
            for b in 0..<bands {
                let y0 = b * bandRows, n = min(bandRows, height - y0)
                let band = slide.renderBand(y0: y0, count: n)
                for c in 0..<channels { try wi.writeRows(channel: c, y0: y0, count: n, band.channels[c]) }
                try wn.writeRows(channel: 0, y0: y0, count: n, band.nuclei)
                try wc.writeRows(channel: 0, y0: y0, count: n, band.cells)
                prog.advance()
            }
            try wn.finish(); try wc.finish()
            var t = CSVTable(header: ["CellID", "type", "type_name", "X", "Y"])
            for c in slide.cells() { t.rows.append([String(c.id), String(c.type), slide.cellTypeNames[c.type], CSVTable.num(c.x, digits: 2), CSVTable.num(c.y, digits: 2)]) }
            try t.write(truthDir + "/" + nm + "-cells.csv")
            try wi.finish()   // the scan appears last, complete
            if !quiet { Term.stderr("epipe-synth: \(img) \(width)x\(height)x\(channels), \(t.rows.count) cells; truth in \(truthDir)") }
            Term.stdout(img)
        }
    }
    static func main() { runMain(Self.self) }
}
