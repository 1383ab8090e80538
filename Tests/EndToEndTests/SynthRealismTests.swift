import XCTest
import Foundation
import EpipeCore
import EpipeImage

/// epipe-synth's realism flags through the binary.
final class SynthRealismTests: E2ECase {
    func slide(_ name: String, _ extra: [String]) throws -> [[Float]] {
        let dir = tmp + "/" + name
        let r = try exec("epipe-synth", ["--out", dir, "--width", "96", "--height", "80", "--channels", "2", "--seed", "4", "--quiet"] + extra)
        XCTAssertEqual(r.code, 0, r.err)
        let img = try ImageReader(path: dir + "/synth.ome.tif")
        return try (0..<2).map { try img.readChannel($0) }
    }

    func testRealismPresetAndFlags() throws {
        let plain = try slide("plain", [])
        XCTAssertEqual(try slide("none", ["--realism", "none"]), plain, "--realism none is today's output")
        let hard = try slide("hard", ["--realism", "hard"])
        XCTAssertLessThanOrEqual(hard[0].max() ?? 0, 255, "8-bit nuclear channel in the uint16 file")
        XCTAssertGreaterThan(hard[1].max() ?? 0, 255)
        // A flag after the preset wins: hard without the 8-bit quantisation.
        let wide = try slide("wide", ["--realism", "hard", "--no-eight-bit"])
        XCTAssertGreaterThan(wide[0].max() ?? 0, 255)
        XCTAssertNotEqual(try slide("tex", ["--chromatin-texture", "1"])[0], plain[0])
        for bad in [["--realism", "extreme"], ["--clumping", "2"], ["--out-of-focus", "-0.1"], ["--brightness-decades", "9"]] {
            let r = try exec("epipe-synth", ["--out", tmp + "/bad", "--width", "32", "--height", "32", "--quiet"] + bad)
            XCTAssertEqual(r.code, 2, bad.joined(separator: " "))
            XCTAssertFalse(Files.exists(tmp + "/bad"), "nothing written on bad flags")
        }
    }
}
