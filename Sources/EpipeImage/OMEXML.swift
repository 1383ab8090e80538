import Foundation
import EpipeKernels

/// The bits of OME-XML that epipe needs, from the first Image/Pixels element.
public struct OMEMetadata: Equatable, Sendable {
    public var sizeC: Int?
    public var sizeZ: Int?
    public var sizeT: Int?
    public var dimensionOrder: String?
    public var type: String?
    public var channelNames: [String?] = []
    public var physicalSizeX: Double?
    public var physicalSizeY: Double?
}

/// A small tolerant OME-XML reader/writer (no full XML validation; namespace prefixes ignored).
/// Public for the fuzz targets and tools that look at a description without opening an image.
public enum OMEXML {
    /// Parses an ImageDescription. Returns nil when it is not OME-XML.
    public static func parse(_ xml: String) -> OMEMetadata? {
        let b = Array(xml.utf8)
        let n = b.count
        var i = 0
        var meta = OMEMetadata()
        var sawOME = false
        var inPixels = false
        var pixelsDone = false
        while i < n {
            guard b[i] == UInt8(ascii: "<") else { i += 1; continue }
            i += 1
            if i >= n { break }
            let c0 = b[i]
            if c0 == UInt8(ascii: "?") || c0 == UInt8(ascii: "!") {
                // declaration / comment / CDATA: skip to '>' (comments to "-->")
                if i + 2 < n && b[i + 1] == UInt8(ascii: "-") && b[i + 2] == UInt8(ascii: "-") {
                    var j = i + 3
                    while j + 2 < n && !(b[j] == UInt8(ascii: "-") && b[j + 1] == UInt8(ascii: "-") && b[j + 2] == UInt8(ascii: ">")) { j += 1 }
                    i = j + 3
                } else {
                    while i < n && b[i] != UInt8(ascii: ">") { i += 1 }
                    i += 1
                }
                continue
            }
            let closing = c0 == UInt8(ascii: "/")
            if closing { i += 1 }
            // tag name
            let nameStart = i
            while i < n && !isSpace(b[i]) && b[i] != UInt8(ascii: ">") && b[i] != UInt8(ascii: "/") { i += 1 }
            var name = String(decoding: b[nameStart..<i], as: UTF8.self)
            if let colon = name.lastIndex(of: ":") { name = String(name[name.index(after: colon)...]) }
            // attributes
            var attrs: [String: String] = [:]
            while i < n && b[i] != UInt8(ascii: ">") {
                if isSpace(b[i]) || b[i] == UInt8(ascii: "/") { i += 1; continue }
                let aStart = i
                while i < n && b[i] != UInt8(ascii: "=") && !isSpace(b[i]) && b[i] != UInt8(ascii: ">") { i += 1 }
                var aName = String(decoding: b[aStart..<i], as: UTF8.self)
                if let colon = aName.lastIndex(of: ":") { aName = String(aName[aName.index(after: colon)...]) }
                while i < n && isSpace(b[i]) { i += 1 }
                guard i < n, b[i] == UInt8(ascii: "=") else { continue }
                i += 1
                while i < n && isSpace(b[i]) { i += 1 }
                guard i < n else { break }
                let q = b[i]
                if q == UInt8(ascii: "\"") || q == UInt8(ascii: "'") {
                    i += 1
                    let vStart = i
                    while i < n && b[i] != q { i += 1 }
                    attrs[aName] = unescape(String(decoding: b[vStart..<min(i, n)], as: UTF8.self))
                    i += 1
                } else {
                    let vStart = i
                    while i < n && !isSpace(b[i]) && b[i] != UInt8(ascii: ">") { i += 1 }
                    attrs[aName] = unescape(String(decoding: b[vStart..<i], as: UTF8.self))
                }
            }
            i += 1
            if closing {
                if name == "Pixels" && inPixels { inPixels = false; pixelsDone = true }
                continue
            }
            switch name {
            case "OME":
                sawOME = true
            case "Pixels":
                if pixelsDone || inPixels { break }
                inPixels = true
                meta.sizeC = attrs["SizeC"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                meta.sizeZ = attrs["SizeZ"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                meta.sizeT = attrs["SizeT"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                meta.dimensionOrder = attrs["DimensionOrder"]
                meta.type = attrs["Type"]
                meta.physicalSizeX = physical(attrs["PhysicalSizeX"], unit: attrs["PhysicalSizeXUnit"])
                meta.physicalSizeY = physical(attrs["PhysicalSizeY"], unit: attrs["PhysicalSizeYUnit"])
            case "Channel":
                if inPixels {
                    let nm = attrs["Name"]?.trimmingCharacters(in: .whitespacesAndNewlines)
                    meta.channelNames.append((nm?.isEmpty ?? true) ? nil : nm)
                }
            default:
                break
            }
        }
        return sawOME || meta.sizeC != nil ? meta : nil
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
    }

    /// Converts a physical size to µm. Nil when absent, unparsable or not positive.
    static func physical(_ v: String?, unit: String?) -> Double? {
        guard let v, let d = Double(v.trimmingCharacters(in: .whitespaces)), d.isFinite, d > 0 else { return nil }
        let factor: Double
        switch unit?.trimmingCharacters(in: .whitespaces) ?? "µm" {
        case "µm", "μm", "um", "micron", "microns", "": factor = 1
        case "nm": factor = 1e-3
        case "pm": factor = 1e-6
        case "Å", "angstrom": factor = 1e-4
        case "mm": factor = 1e3
        case "cm": factor = 1e4
        case "m": factor = 1e6
        default: factor = 1
        }
        return d * factor
    }

    /// XML character and entity references undone. Scalar by scalar: a reference followed by a
    /// combining mark (`&gt;` then U+0301) is still a reference, though `;` and the mark are one
    /// Character.
    static func unescape(_ s: String) -> String {
        guard s.utf8.contains(UInt8(ascii: "&")) else { return s }
        let u = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < u.count {
            if u[i] == "&", let semi = u[(i + 1)..<min(u.count, i + 11)].firstIndex(of: ";") {
                let ent = String(String.UnicodeScalarView(u[(i + 1)..<semi]))
                var rep: Unicode.Scalar?
                switch ent {
                case "amp": rep = "&"
                case "lt": rep = "<"
                case "gt": rep = ">"
                case "quot": rep = "\""
                case "apos": rep = "'"
                default:
                    if ent.hasPrefix("#x") || ent.hasPrefix("#X"), let v = UInt32(ent.dropFirst(2), radix: 16) { rep = Unicode.Scalar(v) }
                    else if ent.hasPrefix("#"), let v = UInt32(ent.dropFirst()) { rep = Unicode.Scalar(v) }
                }
                if let rep {
                    out.append(rep)
                    i = semi + 1
                    continue
                }
            }
            out.append(u[i])
            i += 1
        }
        return String(out)
    }

    static func escape(_ s: String) -> String { Markup.escape(s) }

    private static func fmt(_ d: Double) -> String {
        // shortest round-trip representation
        "\(d)"
    }

    /// OME-XML (2016-06) for one image, one IFD per channel in C order.
    public static func make(name: String, width: Int, height: Int, channelNames: [String], pixelType: PixelType,
                     physicalSizeX: Double?, physicalSizeY: Double?) -> String {
        var s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
        s += "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
        s += "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
        s += "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" Creator=\"epipe\">"
        s += "<Image ID=\"Image:0\" Name=\"\(escape(name))\">"
        s += "<Pixels ID=\"Pixels:0\" DimensionOrder=\"XYCZT\" Type=\"\(pixelType.omeType)\" "
        s += "SizeX=\"\(width)\" SizeY=\"\(height)\" SizeC=\"\(channelNames.count)\" SizeZ=\"1\" SizeT=\"1\" "
        s += "BigEndian=\"false\" Interleaved=\"false\""
        if pixelType != .float32 { s += " SignificantBits=\"\(pixelType.byteCount * 8)\"" }
        if let x = physicalSizeX, x.isFinite, x > 0 { s += " PhysicalSizeX=\"\(fmt(x))\" PhysicalSizeXUnit=\"µm\"" }
        if let y = physicalSizeY, y.isFinite, y > 0 { s += " PhysicalSizeY=\"\(fmt(y))\" PhysicalSizeYUnit=\"µm\"" }
        s += ">"
        for (c, nm) in channelNames.enumerated() {
            s += "<Channel ID=\"Channel:0:\(c)\" Name=\"\(escape(nm))\" SamplesPerPixel=\"1\"><LightPath/></Channel>"
        }
        for c in 0..<channelNames.count {
            s += "<TiffData FirstC=\"\(c)\" FirstT=\"0\" FirstZ=\"0\" IFD=\"\(c)\" PlaneCount=\"1\"/>"
        }
        s += "</Pixels></Image></OME>"
        return s
    }
}
