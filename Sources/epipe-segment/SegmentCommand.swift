import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment

struct SegmentTool: StageTool {
    let stage = "segment"
    let flags: [String: JSONValue?]

    func params(for job: Job) throws -> [String: JSONValue] {
        let p = mergeParams(job, defaults: ["nuclear": "auto", "nucleus-diameter": "auto", "expand": "auto", "min-area": "auto", "split": true, "smooth": 1.5], flags: flags)
        for k in ["nucleus-diameter", "expand", "min-area"] {
            if let v = p[k], v.stringValue != "auto", (v.doubleValue ?? -1) < 0 { throw EpipeError.badInput("segment param \(k): expected a number >= 0 or auto, got \(v)") }
        }
        return p
    }

    /// The denoised image when the job has that stage, else the raw scan.
    func imageInput(_ job: Job) throws -> (path: String, ref: FileRef) {
        if job.spec.stages.contains("denoise") {
            let r = try upstream(job, "denoise", ["denoise/image.ome.tif"])[0]
            return (try job.path(r.path), r)
        }
        return (try rawPath(job), FileRef(path: job.spec.raw.uri, sha256: job.spec.raw.sha256, bytes: job.spec.raw.bytes))
    }

    func inputs(for job: Job, params: [String: JSONValue]) throws -> [FileRef] { [try imageInput(job).ref] }

