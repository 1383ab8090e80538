import XCTest
import Foundation
@testable import EpipeSegment

/// Evaluation on exported generated slides, only when EPIPE_EVAL_DIR is set.
/// Layout: DIR/dNN/NAME.f32 (square plane, little-endian Float32) + DIR/dNN/NAME.u32 (truth labels);
/// NN = nucleus diameter. Prints F1 / mean IoU at IoU 0.5 per slide and the time.
final class AccuracyEvalTests: XCTestCase {
    func testEvaluateExportedSlides() throws {
        guard let dir = ProcessInfo.processInfo.environment["EPIPE_EVAL_DIR"] else { throw XCTSkip("EPIPE_EVAL_DIR not set") }
        let fm = FileManager.default
        let extra = ProcessInfo.processInfo.environment["EPIPE_EVAL_PARAMS"] ?? ""
        for sub in try fm.contentsOfDirectory(atPath: dir).sorted() where sub.hasPrefix("d") {
            guard let d = Double(sub.dropFirst()) else { continue }
            for f in try fm.contentsOfDirectory(atPath: dir + "/" + sub).sorted() where f.hasSuffix(".f32") {
                let base = dir + "/" + sub + "/" + String(f.dropLast(4))
                let img = try Data(contentsOf: URL(fileURLWithPath: base + ".f32")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                let tr = try Data(contentsOf: URL(fileURLWithPath: base + ".u32")).withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
                let side = Int(Double(img.count).squareRoot())
                var p = NucleiParams(nucleusDiameter: d)
                for kv in extra.split(separator: ",") {
                    let a = kv.split(separator: "="); guard a.count == 2, let v = Double(a[1]) else { continue }
                    switch a[0] {
                    case "smooth": p.smoothSigma = v
                    case "rel": p.relativeThreshold = v
                    case "low": p.lowThresholdFraction = v
                    case "h": p.intensitySeedH = v
                    case "adaptive": p.thresholdMethod = v > 0 ? .adaptive : .global
                    case "distance": p.split = v > 0 ? .distance : .intensity
                    case "minArea": p.minArea = Int(v)
                    case "dw": p.distanceWeight = v
                    case "passes": p.passes = Int(v)
                    default: break
                    }
                }
                let t0 = Date()
                let seg = Segmenter.nuclei(img, width: side, height: side, params: p)
                let dt = Date().timeIntervalSince(t0)
                let r = Accuracy.match(truth: tr, predicted: seg.labels, width: side, height: side)
                print(String(format: "EVAL %@/%@ D=%.0f n=%d truth=%d F1=%.3f P=%.3f R=%.3f mIoU=%.3f t=%.2fs [%@]", sub, f, d, seg.count,
                             r.truePositives + r.falseNegatives, r.f1, r.precision, r.recall, r.meanIoU, dt, extra))
            }
        }
    }
}
