import Foundation
import XCTest
@testable import EpipeImage

/// One page of a small uncompressed classic TIFF built in the test (no libtiff, no tifffile):
/// enough to lay out QPTIFF files the way Akoya writes them (per-page XML, an RGB thumbnail,
/// pyramid levels, label and overview pages).
struct TestPage {
    var width: Int
    var height: Int
    var spp = 1
    var bits = 8
    var sampleFormat = 1              // 1 uint, 3 float
    var subfile: UInt32 = 0           // NewSubfileType (1 = reduced resolution)
    var description: String?
    var pixelsPerCm: Double?          // XResolution = YResolution, ResolutionUnit = centimetre
    var data: [UInt8]                 // width*height*spp samples, little endian, contig

    /// One channel of 8-bit values v(x, y) = (x + 3y + 17c) & 0xFF.
    static func u8(_ w: Int, _ h: Int, c: Int, _ description: String?) -> TestPage {
        var d = [UInt8](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { d[y * w + x] = UInt8((x + 3 * y + 17 * c) & 0xFF) } }
        return TestPage(width: w, height: h, description: description, data: d)
    }

    static func f32(_ w: Int, _ h: Int, c: Int, _ description: String?) -> TestPage {
        var d: [UInt8] = []
        d.reserveCapacity(w * h * 4)
        for y in 0..<h { for x in 0..<w { withUnsafeBytes(of: Float(x) * 0.5 + Float(y) + Float(c) * 100) { d += $0 } } }
        return TestPage(width: w, height: h, bits: 32, sampleFormat: 3, description: description, data: d)
    }

    static func rgb(_ w: Int, _ h: Int, _ description: String?) -> TestPage {
        TestPage(width: w, height: h, spp: 3, description: description, data: [UInt8](repeating: 90, count: w * h * 3))
    }
}

/// Little-endian classic TIFF, one strip per page, pages in the given order.
func buildTIFF(_ pages: [TestPage]) -> [UInt8] {
    var b: [UInt8] = [0x49, 0x49, 42, 0, 0, 0, 0, 0]
    func put32(_ v: UInt32, at k: Int) { for i in 0..<4 { b[k + i] = UInt8((v >> (8 * UInt32(i))) & 0xFF) } }
    func align() { if b.count % 2 == 1 { b.append(0) } }
    var linkAt = 4                      // where the offset of the next IFD goes
    for pg in pages {
        align()
        let dataOff = b.count; b += pg.data; align()
        var descOff = 0, descLen = 0
        if let d = pg.description { descOff = b.count; let u = Array(d.utf8) + [0]; descLen = u.count; b += u; align() }
        let bpsOff = b.count; for _ in 0..<pg.spp { b += [UInt8(pg.bits), 0] }
        let sfOff = b.count; for _ in 0..<pg.spp { b += [UInt8(pg.sampleFormat), 0] }
        var resOff = 0
        if let r = pg.pixelsPerCm {
            resOff = b.count
            let num = UInt32(r * 1000), den: UInt32 = 1000
            for _ in 0..<2 { for v in [num, den] { for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } } }
        }
        align()
        // (tag, type, count, value or offset); SHORT values left-justified
        var e: [(UInt16, UInt16, UInt32, UInt32)] = [
            (254, 4, 1, pg.subfile), (256, 4, 1, UInt32(pg.width)), (257, 4, 1, UInt32(pg.height)),
            (258, 3, UInt32(pg.spp), pg.spp == 1 ? UInt32(pg.bits) : UInt32(bpsOff)),
            (259, 3, 1, 1), (262, 3, 1, pg.spp == 3 ? 2 : 1),
            (273, 4, 1, UInt32(dataOff)), (277, 3, 1, UInt32(pg.spp)), (278, 4, 1, UInt32(pg.height)),
            (279, 4, 1, UInt32(pg.data.count)), (284, 3, 1, 1),
            (339, 3, UInt32(pg.spp), pg.spp == 1 ? UInt32(pg.sampleFormat) : UInt32(sfOff)),
        ]
        if pg.description != nil { e.append((270, 2, UInt32(descLen), UInt32(descOff))) }
        if pg.pixelsPerCm != nil { e += [(282, 5, 1, UInt32(resOff)), (283, 5, 1, UInt32(resOff + 8)), (296, 3, 1, 3)] }
        e.sort { $0.0 < $1.0 }
        let ifd = b.count
        put32(UInt32(ifd), at: linkAt)
        b += [UInt8(e.count & 0xFF), UInt8(e.count >> 8)]
        for (tag, type, count, v) in e {
            b += [UInt8(tag & 0xFF), UInt8(tag >> 8), UInt8(type & 0xFF), UInt8(type >> 8)]
            for i in 0..<4 { b.append(UInt8((count >> (8 * UInt32(i))) & 0xFF)) }
            for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) }
        }
        linkAt = b.count
        b += [0, 0, 0, 0]
    }
    return b
}

