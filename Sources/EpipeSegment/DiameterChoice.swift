import Foundation
import EpipeKernels

/// The nucleus diameter of a run without `--nucleus-diameter`, with what it was chosen from:
/// the slide's own estimate (on `SlideScan.diameterSample`) and the prior of
/// `NucleusDiameter.priorMicrons` at the pixel size, by `NucleusDiameter.choose`.
public struct DiameterChoice: Sendable {
    /// The diameter used, px, to 0.1.
    public var diameter: Double
    /// "estimated", "pixel-size" or "default" (12 px).
    public var source: String
    /// The prior in px (nil without a pixel size).
    public var prior: Double?
    public var estimate: NucleusDiameter.Estimate?
    /// Windows of the nuclear channel the estimate was measured on.
    public var windows: Int
    /// One line for the log: what was used and why.
    public var message: String

    /// Measures the slide (its nuclear channel, the mean of `channels`) and chooses.
    /// `pixelSize` in µm/px.
    public static func measure(open: @escaping @Sendable () throws -> PlaneReader, channels: [Int], width: Int, height: Int,
                               pixelSize: Double?) throws -> DiameterChoice {
        let t0 = Date()
        let prior = pixelSize.map { max(4, min(60, NucleusDiameter.priorMicrons / $0)) }
        let sample = try SlideScan.diameterSample(open: open, channels: channels, width: width, height: height)
        let e = NucleusDiameter.estimate(tiles: sample.map { ($0.plane, $0.w, $0.h) })
        let (d, source) = NucleusDiameter.choose(prior: prior, estimate: e)
        let seconds = Date().timeIntervalSince(t0)
        return DiameterChoice(diameter: (d * 10).rounded() / 10, source: source, prior: prior, estimate: e, windows: sample.count,
                              message: describe(source: source, prior: prior, estimate: e, windows: sample.count, seconds: seconds))
    }

    /// The numbers the manifest records (keys nucleus_diameter_*), beside `source` and the estimate's method.
    public var numbers: [String: Double] {
        var m: [String: Double] = [:]
        if let prior { m["nucleus_diameter_prior_px"] = (prior * 10).rounded() / 10 }
        if let e = estimate {
            m["nucleus_diameter_estimate_px"] = (e.diameter * 10).rounded() / 10
            m["nucleus_diameter_objects"] = Double(e.objects)
            m["nucleus_diameter_confidence"] = (e.confidence * 100).rounded() / 100
        }
        return m
    }

    static func describe(source: String, prior: Double?, estimate e: NucleusDiameter.Estimate?, windows: Int, seconds: Double) -> String {
        func num(_ v: Double, _ digits: Int) -> String { CSV.number(v, digits: digits) }
        let priorText = prior.map { "\(num($0, 1)) px (\(num(NucleusDiameter.priorMicrons, 0)) µm at the pixel size)" }
        let retry = "give --nucleus-diameter if the nuclei look wrong"
        guard let e else { return "nucleus diameter \(priorText ?? "12 px"): no nuclei to measure in the nuclear channel (\(retry))" }
        let found = "\(num(e.diameter, 1)) px estimated (\(e.method), \(e.objects) nuclei in \(windows) window(s) of the nuclear channel, confidence \(num(e.confidence, 2)), \(num(seconds, 1)) s)"
        if source == "estimated" {
            let low = e.confidence < 0.3 ? "; low confidence, \(retry)" : ""
            return "nucleus diameter \(found)\(priorText.map { "; the pixel size's prior was \($0)" } ?? "")\(low)"
        }
        let why = e.confidence < NucleusDiameter.trustConfidence ? "not confident enough" : "too far from it"
        return "nucleus diameter \(priorText ?? "12 px"); the image's own estimate, \(found), is \(why) (\(retry))"
    }
}
