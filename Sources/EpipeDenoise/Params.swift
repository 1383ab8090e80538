import Foundation
import EpipeKernels

/// A setting as a user types it: a number, a word (auto, off, a path) or true/false. Encodes as that JSON
/// value, so a params record reads like the job.json it came from.
public enum Setting: Codable, Sendable, Equatable, CustomStringConvertible,
                     ExpressibleByStringLiteral, ExpressibleByFloatLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    case number(Double), word(String), flag(Bool)

    public init(stringLiteral s: String) { self = .word(s) }
    public init(floatLiteral d: Double) { self = .number(d) }
    public init(integerLiteral i: Int) { self = .number(Double(i)) }
    public init(booleanLiteral b: Bool) { self = .flag(b) }
    /// A command-line value: a number when it reads as one, else a word.
    public init(typed s: String) { self = Double(s).map { .number($0) } ?? .word(s) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { self = .flag(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else { self = .word(try c.decode(String.self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self { case .number(let d): try c.encode(d); case .word(let s): try c.encode(s); case .flag(let b): try c.encode(b) }
    }

    public var string: String {
        switch self {
        case .word(let s): return s
        case .number(let d): return d == d.rounded() && abs(d) < 9e18 ? String(Int64(d)) : String(d)
        case .flag(let b): return String(b)
        }
    }
    public var number: Double? {
        switch self { case .number(let d): return d; case .word(let s): return Double(s); case .flag(let b): return b ? 1 : 0 }
    }
    /// The number toward zero; nil when it has no Int (NaN, infinite, 1e300: refused as the key's
    /// "expected ..." by whoever reads it, not a trap).
    public var int: Int? { number.flatMap { Int(exactly: $0.rounded(.towardZero)) } }
    public var bool: Bool? {
        switch self {
        case .flag(let b): return b
        case .number(let d): return d != 0
        case .word(let s):
            let l = s.lowercased()
            return ["true", "yes", "1", "on"].contains(l) ? true : (["false", "no", "0", "off"].contains(l) ? false : nil)
        }
    }
    /// off, false, none, 0 or no.
    public var isOff: Bool { ["off", "false", "none", "0", "no"].contains(string.lowercased()) }
    public var description: String {
        switch self { case .word(let s): return "\"\(s)\""; default: return string }
    }
}

/// A denoise parameter a user got wrong: one line saying which and what was expected.
public struct DenoiseParamError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// epipe-denoise's parameters: defaults, overlaid by job.json `params.denoise`, overlaid by flags, validated
/// once; the manifest records this struct. Keys are the flags' names.
public struct DenoiseParams: Codable, Sendable, Equatable {
    /// The default blank-channel name pattern (the one definition; EpipeStage's `MarkerTable` takes it).
    public static let defaultBlankPattern = "^(blank|bg[0-9_]*$|background|empty|autofluor|af[0-9]*$)"

    public var hotPixels: Setting = "auto"
    public var median: Setting = false
    public var rollingBall: Setting = 50
    public var lightBackground: Setting = false
    public var tophat: Setting = "off"
    public var gaussian: Setting = 0
    public var blanks: Setting = "auto"
    public var blankPattern: Setting = .word(DenoiseParams.defaultBlankPattern)
    public var flatfield: Setting = "off"
    public var darkfield: Setting = 0
    public var channels: Setting = "all"
    public var float: Setting = false
    public var band: Setting = "auto"
    public var perChannel: [String: [String: Setting]] = [:]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case hotPixels = "hot-pixels", median, rollingBall = "rolling-ball", lightBackground = "light-background", tophat, gaussian,
             blanks, blankPattern = "blank-pattern", flatfield, darkfield, channels, float, band, perChannel = "per-channel"
    }
    public static var keys: [String] { CodingKeys.allCases.map { $0.rawValue }.sorted() }
    /// The settings `recipe(for:)` reads per channel.
    public static let perChannelKeys: [String] = ["blanks", "flatfield", "gaussian", "hot-pixels", "light-background", "median", "rolling-ball", "tophat"]

    public init() {}

    /// The defaults overlaid by each layer in turn (job.json params, then flags), each a JSON object of
    /// settings; an unknown key or per-channel key is an error, not ignored. Then validated.
    /// `perChannel` = the last layer's per-channel settings that gives any (it replaces, not merges).
    public static func merged(_ layers: [[String: Setting?]], perChannel: [String: [String: Setting]] = [:], explicitTophat: Bool = false) throws -> DenoiseParams {
        var p = DenoiseParams()
        for layer in layers {
            for (k, v) in layer {
                guard let v else { continue }
                guard let key = CodingKeys(rawValue: k), key != .perChannel else { throw DenoiseParamError("denoise param \(k): unknown; known: \(keys.joined(separator: ", "))") }
                p[key] = v
            }
        }
        p.perChannel = perChannel
        for (ch, o) in p.perChannel.sorted(by: { $0.key < $1.key }) {
            if let k = o.keys.sorted().first(where: { !perChannelKeys.contains($0) }) {
                throw DenoiseParamError("denoise param per-channel \(ch): \(k) is not a per-channel setting; per channel: \(perChannelKeys.joined(separator: ", "))")
            }
        }
        // A background method given explicitly replaces the default one.
        if explicitTophat { p.rollingBall = "off" }
        try p.validate()
        return p
    }

    /// The stage's params from job.json's `params.denoise` (`job`, its "per-channel" object as
    /// `jobPerChannel`) and the flags given (`flags`, `--channel-param` as `perChannelFlags`) over the
    /// defaults. Per-channel flags replace job.json's per-channel settings as a whole; a top-hat given
    /// as a flag, with no rolling ball given anywhere, replaces the default rolling ball.
    public static func merged(job: [String: Setting?], jobPerChannel: [String: [String: Setting]],
                              flags: [String: Setting?], perChannelFlags: [String: [String: Setting]]) throws -> DenoiseParams {
        let tophatOnly = (flags["tophat"] ?? nil) != nil && (flags["rolling-ball"] ?? nil) == nil && !job.keys.contains("rolling-ball")
        return try merged([job, flags], perChannel: perChannelFlags.isEmpty ? jobPerChannel : perChannelFlags, explicitTophat: tophatOnly)
    }

    /// `--channel-param NAME:key=value` flags (each may repeat) as per-channel settings.
    public static func perChannel(flags: [String]) throws -> [String: [String: Setting]] {
        var per: [String: [String: Setting]] = [:]
        for cp in flags {
            guard let colon = cp.firstIndex(of: ":"), let eq = cp[colon...].firstIndex(of: "=") else {
                throw DenoiseParamError("--channel-param \(cp): expected NAME:key=value, e.g. DAPI:rolling-ball=off")
            }
            per[String(cp[..<colon]), default: [:]][String(cp[cp.index(after: colon)..<eq])] = Setting(typed: String(cp[cp.index(after: eq)...]))
        }
        return per
    }

    subscript(key: CodingKeys) -> Setting {
        get {
            switch key {
            case .hotPixels: return hotPixels; case .median: return median; case .rollingBall: return rollingBall
            case .lightBackground: return lightBackground; case .tophat: return tophat; case .gaussian: return gaussian
            case .blanks: return blanks; case .blankPattern: return blankPattern; case .flatfield: return flatfield
            case .darkfield: return darkfield; case .channels: return channels; case .float: return float; case .band: return band
            case .perChannel: return "per-channel"
            }
        }
        set {
            switch key {
            case .hotPixels: hotPixels = newValue; case .median: median = newValue; case .rollingBall: rollingBall = newValue
            case .lightBackground: lightBackground = newValue; case .tophat: tophat = newValue; case .gaussian: gaussian = newValue
            case .blanks: blanks = newValue; case .blankPattern: blankPattern = newValue; case .flatfield: flatfield = newValue
            case .darkfield: darkfield = newValue; case .channels: channels = newValue; case .float: float = newValue; case .band: band = newValue
            case .perChannel: break
            }
        }
    }

    /// Everything a user can type, checked once (per-channel values when the channel's recipe is resolved).
    public func validate() throws {
        _ = try recipe(for: "", autoHotPixels: 3277, hasBlanks: false)
        if band.string != "auto", (band.int ?? 0) < 16 { throw DenoiseParamError("denoise param band: expected auto or >= 16 rows, got \(band)") }
        guard float.bool != nil else { throw DenoiseParamError("denoise param float: expected true or false, got \(float)") }
    }

    public var writesFloat: Bool { float.bool ?? false }
    /// Rows per band, nil = auto.
    public var bandRows: Int? { band.int.flatMap { $0 > 0 ? $0 : nil } }
    /// The channels to process, nil = all.
    public var channelList: [String]? {
        channels.string == "all" ? nil : channels.string.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
    }
    /// Blank subtraction asked for explicitly (true), not auto.
    public var blanksRequired: Bool { blanks.bool ?? false }
    public var flatfieldFile: String? {
        let f = flatfield.string
        return ["off", "auto", "false", "none"].contains(f.lowercased()) ? nil : f
    }
    public var darkfieldConstant: Float? { darkfield.number.map { Float($0) } }
    public var darkfieldFile: String? {
        guard case .word(let f) = darkfield, Double(f) == nil, !["off", "none"].contains(f.lowercased()) else { return nil }
        return f
    }

    /// Every channel's recipe. Blank channels are only flat-field corrected (like the markers they are
    /// subtracted from), never filtered; channels not selected are copied unchanged.
    public func recipes(names: [String], isBlank: [Bool], selected: [Bool], autoHotPixels: Float?) throws -> [ChannelRecipe] {
        let hasBlanks = isBlank.contains(true)
        return try names.indices.map { c in
            if isBlank[c] {
                var r = ChannelRecipe()
                r.flatfield = try recipe(for: names[c], autoHotPixels: autoHotPixels, hasBlanks: false).flatfield
                return r
            }
            return selected[c] ? try recipe(for: names[c], autoHotPixels: autoHotPixels, hasBlanks: hasBlanks) : ChannelRecipe()
        }
    }

    /// One channel's recipe: the global settings overlaid by per-channel[name]. `autoHotPixels` = the
    /// threshold `hot-pixels auto` means for the image's type (nil = off).
    public func recipe(for name: String, autoHotPixels: Float?, hasBlanks: Bool) throws -> ChannelRecipe {
        var p: [String: Setting] = [:]
        for k in CodingKeys.allCases where k != .perChannel { p[k.rawValue] = self[k] }
        for (k, v) in perChannel[name] ?? [:] { p[k] = v }
        func off(_ k: String) -> Bool { p[k]?.isOff ?? true }
        func bad(_ k: String, _ want: String) -> DenoiseParamError {
            DenoiseParamError("denoise param \(k)\(name.isEmpty ? "" : " for \(name)"): expected \(want), got \(p[k].map { "\($0)" } ?? "nothing")")
        }
        func flag(_ k: String) throws -> Bool {
            guard let v = p[k] else { return false }
            guard let b = v.bool else { throw bad(k, "true or false") }
            return b
        }
        var r = ChannelRecipe()
        if !off("hot-pixels") {
            if p["hot-pixels"]?.string == "auto" {
                // 5% of the type's range: a stuck or hot pixel is far above its neighbours' median.
                r.hotPixels = autoHotPixels
            } else {
                guard let t = p["hot-pixels"]?.number, t > 0 else { throw bad("hot-pixels", "a threshold > 0, auto or off") }
                r.hotPixels = Float(t)
            }
        }
        r.median = try flag("median")
        if !off("rolling-ball") {
            guard let v = p["rolling-ball"]?.number, v >= 1, v <= 1000 else { throw bad("rolling-ball", "a radius in 1...1000 px or off") }
            r.rollingBall = v
        }
        r.lightBackground = try flag("light-background")
        if !off("tophat") {
            guard let v = p["tophat"]?.int, v >= 1, v <= 1000 else { throw bad("tophat", "a radius in 1...1000 px or off") }
            r.tophat = v
        }
        if r.tophat != nil && r.rollingBall != nil {
            throw DenoiseParamError("denoise: both --rolling-ball and --tophat are on\(name.isEmpty ? "" : " for \(name)"); choose one background method (the other =off)")
        }
        guard let g = p["gaussian"]?.number ?? (off("gaussian") ? 0 : nil), g >= 0, g <= 50 else { throw bad("gaussian", "a sigma in 0...50") }
        r.gaussian = g
        let ff = p["flatfield"]?.string.lowercased() ?? "off"
        r.flatfield = !["off", "false", "none"].contains(ff)
        // The flat-field file is global: per channel it is only switched on or off.
        if p["flatfield"] != flatfield, !["off", "false", "none", "on", "true", "auto"].contains(ff) {
            throw bad("flatfield", "on, off or auto per channel (the flat-field file is set for all channels)")
        }
        let bl = p["blanks"]?.string.lowercased() ?? "auto"
        r.blanks = bl == "auto" ? hasBlanks : try flag("blanks")
        return r
    }
}
