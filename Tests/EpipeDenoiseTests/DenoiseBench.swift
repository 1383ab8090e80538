import XCTest
import Foundation
import EpipeDenoise

/// Timing only; runs when EPIPE_BENCH=1 (use `swift test -c release`).
final class DenoiseBench: XCTestCase {
    func testBenchMedianGaussian4096() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let w = 4096, h = 4096
        let img = randomImage(w, h, seed: 1, levels: 65536)
        let recipe = DenoiseRecipe(median3: true, gaussianSigma: 1.0)
        for rep in 0..<3 {
            let t0 = Date()
            let out = img.withUnsafeBufferPointer { Denoise.apply(recipe, plane: $0, width: w, height: h) }
            let t1 = Date()
            var m = [Float](repeating: 0, count: w * h)
            img.withUnsafeBufferPointer { s in m.withUnsafeMutableBufferPointer { Denoise.median3x3(s, width: w, height: h, into: $0) } }
            let t2 = Date()
            var gg = [Float](repeating: 0, count: w * h)
            img.withUnsafeBufferPointer { s in gg.withUnsafeMutableBufferPointer { Denoise.gaussian(s, width: w, height: h, sigma: 1.0, into: $0) } }
            let t3 = Date()
            let st = Denoise.stats(img)
            let t4 = Date()
            print(String(format: "bench 4096^2 rep %d: apply(median+gauss s=1) %.3fs, median %.3fs, gauss %.3fs, stats %.3fs (%g %g)",
                         rep, t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), t4.timeIntervalSince(t3), out[12345], st.p50))
        }
    }
}
