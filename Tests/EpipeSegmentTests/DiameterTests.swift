import XCTest
import Foundation
import EpipeImage
import EpipeSynth
@testable import EpipeSegment

/// `NucleusDiameter.estimate` against the truth: the median over nuclei of the equivalent
/// diameter sqrt(4 area / pi) of a label image.
final class DiameterTests: XCTestCase {
    static func truthDiameter(_ labels: [UInt32]) -> Double {
        var area: [UInt32: Int] = [:]
        for l in labels where l != 0 { area[l, default: 0] += 1 }
        return NucleusDiameter.median(area.values.map { (4 * Double($0) / Double.pi).squareRoot() })
    }

    static func synth(_ d: Double, side: Int = 768, seed: UInt64 = 3) -> (plane: [Float], truth: Double) {
        let slide = SyntheticSlide(SynthConfig(width: side, height: side, channels: 1, seed: seed, nucleusDiameter: d))
        let b = slide.renderBand(y0: 0, count: side)
        return (b.channels[0], truthDiameter(b.nuclei))
    }

    /// Generated slides (touching, elongated, textured nuclei, uneven light, noise) at D = 8...24.
    func testGeneratedSlides() {
        for d in [8.0, 12, 16, 24] {
            let s = Self.synth(d)
            let t0 = Date()
            guard let e = NucleusDiameter.estimate(s.plane, width: 768, height: 768) else { return XCTFail("D=\(d): no estimate") }
            let r = e.diameter / s.truth
            print(String(format: "DIAM synth D=%.0f truth %.2f est %.2f (%@, blob %.2f, n %d, conf %.2f) ratio %.3f %.2fs",
                         d, s.truth, e.diameter, e.method, e.blobDiameter, e.objects, e.confidence, r, Date().timeIntervalSince(t0)))
            XCTAssertEqual(r, 1, accuracy: 0.15, "D=\(d)")
        }
    }

    /// The same slide as 8-bit data (values 0...255) and scaled by 1/65535 (float in [0, 1]): the
    /// normalisation makes the estimate nearly independent of the data's range.
    func testEightBitAndFloatRanges() throws {
        let s = Self.synth(16)
        var mx: Float = 0
        for v in s.plane { mx = max(mx, v) }
        let eight = s.plane.map { ($0 / mx * 255).rounded() }
        let unit = s.plane.map { $0 / 65535 }
        let e16 = try XCTUnwrap(NucleusDiameter.estimate(s.plane, width: 768, height: 768))
        let e8 = try XCTUnwrap(NucleusDiameter.estimate(eight, width: 768, height: 768))
        let ef = try XCTUnwrap(NucleusDiameter.estimate(unit, width: 768, height: 768))
        XCTAssertEqual(e8.diameter / s.truth, 1, accuracy: 0.15)
        XCTAssertEqual(e8.diameter / e16.diameter, 1, accuracy: 0.05)
        XCTAssertEqual(ef.diameter / e16.diameter, 1, accuracy: 0.01)
    }

