import Foundation

/// What one page's PerkinElmer/Akoya QPI description says (Vectra/Polaris QPTIFF, inForm
/// component and composite TIFFs, PhenoCycler/PhenoImager QPTIFF).
///
/// Each page of such a file carries its own `<PerkinElmer-QPI-ImageDescription>` XML. The
/// fields epipe uses are direct children of that root element:
/// - `<ImageType>`: `FullResolution` for the channel pages; `Thumbnail` (the RGB preview),
///   `ReducedResolution` (pyramid levels), `Overview`, `Label`, `Macro` are not channels.
/// - `<Name>`: the band or fluor (`DAPI`, `Cy5`, `Opal 570`, or `CD8 (Opal 540)` from inForm).
/// - `<Biomarker>`: the marker, in newer Akoya files (`CD8`); preferred when present.
/// - `<PixelSizeMicrons>` (or `<ResolutionMicrons>`), at the top level or inside
///   `<ScanProfile>`: µm per pixel of the full-resolution pages.
///
/// Elements with the same names deeper in the tree (the spectral library inside `<ScanProfile>`
/// has its own `<Name>` and `<Marker>`) are not the page's.
public struct QPIPage: Equatable, Sendable {
    public var imageType: String?
    public var name: String?
    public var biomarker: String?
    public var pixelSizeMicrons: Double?

    /// The channel's name: the biomarker when the file gives a real one, else the band name.
    public var channelName: String? {
        if let b = biomarker, !QPI.isPlaceholder(b) { return b }
        if let n = name, !QPI.isPlaceholder(n) { return n }
        return nil
    }

    /// A full-resolution page (or one that does not say what it is).
    public var isFullResolution: Bool {
        guard let t = imageType?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty else { return true }
        return t.caseInsensitiveCompare("FullResolution") == .orderedSame
    }
}

/// A small tolerant reader for PerkinElmer-QPI ImageDescription XML (no DTD, no namespaces).
/// Malformed XML (unbalanced or truncated) gives nil, never a crash, so the caller falls back to
/// `ch0`, `ch1`, ... names.
public enum QPI {
    static let rootName = "PerkinElmer-QPI-ImageDescription"

    /// Cheap test before parsing: the root element's name appears in the description.
    public static func looksLikeQPI(_ description: String) -> Bool {
        description.utf8.count >= rootName.utf8.count && description.contains(rootName)
    }

    /// Values that mean "no marker here".
    static func isPlaceholder(_ s: String) -> Bool {
        let t = s.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        return t.isEmpty || t == "-" || t == "--" || t == "none" || t == "n/a" || t == "na" || t == "null"
    }

    /// Element names that hold the pixel size in µm.
    static let pixelSizeNames: Set<String> = ["pixelsizemicrons", "resolutionmicrons"]

