// Public configuration and result types of the synthetic-slide generator.

import Foundation

public struct SynthConfig: Sendable, Codable, Equatable {
    public var width: Int
    public var height: Int
    /// Number of marker planes (>= 1); channel 0 is always the nuclear stain "DAPI".
    public var channels: Int
    public var seed: UInt64
    /// Mean nucleus diameter in pixels (per-type scale factors and lognormal variation apply).
    public var nucleusDiameter: Double
    /// Mean fraction of the image area covered by cells (dense tumour nests and follicles, sparser stroma).
    public var cellDensity: Double
    public var pixelSizeMicrons: Double
    /// Approximate fraction of the area occupied by tumour nests.
    public var tumourFraction: Double = 0.4
    /// Gaussian PSF sigma in pixels (varies +-10 % per channel).
    public var psfSigma: Double = 1.2
    /// Microscope field (tile) size in pixels for vignetting and sensor defects.
    public var fieldSize: Int = 1024
    /// Multiplier for shot and read noise (0 = noise-free apart from hot pixels).
    public var noiseScale: Double = 1
    /// Fraction of sensor pixels that are hot.
    public var hotPixelRate: Double = 2e-5
    /// Fraction of microscope fields that are slightly out of focus (PSF sigma x1.15...1.65).
    public var defocusedFieldFraction: Double = 0.2

    // Failure modes of real nucleus images (all off by default: 0 / false leaves the output unchanged).
    // `apply(_:)` turns them on together, e.g. `SynthRealism.hard`.

    /// Textured chromatin in the nuclear channel, 0 (off) ... 1 (strong): bright chromocentres and dark
    /// nucleoli at the scale of diameter / 4, i.e. several intensity maxima per nucleus.
    public var chromatinTexture: Double = 0
    /// Quantise the nuclear channel (DAPI) to 8 bits with a low signal: values 0...255 (still stored in the
    /// uint16 planes), a median nucleus about 50 levels above a background of about 10, camera noise of a
    /// few levels, bright nuclei clipped at 255.
    public var eightBit: Bool = false
    /// Spread of the nuclear brightness between nuclei in decades (log10 of the 95th / 5th percentile of a
    /// mean-preserving lognormal), 0 = today's spread; dim nuclei lie beside bright ones.
    public var brightnessDecades: Double = 0
    /// Fraction of the area that is strongly out of focus (smooth regions, blur blended in gradually).
    public var outOfFocusFraction: Double = 0
    /// Gaussian sigma (px) of the out-of-focus blur; 0 = 0.3 x nucleusDiameter.
    public var outOfFocusSigma: Double = 0
    /// Clumps, 0 (off) ... 1: dense groups of touching and overlapping nuclei (up to 30 % of the radii)
    /// in patches of a few nucleus diameters.
    public var clumping: Double = 0
    /// Uneven illumination and background, 0 (off) ... 1: smooth illumination falloff of up to about
    /// 2x across the slide and patches of diffuse background haze in the nuclear channel.
    public var unevenIllumination: Double = 0

    public init(width: Int, height: Int, channels: Int = 6, seed: UInt64 = 1, nucleusDiameter: Double = 12,
                cellDensity: Double = 0.55, pixelSizeMicrons: Double = 0.5) {
        self.width = width; self.height = height; self.channels = channels; self.seed = seed
        self.nucleusDiameter = nucleusDiameter; self.cellDensity = cellDensity; self.pixelSizeMicrons = pixelSizeMicrons
    }

    enum CodingKeys: String, CodingKey {
        case width, height, channels, seed, nucleusDiameter, cellDensity, pixelSizeMicrons
        case tumourFraction, psfSigma, fieldSize, noiseScale, hotPixelRate, defocusedFieldFraction
        case chromatinTexture, eightBit, brightnessDecades, outOfFocusFraction, outOfFocusSigma, clumping, unevenIllumination
    }

    /// Decodes leniently: every key except width and height is optional and falls back to the default.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(width: try c.decode(Int.self, forKey: .width), height: try c.decode(Int.self, forKey: .height))
        if let v = try c.decodeIfPresent(Int.self, forKey: .channels) { channels = v }
        if let v = try c.decodeIfPresent(UInt64.self, forKey: .seed) { seed = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .nucleusDiameter) { nucleusDiameter = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .cellDensity) { cellDensity = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .pixelSizeMicrons) { pixelSizeMicrons = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .tumourFraction) { tumourFraction = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .psfSigma) { psfSigma = v }
        if let v = try c.decodeIfPresent(Int.self, forKey: .fieldSize) { fieldSize = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .noiseScale) { noiseScale = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .hotPixelRate) { hotPixelRate = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .defocusedFieldFraction) { defocusedFieldFraction = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .chromatinTexture) { chromatinTexture = v }
        if let v = try c.decodeIfPresent(Bool.self, forKey: .eightBit) { eightBit = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .brightnessDecades) { brightnessDecades = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .outOfFocusFraction) { outOfFocusFraction = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .outOfFocusSigma) { outOfFocusSigma = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .clumping) { clumping = v }
        if let v = try c.decodeIfPresent(Double.self, forKey: .unevenIllumination) { unevenIllumination = v }
    }

    /// Turns on the failure modes of a realism preset (`.none` turns them all off).
    public mutating func apply(_ preset: SynthRealism) {
        let on = preset == .hard
        chromatinTexture = on ? 1 : 0
        eightBit = on
        brightnessDecades = on ? 1.5 : 0
        outOfFocusFraction = on ? 0.25 : 0
        outOfFocusSigma = 0
        clumping = on ? 1 : 0
        unevenIllumination = on ? 1 : 0
    }
}

/// Presets of the real-image failure modes (`epipe-synth --realism`).
public enum SynthRealism: String, Sendable, Codable, CaseIterable {
    /// Today's generator: none of the options below.
    case none
    /// All on: textured chromatin, 8-bit low-signal nuclear channel, 1.5 decades of nuclear brightness,
    /// a quarter of the area out of focus, clumps, uneven illumination.
    case hard
}

/// Ground truth for one cell; ids are 1...N.
public struct SynthCell: Sendable, Codable, Equatable {
    public var id: UInt32
    public var type: Int
    /// Nucleus centre in pixels (may lie just outside the image for cells cut by the border).
    public var x: Double
    public var y: Double
    public init(id: UInt32, type: Int, x: Double, y: Double) { self.id = id; self.type = type; self.x = x; self.y = y }
}

/// Subcellular compartment where a marker is expressed.
public enum SynthCompartment: String, Sendable, Codable {
    case nuclear, membrane, cytoplasm
}

/// Tissue region at a point (see `SyntheticSlide.region(x:y:)`).
public enum SynthRegion: Int, Sendable, Codable {
    case empty = 0, stroma, tumour, tumourMargin, follicleCore, follicleMantle, vesselLumen, vesselWall
}

/// Rows [y0, y0+count) of a rendered slide.
public struct SynthBand: Sendable {
    public var y0: Int
    public var count: Int
    public var width: Int
    /// [channel][row * width + x], values in uint16 scale (integers in 0...65535).
    public var channels: [[Float]]
    /// Nucleus labels (0 = background, otherwise SynthCell.id).
    public var nuclei: [UInt32]
    /// Whole-cell labels (0 = background); every nucleus pixel carries the same id here.
    public var cells: [UInt32]
    public init(y0: Int, count: Int, width: Int, channels: [[Float]], nuclei: [UInt32], cells: [UInt32]) {
        self.y0 = y0; self.count = count; self.width = width; self.channels = channels; self.nuclei = nuclei; self.cells = cells
    }
}
