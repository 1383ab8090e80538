import XCTest
import Foundation
import EpipeCore
import EpipeImage

/// epipe-segment through the binary: tile-size independence, accuracy against ground truth, imported masks.
final class SegmentStageTests: E2ECase {
    func prepared(size: Int = 640) throws -> (job: String, truth: String) {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: size, channels: 3, seed: 5)
        let j = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", scans]).lines[0]
        XCTAssertEqual(try exec("epipe-denoise", ["-q", j]).code, 0)
        return (j, scans + "-truth/s")
    }

    /// Object F1 at IoU >= 0.5 (one-to-one) of two label images.
    func f1(_ truth: [UInt32], _ pred: [UInt32]) -> Double {
        var inter: [UInt64: Int] = [:], at: [UInt32: Int] = [:], ap: [UInt32: Int] = [:]
        for i in 0..<truth.count {
            let t = truth[i], p = pred[i]
            if t != 0 { at[t, default: 0] += 1 }
            if p != 0 { ap[p, default: 0] += 1 }
            if t != 0 && p != 0 { inter[UInt64(t) << 32 | UInt64(p), default: 0] += 1 }
        }
        var tp = 0
        for (k, n) in inter {
            let t = UInt32(k >> 32), p = UInt32(k & 0xFFFF_FFFF)
            if Double(n) / Double(at[t]! + ap[p]! - n) > 0.5 { tp += 1 }
        }
        let prec = Double(tp) / Double(max(1, ap.count)), rec = Double(tp) / Double(max(1, at.count))
        return prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0
    }

    func testTileSizeIndependenceAndAccuracy() throws {
        let (j, truth) = try prepared()
        var masks: [[UInt32]] = []
        for tile in ["256", "1024"] {
            let r = try exec("epipe-segment", ["-q", "--force", "--tile", tile, j])
            XCTAssertEqual(r.code, 0, r.err)
            masks.append(try ImageReader(path: j + "/segment/nuclei.tif").readChannelUInt32(0))
        }
        XCTAssertEqual(masks[0], masks[1], "the nuclei do not depend on the tile size")
        let t = try ImageReader(path: truth + "-nuclei.tif").readChannelUInt32(0)
        let score = f1(t, masks[1])
        XCTAssertGreaterThan(score, 0.65, "object F1 at IoU 0.5 against the generator's truth: \(score)")
        let cells = try CSVTable.read(j + "/segment/cells.csv")
        XCTAssertEqual(Set(cells.strings("CellID")!).count, cells.rows.count)
    }

    func testImportedMasks() throws {
        let (j, truth) = try prepared(size: 320)
        let r = try exec("epipe-segment", ["-q", "--mask", "nuclei=" + truth + "-nuclei.tif", "--mask", "cells=" + truth + "-cells.tif", j])
        XCTAssertEqual(r.code, 0, r.err)
        let tc = try ImageReader(path: truth + "-cells.tif").readChannelUInt32(0)
        XCTAssertEqual(try ImageReader(path: j + "/segment/cells.tif").readChannelUInt32(0), tc, "imported cells are kept as they are")
        let ids = Set(tc.filter { $0 != 0 })
        XCTAssertEqual(try CSVTable.read(j + "/segment/cells.csv").rows.count, ids.count)
        let m = try manifest(j, "segment")
        XCTAssertTrue(m.inputs.contains { $0.path.hasSuffix("-cells.tif") }, "the mask is an input with its sha256")
        // A mask of another size is refused with one line.
        let small = tmp + "/small"
        _ = try synth(small, size: 64, channels: 1, seed: 2)
        let bad = try exec("epipe-segment", ["--force", "--mask", small + "-truth/s-cells.tif", j])
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.err.contains("64x64") && bad.err.contains("320x320"), bad.err)
    }
}

/// Whole cells from membrane channels through the binary: better than expansion against the generator's
/// truth cells, independent of the tile size up to a tiny fraction of pixels, unknown channel refused.
final class SegmentMembraneTests: E2ECase {
    /// Object F1 at IoU >= 0.5 (one-to-one) and mean IoU of the matched objects.
    func score(_ truth: [UInt32], _ pred: [UInt32]) -> (f1: Double, meanIoU: Double) {
        var inter: [UInt64: Int] = [:], at: [UInt32: Int] = [:], ap: [UInt32: Int] = [:]
        for i in 0..<truth.count {
            let t = truth[i], p = pred[i]
            if t != 0 { at[t, default: 0] += 1 }
            if p != 0 { ap[p, default: 0] += 1 }
            if t != 0 && p != 0 { inter[UInt64(t) << 32 | UInt64(p), default: 0] += 1 }
        }
        var tp = 0, sum = 0.0
        for (k, n) in inter {
            let t = UInt32(k >> 32), p = UInt32(k & 0xFFFF_FFFF)
            let iou = Double(n) / Double(at[t]! + ap[p]! - n)
            if iou >= 0.5 { tp += 1; sum += iou }
        }
        return (Double(2 * tp) / Double(max(1, at.count + ap.count)), tp > 0 ? sum / Double(tp) : 0)
    }

    func testMembraneCellsBeatExpansion() throws {
        let scans = tmp + "/scans"
        _ = try synth(scans, size: 480, channels: 4, seed: 5)   // DAPI, CD45, PanCK, CD3
        let j = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", scans]).lines[0]
        XCTAssertEqual(try exec("epipe-denoise", ["-q", j]).code, 0)
        let truth = try ImageReader(path: scans + "-truth/s-cells.tif").readChannelUInt32(0)
        var r = try exec("epipe-segment", ["-q", j])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try manifest(j, "segment").metrics["cell_method"]?.stringValue, "expansion")
        let e = score(truth, try ImageReader(path: j + "/segment/cells.tif").readChannelUInt32(0))
        var masks: [[UInt32]] = []
        for tile in ["1024", "256"] {
            r = try exec("epipe-segment", ["-q", "--force", "--tile", tile, "--membrane", "CD45,3", j])
            XCTAssertEqual(r.code, 0, r.err)
            masks.append(try ImageReader(path: j + "/segment/cells.tif").readChannelUInt32(0))
        }
        let m = try manifest(j, "segment")
        XCTAssertEqual(m.metrics["cell_method"]?.stringValue, "membrane-watershed")
        XCTAssertEqual(m.metrics["membrane_channels"], .array(["CD45", "CD3"]))
        let s = score(truth, masks[0])
        // measured (seed 5, 480 px): expansion F1 0.758 / mean IoU 0.745; membrane 0.881 / 0.790; tile 256 = tile 1024
        XCTAssertGreaterThan(s.f1, e.f1 + 0.03, "membrane \(s) vs expansion \(e)")
        XCTAssertGreaterThanOrEqual(s.meanIoU, e.meanIoU, "membrane \(s) vs expansion \(e)")
        XCTAssertGreaterThan(s.f1, 0.8, "\(s)")
        let diff = zip(masks[0], masks[1]).filter { $0 != $1 }.count
        XCTAssertLessThanOrEqual(Double(diff) / Double(truth.count), 1e-3, "tile 256 vs 1024: \(diff) cell pixels differ")
        // An unknown membrane channel: exit 2, one line on stderr naming it.
        let bad = try exec("epipe-segment", ["-q", "--force", "--membrane", "NoSuchMarker", j])
        XCTAssertEqual(bad.code, 2, bad.err)
        XCTAssertEqual(bad.errLines.count, 1, bad.err)
        XCTAssertTrue(bad.err.contains("NoSuchMarker"), bad.err)
    }
}
