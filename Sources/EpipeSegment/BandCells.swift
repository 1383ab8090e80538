import Foundation

/// How the cells of a band are grown from its nuclei.
public enum CellGrowth: Sendable {
    /// Cells are the nuclei.
    case nuclei
    /// Each nucleus grown by this many pixels without overlap (`Segmenter.expand`).
    case expansion(distance: Int)
    /// Seeded watershed on the membrane image (`Segmenter.cells`), with `context` rows of the
    /// neighbouring bands (`Segmenter.cellContextRows`).
    case membrane(CellParams, context: Int)
}

/// Cells of one band of nucleus labels, grown with rows of the bands above and below as context,
/// so a cell near a band seam grows as in a whole-image run (expansion: exactly; membrane: the
/// context covers the watershed's reach).
public enum BandCells {
    /// `band`: the nucleus labels of `rows` rows x `width` starting at image row `y0`; `above` and
    /// `below`: the neighbouring bands' labels (whole bands, or nil at the slide's edges).
    /// `membrane(y0, count)`: the membrane image of rows [y0, y0 + count) (only for `.membrane`).
    public static func grow(_ band: [UInt32], rows: Int, y0: Int, width w: Int, above: [UInt32]?, below: [UInt32]?,
                            growth: CellGrowth, membrane: (Int, Int) throws -> [Float]) rethrows -> [UInt32] {
        let reach: Int
        switch growth {
        case .nuclei: return band
        case .expansion(let d): reach = d
        case .membrane(_, let context): reach = context
        }
        let aboveRows = (above?.count ?? 0) / Swift.max(w, 1), belowRows = (below?.count ?? 0) / Swift.max(w, 1)
        let top = Swift.min(reach, aboveRows), bottom = Swift.min(reach, belowRows)
        let wh = top + rows + bottom
        var win = [UInt32](); win.reserveCapacity(wh * w)
        if top > 0, let a = above { win += a[((aboveRows - top) * w)...] }
        win += band
        if bottom > 0, let b = below { win += b[0..<(bottom * w)] }
        switch growth {
        case .nuclei: return band
        case .expansion(let d):
            return Segmenter.expand(win, width: w, height: wh, distance: d, rows: top..<(top + rows))
        case .membrane(let params, _):
            let grown = Segmenter.cells(nuclei: win, membrane: try membrane(y0 - top, wh), width: w, height: wh, params: params)
            return Array(grown[(top * w)..<((top + rows) * w)])
        }
    }
}
