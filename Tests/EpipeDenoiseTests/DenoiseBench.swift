import XCTest
import Foundation
import EpipeDenoise
import EpipeKernels

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
            img.withUnsafeBufferPointer { s in gg.withUnsafeMutableBufferPointer { Gaussian.blur(s, width: w, height: h, sigma: 1.0, into: $0) } }
            let t3 = Date()
            let st = Denoise.stats(img)
            let t4 = Date()
            print(String(format: "bench 4096^2 rep %d: apply(median+gauss s=1) %.3fs, median %.3fs, gauss %.3fs, stats %.3fs (%g %g)",
                         rep, t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), t4.timeIntervalSince(t3), out[12345], st.p50))
        }
    }
}

/// Plan timings on an 8192 x 8192 plane (EPIPE_BENCH=1, release; EPIPE_BENCH_SIDE to change the size).
final class PlanBench: XCTestCase {
    func testBenchPlanOps() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = Int(ProcessInfo.processInfo.environment["EPIPE_BENCH_SIDE"] ?? "") ?? 8192
        let img = randomImage(n, n, seed: 2, levels: 4096)
        let plans: [(String, FilterPlan)] = [
            ("hotPixels", FilterPlan([.hotPixels(threshold: 500)])),
            ("median3", FilterPlan([.median3])),
            ("gaussian(1)", FilterPlan([.gaussian(sigma: 1)])),
            ("tophat(10)", FilterPlan([.tophat(radius: 10)])),
            ("tophat(50)", FilterPlan([.tophat(radius: 50)])),
            ("rollingBall(10)", FilterPlan([.rollingBall(radius: 10, lightBackground: false)])),
            ("rollingBall(25)", FilterPlan([.rollingBall(radius: 25, lightBackground: false)])),
            ("rollingBall(50)", FilterPlan([.rollingBall(radius: 50, lightBackground: false)])),
            ("rollingBall(150)", FilterPlan([.rollingBall(radius: 150, lightBackground: false)])),
            ("[hot,rb50,median3,gauss1]", FilterPlan([.hotPixels(threshold: 500), .rollingBall(radius: 50, lightBackground: false), .median3, .gaussian(sigma: 1)])),
        ]
        for (name, plan) in plans {
            let t0 = Date()
            let r = plan.apply(plane: img, width: n, height: n)
            let t1 = Date()
            // banded (1024-row bands with halos), as the executable would
            let H = plan.halo
            var t = 0.0
            try img.withUnsafeBufferPointer { p in
                var y = 0
                while y < n {
                    let rows = min(1024, n - y)
                    let a = max(0, y - H), b = min(n, y + rows + H)
                    let band = UnsafeBufferPointer(rebasing: p[(a * n)..<(b * n)])
                    let s = Date()
                    let o = plan.apply(band: band, width: n, haloTop: y - a, rows: rows, haloBottom: b - y - rows, y0: y, imageHeight: n)
                    t += Date().timeIntervalSince(s)
                    if y == 4096 { try XCTSkipIf(o.values[5] != r.values[4096 * n + 5], "band mismatch") }
                    y += rows
                }
            }
            print(String(format: "bench %dx%d %@: whole %.2fs, 1024-row bands %.2fs (hot %d)", n, n, name, t1.timeIntervalSince(t0), t, r.hotPixels))
        }
        var f = FocusAccumulator(width: n, height: n)
        let t0 = Date()
        img.withUnsafeBufferPointer { f.add(band: $0, haloTop: 0, rows: n, haloBottom: 0, y0: 0) }
        print(String(format: "bench focus %.2fs", Date().timeIntervalSince(t0)))
        var bp = BlockPercentiles(width: n, height: n)
        let t2 = Date()
        img.withUnsafeBufferPointer { bp.add(rows: $0, y0: 0, count: n) }
        print(String(format: "bench block percentiles %.2fs", Date().timeIntervalSince(t2)))
    }
}

/// The target recipe [median3, tophat(50), gaussian(2)] op by op (EPIPE_BENCH=1, release).
final class PlanBenchRecipe: XCTestCase {
    func testBenchRecipe() throws {
        guard ProcessInfo.processInfo.environment["EPIPE_BENCH"] == "1" else { throw XCTSkip("set EPIPE_BENCH=1") }
        let n = Int(ProcessInfo.processInfo.environment["EPIPE_BENCH_SIDE"] ?? "") ?? 8192
        let reps = Int(ProcessInfo.processInfo.environment["EPIPE_BENCH_REPS"] ?? "") ?? 2
        let img = randomImage(n, n, seed: 2, levels: 4096)
        let plans: [(String, FilterPlan)] = [
            ("median3", FilterPlan([.median3])),
            ("tophat(50)", FilterPlan([.tophat(radius: 50)])),
            ("gaussian(2)", FilterPlan([.gaussian(sigma: 2)])),
            ("[median3,tophat50,gauss2]", FilterPlan([.median3, .tophat(radius: 50), .gaussian(sigma: 2)])),
        ]
        for (name, plan) in plans {
            for _ in 0..<reps {
                let c0 = cpuSeconds(), t0 = Date()
                let r = plan.apply(plane: img, width: n, height: n)
                print(String(format: "recipe-bench %dx%d %@: %.3fs wall, %.3fs cpu (%g)", n, n, name, Date().timeIntervalSince(t0),
                             cpuSeconds() - c0, r.values[n * n / 2 + 7]))
            }
        }
    }
}

/// Process CPU time (user + system, all threads).
func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6
}
