import XCTest
import Foundation
import EpipeCore
import EpipeImage

/// The real Vectra/inForm 5-plex field (Tests/Data/vectra-5plex, phenoptr test data) through
/// ingest, denoise and segment with default flags: the channel names come from each page's
/// PerkinElmer-QPI XML, DAPI is the nuclear channel by name, and the cell count is compared
/// with inForm's own segmentation of the same field.
final class VectraTests: E2ECase {
    static let data = Bin.packageRoot + "/Tests/Data/vectra-5plex/"
    static let component = data + "FIHC4__0929309_HP_IM3_2_component_data.tif"
    static let names = ["Alexa 594", "Cy3", "Cy5", "DAPI", "FITC"]
    /// inForm's cells on this field (rows of FIHC4__0929309_HP_IM3_2_cell_seg_data.txt).
    static let inFormCells = 270
    /// How far epipe's default count may be from inForm's, as a fraction of 270 (issue 8's target).
    /// Measured: 311 cells (+15 %) at the default diameter, 8 µm at 0.497 µm/px = 16.1 px (the
    /// field's own estimate, 10 px at confidence 0.32, is not trusted: mixed cell types); inForm's
    /// nuclei measure 15.6 px (median). At 7 µm (14 px) the count was 360-380 (+33-41 %); the
    /// earlier intensity recipe gave 401 (+48.5 %); with the channel names lost (channel 0, Alexa
    /// 594) the count was 12. Object F1 against inForm's nuclei is ~0.52 at 14-18 px.
    static let maxRelativeError = 0.25

    /// Object F1 at IoU > 0.5 (one-to-one) of two label images, and the number of true objects.
    static func objectF1(truth: [UInt32], pred: [UInt32]) -> (Double, Int) {
        var inter: [UInt64: Int] = [:], at: [UInt32: Int] = [:], ap: [UInt32: Int] = [:]
        for i in 0..<min(truth.count, pred.count) {
            let t = truth[i], p = pred[i]
            if t != 0 { at[t, default: 0] += 1 }
            if p != 0 { ap[p, default: 0] += 1 }
            if t != 0 && p != 0 { inter[UInt64(t) << 32 | UInt64(p), default: 0] += 1 }
        }
        var tp = 0
        for (k, n) in inter where Double(n) / Double(at[UInt32(k >> 32)]! + ap[UInt32(k & 0xFFFF_FFFF)]! - n) > 0.5 { tp += 1 }
        let prec = Double(tp) / Double(max(1, ap.count)), rec = Double(tp) / Double(max(1, at.count))
        return (prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0, at.count)
    }

    func ingest(_ file: String, name: String) throws -> String {
        let scans = tmp + "/scans-" + name
        try Files.mkdir(scans)
        try FileManager.default.copyItem(atPath: file, toPath: scans + "/" + name + ".tif")
        let r = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", scans])
        XCTAssertEqual(r.code, 0, r.err)
        return r.lines.first ?? ""
    }

