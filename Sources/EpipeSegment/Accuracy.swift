import Foundation

/// Object-level agreement of a predicted label image with a ground-truth label image.
public struct MatchResult: Sendable, Equatable, Codable {
    /// Matched pairs (one truth object, one predicted object, IoU >= threshold).
    public var truePositives: Int
    /// Predicted objects without a match.
    public var falsePositives: Int
    /// Truth objects without a match.
    public var falseNegatives: Int
    /// TP / (TP + FP) (1 when nothing was predicted).
    public var precision: Double
    /// TP / (TP + FN) (1 when the truth is empty).
    public var recall: Double
    /// 2 TP / (2 TP + FP + FN) (1 when both are empty).
    public var f1: Double
    /// Mean IoU over the matched pairs (0 when there are none).
    public var meanIoU: Double

    public init(truePositives: Int, falsePositives: Int, falseNegatives: Int, precision: Double, recall: Double, f1: Double, meanIoU: Double) {
        self.truePositives = truePositives
        self.falsePositives = falsePositives
        self.falseNegatives = falseNegatives
        self.precision = precision
        self.recall = recall
        self.f1 = f1
        self.meanIoU = meanIoU
    }
}

public enum Accuracy {
    /// Object matching of `predicted` against `truth` (label images, 0 = background; label
    /// values need not be contiguous). The IoU of every overlapping (truth, predicted) pair comes
    /// from a sparse overlap table (one count per pixel where both are non-zero). Pairs with
    /// IoU >= `iouThreshold` are matched one-to-one, greedily by decreasing IoU (ties: lower
    /// truth label, then lower predicted label). For thresholds > 0.5 a qualifying pair is
    /// necessarily unique for both of its objects, so greedy matching is then optimal.
    public static func match(truth: [UInt32], predicted: [UInt32], width: Int, height: Int, iouThreshold: Double = 0.5) -> MatchResult {
        let n = width * height
        precondition(truth.count == n && predicted.count == n, "label images must be width x height")
        var areaT: [UInt32: Int] = [:], areaP: [UInt32: Int] = [:]
        var overlap: [UInt64: Int] = [:]
        truth.withUnsafeBufferPointer { T in
            predicted.withUnsafeBufferPointer { P in
                // run-length accumulation: neighbouring pixels usually share labels
                var lastT: UInt32 = 0, lastP: UInt32 = 0, runT = 0, runP = 0, runTP = 0
                var lastKey: UInt64 = 0
                func flushT() { if lastT != 0 && runT > 0 { areaT[lastT, default: 0] += runT }; runT = 0 }
                func flushP() { if lastP != 0 && runP > 0 { areaP[lastP, default: 0] += runP }; runP = 0 }
                func flushTP() { if runTP > 0 { overlap[lastKey, default: 0] += runTP }; runTP = 0 }
                for i in 0..<n {
                    let t = T[i], p = P[i]
                    if t != lastT { flushT(); lastT = t }
                    runT += 1
                    if p != lastP { flushP(); lastP = p }
                    runP += 1
                    if t != 0 && p != 0 {
                        let key = UInt64(t) << 32 | UInt64(p)
                        if key != lastKey { flushTP(); lastKey = key }
                        runTP += 1
                    }
                }
                flushT(); flushP(); flushTP()
            }
        }
        struct Pair { var iou: Double; var t: UInt32; var p: UInt32 }
        var pairs: [Pair] = []
        for (key, inter) in overlap {
            let t = UInt32(key >> 32), p = UInt32(key & 0xffff_ffff)
            let u = areaT[t]! + areaP[p]! - inter
            let v = Double(inter) / Double(u)
            if v >= iouThreshold && v > 0 { pairs.append(Pair(iou: v, t: t, p: p)) }
        }
        pairs.sort { a, b in a.iou != b.iou ? a.iou > b.iou : (a.t != b.t ? a.t < b.t : a.p < b.p) }
        var usedT = Set<UInt32>(), usedP = Set<UInt32>()
        var tp = 0, sumIoU = 0.0
        for pr in pairs where !usedT.contains(pr.t) && !usedP.contains(pr.p) {
            usedT.insert(pr.t); usedP.insert(pr.p)
            tp += 1; sumIoU += pr.iou
        }
        let fp = areaP.count - tp, fn = areaT.count - tp
        let precision = areaP.isEmpty ? 1 : Double(tp) / Double(areaP.count)
        let recall = areaT.isEmpty ? 1 : Double(tp) / Double(areaT.count)
        let f1 = (areaP.isEmpty && areaT.isEmpty) ? 1 : Double(2 * tp) / Double(2 * tp + fp + fn)
        return MatchResult(truePositives: tp, falsePositives: fp, falseNegatives: fn, precision: precision, recall: recall, f1: f1,
                           meanIoU: tp > 0 ? sumIoU / Double(tp) : 0)
    }
}
