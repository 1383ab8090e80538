import Foundation
import XCTest
@testable import EpipeImage

/// Throughput and peak memory on a larger image. Runs only with EPIPE_BENCH=1 (use -c release).
final class BenchTests: TempDirTestCase {
    func maxRSSMB() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_maxrss) / 1024
    }

    func rssNowMB() -> Double {
        guard let t = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let f = t.split(separator: " ")
        return f.count > 1 ? (Double(f[1]) ?? 0) * 4096 / 1_048_576 : 0
    }

    func testBenchWriteRead() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let w = 12000, h = 9000, nc = 6, band = 256
        let path = p("bench.ome.tif")
        let rss0 = maxRSSMB()
        var t0 = Date()
        let levels = ProcessInfo.processInfo.environment["EPIPE_BENCH_PYR"] == "1" ? ImageWriter.suggestedPyramidLevels(width: w, height: h) : 0
        let wr = try ImageWriter(path: path, width: w, height: h, channelNames: (0..<nc).map { "m\($0)" }, pixelType: .uint16, pyramidLevels: levels)
        // one band of rows per channel, generated outside the timed loop and reused for every band
        var chanRows: [[Float]] = []
        for c in 0..<nc {
            var rows = [Float](repeating: 0, count: band * w)
            for r in 0..<band { for x in 0..<w { rows[r * w + x] = Float((x &* 3 &+ r &* 5 &+ c * 1000) % 4000 + ((x ^ r) & 63)) } }
            chanRows.append(rows)
        }
        t0 = Date()
        var y = 0
        while y < h {
            let n = min(band, h - y)
            for c in 0..<nc {
                try chanRows[c].withUnsafeBufferPointer { try wr.writeRows(channel: c, y0: y, count: n, UnsafeBufferPointer(rebasing: $0[0..<(n * w)])) }
            }
            y += n
        }
        print(String(format: "BENCH rss before finish %.0f MB", rssNowMB()))
        try wr.finish()
        let tw = Date().timeIntervalSince(t0)
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let rss1 = maxRSSMB()
        t0 = Date()
        let r = try ImageReader(path: path)
        var sum = 0.0
        var buf = [Float](repeating: 0, count: band * w)
        y = 0
        while y < h {
            let n = min(band, h - y)
            for c in 0..<nc {
                try buf.withUnsafeMutableBufferPointer { b in
                    try r.readRows(channel: c, y0: y, count: n, into: UnsafeMutableBufferPointer(rebasing: b[0..<(n * w)]))
                }
                sum += Double(buf[0])
            }
            y += n
        }
        let tr = Date().timeIntervalSince(t0)
        print(String(format: "BENCH rss now %.0f MB", rssNowMB()))
        let mpx = Double(w * h * nc) / 1e6
        print(String(format: "BENCH %d x %d x %d uint16 (%.0f Mpx): write %.2fs (%.0f Mpx/s), file %.0f MB, read %.2fs (%.0f Mpx/s); maxRSS before %.0f MB, after write %.0f MB, after read %.0f MB (sum %.0f)",
                     w, h, nc, mpx, tw, mpx / tw, Double(size) / 1e6, tr, mpx / tr, rss0, rss1, maxRSSMB(), sum))
    }
}