    func run(_ ctx: StageContext) throws -> StageResult {
        let p = ctx.params
        let (imgPath, _) = try imageInput(ctx.job)
        let reader = try ImageReader(path: imgPath, markersCSV: ctx.job.spec.markers.map { String($0.dropFirst(7)) })
        let info = reader.info
        let w = info.width, h = info.height, C = info.channels
        let nucSpec = p["nuclear"]?.stringValue ?? "auto"
        let nuc = nucSpec == "auto" ? guessNuclear(info.channelNames) : try channelIndex(nucSpec, names: info.channelNames, what: "--nuclear")
        var diameter = p["nucleus-diameter"]?.doubleValue ?? 0
        if diameter <= 0 { diameter = info.physicalSizeX.map { max(4, min(60, 7.0 / $0)) } ?? 12 }
        let expand = p["expand"]?.intValue ?? Int((diameter * 0.5).rounded())
        let minArea = p["min-area"]?.intValue ?? max(4, Int(0.1 * Double.pi * diameter * diameter / 4))
        var np = NucleiParams()
        np.nucleusDiameter = diameter; np.minArea = minArea
        np.splitTouching = p["split"]?.boolValue ?? true
        np.smoothSigma = p["smooth"]?.doubleValue ?? 1.5
        ctx.log.detail("nuclear channel \(info.channelNames[nuc]) (#\(nuc)), diameter \(diameter) px, expand \(expand) px, min area \(minArea) px")

        let prog = ctx.progress("segment", total: 3 + C, unit: "steps")
        let nucPlane = try reader.readChannel(nuc)
        let seg = Segmenter.nuclei(nucPlane, width: w, height: h, params: np)
        prog.advance()
        let cells = expand > 0 ? Segmenter.expand(seg.labels, width: w, height: h, distance: expand) : seg.labels
        prog.advance()
        let shape = Quantify.cells(labels: cells, count: seg.count, width: w, height: h, channels: [])
        prog.advance()
        // Means per channel, one channel in memory at a time.
        var cellMeans: [[Double]] = [], nucMeans: [[Double]] = []
        for c in 0..<C {
            let plane = c == nuc ? nucPlane : try reader.readChannel(c)
            cellMeans.append(Quantify.means(labels: cells, count: seg.count, channels: [plane])[0])
            nucMeans.append(Quantify.means(labels: seg.labels, count: seg.count, channels: [plane])[0])
            prog.advance()
        }

        // Masks (uint32) and the MCQuant-style table.
        let nucPath = try ctx.output("nuclei.tif"), cellPath = try ctx.output("cells.tif")
        for (path, lab, nm) in [(nucPath, seg.labels, "nuclei"), (cellPath, cells, "cells")] {
            let wr = try ImageWriter(path: path, width: w, height: h, channelNames: [nm], pixelType: .uint32,
                                     physicalSizeX: info.physicalSizeX, physicalSizeY: info.physicalSizeY)
            try wr.writeRows(channel: 0, y0: 0, count: h, lab)
            try wr.finish()
        }
        let names = info.channelNames
        var header = ["CellID"] + names
        header += ["X_centroid", "Y_centroid", "Area", "MajorAxisLength", "MinorAxisLength", "Eccentricity", "Solidity", "Extent", "Orientation"]
        header += names.map { $0 + "_nucleus" }
        var table = CSVTable(header: header)
        table.rows.reserveCapacity(seg.count)
        var areas: [Int] = []
        for i in 0..<shape.ids.count where shape.area[i] > 0 {
            var r = [String(shape.ids[i])]
            for c in 0..<C { r.append(CSVTable.num(cellMeans[c][i], digits: 3)) }
            r += [CSVTable.num(shape.centroidX[i]), CSVTable.num(shape.centroidY[i]), String(shape.area[i]),
                  CSVTable.num(shape.majorAxis[i]), CSVTable.num(shape.minorAxis[i]), CSVTable.num(shape.eccentricity[i]),
                  CSVTable.num(shape.solidity[i]), CSVTable.num(shape.extent[i]), CSVTable.num(shape.orientation[i])]
            for c in 0..<C { r.append(CSVTable.num(nucMeans[c][i], digits: 3)) }
            table.rows.append(r); areas.append(shape.area[i])
        }
        let csvPath = try ctx.output("cells.csv")
        try table.write(csvPath)

        // QC: outlines on the nuclear channel (thumbnail and a full-resolution crop), area histogram.
        var outputs = [nucPath, cellPath, csvPath]
        let crop = min(512, w, h)
        let cx0 = (w - crop) / 2, cy0 = (h - crop) / 2
        var cropPlane = [Float](repeating: 0, count: crop * crop)
        for y in 0..<crop { for x in 0..<crop { cropPlane[y * crop + x] = nucPlane[(cy0 + y) * w + cx0 + x] } }
        let st = Preview.stretch(cropPlane, width: crop, height: crop, maxSide: crop)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        func outline(_ lab: [UInt32], _ color: (UInt8, UInt8, UInt8)) {
            for y in 0..<crop { for x in 0..<crop {
                let gx = cx0 + x, gy = cy0 + y, l = lab[gy * w + gx]
                guard l != 0 else { continue }
                let edge = (gx > 0 && lab[gy * w + gx - 1] != l) || (gx + 1 < w && lab[gy * w + gx + 1] != l) || (gy > 0 && lab[(gy - 1) * w + gx] != l) || (gy + 1 < h && lab[(gy + 1) * w + gx] != l)
                if edge { cv.set(x, y, color) }
            } }
        }
        outline(cells, (255, 0, 255)); outline(seg.labels, (0, 255, 0))
        cv.text("nuclei", x: 4, y: 4, color: (0, 255, 0)); cv.text("cells", x: 48, y: 4, color: (255, 0, 255))
        let q1 = try ctx.qc("overlay-crop.png"); try cv.write(q1); outputs.append(q1)
        let f = max(1, Int((Double(max(w, h)) / 1024).rounded(.up)))
        let tw = (w + f - 1) / f, th = (h + f - 1) / f
        var thumb = [Float](repeating: 0, count: tw * th)
        for ty in 0..<th { for tx in 0..<tw { thumb[ty * tw + tx] = nucPlane[min(h - 1, ty * f) * w + min(w - 1, tx * f)] } }
        let ts = Preview.stretch(thumb, width: tw, height: th, maxSide: 1024)
        var tc = Canvas(gray: ts.pixels, width: ts.width, height: ts.height)
        for ty in 0..<th { for tx in 0..<tw {
            let gx = min(w - 1, tx * f), gy = min(h - 1, ty * f), l = seg.labels[gy * w + gx]
            if l != 0 && ((gx + f < w && seg.labels[gy * w + gx + f] != l) || (gy + f < h && seg.labels[(gy + f) * w + gx] != l)) { tc.set(tx, ty, (0, 255, 0)) }
        } }
        let q2 = try ctx.qc("overlay-thumbnail.png"); try tc.write(q2); outputs.append(q2)
        let sorted = areas.sorted()
        let median = sorted.isEmpty ? 0 : sorted[sorted.count / 2]
        if !sorted.isEmpty {
            let maxA = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
            let nb = 40, bw = max(1, (maxA + nb - 1) / nb)
            var hist = [Int](repeating: 0, count: nb)
            for a in sorted { hist[min(nb - 1, a / bw)] += 1 }
            let hm = hist.max() ?? 1
            var hc = Canvas(width: nb * 12 + 20, height: 220)
            for (i, v) in hist.enumerated() { let bh = 200 * v / max(hm, 1); hc.rect(10 + i * 12, 210 - bh, 10, bh, (31, 119, 180)) }
            hc.rect(10 + min(nb - 1, median / bw) * 12 + 4, 5, 2, 205, (214, 39, 40))
            hc.text("cell area (px), 0 to \(maxA); median \(median)", x: 10, y: 4, color: (0, 0, 0), box: nil)
            let q3 = try ctx.qc("area-histogram.png"); try hc.write(q3); outputs.append(q3)
        }
        var segmented = 0
        for l in cells where l != 0 { segmented += 1 }
        var metrics: [String: JSONValue] = ["cells": .number(Double(table.rows.count)), "median_area_px": .number(Double(median)),
                                            "threshold": .number(Double(seg.threshold)), "nuclear_channel": .string(info.channelNames[nuc]),
                                            "nucleus_diameter_px": .number(diameter), "fraction_segmented": .number((Double(segmented) / Double(w * h) * 1e4).rounded() / 1e4),
                                            "nuclei_without_cell_fraction": 0, "warnings": .array(table.rows.isEmpty ? ["no cells found"] : [])]
        if let px = info.physicalSizeX { metrics["cells_per_mm2"] = .number((Double(table.rows.count) / (Double(w * h) * px * px * 1e-6)).rounded()) }
        prog.finish()
        return StageResult(outputs: outputs, metrics: metrics)
    }
}

