import Foundation
import EpipeKernels

/// The parameters of one segmentation run, each written here once: its key (the flag's name and
/// job.json's `params.segment` key), its default, how it is read and how it is checked. The
/// runner encodes the defaults, overlays job.json and the flags given, decodes this struct once
/// (which validates it) and records its encoding in the manifest. nil means "auto": the value is
/// derived from the nucleus diameter or the image (`plan(diameter:width:membrane:)`).
public struct SegmentParams: Codable, Sendable, Equatable {
    /// Nuclear channel(s) by name or index, comma-separated (averaged); "auto" = DAPI/Hoechst/DNA by name, else 0.
    public var nuclear = "auto"
    /// Nucleus diameter in px (nil: estimated from the nuclear channel, see `NucleusDiameter.choose`).
    public var nucleusDiameter: Double? = nil
    /// Expansion of nuclei into cells in px (nil: half the diameter).
    public var expand: Int? = nil
    /// Smallest nucleus kept, px (nil: a tenth of the area of a disk of the diameter, at least 4).
    public var minArea: Int? = nil
    public var split = true
    /// Gaussian sigma of the nuclear channel before thresholding (nil: the recipe's own).
    public var smooth: Double? = nil
    /// Tile side in px, at least 256 (nil: 1024, shorter on slides wider than 16k px).
    public var tile: Int? = nil
    /// "global" or "adaptive" ("local" is read as adaptive).
    public var thresholdMethod = "global"
    /// Imported label masks (paths), "none" when segmenting.
    public var nucleiMask = "none", cellsMask = "none"
    /// Extra statistics per marker: "none" or a list of median, std, sum (recorded in canonical order).
    public var stats = "none"
    /// Membrane channel(s) by name or index, comma-separated; "none" = cells by expansion.
    public var membrane = "none"
    /// With membrane channels: a cell pixel lies within this many px of its nucleus (nil: `expand`).
    public var cellMaxDistance: Double? = nil
    /// "blend", "intensity" or "distance" (`SplitMethod`).
    public var seeds = "blend"
    /// Splitting controls (nil: the recipe's defaults from the diameter).
    public var seedH: Double? = nil, seedMinDistance: Double? = nil

    public init() {}

    public enum CodingKeys: String, CodingKey, CaseIterable {
        case nuclear, nucleusDiameter = "nucleus-diameter", expand, minArea = "min-area", split, smooth, tile
        case thresholdMethod = "threshold-method", nucleiMask = "nuclei-mask", cellsMask = "cells-mask", stats, membrane
        case cellMaxDistance = "cell-max-distance", seeds, seedH = "seed-h", seedMinDistance = "seed-min-distance"
    }

    /// A parameter that cannot be used; `message` is one line naming the key.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public static let seedsMessage = "seeds: expected blend (default: shape + normalised intensity), intensity (h-maxima of the log intensity + distance) or distance (h-maxima of the distance transform)"

