import XCTest
@testable import EpipeSegment

/// cells.csv's format: MCQuant's columns in order, the extra statistics after them, one line per
/// present cell (a nucleus without a cell writes nothing; a cell without a nucleus has 0 nucleus
/// columns), and the parallel chunked formatting equal to the lines one by one.
final class CellsCSVTests: XCTestCase {
    func row(_ id: UInt32, area: Int, means: [Double]) -> CellRow {
        var r = CellRow(id: id, area: area, means: means)
        r.centroidX = 10.25; r.centroidY = 3; r.majorAxis = 4.5; r.minorAxis = 2; r.eccentricity = 0.5
        r.solidity = 1; r.extent = 0.75; r.orientation = -0.125
        r.medians = means.map { $0 - 1 }; r.stds = means.map { _ in 0.5 }; r.sums = means.map { $0 * Double(area) }
        return r
    }

    func testHeaderAndLines() {
        XCTAssertEqual(CellsCSV.header(["DAPI", "CD3,x"], stats: ["median"]),
                       "CellID,DAPI,\"CD3,x\",X_centroid,Y_centroid,Area,MajorAxisLength,MinorAxisLength,Eccentricity,Solidity,Extent,Orientation,"
                       + "DAPI_nucleus,\"CD3,x_nucleus\",DAPI_intensity_median,\"CD3,x_intensity_median\",DAPI_intensity_median_nucleus,\"CD3,x_intensity_median_nucleus\"\n")
        let cell = row(7, area: 12, means: [100.5, 2.0004]), nuc = row(7, area: 5, means: [200, 1])
        XCTAssertEqual(CellsCSV.line((7, cell, nuc), channels: 2, stats: []),
                       "7,100.5,2,10.25,3,12,4.5,2,0.5,1,0.75,-0.125,200,1\n")
        XCTAssertEqual(CellsCSV.line((7, cell, nil), channels: 2, stats: ["median", "sum"]),
                       "7,100.5,2,10.25,3,12,4.5,2,0.5,1,0.75,-0.125,0,0,99.5,1,0,0,1206,24.005,0,0\n", "no nucleus: its columns are 0")
        XCTAssertNil(CellsCSV.line((7, nil, nuc), channels: 2, stats: []), "a nucleus without a cell writes no line")
        XCTAssertNil(CellsCSV.line((7, row(7, area: 0, means: [0, 0]), nuc), channels: 2, stats: []))
        let many = (1...5000).map { i -> CellRowJoiner.Joined in (UInt32(i), row(UInt32(i), area: i % 9, means: [Double(i) / 3, 1]), nil) }
        XCTAssertEqual(CellsCSV.format(many, channels: 2, stats: ["std"]), many.compactMap { CellsCSV.line($0, channels: 2, stats: ["std"]) }.joined())
    }
}
