import XCTest
import Foundation
import Dispatch
@testable import EpipeSegment

/// Peak resident memory (VmHWM) and current RSS in MiB, from /proc/self/status (Linux).
func procMemoryMiB() -> (peak: Double, rss: Double) {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
    func field(_ name: String) -> Double {
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            let num = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return num / 1024
        }
        return 0
    }
    return (field("VmHWM:"), field("VmRSS:"))
}

/// Procedural slide: one disc per 24 px grid cell (jittered centre, radius 4...8), value 1 on
/// 0.1 background; any window can be generated without the whole image.
func proceduralWindow(_ x0: Int, _ y0: Int, _ w: Int, _ h: Int) -> [Float] {
    var out = [Float](repeating: 0.1, count: w * h)
    let g = 24
    out.withUnsafeMutableBufferPointer { o in
        for gy in (y0 / g)...((y0 + h - 1) / g) {
            for gx in (x0 / g)...((x0 + w - 1) / g) {
                var z = UInt64(gy) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(gx) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 31)) &* 0x94D0_49BB_1331_11EB; z ^= z >> 29
                if z % 10 == 0 { continue }   // some empty cells
                let cx = gx * g + 12 + Int(z >> 8 & 7) - 3, cy = gy * g + 12 + Int(z >> 12 & 7) - 3
                let r = 4 + Int(z >> 16 % 5), r2 = r * r
                let ya = max(y0, cy - r), yb = min(y0 + h - 1, cy + r), xa = max(x0, cx - r), xb = min(x0 + w - 1, cx + r)
                if ya > yb || xa > xb { continue }
                for y in ya...yb {
                    for x in xa...xb where (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r2 {
                        o[(y - y0) * w + x - x0] = 1
                    }
                }
            }
        }
    }
    return out
}

final class TilingBench: XCTestCase {
    /// EPIPE_BENCH=1 swift test -c release --filter TilingBench
    /// EPIPE_TILE_W / EPIPE_TILE_H (default 16384), EPIPE_TILE (1024), EPIPE_OVERLAP (64),
    /// EPIPE_QUANT=1 also streams the bands into a CellAccumulator; EPIPE_NUCLEI=1 segments with
    /// the nuclei recipe instead of threshold + connected components; EPIPE_EMPTY=1 measures the
    /// framework alone; EPIPE_WHOLE=1 runs the same recipe on the whole image instead.
    func testBenchTiledLabelling() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let W = Int(env["EPIPE_TILE_W"] ?? "") ?? 16384, H = Int(env["EPIPE_TILE_H"] ?? "") ?? 16384
        let tile = Int(env["EPIPE_TILE"] ?? "") ?? 1024, ov = Int(env["EPIPE_OVERLAP"] ?? "") ?? 64
        let quant = env["EPIPE_QUANT"] == "1"
        let before = procMemoryMiB()
        let nuclei = env["EPIPE_NUCLEI"] == "1"   // full nuclei recipe (slide-wide threshold 0.55)
        let empty = env["EPIPE_EMPTY"] == "1"   // framework overhead only: closure finds nothing
        let tl = TiledLabeller(width: W, height: H, tile: tile, overlap: ov) { p, w, h in
            empty ? [UInt32](repeating: 0, count: w * h)
                : nuclei ? nucleiFixed(p, w, h, NucleiParams(nucleusDiameter: 12), threshold: 0.55)
                : Segmenter.connectedComponents(p.map { $0 > 0.5 }, width: w, height: h).labels
        }
        if env["EPIPE_WHOLE"] == "1" {   // reference: the whole image in memory (same recipe)
            let t0 = DispatchTime.now().uptimeNanoseconds
            let img = proceduralWindow(0, 0, W, H)
            let lab = nuclei ? nucleiFixed(img, W, H, NucleiParams(nucleusDiameter: 12), threshold: 0.55)
                             : Segmenter.connectedComponents(img.map { $0 > 0.5 }, width: W, height: H).labels
            var checksum: UInt64 = 0, n: UInt32 = 0
            for v in lab where v != 0 { checksum = checksum &* 31 &+ UInt64(v); n = max(n, v) }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            print(String(format: "whole %dx%d: %d objects, %.2f s wall; peak RSS %.0f MiB (before %.0f MiB) checksum %llu",
                         W, H, Int(n), dt, procMemoryMiB().peak, before.rss, checksum))
            return
        }
        let acc = CellAccumulator(channels: 1)
        var checksum: UInt64 = 0, fg = 0
        var readTime = 0.0
        let t0 = DispatchTime.now().uptimeNanoseconds
        let clock0 = clock()
        let n = try tl.run(read: { x0, y0, w, h in
            let a = DispatchTime.now().uptimeNanoseconds
            defer { readTime += Double(DispatchTime.now().uptimeNanoseconds - a) / 1e9 }
            return proceduralWindow(x0, y0, w, h)
        }, emit: { y0, rows, lab in
            for v in lab where v != 0 { fg += 1; checksum = checksum &* 31 &+ UInt64(v) }
            if quant {
                let ch = proceduralWindow(0, y0, W, rows)
                lab.withUnsafeBufferPointer { L in ch.withUnsafeBufferPointer { C in
                    acc.add(labels: L, y0: y0, rows: rows, width: W, channels: [C])
                } }
            }
        })
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let cpu = Double(clock() - clock0) / Double(CLOCKS_PER_SEC)
        var tq = 0.0
        if quant {
            let a = DispatchTime.now().uptimeNanoseconds
            let t = acc.table()
            tq = Double(DispatchTime.now().uptimeNanoseconds - a) / 1e9
            XCTAssertEqual(t.count, n)
        }
        let after = procMemoryMiB()
        print(String(format: "tiled %dx%d tile %d overlap %d: %d objects, %d fg px, %.2f s wall (%.2f s CPU, reads %.2f s under lock), table %.2f s; peak RSS %.0f MiB (before %.0f MiB, RSS after %.0f MiB) checksum %llu",
                     W, H, tile, ov, n, fg, dt, cpu, readTime, tq, after.peak, before.rss, after.rss, checksum))
        XCTAssertGreaterThan(n, 0)
    }
}
