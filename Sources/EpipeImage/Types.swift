import Foundation
import EpipeKernels

/// Sample type of an image plane.
public enum PixelType: String, Codable, Sendable {
    case uint8, uint16, uint32, float32

    /// Bytes per sample.
    public var byteCount: Int {
        switch self {
        case .uint8: return 1
        case .uint16: return 2
        case .uint32, .float32: return 4
        }
    }

    /// Largest representable value (Float), used when clamping.
    public var maxValue: Float {
        switch self {
        case .uint8: return 255
        case .uint16: return 65535
        case .uint32: return 4_294_967_295
        case .float32: return .greatestFiniteMagnitude
        }
    }

    /// OME-XML Pixels Type attribute.
    public var omeType: String {
        switch self {
        case .uint8: return "uint8"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        case .float32: return "float"
        }
    }
}

/// Geometry and metadata of a multi-channel image.
public struct ImageInfo: Codable, Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixelType: PixelType
    public var channelNames: [String]
    /// µm per pixel, from OME-XML (or a centimetre resolution tag) if present.
    public var physicalSizeX: Double?
    public var physicalSizeY: Double?

    public init(width: Int, height: Int, channels: Int, pixelType: PixelType, channelNames: [String],
                physicalSizeX: Double? = nil, physicalSizeY: Double? = nil) {
        self.width = width
        self.height = height
        self.channels = channels
        self.pixelType = pixelType
        self.channelNames = channelNames
        self.physicalSizeX = physicalSizeX
        self.physicalSizeY = physicalSizeY
    }
}

/// Error from image I/O. `description` is one line: "<path>: <what is wrong>; <what to do>" (line
/// breaks and control characters, in the path or in text quoted from the file, made printable).
public struct ImageError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String
    /// True when the file read is not what it should be (bad input: a stage exits 2); false for a
    /// write that failed (disk full, a folder in the way: the job failed, exit 1).
    public let isBadInput: Bool

    public init(path: String, message: String, isBadInput: Bool = true) {
        self.path = path
        self.message = ImageError.oneLine(message)
        self.isBadInput = isBadInput
    }

    public var description: String { "\(ImageError.oneLine(path)): \(message)" }

    static func oneLine(_ s: String) -> String { Markup.oneLine(s) }
}
