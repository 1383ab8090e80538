import XCTest
import Foundation
import EpipeCore

/// Bad input: exit 2, one line naming the file and the problem, nothing else touched.
final class BadInputTests: E2ECase {
    /// A minimal classic TIFF whose IFD claims width x height 16-bit pixels in one strip.
    static func tiffHeader(width: UInt32, height: UInt32) -> Data {
        var d = Data("II".utf8) + Data([42, 0, 8, 0, 0, 0])
        let tags: [(UInt16, UInt16, UInt32)] = [(256, 4, width), (257, 4, height), (258, 3, 16), (259, 3, 1), (262, 3, 1),
                                                  (273, 4, 200), (277, 3, 1), (278, 4, height), (279, 4, width &* height &* 2)]
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u16(UInt16(tags.count))
        for (t, ty, v) in tags { u16(t); u16(ty); u32(1); if ty == 3 { u16(UInt16(truncatingIfNeeded: v)); u16(0) } else { u32(v) } }
        u32(0)
        d.append(Data(count: 256))
        return d
    }

    func testBadScansAreRefusedAndNothingElseIsTouched() throws {
        let root = tmp + "/root", good = tmp + "/good"
        _ = try synth(good, size: 128, channels: 2)
        let first = try exec("epipe-ingest", ["--root", root, "--settle", "0", good])
        XCTAssertEqual(first.code, 0, first.err)
        let job = first.lines[0]
        func snapshot() throws -> [String: String] {
            var s: [String: String] = [:]
            let e = FileManager.default.enumerator(atPath: root)!
            while let rel = e.nextObject() as? String {
                let p = root + "/" + rel
                // logs and ingest's run reports (ingest/runs/, a record of every run, refused ones included) aside
                if !Files.isDirectory(p), !rel.hasSuffix(".log"), !rel.hasPrefix("ingest/runs/") { s[rel] = try Digest.sha256(file: p).hex }
            }
            return s
        }
        let before = try snapshot()
        let valid = try Data(contentsOf: URL(fileURLWithPath: try synth(tmp + "/v", size: 128, channels: 2)[0]))
        let cases: [(String, Data, String)] = [
            ("zero.tif", Data(), "empty"),
            ("text.tif", Data("hello, this is not an image\n".utf8), "TIFF"),
            ("truncated.tif", valid.prefix(valid.count / 2), ""),
            ("huge.tif", Self.tiffHeader(width: 1_000_000, height: 1_000_000), ""),
        ]
        for (name, bytes, word) in cases {
            let dir = tmp + "/bad-" + name
            try Files.mkdir(dir)
            try bytes.write(to: URL(fileURLWithPath: dir + "/" + name))
            let r = try exec("epipe-ingest", ["--root", root, "--settle", "0", dir])
            XCTAssertEqual(r.code, 2, "\(name): \(r.err)")
            XCTAssertEqual(r.out, "", name)
            let errs = r.errLines
            XCTAssertEqual(errs.count, 1, "\(name): one line on stderr: \(r.err)")
            XCTAssertTrue(errs.first?.contains(name) ?? false, "\(name): the line names the file: \(r.err)")
            if !word.isEmpty { XCTAssertTrue(r.err.lowercased().contains(word.lowercased()), "\(name): \(r.err)") }
            XCTAssertEqual(try snapshot(), before, "\(name): no job or file touched")
        }
        // A job name with ../ is refused before anything is written.
        let bad = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--name", "../evil", good])
        XCTAssertEqual(bad.code, 2)
        XCTAssertEqual(bad.errLines.count, 1, bad.err)
        XCTAssertTrue(bad.err.contains("../evil"), bad.err)
        XCTAssertFalse(Files.exists(tmp + "/evil"))
        XCTAssertEqual(try snapshot(), before)

        // A job.json with an unknown schema version: exit 2, one line, the job is not touched.
        let other = try exec("epipe-ingest", ["--root", root, "--settle", "0", "--quiet", "--name", "second", try synth(tmp + "/g2", size: 128, channels: 2, seed: 9)[0]])
        let job2 = other.lines[0]
        var text = try String(contentsOfFile: job2 + "/job.json", encoding: .utf8)
        text = text.replacingOccurrences(of: "epipe.job/1", with: "epipe.job/7")
        try text.write(toFile: job2 + "/job.json", atomically: true, encoding: .utf8)
        let d = try exec("epipe-denoise", [job2])
        XCTAssertEqual(d.code, 2)
        XCTAssertEqual(d.errLines.count, 1, d.err)
        XCTAssertTrue(d.err.contains("job.json") && d.err.contains("epipe.job/7"), d.err)
        XCTAssertFalse(Files.exists(job2 + "/denoise"))
        // The good job still runs; a bad one beside it in the same call gives exit 2, the good one completes.
        let mixed = try exec("epipe-denoise", [job2, job])
        XCTAssertEqual(mixed.code, 2)
        XCTAssertEqual(mixed.lines, [job])
        XCTAssertEqual(try manifest(job, "denoise").status, .complete)
    }

    func testUsageErrorsExitTwo() throws {
        let r = try exec("epipe-denoise", ["--no-such-flag"])
        XCTAssertEqual(r.code, 2)
        let n = try exec("epipe-segment", [tmp + "/nope"])
        XCTAssertEqual(n.code, 2)
        XCTAssertTrue(n.err.contains(tmp + "/nope"), n.err)
        XCTAssertEqual(try exec("epipe-ingest", []).code, 2)
        let h = try exec("epipe-stats", ["--help"])
        XCTAssertEqual(h.code, 0)
        XCTAssertTrue(h.out.contains("--drain"))
    }
}