/// A QPI page description as Akoya writes it (the `utf-16` in the declaration is what the
/// files say; the bytes are ASCII/UTF-8).
func qpiXML(type: String = "FullResolution", name: String? = nil, biomarker: String? = nil, extra: String = "") -> String {
    var s = "<?xml version=\"1.0\" encoding=\"utf-16\"?>\r\n<PerkinElmer-QPI-ImageDescription>\r\n"
    s += "  <DescriptionVersion>2</DescriptionVersion>\r\n  <AcquisitionSoftware>Test</AcquisitionSoftware>\r\n"
    s += "  <ImageType>\(type)</ImageType>\r\n  <SlideID>S1</SlideID>\r\n  <Barcode />\r\n"
    if let name { s += "  <Name>\(name)</Name>\r\n" }
    if let biomarker { s += biomarker.isEmpty ? "  <Biomarker />\r\n" : "  <Biomarker>\(biomarker)</Biomarker>\r\n" }
    s += "  <Color>255,0,0</Color>\r\n  <Objective>20x</Objective>\r\n" + extra
    s += "  <ValidationCode>ABC</ValidationCode>\r\n</PerkinElmer-QPI-ImageDescription>"
    return s
}

final class QPTIFFTests: TempDirTestCase {
    func write(_ pages: [TestPage], _ name: String = "q.tif") throws -> String {
        let path = p(name)
        try Data(buildTIFF(pages)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// inForm component image form: `<Name>` only; page 0's spectral library (in `<ScanProfile>`)
    /// has deeper `<Name>` and `<Marker>` elements that are not the page's name.
    func testNameOnly() throws {
        let library = """
          <ScanProfile>
            <root s_v="1" ref="ref0" subtype="SpectralLibraryElement"><V>3</V><Marker />
              <Stain ref="ref1" subtype="Stain"><Name>Not this one</Name><Notes></Notes></Stain>
            </root>
          </ScanProfile>\r\n
        """
        let names = ["CD8 (Opal 540)", "DAPI", "Autofluorescence"]
        var pages = names.enumerated().map { TestPage.f32(21, 13, c: $0.offset, qpiXML(name: $0.element, extra: $0.offset == 0 ? library : "")) }
        pages.append(.rgb(5, 3, qpiXML(type: "Thumbnail")))
        let r = try ImageReader(path: try write(pages))
        XCTAssertEqual(r.info.channelNames, names)
        XCTAssertEqual(r.info.channels, 3)
        XCTAssertEqual(r.info.pixelType, .float32)
        let dapi = try r.readChannel(1)
        XCTAssertEqual(dapi[2 * 21 + 4], 4 * 0.5 + 2 + 100)
    }

    /// PhenoCycler/newer Akoya form: `<Biomarker>` preferred when it holds a marker, else `<Name>`.
    func testBiomarkerPreferredOverName() throws {
        let pages = [
            TestPage.u8(16, 9, c: 0, qpiXML(name: "Opal 520", biomarker: "CD8")),
            TestPage.u8(16, 9, c: 1, qpiXML(name: "DAPI", biomarker: "")),            // <Biomarker />
            TestPage.u8(16, 9, c: 2, qpiXML(name: "Cy5", biomarker: "  --  ")),       // a placeholder
            TestPage.u8(16, 9, c: 3, qpiXML(name: "Opal 690", biomarker: "PanCK")),
        ]
        let r = try ImageReader(path: try write(pages))
        XCTAssertEqual(r.info.channelNames, ["CD8", "DAPI", "Cy5", "PanCK"])
        XCTAssertEqual(r.info.pixelType, .uint8)
    }

    /// A scan's page list: full-resolution channels, the RGB thumbnail, the reduced-resolution
    /// levels of every channel, then overview and label images. Only the full-resolution pages are
    /// channels, even when a non-channel page has the channels' size and type (the overview here)
    /// or is not flagged reduced in NewSubfileType (the second pyramid level here).
    func testThumbnailPyramidOverviewAndLabelAreSkipped() throws {
        let w = 40, h = 24
        var pages = [TestPage.u8(w, h, c: 0, qpiXML(name: "DAPI", biomarker: "DAPI")),
                     TestPage.u8(w, h, c: 1, qpiXML(name: "Cy5", biomarker: "CD20"))]
        pages.append(.rgb(10, 6, qpiXML(type: "Thumbnail")))
        for level in 1...2 {
            for c in 0..<2 {
                var pg = TestPage.u8(w >> level, h >> level, c: c, qpiXML(type: "ReducedResolution", name: c == 0 ? "DAPI" : "Cy5"))
                pg.subfile = level == 1 ? 1 : 0
                pages.append(pg)
            }
        }
        pages.append(TestPage.u8(w, h, c: 9, qpiXML(type: "Overview")))   // same size and type as a channel
        pages.append(.rgb(12, 8, qpiXML(type: "Label")))
        pages.append(TestPage.u8(w, h, c: 8, qpiXML(type: "Macro")))
        let r = try ImageReader(path: try write(pages))
        XCTAssertEqual(r.info.channelNames, ["DAPI", "CD20"])
        XCTAssertEqual(r.info.width, w); XCTAssertEqual(r.info.height, h)
        let px = try r.readChannel(1)
        XCTAssertEqual(px[5 * w + 7], Float((7 + 15 + 17) & 0xFF))
        XCTAssertEqual(px.count, w * h)
    }

    /// The pixel size where the XML gives it (PixelSizeMicrons in the scan profile, or at the top
    /// level), before the resolution tags; the tags when the XML has none.
    func testPixelSizeFromXMLThenResolutionTags() throws {
        let profile = "  <ScanProfile><root><PixelSizeMicrons>0.4977</PixelSizeMicrons><Magnification>20</Magnification></root></ScanProfile>\r\n"
        var a = TestPage.u8(8, 8, c: 0, qpiXML(name: "DAPI", extra: profile))
        a.pixelsPerCm = 10_000        // 1 µm/px: the XML wins
        var b = TestPage.u8(8, 8, c: 1, qpiXML(name: "FITC"))
        b.pixelsPerCm = 10_000
        let r = try ImageReader(path: try write([a, b], "xml.tif"))
        XCTAssertEqual(r.info.physicalSizeX ?? 0, 0.4977, accuracy: 1e-9)
        XCTAssertEqual(r.info.physicalSizeY ?? 0, 0.4977, accuracy: 1e-9)

        var top = TestPage.u8(8, 8, c: 0, qpiXML(name: "DAPI", extra: "  <ResolutionMicrons>0.325</ResolutionMicrons>\r\n"))
        top.pixelsPerCm = 10_000
        XCTAssertEqual(try ImageReader(path: try write([top], "top.tif")).info.physicalSizeX ?? 0, 0.325, accuracy: 1e-9)

        var c = TestPage.u8(8, 8, c: 0, qpiXML(name: "DAPI"))
        c.pixelsPerCm = 20_000        // 0.5 µm/px from the tags
        let rc = try ImageReader(path: try write([c], "tags.tif"))
        XCTAssertEqual(rc.info.physicalSizeX ?? 0, 0.5, accuracy: 1e-6)
        XCTAssertNil(try ImageReader(path: try write([TestPage.u8(8, 8, c: 0, qpiXML(name: "DAPI"))], "none.tif")).info.physicalSizeX)
    }

    /// Malformed XML never crashes: the page keeps its place by geometry and is named chN.
    func testMalformedDescriptionsFallBackToChannelNumbers() throws {
        let good = qpiXML(name: "DAPI")
        let bad = [
            String(good.prefix(good.count - 20)),                                        // truncated
            good.replacingOccurrences(of: "</Name>", with: "</Nam>"),                    // unbalanced
            good.replacingOccurrences(of: "<Objective>", with: "<Objective attr=\"x>"),  // unterminated quote
            "<PerkinElmer-QPI-ImageDescription><Name>A<Name>",
            "PerkinElmer-QPI-ImageDescription <<<>>> &&& \u{0}",
            "<PerkinElmer-QPI-ImageDescription/>",
            "<Other><PerkinElmer-QPI-ImageDescription><Name>X</Name></PerkinElmer-QPI-ImageDescription></Other>",
        ]
        for (i, x) in bad.enumerated() {
            let page = QPI.parse(x)
            XCTAssertTrue(page == nil || page?.channelName == nil, "case \(i): \(String(describing: page))")
        }
        // all pages malformed: ch0.. names, the data still reads
        let r = try ImageReader(path: try write([TestPage.u8(9, 5, c: 0, bad[0]), TestPage.u8(9, 5, c: 1, bad[1])], "bad.tif"))
        XCTAssertEqual(r.info.channelNames, ["ch0", "ch1"])
        XCTAssertEqual(try r.readChannel(1)[3], Float(3 + 17))
        // one page malformed: the others keep their names
        let m = try ImageReader(path: try write([TestPage.u8(9, 5, c: 0, good), TestPage.u8(9, 5, c: 1, bad[0]),
                                                 TestPage.u8(9, 5, c: 2, qpiXML(name: "FITC"))], "mixed.tif"))
        XCTAssertEqual(m.info.channelNames, ["DAPI", "ch1", "FITC"])
    }

    /// Every page is a thumbnail or pyramid level: refused with one line, not a crash.
    func testNoFullResolutionPageIsRefused() throws {
        let path = try write([.rgb(10, 6, qpiXML(type: "Thumbnail")), TestPage.u8(8, 8, c: 0, qpiXML(type: "ReducedResolution", name: "DAPI"))])
        XCTAssertThrowsError(try ImageReader(path: path)) { assertOneLine($0, contains: "full-resolution") }
    }

    /// Comments, CDATA, entities, attributes with '>' in quotes, a byte-order mark, and the
    /// ScanProfile's own elements do not confuse the parser.
    func testParserDetails() {
        let xml = "\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-16\"?>\n<!-- written by a test -->\n"
            + "<PerkinElmer-QPI-ImageDescription a=\"x>y\"><ImageType> FullResolution </ImageType>"
            + "<ScanProfile><root><Name>Stain</Name><Biomarker>Wrong</Biomarker><ImageType>Thumbnail</ImageType></root></ScanProfile>"
            + "<Name><![CDATA[PD-L1 <clone>]]></Name><Biomarker>CD8 &amp; CD3</Biomarker><Empty/></PerkinElmer-QPI-ImageDescription>\n"
        let page = QPI.parse(xml)
        XCTAssertEqual(page?.imageType, "FullResolution")
        XCTAssertEqual(page?.name, "PD-L1 <clone>")
        XCTAssertEqual(page?.biomarker, "CD8 & CD3")
        XCTAssertEqual(page?.channelName, "CD8 & CD3")
        XCTAssertEqual(page?.isFullResolution, true)
        XCTAssertNil(QPI.parse("<OME><Image/></OME>"), "not QPI")
        XCTAssertEqual(QPI.parse(qpiXML(type: "reducedresolution", name: "DAPI"))?.isFullResolution, false)
    }

    func testDuplicateNamesAreMadeUnique() {
        XCTAssertEqual(QPI.uniqueNames(["DAPI", "CD3", nil, "dapi", "DAPI"]), ["DAPI", "CD3", "ch2", "dapi (2)", "DAPI (3)"])
    }

    /// The real inForm component image (phenoptr test data): five named float32 components, the
    /// RGB thumbnail left out, the pixel size from the centimetre resolution tags.
    func testVectraComponentImage() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path
            + "/Data/vectra-5plex/FIHC4__0929309_HP_IM3_2_component_data.tif"
        let r = try ImageReader(path: path)
        XCTAssertEqual(r.info.channelNames, ["Alexa 594", "Cy3", "Cy5", "DAPI", "FITC"])
        XCTAssertEqual(r.info.width, 348); XCTAssertEqual(r.info.height, 260)
        XCTAssertEqual(r.info.pixelType, .float32)
        XCTAssertEqual(r.info.physicalSizeX ?? 0, 1e4 * 213_523 / 4_294_967_295, accuracy: 1e-4)
        let dapi = try r.readChannel(3)
        XCTAssertGreaterThan(dapi.max() ?? 0, 1, "DAPI has signal")
    }
}
