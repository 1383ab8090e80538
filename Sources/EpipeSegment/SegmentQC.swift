import Foundation

/// Collects what the QC pictures need while bands stream by: a sampled thumbnail of the nuclear
/// channel and nuclei, and the number of nuclei (by their first pixel) in each window of a coarse
/// grid of crop candidates. After the stream, `cropWindows` picks up to 4 windows with the most
/// nuclei, spread apart, for the caller to render at full resolution from rows read again.
public final class SegmentQC {
    public let w: Int, h: Int
    /// Side of the crop windows, px.
    public let side: Int
    let nx: Int, ny: Int, offX: Int, offY: Int
    /// Nuclei (by their first pixel) per window of the grid.
    public private(set) var counts: [Int]
    /// bit per nucleus id: first pixel seen
    var seen: [UInt64] = []
    /// The thumbnail: every f-th pixel of every f-th row, tw x th.
    public let f: Int, tw: Int, th: Int
    public private(set) var thumb: [Float], thumbLab: [UInt32]
    public init(width: Int, height: Int) {
        w = width; h = height
        side = min(512, width, height, max(64, min(width, height) / 2))
        nx = max(1, width / side); ny = max(1, height / side)
        offX = (width - nx * side) / 2; offY = (height - ny * side) / 2
        counts = [Int](repeating: 0, count: nx * ny)
        f = max(1, Int((Double(max(width, height)) / 1024).rounded(.up)))
        tw = (width + f - 1) / f; th = (height + f - 1) / f
        thumb = [Float](repeating: 0, count: tw * th); thumbLab = [UInt32](repeating: 0, count: tw * th)
    }
    public func add(nuclear: [Float], nuclei: [UInt32], cells: [UInt32], y0: Int, rows: Int) {
        for r in 0..<rows {
            let y = y0 + r
            let gy = (y - offY) / side
            let inY = y >= offY && gy < ny
            for x in 0..<w {
                let l = Int(nuclei[r * w + x])
                if l == 0 { continue }
                let wd = l >> 6
                if wd >= seen.count { seen += [UInt64](repeating: 0, count: max(wd + 1, 2 * seen.count) - seen.count) }
                let bit: UInt64 = 1 << UInt64(l & 63)
                if seen[wd] & bit != 0 { continue }
                seen[wd] |= bit
                let gx = (x - offX) / side
                if inY && x >= offX && gx < nx { counts[gy * nx + gx] += 1 }
            }
            if y % f == 0 && y / f < th {
                for tx in 0..<tw { let s = r * w + min(w - 1, tx * f); thumb[(y / f) * tw + tx] = nuclear[s]; thumbLab[(y / f) * tw + tx] = nuclei[s] }
            }
        }
    }
    /// Up to `k` windows (x0, y0) of side x side px: most nuclei first, each at least `d` grid
    /// steps (Chebyshev) from those chosen, d shrinking from half the grid to 1; windows without
    /// nuclei are not used (the centre window when no window has any). Deterministic.
    public func cropWindows(_ k: Int = 4) -> [(x0: Int, y0: Int)] {
        let order = (0..<counts.count).filter { counts[$0] > 0 }.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        var chosen: [Int] = []
        var d = max(1, max(nx, ny) / 2)
        while chosen.count < min(k, order.count) {
            for c in order where chosen.count < k && !chosen.contains(c) {
                if chosen.allSatisfy({ max(abs($0 % nx - c % nx), abs($0 / nx - c / nx)) >= d }) { chosen.append(c) }
            }
            if d == 1 { break }
            d -= 1
        }
        if chosen.isEmpty { chosen = [(ny / 2) * nx + nx / 2] }
        return chosen.map { (offX + ($0 % nx) * side, offY + ($0 / nx) * side) }
    }
}
