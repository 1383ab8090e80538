import XCTest
import EpipeKernels

/// The one CSV reader: quotes, line ends, the byte-order mark.
final class CSVTests: XCTestCase {
    func testQuotedFields() {
        XCTAssertEqual(CSV.parse("a,\"b,\"\"c\"\"\",,d\n"), [["a", "b,\"c\"", "", "d"]])
        XCTAssertEqual(CSV.parse("\"two\nlines\",x\n"), [["two\nlines", "x"]], "a line break inside quotes is data")
        XCTAssertEqual(CSV.parse("\"ab\"c,d"), [["abc", "d"]], "text after the closing quote is kept")
        XCTAssertEqual(CSV.parse("a\"b,c"), [["a\"b", "c"]], "a quote inside an unquoted field is a character")
        XCTAssertEqual(CSV.parse("\"\",x"), [["", "x"]])
    }

    func testLineEndsAndBlankLines() {
        XCTAssertEqual(CSV.parse("h1,h2\r\n1,2\r\n3,4\r\n"), [["h1", "h2"], ["1", "2"], ["3", "4"]], "CRLF")
        XCTAssertEqual(CSV.parse("h\r1\r2"), [["h"], ["1"], ["2"]], "lone CR, last line without a line end")
        XCTAssertEqual(CSV.parse("h\n\n1\n"), [["h"], [""], ["1"]], "a blank line is one empty field")
        XCTAssertEqual(CSV.parse("a,\n"), [["a", ""]])
        XCTAssertEqual(CSV.parse(""), [])
        XCTAssertEqual(CSV.parse("\"x\r\ny\"\r\n"), [["x\r\ny"]], "CRLF inside quotes is kept")
    }

    func testByteOrderMarkIsDropped() {
        XCTAssertEqual(CSV.parse("\u{FEFF}marker_name,cycle\nDAPI,1\n"), [["marker_name", "cycle"], ["DAPI", "1"]])
        XCTAssertEqual(CSV.parse("x,\u{FEFF}y"), [["x", "\u{FEFF}y"]], "only at the start of the text")
    }
}
