import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegmentStage

@main
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-segment",
        abstract: "Segment nuclei and whole cells and quantify every channel per cell, tile by tile.",
        discussion: discussion)

    @OptionGroup var common: StageOptions
    @OptionGroup var parts: PartOptions
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
    // --tile PX (the tile size) is PartOptions' --tile: with --tiles N it is the part to run, without it the tile size.
    @Option(name: .long, help: "Tile size in px for slide-scale segmentation (memory ~ tile x width); also --tile PX when --tiles is not given. Default 1024, down to 512 on slides wider than 16k px.") var tileSize: Int?
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
        // --tile is the tile size unless --tiles splits the slide (then the part, and the size is --tile-size)
        var po = parts, tile = tileSize
        if po.tiles == nil, let t = po.tile {
            if let s = tileSize, s != t { throw EpipeError.badInput("--tile \(t) and --tile-size \(s): give the tile size once") }
            tile = t; po.tile = nil
        }
        let mode: PartOptions.Mode
        do { mode = try po.mode(tool: "epipe-segment", common: common) }
        catch let e as EpipeError where po.tiles != nil && po.tile != nil {
            throw EpipeError.badInput(e.message + " (with --tiles, --tile is the part; the tile size is --tile-size)")
        }
        var tool = SegmentTool(flags: ["nuclear": nuclear.map { .string($0) }, "nucleus-diameter": nucleusDiameter.map { .number($0) },
                                       "expand": expand.map { .number(Double($0)) }, "min-area": minArea.map { .number(Double($0)) },
                                       "split": split.map { .bool($0) }, "threshold-method": thresholdMethod.map { .string($0) },
                                       "tile": tile.map { .number(Double($0)) }, "stats": stats.map { .string($0) },
                                       "membrane": membrane.map { .string($0) }, "cell-max-distance": cellMaxDistance.map { .number($0) },
                                       "seeds": seeds.map { .string($0) }, "seed-h": seedH.map { .number($0) }, "seed-min-distance": seedMinDistance.map { .number($0) },
                                       "nuclei-mask": try maskFlag("nuclei"), "cells-mask": try maskFlag("cells")])
        tool.merging = mode == .merge
        tool.keepParts = parts.keepParts
        var part: (index: Int, count: Int)? = nil
        if case .part(let i, let n) = mode { part = (i, n) }
        let code = StageRunner(tool: tool, options: common, part: part).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
