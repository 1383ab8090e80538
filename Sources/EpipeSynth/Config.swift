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

    public init(width: Int, height: Int, channels: Int = 6, seed: UInt64 = 1, nucleusDiameter: Double = 12,
                cellDensity: Double = 0.55, pixelSizeMicrons: Double = 0.5) {
        self.width = width; self.height = height; self.channels = channels; self.seed = seed
        self.nucleusDiameter = nucleusDiameter; self.cellDensity = cellDensity; self.pixelSizeMicrons = pixelSizeMicrons
    }

    enum CodingKeys: String, CodingKey {
        case width, height, channels, seed, nucleusDiameter, cellDensity, pixelSizeMicrons
        case tumourFraction, psfSigma, fieldSize, noiseScale, hotPixelRate, defocusedFieldFraction
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
    }
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
