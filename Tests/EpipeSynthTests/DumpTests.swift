import XCTest
import Foundation
import EpipeSynth

/// Writes preview images when EPIPE_SYNTH_DUMP=<dir> is set (manual inspection only).
final class DumpTests: XCTestCase {
    func testDumpPreview() throws {
        guard let dir = ProcessInfo.processInfo.environment["EPIPE_SYNTH_DUMP"] else { throw XCTSkip("set EPIPE_SYNTH_DUMP") }
        let size = Int(ProcessInfo.processInfo.environment["EPIPE_SYNTH_SIZE"] ?? "1024") ?? 1024
        let chans = Int(ProcessInfo.processInfo.environment["EPIPE_SYNTH_CH"] ?? "9") ?? 9
        var cfg = SynthConfig(width: size, height: size, channels: chans, seed: 7)
        let env = ProcessInfo.processInfo.environment
        if let d = env["EPIPE_SYNTH_DENSITY"], let v = Double(d) { cfg.cellDensity = v }
        if let d = env["EPIPE_SYNTH_PX"], let v = Double(d) { cfg.pixelSizeMicrons = v; cfg.nucleusDiameter = 6 / v }
        if let d = env["EPIPE_SYNTH_SEED"], let v = UInt64(d) { cfg.seed = v }
        if let d = env["EPIPE_SYNTH_REALISM"], let v = SynthRealism(rawValue: d) { cfg.apply(v) }
        let t0 = Date()
        let slide = SyntheticSlide(cfg)
        let t1 = Date()
        let band = slide.renderBand(y0: 0, count: size)
        let t2 = Date()
        print("cells \(slide.cellCount) init \(t1.timeIntervalSince(t0)) render \(t2.timeIntervalSince(t1))")
        func pgm(_ name: String, _ v: [Float], lo: Float, hi: Float) {
            var data = Data("P5\n\(size) \(size)\n255\n".utf8)
            data.append(contentsOf: v.map { UInt8(max(0, min(255, ($0 - lo) / (hi - lo) * 255))) })
            try? data.write(to: URL(fileURLWithPath: "\(dir)/\(name).pgm"))
        }
        for c in 0..<chans {
            let s = band.channels[c].sorted()
            pgm("ch\(c)_\(slide.channelNames[c])", band.channels[c], lo: s[s.count / 100], hi: s[s.count * 998 / 1000])
        }
        pgm("nuclei", band.nuclei.map { $0 == 0 ? 0 : Float(($0 &* 2654435761) % 200 + 55) }, lo: 0, hi: 255)
        pgm("cells", band.cells.map { $0 == 0 ? 0 : Float(($0 &* 2654435761) % 200 + 55) }, lo: 0, hi: 255)
        let cells = slide.cells()
        var types = [Float](repeating: 0, count: size * size)
        var typeOf = [UInt32: Int]()
        for c in cells { typeOf[c.id] = c.type }
        for i in 0..<types.count where band.cells[i] != 0 { types[i] = Float(1 + typeOf[band.cells[i]]!) * 40 }
        pgm("types", types, lo: 0, hi: 255)
        var cnt = [Int](repeating: 0, count: 6)
        for c in cells { cnt[c.type] += 1 }
        let cov = Double(band.cells.filter { $0 != 0 }.count) / Double(size * size)
        print("types \(cnt) coverage \(cov)")
    }
}