    /// Parses one page's description. Nil when it is not QPI XML or is malformed.
    public static func parse(_ xml: String) -> QPIPage? {
        guard looksLikeQPI(xml) else { return nil }
        let b = Array(xml.utf8)
        let n = b.count
        var i = 0
        var stack: [String] = []
        var sawRoot = false, closedRoot = false
        var page = QPIPage()
        var text: [UInt8] = []          // text of the innermost open element
        var topPixel: Double?, nestedPixel: Double?
        let lt = UInt8(ascii: "<"), gt = UInt8(ascii: ">"), slash = UInt8(ascii: "/")

        func value(_ bytes: [UInt8]) -> String {
            OMEXML.unescape(String(decoding: bytes, as: UTF8.self)).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func positive(_ s: String) -> Double? {
            guard let d = Double(s), d.isFinite, d > 0, d < 1e6 else { return nil }
            return d
        }
        func starts(_ u: [UInt8], at k: Int) -> Bool {
            guard k + u.count <= n else { return false }
            for j in 0..<u.count where b[k + j] != u[j] { return false }
            return true
        }
        func find(_ u: [UInt8], from k: Int) -> Int? {
            var j = k
            while j < n { if b[j] == u[0] && starts(u, at: j) { return j }; j += 1 }
            return nil
        }
        let commentOpen = Array("<!--".utf8), commentClose = Array("-->".utf8)
        let cdataOpen = Array("<![CDATA[".utf8), cdataClose = Array("]]>".utf8)
        let piOpen = Array("<?".utf8), piClose = Array("?>".utf8), declOpen = Array("<!".utf8), tagClose = [gt]

        while i < n {
            if b[i] != lt {
                if !stack.isEmpty { text.append(b[i]) }
                else if !isSpace(b[i]) && sawRoot { return nil }   // text after the root
                i += 1
                continue
            }
            // markup
            if starts(commentOpen, at: i) {
                guard let e = find(commentClose, from: i + 4) else { return nil }
                i = e + 3; continue
            }
            if starts(cdataOpen, at: i) {
                guard let e = find(cdataClose, from: i + 9) else { return nil }
                if !stack.isEmpty { text += b[(i + 9)..<e] }
                i = e + 3; continue
            }
            if starts(piOpen, at: i) {
                guard let e = find(piClose, from: i + 2) else { return nil }
                i = e + 2; continue
            }
            if starts(declOpen, at: i) {   // DOCTYPE and the like
                guard let e = find(tagClose, from: i + 2) else { return nil }
                i = e + 1; continue
            }
            // a tag: find its end, outside quoted attribute values
            var j = i + 1
            var quote: UInt8 = 0
            while j < n {
                let c = b[j]
                if quote != 0 { if c == quote { quote = 0 } }
                else if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") { quote = c }
                else if c == gt { break }
                else if c == lt { return nil }
                j += 1
            }
            guard j < n else { return nil }   // truncated inside a tag
            let closing = b[i + 1] == slash
            let selfClosing = !closing && j > i + 1 && b[j - 1] == slash
            var k = closing ? i + 2 : i + 1
            let nameStart = k
            while k < j && !isSpace(b[k]) && b[k] != slash { k += 1 }
            let name = String(decoding: b[nameStart..<k], as: UTF8.self)
            guard !name.isEmpty else { return nil }
            i = j + 1

            if closing {
                guard let open = stack.last, open == name else { return nil }   // unbalanced
                let depth = stack.count
                let v = value(text)
                if depth == 2 {
                    switch name {
                    case "ImageType": page.imageType = v
                    case "Name": page.name = v
                    case "Biomarker": page.biomarker = v
                    default: break
                    }
                }
                if pixelSizeNames.contains(name.lowercased()), let d = positive(v) {
                    if depth == 2 { topPixel = topPixel ?? d } else if stack.contains("ScanProfile") { nestedPixel = nestedPixel ?? d }
                }
                stack.removeLast()
                text = []
                if stack.isEmpty { closedRoot = true }
                continue
            }
            if stack.isEmpty {
                guard !sawRoot, name == rootName else { return nil }   // one root, and it is QPI
                sawRoot = true
            }
            if selfClosing {
                if stack.count == 1 {
                    // <Biomarker /> and the like: present but empty
                    switch name {
                    case "ImageType": page.imageType = ""
                    case "Name": page.name = ""
                    case "Biomarker": page.biomarker = ""
                    default: break
                    }
                }
                if stack.isEmpty { closedRoot = true }
                continue
            }
            stack.append(name)
            text = []
        }
        guard sawRoot, closedRoot, stack.isEmpty else { return nil }
        page.pixelSizeMicrons = topPixel ?? nestedPixel
        return page
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
    }
}

extension QPI {
    /// One name per channel page: missing ones become `chN`; a name seen before gets ` (2)`,
    /// ` (3)`, ... so that table columns and `--nuclear NAME` stay unambiguous (the first keeps
    /// the plain name).
    static func uniqueNames(_ names: [String?]) -> [String] {
        var seen: [String: Int] = [:]
        var out: [String] = []
        for (i, nm) in names.enumerated() {
            let base = nm ?? "ch\(i)"
            let key = base.lowercased()
            let k = (seen[key] ?? 0) + 1
            seen[key] = k
            out.append(k == 1 ? base : "\(base) (\(k))")
        }
        return out
    }
}