    func testVectraComponentImageDefaultFlags() throws {
        let job = try ingest(Self.component, name: "vectra")
        let d = try exec("epipe-denoise", ["-q", job])
        XCTAssertEqual(d.code, 0, d.err)
        // the denoised OME-TIFF carries the names (its OME-XML) and the pixel size of the resolution tags
        let den = try ImageReader(path: job + "/denoise/image.ome.tif")
        XCTAssertEqual(den.info.channelNames, Self.names)
        XCTAssertEqual(den.info.physicalSizeX ?? 0, 0.497, accuracy: 0.001)
        let dm = try manifest(job, "denoise")
        XCTAssertEqual(Set(dm.metrics["per_channel"]?.objectValue?.keys.map { $0 } ?? []), Set(Self.names))

        let s = try exec("epipe-segment", ["-q", job])
        XCTAssertEqual(s.code, 0, s.err)
        let m = try manifest(job, "segment")
        XCTAssertEqual(m.params["nuclear"]?.stringValue, "auto", "default flags")
        XCTAssertEqual(m.metrics["nuclear_channel"]?.stringValue, "DAPI", "DAPI chosen by name")
        let log = try String(contentsOfFile: job + "/logs/segment.log", encoding: .utf8)
        XCTAssertTrue(log.contains("nuclear channel DAPI (#3)"), log)
        let header = try CSVTable.read(job + "/segment/cells.csv").header
        for n in Self.names { XCTAssertTrue(header.contains(n) && header.contains(n + "_nucleus"), "\(n) in \(header)") }

        // the diameter: the pixel size's prior (8 µm), the image's low-confidence estimate recorded beside it
        XCTAssertEqual(m.metrics["nucleus_diameter_source"]?.stringValue, "pixel-size")
        XCTAssertEqual(m.metrics["nucleus_diameter_px"]?.doubleValue ?? 0, 16.1, accuracy: 0.05)
        XCTAssertEqual(m.metrics["nucleus_diameter_prior_px"]?.doubleValue ?? 0, 16.1, accuracy: 0.05)
        XCTAssertLessThan(m.metrics["nucleus_diameter_confidence"]?.doubleValue ?? 1, 0.5)
        XCTAssertNotNil(m.metrics["nucleus_diameter_estimate_px"]?.doubleValue)
        XCTAssertTrue(log.contains("not confident enough"), log)

        let cells = m.metrics["cells"]?.intValue ?? -1
        let rel = Double(cells - Self.inFormCells) / Double(Self.inFormCells)
        let inFormRows = try String(contentsOfFile: Self.data + "FIHC4__0929309_HP_IM3_2_cell_seg_data.txt", encoding: .utf8)
            .split(separator: "\n").dropFirst().filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
        XCTAssertEqual(inFormRows, Self.inFormCells)
        print("vectra-5plex: epipe \(cells) cells with DAPI chosen by name, inForm \(Self.inFormCells) (\(String(format: "%+.1f", 100 * rel))%)")
        XCTAssertLessThanOrEqual(abs(rel), Self.maxRelativeError,
                                 "\(cells) cells vs inForm's \(Self.inFormCells): off by \(String(format: "%+.0f", 100 * rel))%, allowed ±\(Int(100 * Self.maxRelativeError))%")

        // against inForm's nuclei (page 1 of its seg maps): reported, not asserted
        let inForm = try ImageReader(path: Self.data + "FIHC4__0929309_HP_IM3_2_binary_seg_maps.tif").readChannelUInt32(1)
        let ours = try ImageReader(path: job + "/segment/nuclei.tif").readChannelUInt32(0)
        let (f1, nTruth) = Self.objectF1(truth: inForm, pred: ours)
        print("vectra-5plex: nuclei object F1 at IoU 0.5 against inForm's \(nTruth) nuclei: \(String(format: "%.3f", f1))")
        XCTAssertEqual(nTruth, Self.inFormCells)

        // --nuclear by name, any case, picks the same channel and the same nuclei
        for spec in ["DAPI", "dapi", "3"] {
            let r = try exec("epipe-segment", ["-q", "--force", "--nuclear", spec, job])
            XCTAssertEqual(r.code, 0, r.err)
            XCTAssertEqual(try manifest(job, "segment").metrics["nuclear_channel"]?.stringValue, "DAPI", spec)
            XCTAssertEqual(try manifest(job, "segment").metrics["cells"]?.intValue, cells, spec)
        }
    }

    /// The default nuclear channel is found by name inside longer names, whatever the case and
    /// wherever it sits: the vectra planes written again as OME-TIFFs with DAPI second and renamed.
    func testDefaultNuclearChannelInsideLongerNames() throws {
        let src = try ImageReader(path: Self.component)
        let order = [2, 3, 0, 1, 4]                  // DAPI (plane 3) goes to index 1
        for (k, nuc) in ["DAPI (DAPI)", "Hoechst 33342", "dapi"].enumerated() {
            let names = ["CD8 (Opal 540)", nuc, "PD-L1 (Opal 520)", "FoxP3 (Opal 570)", "Autofluorescence"]
            let file = tmp + "/renamed-\(k).ome.tif"
            let w = try ImageWriter(path: file, width: src.info.width, height: src.info.height, channelNames: names,
                                    pixelType: .float32, physicalSizeX: src.info.physicalSizeX, physicalSizeY: src.info.physicalSizeY)
            for (c, plane) in order.enumerated() { try w.writeRows(channel: c, y0: 0, count: src.info.height, try src.readChannel(plane)) }
            try w.finish()
            let scans = tmp + "/scans-renamed-\(k)"
            try Files.mkdir(scans)
            try FileManager.default.moveItem(atPath: file, toPath: scans + "/renamed-\(k).ome.tif")
            let job = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "--quiet", "--stages", "segment", scans]).lines.first ?? ""
            let r = try exec("epipe-segment", ["-q", job])
            XCTAssertEqual(r.code, 0, r.err)
            XCTAssertEqual(try manifest(job, "segment").metrics["nuclear_channel"]?.stringValue, nuc)
        }
    }
}
