import Foundation

/// What a `DenoiseParams` resolves to on one image: each channel's recipe, the blank channels and
/// the weights each marker subtracts them with, and the band size. Built from plain facts about the
/// image (names, blank flags, cycles), so the executable only opens files.
public struct DenoiseSetup: Sendable {
    public var recipes: [ChannelRecipe]
    /// The blank channels (never processed as markers).
    public var blankChannels: [Int]
    /// Per channel, the blank channels and weights subtracted from it (`Blanks.weights`).
    public var blankWeights: [[(channel: Int, weight: Float)]]
    public var bandRows: Int
    /// The channels whose recipe corrects the flat-field.
    public var flatChannels: [Int] { recipes.indices.filter { recipes[$0].flatfield } }

    /// `selected` = the channels to process (nil: all; others are copied unchanged); `background[c]` =
    /// the channel MCMICRO's background column names for c; `autoHotPixels` = what `hot-pixels auto`
    /// means for the image's type (nil: off). Throws when `blanks` is required and there are none.
    public init(params p: DenoiseParams, names: [String], isBlank: [Bool], cycles: [Int]?, background: [Int?],
                selected: [Int]?, autoHotPixels: Float?, width: Int) throws {
        let C = names.count
        let sel = selected.map { s in (0..<C).map { s.contains($0) } } ?? [Bool](repeating: true, count: C)
        blankChannels = (0..<C).filter { isBlank[$0] }
        recipes = try p.recipes(names: names, isBlank: isBlank, selected: sel, autoHotPixels: autoHotPixels)
        if p.blanksRequired && blankChannels.isEmpty {
            throw DenoiseParamError("--blanks: no blank channels found (no name matches \(p.blankPattern.string), no blank/background column in markers.csv)")
        }
        // Blank signal per marker channel: explicit MCMICRO background column, else interpolated by cycle.
        blankWeights = Blanks.weights(recipes: recipes, cycles: cycles, isBlank: isBlank, background: background)
        bandRows = p.bandRows ?? DenoiseStream.autoBandRows(width: width, channels: C)
    }

    /// Number of bands of an image this tall.
    public func bandCount(height: Int) -> Int { (height + bandRows - 1) / bandRows }

    /// The illumination model of each channel: the dark-field (`dark` constant, or a per-pixel image
    /// when `darkImage`) and, for `flatChannels`, the flat-field from `flatPlane(c)` (a given image's
    /// plane for channel c) or, without one, estimated from the image in a first pass over `read`.
    /// `estimating(bands)` is called only when that pass runs and returns what to call after each band.
    public func illumination(width w: Int, height h: Int, dark: Float?, darkImage: Bool,
                             flatPlane: ((Int) throws -> [Float])?, read: (Int, Int, Int) throws -> [Float],
                             estimating: (Int) -> () -> Void = { _ in {} }) throws -> [Illumination] {
        illumination(flat: try flatFields(width: w, height: h, flatPlane: flatPlane, read: read, estimating: estimating), dark: dark, darkImage: darkImage)
    }

    /// The illumination models from the flat-fields (`flatFields`) and the dark-field.
    public func illumination(flat: [FlatField?], dark: Float?, darkImage: Bool) -> [Illumination] {
        flat.map { Illumination(flat: $0, dark: dark ?? 0, darkImage: darkImage) }
    }

    /// Whether the flat-fields are estimated from the image (a whole-slide pass), not read from a given one.
    public func estimatesFlatFields(given: Bool) -> Bool { !given && !flatChannels.isEmpty }

    /// Each channel's flat-field (nil: none), from `flatPlane` or estimated in a pass over `read`.
    public func flatFields(width w: Int, height h: Int, flatPlane: ((Int) throws -> [Float])?, read: (Int, Int, Int) throws -> [Float],
                           estimating: (Int) -> () -> Void = { _ in {} }) throws -> [FlatField?] {
        var flat = [FlatField?](repeating: nil, count: recipes.count)
        let flatC = flatChannels
        if let flatPlane, !flatC.isEmpty {
            for c in flatC { flat[c] = FlatField.fromImage(try flatPlane(c), width: w, height: h) }
        } else if !flatC.isEmpty {
            let bandDone = estimating(bandCount(height: h))
            let est = try DenoiseStream.estimateFlatFields(width: w, height: h, channels: flatC, bandRows: bandRows, read: read, bandDone: bandDone)
            for (c, f) in est { flat[c] = f }
        }
        return flat
    }

    /// The band stream for an image with these illumination models.
    public func stream(width: Int, height: Int, illumination: [Illumination]) -> DenoiseStream {
        DenoiseStream(width: width, height: height, recipes: recipes, illumination: illumination,
                      blankWeights: blankWeights, blankChannels: blankChannels, bandRows: bandRows)
    }
}