    /// Which diameter a run without --nucleus-diameter uses: without a pixel size the estimate (else
    /// 12 px); with one, the estimate only when confident (>= 0.5) and within 0.5-2x the prior.
    func testChoose() {
        func est(_ d: Double, _ c: Double) -> NucleusDiameter.Estimate {
            .init(diameter: d, method: "log+mask", blobDiameter: d, objects: 100, spread: 1 - c, confidence: c)
        }
        XCTAssertTrue(NucleusDiameter.choose(prior: nil, estimate: nil) == (12, "default"))
        XCTAssertTrue(NucleusDiameter.choose(prior: nil, estimate: est(9, 0.1)) == (9, "estimated"))
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: nil) == (16, "pixel-size"))
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: est(10.5, 0.57)) == (10.5, "estimated"))
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: est(10, 0.32)) == (16, "pixel-size"), "not confident")
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: est(7.9, 0.9)) == (16, "pixel-size"), "below half the prior")
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: est(32.1, 0.9)) == (16, "pixel-size"), "above twice the prior")
        XCTAssertTrue(NucleusDiameter.choose(prior: 16, estimate: est(32, 0.5)) == (32, "estimated"))
        XCTAssertEqual(NucleusDiameter.priorMicrons, 8)
    }

    /// Flat or empty planes have no nuclei; the estimate is deterministic.
    func testDegenerateAndDeterministic() {
        XCTAssertNil(NucleusDiameter.estimate([Float](repeating: 7, count: 64 * 64), width: 64, height: 64))
        XCTAssertNil(NucleusDiameter.estimate([], width: 0, height: 0))
        let s = Self.synth(12, side: 256)
        XCTAssertEqual(NucleusDiameter.estimate(s.plane, width: 256, height: 256), NucleusDiameter.estimate(s.plane, width: 256, height: 256))
    }

    /// Several windows pool their nuclei into one median.
    func testPooledTiles() throws {
        let a = Self.synth(12, side: 512, seed: 5), b = Self.synth(12, side: 512, seed: 6)
        let e = try XCTUnwrap(NucleusDiameter.estimate(tiles: [(a.plane, 512, 512), (b.plane, 512, 512)]))
        XCTAssertEqual(e.diameter / ((a.truth + b.truth) / 2), 1, accuracy: 0.15)
    }

    static func readPlane(_ path: String) throws -> (plane: [Float], w: Int, h: Int) {
        let r = try ImageReader(path: path)
        return (try r.readRows(channel: 0, y0: 0, count: r.info.height), r.info.width, r.info.height)
    }

    /// The six images the unit test measures (the rest of Tests/Data/real-nuclei runs with EPIPE_DIAM_EVAL).
    static let sample: Set<String> = ["IXMtest_A18_s1.tif", "IXMtest_G16_s6.tif", "IXMtest_N21_s1.tif",
                                      "0ed3555a4bd48046.tif", "432f367a4c5b5674.tif", "8922a6ac8fd0258e.tif"]

    static func realRatios(_ root: String, sets: [String], only: Set<String>? = nil) throws -> [(set: String, name: String, truth: Double, est: NucleusDiameter.Estimate?, seconds: Double)] {
        var out: [(String, String, Double, NucleusDiameter.Estimate?, Double)] = []
        for set in sets {
            let dir = root + "/" + set
            for f in try FileManager.default.contentsOfDirectory(atPath: dir + "/images").sorted()
            where f.hasSuffix(".tif") && (only?.contains(f) ?? true) {
                let img = try readPlane(dir + "/images/" + f)
                let m = try ImageReader(path: dir + "/masks/" + f)
                let truth = truthDiameter(try m.readRowsUInt32(channel: 0, y0: 0, count: m.info.height))
                let t0 = Date()
                let e = NucleusDiameter.estimate(img.plane, width: img.w, height: img.h)
                out.append((set, f, truth, e, Date().timeIntervalSince(t0)))
            }
        }
        return out
    }

    /// Three fields of BBBC039 and three images of DSB-2018 (Tests/Data/real-nuclei/PROVENANCE.md).
    /// Over the 66 shared images, 65 are within +-20 % (the target); these six measured 0.86 ... 0.99.
    func testRealImages() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Data/real-nuclei").path
        let rows = try Self.realRatios(root, sets: ["bbbc039", "dsb2018"], only: Self.sample)
        XCTAssertEqual(rows.count, 6)
        for r in rows {
            guard let e = r.est else { XCTFail("\(r.name): no estimate"); continue }
            print(String(format: "DIAM %@/%@ truth %.1f est %.1f (%@) ratio %.3f", r.set, r.name, r.truth, e.diameter, e.method, e.diameter / r.truth))
            XCTAssertEqual(e.diameter / r.truth, 1, accuracy: 0.2, "\(r.set)/\(r.name)")
        }
    }

    /// The whole shared sets, only when EPIPE_DIAM_EVAL names the real-nuclei folder: per image and per set.
    func testEvaluateRealSets() throws {
        guard let root = ProcessInfo.processInfo.environment["EPIPE_DIAM_EVAL"] else { throw XCTSkip("EPIPE_DIAM_EVAL not set") }
        let rows = try Self.realRatios(root, sets: ["bbbc039", "dsb2018"])
        for set in ["bbbc039", "dsb2018"] {
            let rs = rows.filter { $0.set == set }
            var ratios: [Double] = []
            for r in rs {
                let ratio = (r.est?.diameter ?? 0) / r.truth
                ratios.append(ratio)
                print(String(format: "DIAMEVAL %@/%@ truth %.1f est %.1f blob %.1f %@ n %d conf %.2f ratio %.3f %.3fs", set, r.name, r.truth,
                             r.est?.diameter ?? 0, r.est?.blobDiameter ?? 0, r.est?.method ?? "-", r.est?.objects ?? 0, r.est?.confidence ?? 0, ratio, r.seconds))
            }
            let worst = ratios.max { abs(log($0)) < abs(log($1)) } ?? 0
            print(String(format: "DIAMSET %@ images %d median ratio %.3f worst %.3f within20 %d total %.2fs", set, ratios.count,
                         NucleusDiameter.median(ratios), worst, ratios.filter { abs($0 - 1) <= 0.2 }.count, rs.reduce(0) { $0 + $1.seconds }))
        }
    }
}
