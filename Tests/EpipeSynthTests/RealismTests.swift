import XCTest
import Foundation
import EpipeSynth

/// FNV-1a over a band's channels (as uint16 values), nuclei and cells.
func bandChecksum(_ b: SynthBand) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) func eat(_ v: UInt32) { for k in 0..<4 { h = (h ^ UInt64((v >> (8 * UInt32(k))) & 0xff)) &* 0x100_0000_01b3 } }
    for ch in b.channels { for v in ch { eat(UInt32(v)) } }
    for v in b.nuclei { eat(v) }
    for v in b.cells { eat(v) }
    return h
}

final class RealismTests: XCTestCase {
    /// The realism options are off by default and leave today's output byte-identical.
    func testDefaultOutputUnchanged() {
        let a = SyntheticSlide(SynthConfig(width: 192, height: 160, channels: 3, seed: 5))
        var cfg = SynthConfig(width: 160, height: 144, channels: 2, seed: 9, nucleusDiameter: 9)
        cfg.fieldSize = 64; cfg.defocusedFieldFraction = 0.5; cfg.hotPixelRate = 1e-3
        let b = SyntheticSlide(cfg)
        let ca = bandChecksum(a.renderBand(y0: 0, count: 160)), cb = bandChecksum(b.renderBand(y0: 0, count: 144))
        print("CHECKSUM default \(String(ca, radix: 16)) \(String(cb, radix: 16))")
        XCTAssertEqual(ca, 0x829d_2f56_ee23_3fbe, "default output changed")
        XCTAssertEqual(cb, 0x7f79_24dc_a89e_c0fd, "default output changed (fields, defocus, hot pixels)")
    }
}
