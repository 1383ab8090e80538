import XCTest
import EpipeTestSupport
import Foundation
import EpipeDenoise
import EpipeKernels

/// Cross-checks against scikit-image (skipped without the Python venv: EPIPE_PYTHON or /tmp/epipe-peers/bin/python).
final class SkimageCrossCheck: XCTestCase {
    func python() throws -> String {
        if let p = ProcessInfo.processInfo.environment["EPIPE_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        let d = "/tmp/epipe-peers/bin/python"
        if FileManager.default.isExecutableFile(atPath: d) { return d }
        throw XCTSkip("no Python with scikit-image (set EPIPE_PYTHON)")
    }

    /// Writes `img` as raw float32, runs `script` (argv: in, out, w, h), reads `count` float32s back.
    func runPython(_ script: String, _ img: [Float], _ w: Int, _ h: Int, outCount: Int) throws -> [Float] {
        let py = try python()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("epipe-sk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inURL = dir.appendingPathComponent("in.f32"), outURL = dir.appendingPathComponent("out.f32"), sURL = dir.appendingPathComponent("s.py")
        try img.withUnsafeBytes { try Data($0).write(to: inURL) }
        try script.write(to: sURL, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = [sURL.path, inURL.path, outURL.path, "\(w)", "\(h)"]
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("python failed (scikit-image missing?)") }
        let d = try Data(contentsOf: outURL)
        return d.withUnsafeBytes { Array($0.bindMemory(to: Float.self).prefix(outCount)) }
    }

    func testTophatMatchesSkimageDisk() throws {
        let w = 150, h = 120
        let img = syntheticTissue(w, h, seed: 31, hot: 5)
        for r in [3, 8, 15] {
            let script = """
            import sys, numpy as np
            from skimage.morphology import white_tophat, disk
            a = np.fromfile(sys.argv[1], dtype=np.float32).reshape(int(sys.argv[4]), int(sys.argv[3]))
            r = \(r)
            p = np.pad(a, 2 * r, mode='edge')
            t1 = white_tophat(p, disk(r))[2*r:-2*r, 2*r:-2*r]
            t2 = white_tophat(a, disk(r))
            np.concatenate([t1.ravel(), t2.ravel()]).astype(np.float32).tofile(sys.argv[2])
            """
            let sk = try runPython(script, img, w, h, outCount: 2 * w * h)
            let ours = FilterPlan([.tophat(radius: r)]).apply(plane: img, width: w, height: h).values
            let padded = Array(sk[0..<(w * h)]), plain = Array(sk[(w * h)...])
            XCTAssertEqual(ours, padded, "r=\(r): skimage white_tophat(edge-padded, disk(r)) must match exactly")
            var differ = 0, interiorDiffer = 0
            for y in 0..<h { for x in 0..<w where ours[y * w + x] != plain[y * w + x] {
                differ += 1
                if x >= 2 * r && x < w - 2 * r && y >= 2 * r && y < h - 2 * r { interiorDiffer += 1 }
            } }
            print("skimage top-hat r=\(r): exact vs edge-padded skimage; vs skimage default borders \(differ) of \(w * h) pixels differ (interior \(interiorDiffer))")
            XCTAssertEqual(interiorDiffer, 0)
        }
    }

    func testRollingBallVsSkimage() throws {
        // gentle gradient: both agree with the truth and with each other within 2%
        try rollingBallCase(slopeX: 0.2, slopeY: 0.1, assertAgreement: true)
        // steep gradient: skimage's background under the spots is biased (reported, not asserted)
        try rollingBallCase(slopeX: 0.8, slopeY: 0.4, assertAgreement: false)
    }

    func rollingBallCase(slopeX: Float, slopeY: Float, assertAgreement: Bool) throws {
        // flat background + gradient + spots of known intensity (+ mild noise)
        let w = 256, h = 256, amp: Float = 1000
        var g = TestRNG(s: 77)
        var img = [Float](repeating: 0, count: w * h), truth = img
        var spots: [(Int, Int)] = []
        for sy in stride(from: 24, to: h - 10, by: 40) { for sx in stride(from: 24, to: w - 10, by: 40) { spots.append((sx, sy)) } }
        for y in 0..<h { for x in 0..<w {
            var s: Float = 0
            for (sx, sy) in spots { let d2 = Float((x - sx) * (x - sx) + (y - sy) * (y - sy)); if d2 < 100 { s += amp * exp(-d2 / 8) } }
            truth[y * w + x] = s
            let bg = 300 + slopeX * Float(x) + slopeY * Float(y)
            img[y * w + x] = (bg + s + Float(Double.random(in: -3...3, using: &g))).rounded()
        } }
        let radius = 50.0
        let script = """
        import sys, numpy as np
        from skimage.restoration import rolling_ball
        a = np.fromfile(sys.argv[1], dtype=np.float32).reshape(int(sys.argv[4]), int(sys.argv[3])).astype(np.float64)
        bg = rolling_ball(a, radius=\(radius))
        np.clip(a - bg, 0, None).astype(np.float32).tofile(sys.argv[2])
        """
        let sk = try runPython(script, img, w, h, outCount: w * h)
        let ours = FilterPlan([.rollingBall(radius: radius, lightBackground: false)]).apply(plane: img, width: w, height: h).values
        func spotStats(_ a: [Float]) -> (mean: Double, worst: Double) {
            var m = 0.0, worst = 0.0
            for (sx, sy) in spots {
                var s = 0.0, t = 0.0
                for y in (sy - 3)...(sy + 3) { for x in (sx - 3)...(sx + 3) { s += Double(a[y * w + x]); t += Double(truth[y * w + x]) } }
                let rel = s / t - 1
                m += rel; worst = max(worst, abs(rel))
            }
            return (m / Double(spots.count), worst)
        }
        func bgStats(_ a: [Float]) -> (mean: Double, sd: Double) {
            var n = 0.0, s = 0.0, s2 = 0.0
            for i in 0..<(w * h) where truth[i] < 0.5 { n += 1; s += Double(a[i]); s2 += Double(a[i]) * Double(a[i]) }
            return (s / n, (s2 / n - (s / n) * (s / n)).squareRoot())
        }
        let o = spotStats(ours), k = spotStats(sk), ob = bgStats(ours), kb = bgStats(sk), ib = bgStats(img)
        print("gradient \(slopeX)/px x, \(slopeY)/px y:")
        print(String(format: "rolling ball r=50 vs truth: epipe spot sums mean err %+.2f%%, worst %.2f%%; skimage mean %+.2f%%, worst %.2f%%", o.mean * 100, o.worst * 100, k.mean * 100, k.worst * 100))
        print(String(format: "background (truth 0): input mean %.1f sd %.1f; epipe mean %.2f sd %.2f; skimage mean %.2f sd %.2f", ib.mean, ib.sd, ob.mean, ob.sd, kb.mean, kb.sd))
        XCTAssertLessThan(o.worst, 0.02)
        XCTAssertLessThan(ob.mean, 10)
        XCTAssertLessThan(ob.sd, 5)
        // spot-by-spot agreement with skimage
        var worstAgree = 0.0
        for (sx, sy) in spots {
            var a = 0.0, b = 0.0
            for y in (sy - 3)...(sy + 3) { for x in (sx - 3)...(sx + 3) { a += Double(ours[y * w + x]); b += Double(sk[y * w + x]) } }
            worstAgree = max(worstAgree, abs(a / b - 1))
        }
        print(String(format: "epipe vs skimage spot sums: worst relative difference %.2f%%", worstAgree * 100))
        if assertAgreement {
            XCTAssertLessThan(worstAgree, 0.02)
            XCTAssertLessThan(k.worst, 0.02)
        }
    }
}
