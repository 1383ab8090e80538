import XCTest
import Foundation
@testable import EpipeCore
import EpipeKernels

/// The column reader and the row rewriter of large tables agree with CSV.parse / CSVTable on the
/// cases that trip CSV readers, and refuse a ragged row with its line number.
final class CSVStreamTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "csvstream-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ s: String) throws -> String { let p = dir + "/t.csv"; try s.write(toFile: p, atomically: true, encoding: .utf8); return p }

    func testColumnsAndQuotes() throws {
        let p = try write("CellID,\"CD3\",name,X\r\n1,2.5,\"a, \"\"b\"\"\",10\r\n\r\n2, 7 ,\"two\nlines\",\n3,x,c,1e3")
        let (h, first) = try CSVStream.head(p)
        XCTAssertEqual(h, ["CellID", "CD3", "name", "X"]); XCTAssertEqual(first, ["1", "2.5", "a, \"b\"", "10"])
        let t = try CSVColumns.read(p, numbers: ["CD3", "X", "nope"], strings: ["CellID", "name"])
        XCTAssertEqual(t.count, 3)
        XCTAssertEqual(t.numbers["CD3"]![0], 2.5); XCTAssertEqual(t.numbers["CD3"]![1], 7); XCTAssertTrue(t.numbers["CD3"]![2].isNaN)
        XCTAssertEqual(t.numbers["X"]![0], 10); XCTAssertTrue(t.numbers["X"]![1].isNaN); XCTAssertEqual(t.numbers["X"]![2], 1000)
        XCTAssertNil(t.numbers["nope"])
        XCTAssertEqual(t.strings["name"]!, ["a, \"b\"", "two\nlines", "c"])
        // the same fields as CSV.parse on the whole text
        let parsed = EpipeKernels.CSV.parse(try String(contentsOfFile: p, encoding: .utf8)).filter { !($0.count == 1 && $0[0].isEmpty) }
        XCTAssertEqual(parsed.dropFirst().map { $0[2] }, t.strings["name"]!)
    }

    func testRewriteKeepsBytesAndDropsColumns() throws {
        let p = try write("CellID,cluster,CD3,phenotype\n1,4,\"2.50\",old\n2,5,3,old\n")
        let t = try CSVColumns.read(p, numbers: [], strings: [])
        let out = dir + "/o.csv"
        try t.rewrite(to: out, drop: ["cluster", "phenotype"], appending: ["cluster", "phenotype"]) { ["\($0)", $0 == 0 ? "T, cells" : "B"] }
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8), "CellID,CD3,cluster,phenotype\n1,\"2.50\",0,\"T, cells\"\n2,3,1,B\n")
    }

    func testLongRecordsAndRaggedRows() throws {
        // a record longer than the 4 MiB read buffer, and many rows across buffer boundaries
        let long = String(repeating: "x", count: 5 << 20)
        var s = "id,v,text\n"
        for i in 0..<200_000 { s += "\(i),\(Double(i) / 4),\(i == 150_000 ? long : "t")\n" }
        let p = try write(s)
        let t = try CSVColumns.read(p, numbers: ["v"], strings: ["text"])
        XCTAssertEqual(t.count, 200_000)
        XCTAssertEqual(t.numbers["v"]![199_999], 199_999.0 / 4)
        XCTAssertEqual(t.strings["text"]![150_000].count, 5 << 20)
        let bad = try write("a,b\n1,2\n3\n")
        XCTAssertThrowsError(try CSVColumns.read(bad, numbers: ["a"], strings: [])) { XCTAssertTrue("\($0)".contains("line 3 has 1 fields, the header has 2"), "\($0)") }
        XCTAssertThrowsError(try CSVStream.head(try write(""))) { XCTAssertTrue("\($0)".contains("empty CSV"), "\($0)") }
    }
}
