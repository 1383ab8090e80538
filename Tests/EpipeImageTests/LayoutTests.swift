import Foundation
import XCTest
import CTIFF
@testable import EpipeImage

/// Files written by libtiff itself in every layout the reader must support.
final class LayoutTests: TempDirTestCase {
    func check(_ f: LibTIFFFile, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = p("layout.tif")
        try? FileManager.default.removeItem(atPath: path)
        try f.write(path)
        let r = try ImageReader(path: path)
        XCTAssertEqual(r.info.width, f.width, label, file: file, line: line)
        XCTAssertEqual(r.info.height, f.height, label, file: file, line: line)
        XCTAssertEqual(r.info.channels, f.nchan, label, file: file, line: line)
        let wantType: PixelType = ["u8": .uint8, "u16": .uint16, "u32": .uint32, "f32": .float32][f.type]!
        XCTAssertEqual(r.info.pixelType, wantType, label, file: file, line: line)
        for c in 0..<f.nchan {
            let want = Pattern.plane(f.type, c: c, w: f.width, h: f.height)
            if f.type == "u32" {
                XCTAssertEqual(try r.readChannelUInt32(c), want.map { UInt32($0) }, "\(label) c\(c)", file: file, line: line)
            } else {
                assertEqualPlanes(try r.readChannel(c), want, "\(label) c\(c)", file: file, line: line)
            }
        }
    }

    func testAllLayouts() throws {
        var n = 0
        for tiled in [false, true] {
            for comp: UInt16 in [1, 5, 8] {
                for type in ["u8", "u16", "u32", "f32"] {
                    for big in [false, true] {
                        for arrangement in ["pages", "separate", "contig"] {
                            var f = LibTIFFFile()
                            f.type = type
                            f.compression = comp
                            f.tile = tiled ? 16 : 0
                            f.rowsPerStrip = 7
                            f.bigtiff = big
                            f.onePage = arrangement != "pages"
                            f.separate = arrangement == "separate"
                            // predictor on half of the compressed cases
                            if comp != 1 && (n % 2 == 0) { f.predictor = type == "f32" ? 3 : 2 }
                            // libtiff 4.5 writes big-endian + floating-point predictor wrongly (tifffile
                            // agrees with our reading), so that combination is little-endian only
                            f.bigEndian = n % 3 == 0 && f.predictor != 3
                            try check(f, "tiled=\(tiled) comp=\(comp) \(type) big=\(big) \(arrangement) pred=\(f.predictor) be=\(f.bigEndian)")
                            n += 1
                        }
                    }
                }
            }
        }
        XCTAssertEqual(n, 144)
    }

    func testOtherCodecsIfConfigured() throws {
        for comp: UInt16 in [50000 /* zstd */, 34925 /* lzma */, 32773 /* packbits */] where TIFFIsCODECConfigured(comp) != 0 {
            var f = LibTIFFFile(); f.compression = comp; f.tile = 16
            try check(f, "codec \(comp)")
        }
    }

    func testSingleStripAndOddSizes() throws {
        try check(LibTIFFFile(width: 1, height: 1, nchan: 1, rowsPerStrip: 1), "1x1")
        try check(LibTIFFFile(width: 257, height: 3, nchan: 2, rowsPerStrip: 100), "single strip")
        try check(LibTIFFFile(width: 33, height: 65, nchan: 2, type: "u8", compression: 8, tile: 32), "tile edges")
        // a large uncompressed single strip (libtiff chops it into small virtual strips)
        try check(LibTIFFFile(width: 600, height: 500, nchan: 1, type: "u16", rowsPerStrip: 500), "big single strip")
    }

    func testSkipsReducedAndOddPages() throws {
        var f = LibTIFFFile(); f.addReduced = true; f.addOdd = true; f.compression = 8
        try check(f, "reduced + odd pages")
        var g = LibTIFFFile(); g.addReduced = true; g.tile = 16; g.bigtiff = true
        try check(g, "tiled + reduced")
    }

    func testOMEDescriptionFromOtherWriter() throws {
        let xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!-- written by some other tool -->
        <ome:OME xmlns:ome="http://www.openmicroscopy.org/Schemas/OME/2016-06">
          <ome:Image ID="Image:0"><ome:Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeC="3" SizeT="1" SizeZ="1"
             SizeX="67" SizeY="45" PhysicalSizeX="650" PhysicalSizeXUnit="nm" PhysicalSizeY='0.65'>
            <ome:Channel ID="Channel:0:0" Name="DNA &amp; stuff"/>
            <ome:Channel ID="Channel:0:1" Name="CD45"><ome:LightPath/></ome:Channel>
            <ome:Channel ID="Channel:0:2"/>
          </ome:Pixels></ome:Image>
          <ome:Image ID="Image:1"><ome:Pixels SizeC="1"><ome:Channel Name="macro"/></ome:Pixels></ome:Image>
        </ome:OME>
        """
        var f = LibTIFFFile(); f.description = xml; f.tile = 16; f.compression = 8
        try check(f, "ome")
        let r = try ImageReader(path: p("layout.tif"))
        XCTAssertEqual(r.info.channelNames, ["DNA & stuff", "CD45", "ch2"])
        XCTAssertEqual(r.info.physicalSizeX!, 0.65, accuracy: 1e-12)
        XCTAssertEqual(r.info.physicalSizeY!, 0.65, accuracy: 1e-12)
    }

    func testOMEZStackKeepsFirstPlanePerChannel() throws {
        // 2 channels x 3 z-planes, order XYZCT: pages z0c0 z1c0 z2c0 z0c1 ...
        let xml = "<OME><Image><Pixels DimensionOrder=\"XYZCT\" SizeC=\"2\" SizeZ=\"3\" SizeT=\"1\"><Channel Name=\"a\"/><Channel Name=\"b\"/></Pixels></Image></OME>"
        var f = LibTIFFFile(); f.nchan = 6; f.description = xml
        try f.write(p("z.tif"))
        let r = try ImageReader(path: p("z.tif"))
        XCTAssertEqual(r.info.channels, 2)
        XCTAssertEqual(r.info.channelNames, ["a", "b"])
        assertEqualPlanes(try r.readChannel(1), Pattern.plane("u16", c: 3, w: f.width, h: f.height), "z-stack channel 1 = page 3")
    }

    func testOMEFirstImageOnlyWhenMoreSameSizePages() throws {
        // e.g. a second OME image of the same size stored after the first one's channels
        let xml = "<OME><Image><Pixels DimensionOrder=\"XYCZT\" SizeC=\"3\" SizeZ=\"1\" SizeT=\"1\"><Channel Name=\"a\"/><Channel Name=\"b\"/><Channel Name=\"c\"/></Pixels></Image><Image><Pixels SizeC=\"2\"/></Image></OME>"
        var f = LibTIFFFile(); f.nchan = 5; f.description = xml
        try f.write(p("two.tif"))
        let r = try ImageReader(path: p("two.tif"))
        XCTAssertEqual(r.info.channelNames, ["a", "b", "c"])
        XCTAssertEqual(r.preferredBandHeight, 7)
    }
}
