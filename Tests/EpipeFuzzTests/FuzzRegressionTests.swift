import Foundation
import XCTest
import EpipeFuzzTargets

/// The fuzz targets' inputs replayed through the same entry functions the libFuzzer drivers call,
/// in the normal build (no sanitizer), so `make test` catches a parser that breaks again:
/// - every regression input (Tests/Fuzz/<target>/regressions/NAME, an input a fuzzer once found to
///   crash, hang or exhaust memory) must give the outcome its NAME.expect file names (its first
///   line is a prefix of the outcome, e.g. "refused: " and the start of the message; further lines
///   are fragments the outcome must contain), quickly;
/// - every seed (Tests/Fuzz/<target>/corpus, small real files) must be read without a defect, and the
///   seeds that are valid files of the target's kind must be accepted.
final class FuzzRegressionTests: XCTestCase {
    static let fuzzDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz").path

    func files(_ target: FuzzTarget, _ kind: String) -> [String] {
        let d = Self.fuzzDir + "/" + target.rawValue + "/" + kind
        return ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".expect") && $0 != "README.md" }
            .sorted().map { d + "/" + $0 }
    }

    func run(_ target: FuzzTarget, _ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> (FuzzOutcome, Double) {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let t0 = Date()
        let o = target.run(data)
        return (o, Date().timeIntervalSince(t0))
    }

    func checkRegressions(_ target: FuzzTarget, file: StaticString = #filePath, line: UInt = #line) throws {
        for path in files(target, "regressions") {
            let name = (path as NSString).lastPathComponent
            guard let expect = try? String(contentsOfFile: path + ".expect", encoding: .utf8) else {
                XCTFail("\(target.rawValue)/regressions/\(name) has no \(name).expect saying what it must give", file: file, line: line)
                continue
            }
            let (o, secs) = try run(target, path)
            let lines = expect.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            XCTAssertFalse(o.isDefect, "\(target.rawValue)/regressions/\(name): \(o)", file: file, line: line)
            if let prefix = lines.first {
                XCTAssertTrue(o.description.hasPrefix(prefix), "\(target.rawValue)/regressions/\(name): expected \"\(prefix)...\", got \(o)", file: file, line: line)
            }
            for fragment in lines.dropFirst() {
                XCTAssertTrue(o.description.contains(fragment), "\(target.rawValue)/regressions/\(name): expected \"\(fragment)\" in \(o)", file: file, line: line)
            }
            XCTAssertLessThan(secs, 5, "\(target.rawValue)/regressions/\(name) took \(secs) s", file: file, line: line)
        }
    }

    /// Seeds: no defect; `mustAccept(name)` ones accepted.
    func checkSeeds(_ target: FuzzTarget, atLeast n: Int, mustAccept: (String) -> Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let seeds = files(target, "corpus")
        XCTAssertGreaterThanOrEqual(seeds.count, n, "seeds of \(target.rawValue)", file: file, line: line)
        for path in seeds {
            let name = (path as NSString).lastPathComponent
            let (o, secs) = try run(target, path)
            XCTAssertFalse(o.isDefect, "\(target.rawValue)/corpus/\(name): \(o)", file: file, line: line)
            if mustAccept(name), case .accepted = o {} else if mustAccept(name) {
                XCTFail("\(target.rawValue)/corpus/\(name) is a valid file but was not accepted: \(o)", file: file, line: line)
            }
            XCTAssertLessThan(secs, 5, "\(target.rawValue)/corpus/\(name) took \(secs) s", file: file, line: line)
        }
    }

    func testTIFFSeedsAreReadAndRegressionsRefused() throws {
        try checkSeeds(.tiff, atLeast: 15) { _ in true }
        try checkRegressions(.tiff)
    }

    func testOMEXMLSeedsAndRegressions() throws {
        try checkSeeds(.omexml, atLeast: 8) { _ in true }
        try checkRegressions(.omexml)
    }

    func testMarkersSeedsAndRegressions() throws {
        try checkSeeds(.markers, atLeast: 4) { _ in true }
        try checkRegressions(.markers)
    }

    func testManifestSeedsAndRegressions() throws {
        try checkSeeds(.manifest, atLeast: 8) { _ in true }
        try checkRegressions(.manifest)
    }

    func testCSVSeedsAndRegressions() throws {
        // the Vectra table is tab-separated: refused with one line, which is right
        try checkSeeds(.csv, atLeast: 10) { !$0.hasPrefix("vectra") }
        try checkRegressions(.csv)
    }

    /// The entry functions tell a refusal from an acceptance, and catch a refusal that is not one line.
    func testOutcomesAreClassified() throws {
        XCTAssertEqual(FuzzTarget.tiff.run(Data()).description.prefix(9), "refused: ")
        guard case .refused(let m) = FuzzTarget.tiff.run(Data("II*\0garbage".utf8)) else { return XCTFail("garbage TIFF not refused") }
        XCTAssertFalse(m.contains("\n"))
        guard case .accepted = FuzzTarget.markers.run(Data("marker_name\nDAPI\nCD3\n".utf8)) else { return XCTFail("markers.csv not accepted") }
        guard case .refused(let r) = FuzzTarget.markers.run(Data("name\nDAPI\n".utf8)), r.contains("marker_name") else { return XCTFail("markers.csv without marker_name not refused") }
        guard case .refused = FuzzTarget.manifest.run(Data("{\"schema\": \"epipe.job/9\"}".utf8)) else { return XCTFail("unknown schema not refused") }
    }
}
