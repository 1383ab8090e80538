import XCTest
import Foundation
import EpipeCore
import EpipeImage
import EpipeSegment

/// epipe-segment with default flags on real fluorescence nuclei with expert masks
/// (Tests/Data/real-nuclei: BBBC039 and DSB-2018, see PROVENANCE.md), object F1 at IoU 0.5 pooled
/// over each set, as `bench/real_nuclei.py` prints it. Floors sit just under what was measured
/// (bench/real_nuclei.py, 2026-11-30: BBBC039 0.910, DSB 0.716 with the diameter given; 0.909 and
/// 0.697 with the diameter estimated by epipe-segment itself).
final class RealNucleiTests: E2ECase {
    static let data = Bin.packageRoot + "/Tests/Data/real-nuclei"

    struct Pooled { var tp = 0, truth = 0, found = 0
        var f1: Double { 2 * Double(tp) / Double(max(1, truth + found)) }
    }

    /// Median equivalent diameter sqrt(4 area / pi) of the mask's objects.
    static func trueDiameter(_ mask: [UInt32]) -> Double {
        var area: [UInt32: Int] = [:]
        for v in mask where v != 0 { area[v, default: 0] += 1 }
        let a = area.values.sorted()
        guard !a.isEmpty else { return 12 }
        let med = a.count % 2 == 1 ? Double(a[a.count / 2]) : Double(a[a.count / 2 - 1] + a[a.count / 2]) / 2
        return (4 * med / Double.pi).squareRoot()
    }

    func score(set: String, diameterGiven: Bool) throws -> Pooled {
        let dir = Self.data + "/" + set
        let root = tmp + "/" + set
        let ing = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--stages", "segment", "-q", dir + "/images"])
        XCTAssertEqual(ing.code, 0, ing.err)
        var pooled = Pooled()
        for job in ing.lines {
            let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: job + "/job.json"))) as! [String: Any]
            let name = (spec["name"] as! String) + ".tif"
            let mr = try ImageReader(path: dir + "/masks/" + name)
            let truth = try mr.readChannelUInt32(0)
            var args = ["--force", "-q"]
            if diameterGiven { args += ["--nucleus-diameter", String(format: "%.2f", Self.trueDiameter(truth))] }
            let r = try exec("epipe-segment", args + [job])
            XCTAssertEqual(r.code, 0, "\(name): \(r.err)")
            let pr = try ImageReader(path: job + "/segment/nuclei.tif")
            let m = Accuracy.match(truth: truth, predicted: try pr.readChannelUInt32(0), width: mr.info.width, height: mr.info.height)
            pooled.tp += m.truePositives
            pooled.truth += m.truePositives + m.falseNegatives
            pooled.found += m.truePositives + m.falsePositives
        }
        print(String(format: "REAL %@ %@: F1 %.3f (found %d, truth %d)", set, diameterGiven ? "diameter given" : "no diameter",
                     pooled.f1, pooled.found, pooled.truth))
        return pooled
    }

    func testBBBC039WithDiameter() throws {
        let p = try score(set: "bbbc039", diameterGiven: true)
        XCTAssertEqual(p.truth, 4167)
        XCTAssertGreaterThanOrEqual(p.f1, 0.90)
    }

    func testDSB2018WithDiameter() throws {
        let p = try score(set: "dsb2018", diameterGiven: true)
        XCTAssertEqual(p.truth, 1589)
        XCTAssertGreaterThanOrEqual(p.f1, 0.69)
    }

    /// Without --nucleus-diameter (these TIFFs carry no pixel size): the stage estimates it per image.
    func testBothSetsWithoutDiameter() throws {
        let b = try score(set: "bbbc039", diameterGiven: false)
        XCTAssertGreaterThanOrEqual(b.f1, 0.88)
        let d = try score(set: "dsb2018", diameterGiven: false)
        XCTAssertGreaterThanOrEqual(d.f1, 0.67)
    }
}