@main
struct SegmentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-segment",
        abstract: "Segment nuclei and whole cells and quantify every channel per cell.",
        discussion: """
        Nuclei: Gaussian smoothing, Otsu threshold on the nuclear channel, fill holes, distance \
        transform, seeded watershed to split touching nuclei, small objects removed. Cells: each nucleus \
        grown by --expand pixels without overlap. Writes segment/nuclei.tif and segment/cells.tif \
        (uint32 labels), segment/cells.csv (MCQuant columns: CellID, one mean per marker, X_centroid, \
        Y_centroid, Area, MajorAxisLength, MinorAxisLength, Eccentricity, Solidity, Extent, Orientation, \
        <marker>_nucleus) and QC overlays in segment/qc/.
        """)

    @OptionGroup var common: StageOptions
    @Option(name: .long, help: "Nuclear channel by name or index (default: DAPI/Hoechst/DNA by name, else 0).") var nuclear: String?
    @Option(name: .long, help: "Expected nucleus diameter in pixels (default: 7 µm at the image's pixel size, else 12).") var nucleusDiameter: Double?
    @Option(name: .long, help: "Grow nuclei into cells by this many pixels (default: half the nucleus diameter).") var expand: Int?
    @Option(name: .long, help: "Drop nuclei smaller than this many pixels.") var minArea: Int?
    @Option(name: .long, help: "Split touching nuclei by watershed (true/false). Default true.") var split: Bool?

    func run() throws {
        let tool = SegmentTool(flags: ["nuclear": nuclear.map { .string($0) }, "nucleus-diameter": nucleusDiameter.map { .number($0) },
                                       "expand": expand.map { .number(Double($0)) }, "min-area": minArea.map { .number(Double($0)) },
                                       "split": split.map { .bool($0) }])
        let code = StageRunner(tool: tool, options: common).main()
        if code != 0 { throw EpipeExit(code) }
    }
    static func main() { runMain(Self.self) }
}
