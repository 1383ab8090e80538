import Foundation
import EpipeImage

/// Label outlines over a grey picture: the segmentation's QC.
extension Canvas {
    /// `plane` (width x height) stretched to grey (`Preview.stretch`, at most `maxSide` px), with
    /// the outlines of each label image drawn in order, in its colour (label images are width x height).
    public static func overlay(_ plane: [Float], width: Int, height: Int, maxSide: Int,
                               outlines: [(labels: [UInt32], color: (UInt8, UInt8, UInt8))]) -> Canvas {
        let st = Preview.stretch(plane, width: width, height: height, maxSide: maxSide)
        var cv = Canvas(gray: st.pixels, width: st.width, height: st.height)
        for o in outlines { cv.outline(o.labels, width, height, o.color) }
        return cv
    }

    /// Colours the pixels of each label (width x height) that touch another label or background
    /// (4-neighbours; the image edge is not a boundary).
    public mutating func outline(_ lab: [UInt32], _ w: Int, _ h: Int, _ color: (UInt8, UInt8, UInt8)) {
        for y in 0..<h { for x in 0..<w {
            let l = lab[y * w + x]
            guard l != 0 else { continue }
            if (x > 0 && lab[y * w + x - 1] != l) || (x + 1 < w && lab[y * w + x + 1] != l) || (y > 0 && lab[(y - 1) * w + x] != l) || (y + 1 < h && lab[(y + 1) * w + x] != l) {
                set(x, y, color)
            }
        } }
    }
}
