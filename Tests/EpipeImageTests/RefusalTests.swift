import Foundation
import XCTest
@testable import EpipeImage

final class RefusalTests: TempDirTestCase {
    func expectRefusal(_ path: String, maxPixels: Int = 20_000_000_000, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        let t0 = Date()
        XCTAssertThrowsError(try ImageReader(path: path, maxPixels: maxPixels), file: file, line: line) { e in
            assertOneLine(e, contains: (path as NSString).lastPathComponent, file: file, line: line)
            XCTAssertTrue("\(e)".contains(fragment), "expected '\(fragment)' in: \(e)", file: file, line: line)
        }
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2.0, "refusal must be quick", file: file, line: line)
    }

    func testZeroByteFile() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: p("empty.tif"), contents: Data()))
        expectRefusal(p("empty.tif"), "empty file")
    }

    func testTextFile() throws {
        try "cycle,marker_name\n1,DAPI\n".write(toFile: p("scan.tif"), atomically: true, encoding: .utf8)
        expectRefusal(p("scan.tif"), "not a TIFF file")
        try Data([0x89, 0x50, 0x4E, 0x47, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: p("png.tif")))
        expectRefusal(p("png.tif"), "not a TIFF file")
        try Data([0x49, 0x49, 42]).write(to: URL(fileURLWithPath: p("tiny.tif")))
        expectRefusal(p("tiny.tif"), "not a TIFF")
        try Data([0x49, 0x49, 42, 0, 8, 0, 0]).write(to: URL(fileURLWithPath: p("tiny2.tif")))
        expectRefusal(p("tiny2.tif"), "truncated")
    }

    func testMissingFileAndDirectory() throws {
        expectRefusal(p("nope.tif"), "cannot open")
        expectRefusal(dir, "directory")
    }

    func truncate(_ src: String, _ dst: String) throws {
        let d = try Data(contentsOf: URL(fileURLWithPath: src))
        try d.prefix(d.count / 2).write(to: URL(fileURLWithPath: dst))
    }

    func testTruncatedFiles() throws {
        // ours (IFDs at the end): half a file has no directory
        let w = try ImageWriter(path: p("ours.tif"), width: 200, height: 150, channelNames: ["a", "b", "c"], pixelType: .uint16, tileSize: 64)
        var g = SystemRandomNumberGenerator()
        for c in 0..<3 { try w.writeRows(channel: c, y0: 0, count: 150, (0..<30000).map { _ in Float(UInt16.random(in: 0...65535, using: &g)) }) }
        try w.finish()
        try truncate(p("ours.tif"), p("ours-cut.tif"))
        expectRefusal(p("ours-cut.tif"), "truncated")
        // libtiff-written striped multi-page: directories survive partly, data points past EOF
        try LibTIFFFile(width: 300, height: 200, nchan: 4, rowsPerStrip: 16).write(p("lt.tif"))
        try truncate(p("lt.tif"), p("lt-cut.tif"))
        expectRefusal(p("lt-cut.tif"), "truncated")
    }

    func testHugeHeaderRefusedWithoutAllocating() throws {
        for comp: UInt32 in [1, 8] {
            let bytes = craftTIFF(entries: [
                (256, 4, 1_000_000), (257, 4, 1_000_000), (258, 3, 16), (259, 3, comp), (262, 3, 1),
                (273, 4, 200), (277, 3, 1), (278, 4, 1_000_000), (279, 4, 16),
            ], data: [UInt8](repeating: 0, count: 120))
            let path = p("huge\(comp).tif")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            expectRefusal(path, "over the limit")
        }
    }

    func testMaxPixelsParameter() throws {
        try LibTIFFFile(width: 100, height: 100, nchan: 3).write(p("small.tif"))
        expectRefusal(p("small.tif"), maxPixels: 29_999, "over the limit")
        XCTAssertNoThrow(try ImageReader(path: p("small.tif"), maxPixels: 30_000))
    }

    func testStripPastEndOfFile() throws {
        let bytes = craftTIFF(entries: [
            (256, 4, 10), (257, 4, 10), (258, 3, 16), (259, 3, 1), (262, 3, 1),
            (273, 4, 1_000_000), (277, 3, 1), (278, 4, 10), (279, 4, 200),
        ])
        try Data(bytes).write(to: URL(fileURLWithPath: p("past.tif")))
        expectRefusal(p("past.tif"), "truncated")
    }

    func testZeroAndAbsurdDimensions() throws {
        let zero = craftTIFF(entries: [(256, 4, 0), (257, 4, 10), (258, 3, 16), (259, 3, 1), (262, 3, 1),
                                       (273, 4, 8), (277, 3, 1), (278, 4, 10), (279, 4, 1)])
        try Data(zero).write(to: URL(fileURLWithPath: p("zero.tif")))
        expectRefusal(p("zero.tif"), "zero")
        let absurd = craftTIFF(entries: [(256, 4, 50_000_000), (257, 4, 1), (258, 3, 8), (259, 3, 8), (262, 3, 1),
                                         (273, 4, 8), (277, 3, 1), (278, 4, 1), (279, 4, 1)])
        try Data(absurd).write(to: URL(fileURLWithPath: p("absurd.tif")))
        expectRefusal(p("absurd.tif"), "absurd")
        let onebit = craftTIFF(entries: [(256, 4, 8), (257, 4, 8), (258, 3, 1), (259, 3, 1), (262, 3, 1),
                                         (273, 4, 8), (277, 3, 1), (278, 4, 8), (279, 4, 8)], data: [UInt8](repeating: 0, count: 8))
        try Data(onebit).write(to: URL(fileURLWithPath: p("onebit.tif")))
        expectRefusal(p("onebit.tif"), "unsupported pixel format")
    }
}
