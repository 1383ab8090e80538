import Foundation
import Dispatch
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeSegment
import EpipeKernels

/// The segmentation's QC pictures in segment/qc/: up to 4 full-resolution crops where the nuclei
/// are densest (nuclei green, cells magenta, on the nuclear channel), a thumbnail of the slide
/// with the nuclei outlined, and the cell-area histogram.
enum SegmentPictures {
    static func write(_ qc: SegmentQC, areas: AreaCounts, ctx: StageContext, image open: @escaping @Sendable () throws -> PlaneReader,
                      nuclear nucs: [Int], nuclei nucPath: String, cells cellPath: String) throws -> [String] {
        var outputs: [String] = []
        // crops on both cores, each with its own readers (rows are decoded whole, so this is the QC's main cost)
        let wins = qc.cropWindows(), side = qc.side
        let crops = Slots<Canvas>(wins.count), errors = Slots<Error>(wins.count)
        DispatchQueue.concurrentPerform(iterations: wins.count) { k in
            do {
                let (x0, y0) = wins[k]
                let img = try open(), nucR = try ImageReader(path: nucPath), cellR = try ImageReader(path: cellPath)
                let plane = SlideScan.meanOf(try nucs.map { try img.readWindow(channel: $0, x0: x0, y0: y0, width: side, height: side) }, channels: Array(0..<nucs.count))
                var cv = Canvas.overlay(plane, width: side, height: side, maxSide: side, outlines: [
                    (try cellR.readWindowUInt32(channel: 0, x0: x0, y0: y0, width: side, height: side), (255, 0, 255)),
                    (try nucR.readWindowUInt32(channel: 0, x0: x0, y0: y0, width: side, height: side), (0, 255, 0))])
                cv.text("nuclei", x: 4, y: 4, color: (0, 255, 0)); cv.text("cells", x: 48, y: 4, color: (255, 0, 255))
                cv.text("x \(x0) y \(y0)", x: 4, y: side - 14, color: (255, 255, 0))
                crops[k] = cv
            } catch { errors[k] = error }
        }
        if let e = errors.values.compactMap({ $0 }).first { throw e }
        for (k, cv) in crops.values.enumerated() {
            let q = try ctx.qc("overlay-crop-\(k + 1).png"); try cv!.write(q); outputs.append(q)
        }
        let thumb = Canvas.overlay(qc.thumb, width: qc.tw, height: qc.th, maxSide: 1024, outlines: [(qc.thumbLab, (0, 255, 0))])
        let q2 = try ctx.qc("overlay-thumbnail.png"); try thumb.write(q2); outputs.append(q2)
        if areas.count > 0 {
            let (hist, bw, maxA, median) = areas.histogram(bins: 40)
            let nb = hist.count, hm = hist.max() ?? 1
            var hc = Canvas(width: nb * 12 + 20, height: 220)
            for (i, v) in hist.enumerated() { let bh = 200 * v / max(hm, 1); hc.rect(10 + i * 12, 210 - bh, 10, bh, (31, 119, 180)) }
            hc.rect(10 + min(nb - 1, median / bw) * 12 + 4, 5, 2, 205, (214, 39, 40))
            hc.text("cell area (px), 0 to \(maxA); median \(median)", x: 10, y: 4, color: (0, 0, 0), box: nil)
            let q3 = try ctx.qc("area-histogram.png"); try hc.write(q3); outputs.append(q3)
        }
        return outputs
    }
}