    /// Reads each key (a missing one takes its default) and checks it: numbers may be given as
    /// strings ("12") or "auto", channel lists as lists. Unknown keys are refused so a typo is not
    /// silently ignored.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let bad = c.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw Invalid(message: "\(bad): unknown parameter; known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        func has(_ k: CodingKeys) -> Bool { c.contains(AnyKey(k.rawValue)) }
        func string(_ k: CodingKeys) -> String? { try? c.decode(String.self, forKey: AnyKey(k.rawValue)) }
        /// nil for "auto" (or absent); a number >= 0 otherwise.
        func auto(_ k: CodingKeys) throws -> Double? {
            guard has(k) else { return nil }
            let a = AnyKey(k.rawValue)
            if let v = try? c.decode(Double.self, forKey: a), v >= 0, v.isFinite { return v }
            if let s = string(k)?.trimmingCharacters(in: .whitespaces) {
                if s == "auto" { return nil }
                if let v = Double(s), v >= 0, v.isFinite { return v }
            }
            throw Invalid(message: "\(k.rawValue): expected a number >= 0 or auto, got \(Self.raw(c, a))")
        }
        func whole(_ k: CodingKeys) throws -> Int? {
            guard let v = try auto(k) else { return nil }
            guard v == v.rounded(), v < 1e9 else { throw Invalid(message: "\(k.rawValue): expected a whole number >= 0 or auto, got \(Self.raw(c, AnyKey(k.rawValue)))") }
            return Int(v)
        }
        /// A name, or a list of names/indices, as one comma-separated string.
        func channels(_ k: CodingKeys, _ d: String) throws -> String {
            guard has(k) else { return d }
            let a = AnyKey(k.rawValue)
            if let s = string(k) { return s }
            if let i = try? c.decode(Int.self, forKey: a) { return String(i) }
            if let l = try? c.decode([AnyName].self, forKey: a) { return l.map(\.text).joined(separator: ",") }
            throw Invalid(message: "\(k.rawValue): expected channel names or indices, comma-separated (or a list)")
        }
        func word(_ k: CodingKeys, _ d: String, _ allowed: [String]?, _ message: String) throws -> String {
            guard has(k) else { return d }
            guard let s = string(k), allowed?.contains(s) ?? true else { throw Invalid(message: message) }
            return s
        }
        nuclear = try channels(.nuclear, "auto")
        membrane = try channels(.membrane, "none")
        nucleusDiameter = try auto(.nucleusDiameter)
        expand = try whole(.expand)
        minArea = try whole(.minArea)
        smooth = try auto(.smooth)
        tile = try whole(.tile)
        cellMaxDistance = try auto(.cellMaxDistance)
        seedH = try auto(.seedH)
        seedMinDistance = try auto(.seedMinDistance)
        if has(.split) {
            let a = AnyKey(CodingKeys.split.rawValue)
            if let b = try? c.decode(Bool.self, forKey: a) { split = b }
            else if let s = string(.split), let b = ["true": true, "false": false][s.lowercased()] { split = b }
            else { throw Invalid(message: "split: expected true or false") }
        }
        thresholdMethod = try word(.thresholdMethod, "global", ["global", "adaptive", "local"], "threshold-method: expected global or adaptive")
        seeds = try word(.seeds, "blend", ["blend", "intensity", "distance"], Self.seedsMessage)
        nucleiMask = try word(.nucleiMask, "none", nil, "nuclei-mask: expected a label TIFF path or none")
        cellsMask = try word(.cellsMask, "none", nil, "cells-mask: expected a label TIFF path or none")
        let rawStats = try word(.stats, "none", nil, "stats: expected a comma-separated list of median, std, sum (or none)")
        let (st, bad) = CellStats.parse(rawStats)
        guard bad.isEmpty else {
            throw Invalid(message: "stats: unknown \(bad.joined(separator: ", ")) in \"\(rawStats)\"; expected a comma-separated list of median, std, sum (or none)")
        }
        stats = st.list
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        func auto<T: Encodable>(_ v: T?, _ k: CodingKeys) throws { if let v { try c.encode(v, forKey: k) } else { try c.encode("auto", forKey: k) } }
        try c.encode(nuclear, forKey: .nuclear); try auto(nucleusDiameter, .nucleusDiameter)
        try auto(expand, .expand); try auto(minArea, .minArea); try c.encode(split, forKey: .split)
        try auto(smooth, .smooth); try auto(tile, .tile); try c.encode(thresholdMethod, forKey: .thresholdMethod)
        try c.encode(nucleiMask, forKey: .nucleiMask); try c.encode(cellsMask, forKey: .cellsMask)
        try c.encode(stats, forKey: .stats); try c.encode(membrane, forKey: .membrane)
        try auto(cellMaxDistance, .cellMaxDistance); try c.encode(seeds, forKey: .seeds)
        try auto(seedH, .seedH); try auto(seedMinDistance, .seedMinDistance)
    }

    /// The extra statistics asked for.
    public var cellStats: CellStats { CellStats.parse(stats).stats }

    /// An imported mask path, nil for none.
    public static func maskPath(_ spec: String) -> String? { ["none", "off", ""].contains(spec.lowercased()) ? nil : spec }

    private static func raw(_ c: KeyedDecodingContainer<AnyKey>, _ k: AnyKey) -> String {
        if let s = try? c.decode(String.self, forKey: k) { return "\"\(s)\"" }
        if let v = try? c.decode(Double.self, forKey: k) { return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
        if let b = try? c.decode(Bool.self, forKey: k) { return String(b) }
        return "a list or object"
    }
}

/// What a run does once the nucleus diameter and the image are known: every derived value, once.
public struct SegmentPlan: Sendable {
    public var nuclei: NucleiParams
    public var expand: Int
    public var cellMaxDistance: Double
    public var cellParams: CellParams
    public var growth: CellGrowth
    public var tile: Int, overlap: Int
    /// "membrane-watershed", "expansion" or "nuclei" (cells = nuclei).
    public var cellMethod: String
}

extension SegmentParams {
    /// The plan for a slide `width` px wide whose nucleus diameter is `diameter` px, with or
    /// without membrane channels.
    public func plan(diameter: Double, width w: Int, membrane: Bool) -> SegmentPlan {
        let expand = self.expand ?? Int((diameter * 0.5).rounded())
        var np = NucleiParams()
        np.nucleusDiameter = diameter
        np.minArea = minArea ?? max(4, Int(0.1 * Double.pi * diameter * diameter / 4))
        np.splitTouching = split
        if let smooth { np.smoothSigma = smooth }
        np.thresholdMethod = thresholdMethod == "global" ? .global : .adaptive
        np.split = seeds == "intensity" ? .intensity : seeds == "distance" ? .distance : .blend
        np.seedHOverride = seedH
        np.seedMinDistanceOverride = seedMinDistance
        let maxDistance = cellMaxDistance ?? Double(expand)
        let cellParams = CellParams(maxDistance: maxDistance, minGrowth: min(maxDistance, diameter / 3))
        let growth: CellGrowth = membrane && maxDistance > 0 ? .membrane(cellParams, context: Segmenter.cellContextRows(cellParams))
            : expand > 0 ? .expansion(distance: expand) : .nuclei
        // Bands are whole tile rows across the slide, so memory goes with tile x width: wide slides
        // get shorter tiles (1024 up to 16k px wide, then down to 512), at some cost in overlap.
        let tile = max(256, self.tile ?? (w <= 16384 ? 1024 : max(512, (16384 * 1024 / w) / 128 * 128)))
        // Objects must fit in the overlap for seams to stitch: several nucleus diameters plus the cell growth.
        let overlap = min(tile, max(32, Int((4 * diameter).rounded(.up)) + 2 * expand))
        let method = membrane && maxDistance > 0 ? "membrane-watershed" : expand > 0 ? "expansion" : "nuclei"
        return SegmentPlan(nuclei: np, expand: expand, cellMaxDistance: maxDistance, cellParams: cellParams, growth: growth,
                           tile: tile, overlap: overlap, cellMethod: method)
    }
}

/// A channel given by name or by index in a list.
private struct AnyName: Decodable {
    let text: String
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { text = s } else { text = String(try c.decode(Int.self)) }
    }
}
