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
