import Foundation
import EpipeImage
import CTIFFShim

/// The ImageDescription parsers: OME-XML and PerkinElmer QPI XML on the text alone (they never
/// throw: nil is "not this kind of description"), the OME-XML round trip (the names epipe read
/// are the names epipe writes and reads back), and the reader's use of the description: a small
/// four-page TIFF carrying the input as its first page's ImageDescription, opened and read.
enum XMLFuzz {
    static func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        // libtiff hands the reader the tag's text up to its first NUL
        let bytes = data.prefix { $0 != 0 }
        let xml = String(decoding: bytes, as: UTF8.self)
        var said: [String] = []

        if let ome = OMEXML.parse(xml) {
            said.append("OME sizeC \(ome.sizeC.map(String.init) ?? "-") channels \(ome.channelNames.count)")
            let names = ome.channelNames.compactMap { $0 }
            if !names.isEmpty {
                let again = OMEXML.make(name: "fuzz", width: 4, height: 4, channelNames: names, pixelType: .uint16,
                                        physicalSizeX: ome.physicalSizeX, physicalSizeY: ome.physicalSizeY)
                guard let back = OMEXML.parse(again) else { return .defect("epipe's own OME-XML for names \(names) does not parse") }
                guard back.channelNames == names.map({ Optional($0) }) else {
                    return .defect("OME-XML names do not survive a write and read: \(names.map(\.debugDescription)) came back as \(back.channelNames.map { $0?.debugDescription ?? "nil" })")
                }
                if let x = ome.physicalSizeX, back.physicalSizeX != x {
                    return .defect("PhysicalSizeX \(x) came back as \(back.physicalSizeX.map { "\($0)" } ?? "nil")")
                }
            }
        }
        if QPI.looksLikeQPI(xml), let q = QPI.parse(xml) {
            said.append("QPI \(q.channelName ?? "-") full-resolution \(q.isFullResolution)")
        }

        // the same text as the description of a 4-page 16-bit TIFF (room for C x Z x T = 2 x 2 x 1)
        let path = FuzzFile.dir() + "/described.tif"
        var err = [CChar](repeating: 0, count: 256)
        let plane = [UInt16](repeating: 7, count: 4 * 8 * 8)
        let rc: Int32 = Array(bytes).withUnsafeBufferPointer { b in
            var text = Array(b) + [0]
            return text.withUnsafeMutableBufferPointer { t in
                t.baseAddress!.withMemoryRebound(to: CChar.self, capacity: t.count) { desc in
                    var spec = epipe_test_tiff_spec()
                    spec.width = 8; spec.height = 8; spec.nchan = 4; spec.bits = 16; spec.sample_format = 1
                    spec.compression = 1; spec.predictor = 1; spec.rows_per_strip = 4
                    spec.description = UnsafePointer(desc)
                    return plane.withUnsafeBytes { epipe_test_write_tiff(path, &spec, $0.baseAddress, &err, err.count) }
                }
            }
        }
        guard rc == 0 else {
            // libtiff will not write every text (e.g. an empty one): nothing more to read
            let why = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            return .accepted((said + ["not written: \(why)"]).joined(separator: "; "))
        }
        switch TIFFFuzz.read(path: path) {
        case .accepted(let s): said.append("tiff \(s)")
        case .refused(let m): return .defect("a valid 4-page TIFF was refused because of its description: \(m)")
        case .defect(let d): return .defect(d)
        }
        return .accepted(said.joined(separator: "; "))
    }
}
