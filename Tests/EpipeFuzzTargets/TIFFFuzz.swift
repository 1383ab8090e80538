import Foundation
import EpipeImage

/// ImageReader as the stages use it: open with the production limits, then read rows (the first
/// band, the last row, a middle row as UInt32) and a window of the first channels. The reads are
/// bounded (about a million pixels per read) so that a valid but huge sparse image is not read
/// whole; what the reader allocates for them is the reader's business and is what is tested.
enum TIFFFuzz {
    static let pixelsPerRead = 1 << 20

    static func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        let path = FuzzFile.write(data, name: "image.tif")
        return read(path: path)
    }

    /// Opens and reads `path`; also used by the OME-XML target on the TIFFs it builds.
    static func read(path: String) -> FuzzOutcome {
        do {
            let r = try ImageReader(path: path)
            let info = r.info
            guard info.width > 0, info.height > 0, info.channels > 0, info.channelNames.count == info.channels else {
                return .defect("opened with an inconsistent geometry: \(info)")
            }
            let w = info.width, h = info.height
            let rows = max(1, min(h, pixelsPerRead / w))
            for c in 0..<min(info.channels, 3) {
                let first = try r.readRows(channel: c, y0: 0, count: rows)
                guard first.count == rows * w else { return .defect("readRows gave \(first.count) values for \(rows) rows of \(w)") }
                if h > rows {
                    let last = try r.readRows(channel: c, y0: h - 1, count: 1)
                    guard last.count == w else { return .defect("readRows gave \(last.count) values for a row of \(w)") }
                }
                let mid = try r.readRowsUInt32(channel: c, y0: h / 2, count: 1)
                guard mid.count == w else { return .defect("readRowsUInt32 gave \(mid.count) values for a row of \(w)") }
                let ww = min(w, 48), hh = min(h, 48, rows)   // a striped page's window reads whole rows
                let win = try r.readWindow(channel: c, x0: (w - ww) / 2, y0: (h - hh) / 2, width: ww, height: hh)
                guard win.count == ww * hh else { return .defect("readWindow gave \(win.count) values for \(ww) x \(hh)") }
            }
            return .accepted("\(w) x \(h) x \(info.channels) \(info.pixelType.rawValue) [\(info.channelNames.prefix(4).joined(separator: ","))]")
        } catch {
            return Check.refusal(error)
        }
    }
}
