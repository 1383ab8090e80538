import Foundation
import EpipeKernels

/// What one channel's QC accumulates while the bands stream by: histograms of its raw rows and of
/// the result. Fed from `DenoiseStream.run`'s `input` and `emit`, which touch a channel from one
/// thread at a time (so one object per channel, no lock).
public final class ChannelHistograms: @unchecked Sendable {
    public private(set) var before = Histogram16(), after = Histogram16()
    /// The sum of each band added, in order (a part's merge re-adds them in order, so `sum` is
    /// bitwise that of the whole run).
    public private(set) var beforeSums: [Double] = [], afterSums: [Double] = []
    public init() {}
    public init(before: Histogram16, after: Histogram16) { self.before = before; self.after = after }
    public func addBefore(_ band: UnsafeBufferPointer<Float>) { beforeSums.append(before.add(band)) }
    public func addAfter(_ band: UnsafeBufferPointer<Float>) { afterSums.append(after.add(band)) }
}

/// One channel's QC metrics as the manifest records them (`per_channel.<name>`), and its warning.
public struct ChannelMetrics: Encodable, Equatable, Sendable {
    /// 10th percentile (the background) of the input and of the result.
    public var backgroundBefore: Double, backgroundAfter: Double
    public var p99Before: Double, p99After: Double
    /// (p99 + 1) / (p10 + 1) of the input, to 2 decimals.
    public var signalToBackground: Double
    /// Fraction of input pixels at the type's top value (65535).
    public var saturatedFraction: Double
    public var hotPixelsReplaced: Int
    /// `FocusAccumulator.normalized` of the input, to 4 decimals.
    public var focus: Double
    public var blank: Bool
    /// Whether the channel's recipe changes it.
    public var processed: Bool
    public var meanBefore: Double, meanAfter: Double
    /// What a scientist should look at (saturated, empty, low signal); never for a blank channel.
    public var warning: String?

    enum CodingKeys: String, CodingKey {
        case backgroundBefore = "background_before", backgroundAfter = "background_after", p99Before = "p99_before", p99After = "p99_after",
             signalToBackground = "signal_to_background", saturatedFraction = "saturated_fraction", hotPixelsReplaced = "hot_pixels_replaced",
             focus, blank, processed, meanBefore = "mean_before", meanAfter = "mean_after"
    }

    public init(name: String, histograms hist: ChannelHistograms, hotPixels: Int, focus: FocusAccumulator, blank: Bool, recipe: ChannelRecipe) {
        let before = hist.before, after = hist.after
        backgroundBefore = before.percentile(10); backgroundAfter = after.percentile(10)
        p99Before = before.percentile(99); p99After = after.percentile(99)
        let sbr = (p99Before + 1) / (backgroundBefore + 1)
        signalToBackground = (sbr * 100).rounded() / 100
        saturatedFraction = before.saturatedFraction
        hotPixelsReplaced = hotPixels
        self.focus = (focus.normalized * 1e4).rounded() / 1e4
        self.blank = blank; processed = !recipe.isIdentity
        meanBefore = before.mean; meanAfter = after.mean
        let sat = saturatedFraction
        if blank { warning = nil }
        else if sat > 0.05 { warning = "\(name): \(Int((sat * 100).rounded()))% of pixels saturated" }
        else if before.percentile(99.9) <= before.percentile(0.1) { warning = "\(name): channel is empty (flat)" }
        else if sbr < 1.5 { warning = "\(name): low signal-to-background \(String(format: "%.2f", sbr))" }
        else { warning = nil }
    }
}

/// The metrics of a denoise run as the manifest records them.
public struct DenoiseMetrics: Encodable, Sendable {
    public var width: Int, height: Int, channels: Int, bandRows: Int, halo: Int
    /// Per channel "<name>: <what was done>".
    public var recipe: [String]
    public var perChannel: [String: ChannelMetrics]
    /// The channels' warnings, in channel order.
    public var warnings: [String]

    enum CodingKeys: String, CodingKey {
        case width, height, channels, bandRows = "band_rows", halo, recipe, perChannel = "per_channel", warnings
    }

    /// From what `stream.run` measured and the histograms its `input`/`emit` filled.
    public init(stream: DenoiseStream, result: DenoiseStream.Result, histograms: [ChannelHistograms], names: [String], isBlank: [Bool]) {
        width = stream.width; height = stream.height; channels = stream.channels; bandRows = stream.bandRows; halo = stream.halo
        let per = names.indices.map { c in
            ChannelMetrics(name: names[c], histograms: histograms[c], hotPixels: result.hot[c], focus: result.focus[c],
                           blank: isBlank[c], recipe: stream.recipes[c])
        }
        perChannel = [:]
        for c in names.indices { perChannel[names[c]] = per[c] }
        warnings = per.compactMap { $0.warning }
        recipe = names.indices.map { stream.recipes[$0].summary(name: names[$0], blank: isBlank[$0]) }
    }
}

extension ChannelRecipe {
    /// "<name>: hot-pixels 3277, flat-field, rolling-ball 50": what this recipe does, in order
    /// ("blank (kept as is)" for a blank channel, "unchanged" for the identity).
    public func summary(name: String, blank: Bool) -> String {
        "\(name): " + (blank ? "blank (kept as is)" : isIdentity ? "unchanged" :
            [hotPixels.map { "hot-pixels \($0)" }, flatfield ? "flat-field" : nil, blanks ? "blank subtraction" : nil,
             median ? "median 3x3" : nil, rollingBall.map { "rolling-ball \($0)" + (lightBackground ? " light" : "") },
             tophat.map { "top-hat \($0)" }, gaussian > 0 ? "gaussian \(gaussian)" : nil].compactMap { $0 }.joined(separator: ", "))
    }
}
