import XCTest
import Foundation
import EpipeSynth
@testable import EpipeSegment

/// Nucleus segmentation on generated slides with the failure modes of real images (SynthConfig's realism
/// options, `epipe-synth --realism hard`), one at a time and all on: object F1 at IoU 0.5 of the default
/// recipe and of `split: .distance`, printed as a table. Only the distance recipe has floors: the default
/// recipe is being retuned for exactly these failures (issue 8).
final class RealismAccuracyTests: XCTestCase {
    /// Floor of the default recipe's pooled F1 on every mode: set it here once the retuned defaults land
    /// (nil = printed, not asserted).
    static let defaultRecipeFloor: Double? = nil

    static let size = 320, diameter = 12.0

    /// (name, config change, floor of the distance recipe's pooled F1). Floors 0.03-0.07 under the figures
    /// measured when the options were added (distance: none 0.570, texture 0.539, 8-bit 0.571, dim 0.315,
    /// out-of-focus 0.481, clumps 0.468, uneven 0.447, all 0.154; default recipe: 0.761, 0.373 with 746
    /// objects for 660 nuclei, 0.754, 0.558, 0.706, 0.599, 0.718, all 0.304).
    static let modes: [(String, @Sendable (inout SynthConfig) -> Void, Double)] = [
        ("none", { _ in }, 0.50),
        ("texture", { $0.chromatinTexture = 1 }, 0.47),
        ("8-bit", { $0.eightBit = true }, 0.50),
        ("dim", { $0.brightnessDecades = 1.5 }, 0.27),
        ("out-of-focus", { $0.outOfFocusFraction = 0.25 }, 0.42),
        ("clumps", { $0.clumping = 1 }, 0.42),
        ("uneven", { $0.unevenIllumination = 1 }, 0.39),
        ("all (hard)", { $0.apply(.hard) }, 0.12),
    ]

    /// Pooled over the slides of `seeds`: F1 = 2 TP / (2 TP + FP + FN).
    static let seeds: [UInt64] = [8, 2]

    func testF1PerFailureMode() {
        let n = Self.size, d = Self.diameter
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        var lines = ["REALISM F1 at IoU 0.5, pooled over seeds \(Self.seeds.map(String.init).joined(separator: ", ")), \(n)x\(n) px each, nucleus diameter \(Int(d)) px",
                     pad("mode", 14) + " nuclei   default F1 (objects)   distance F1 (objects)"]
        var results: [(String, Double, Double, Double)] = []
        for (name, change, floor) in Self.modes {
            var truthCount = 0, countA = 0, countB = 0
            var ta = (0, 0, 0), tb = (0, 0, 0)
            for seed in Self.seeds {
                var cfg = SynthConfig(width: n, height: n, channels: 1, seed: seed, nucleusDiameter: d)
                change(&cfg)
                let band = SyntheticSlide(cfg).renderBand(y0: 0, count: n)
                truthCount += Set(band.nuclei).subtracting([0]).count
                let p = NucleiParams(nucleusDiameter: d)
                var pd = p; pd.split = .distance
                let a = Segmenter.nuclei(band.channels[0], width: n, height: n, params: p)
                let b = Segmenter.nuclei(band.channels[0], width: n, height: n, params: pd)
                let ra = Accuracy.match(truth: band.nuclei, predicted: a.labels, width: n, height: n)
                let rb = Accuracy.match(truth: band.nuclei, predicted: b.labels, width: n, height: n)
                countA += a.count; countB += b.count
                ta.0 += ra.truePositives; ta.1 += ra.falsePositives; ta.2 += ra.falseNegatives
                tb.0 += rb.truePositives; tb.1 += rb.falsePositives; tb.2 += rb.falseNegatives
            }
            func f1(_ t: (Int, Int, Int)) -> Double { t.0 == 0 ? 0 : 2 * Double(t.0) / Double(2 * t.0 + t.1 + t.2) }
            let fa = f1(ta), fb = f1(tb)
            lines.append(pad(name, 14) + String(format: " %6d %11.3f (%5d) %14.3f (%5d)", truthCount, fa, countA, fb, countB))
            results.append((name, fa, fb, floor))
        }
        print(lines.joined(separator: "\n"))
        for (name, fa, fb, floor) in results {
            XCTAssertGreaterThan(fb, floor, "distance recipe on \(name)")
            if let f = Self.defaultRecipeFloor { XCTAssertGreaterThan(fa, f, "default recipe on \(name)") }
        }
    }
}
