import Foundation
import XCTest
import CTIFFShim
@testable import EpipeImage

/// A fresh temporary folder per test case, removed at tearDown.
class TempDirTestCase: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "epipe-image-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func p(_ name: String) -> String { dir + "/" + name }
}

enum Pattern {
    /// Deterministic test value for (channel, x, y), exactly representable in the given type.
    static func value(_ pt: String, c: Int, x: Int, y: Int) -> Double {
        switch pt {
        case "u8": return Double((x &* 7 &+ y &* 13 &+ c &* 31) & 0xFF)
        case "u16": return Double((x &* 131 &+ y &* 977 &+ c &* 4099) & 0xFFFF)
        case "u32": return Double(UInt32(truncatingIfNeeded: x &* 2_654_435 &+ y &* 40_503 &+ c &* 1_000_003 &+ (((x + y) % 5 == 0) ? 3_000_000_000 : 0)))
        case "f32": return Double(Float(sin(Double(x) * 0.37 + Double(c)) * 1000 + Double(y) * 0.25 - 17.125))
        default: fatalError(pt)
        }
    }

    static func plane(_ pt: String, c: Int, w: Int, h: Int) -> [Double] {
        var out = [Double](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { out[y * w + x] = value(pt, c: c, x: x, y: y) } }
        return out
    }

    /// Raw native-order bytes of `nchan` planes, plane-major.
    static func rawPlanes(_ pt: String, nchan: Int, w: Int, h: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for c in 0..<nchan {
            for v in plane(pt, c: c, w: w, h: h) {
                switch pt {
                case "u8": bytes.append(UInt8(v))
                case "u16": withUnsafeBytes(of: UInt16(v)) { bytes += $0 }
                case "u32": withUnsafeBytes(of: UInt32(v)) { bytes += $0 }
                case "f32": withUnsafeBytes(of: Float(v)) { bytes += $0 }
                default: fatalError()
                }
            }
        }
        return bytes
    }

    static func bitsFormat(_ pt: String) -> (UInt16, UInt16) {
        switch pt {
        case "u8": return (8, 1)
        case "u16": return (16, 1)
        case "u32": return (32, 1)
        default: return (32, 3)
        }
    }
}

struct LibTIFFFile {
    var width = 67, height = 45, nchan = 3
    var type = "u16"
    var compression: UInt16 = 1
    var predictor: UInt16 = 1
    var tile: UInt32 = 0
    var rowsPerStrip: UInt32 = 7
    var bigtiff = false
    var bigEndian = false
    var onePage = false
    var separate = false
    var description: String? = nil
    var addReduced = false
    var addOdd = false

    func write(_ path: String) throws {
        var s = epipe_test_tiff_spec()
        s.width = UInt32(width); s.height = UInt32(height); s.nchan = UInt32(nchan)
        (s.bits, s.sample_format) = Pattern.bitsFormat(type)
        s.compression = compression; s.predictor = predictor
        s.tile = tile; s.rows_per_strip = rowsPerStrip
        s.bigtiff = bigtiff ? 1 : 0; s.big_endian = bigEndian ? 1 : 0
        s.one_page = onePage ? 1 : 0; s.separate = separate ? 1 : 0
        s.add_reduced_page = addReduced ? 1 : 0; s.add_odd_page = addOdd ? 1 : 0
        let data = Pattern.rawPlanes(type, nchan: nchan, w: width, h: height)
        var err = [CChar](repeating: 0, count: 512)
        let rc: Int32 = data.withUnsafeBytes { raw in
            if let description {
                return description.withCString { d in
                    s.description = d
                    return epipe_test_write_tiff(path, &s, raw.baseAddress, &err, 512)
                }
            }
            return epipe_test_write_tiff(path, &s, raw.baseAddress, &err, 512)
        }
        if rc != 0 { throw ImageError(path: path, message: "test writer: " + String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
    }
}

/// Classic little-endian TIFF with one IFD of the given (tag, type, value) entries, followed by `data`.
func craftTIFF(entries: [(UInt16, UInt16, UInt32)], data: [UInt8] = []) -> [UInt8] {
    var b: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0]
    func u16(_ v: UInt16) { b += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func u32(_ v: UInt32) { for i in 0..<4 { b.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }
    u16(UInt16(entries.count))
    for (tag, type, value) in entries.sorted(by: { $0.0 < $1.0 }) {
        u16(tag); u16(type); u32(1)
        if type == 3 { u16(UInt16(value)); u16(0) } else { u32(value) }
    }
    u32(0)
    return b + data
}

func assertEqualPlanes(_ got: [Float], _ want: [Double], _ msg: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(got.count, want.count, msg, file: file, line: line)
    for i in 0..<min(got.count, want.count) where Double(got[i]) != want[i] {
        XCTFail("\(msg): first mismatch at \(i): got \(got[i]) want \(want[i])", file: file, line: line)
        return
    }
}

func assertOneLine(_ e: Error, contains name: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let ie = e as? ImageError else { XCTFail("not an ImageError: \(e)", file: file, line: line); return }
    let d = ie.description
    XCTAssertFalse(d.contains("\n"), d, file: file, line: line)
    XCTAssertTrue(d.contains(name), "description lacks \(name): \(d)", file: file, line: line)
    XCTAssertTrue(d.contains(";"), "description lacks a remedy: \(d)", file: file, line: line)
}
