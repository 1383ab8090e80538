import Foundation
import EpipeImage
import EpipeKernels

/// Per channel a thumbnail of a stage's input and one of its result, filled while the bands stream by
/// (one thread per channel at a time, as `Thumbnail` needs), and the QC pictures drawn from them.
public final class BeforeAfter: @unchecked Sendable {
    public let before: [Thumbnail], after: [Thumbnail]

    public init(channels: Int, width: Int, height: Int, maxSide: Int = 512) {
        before = (0..<channels).map { _ in Thumbnail(srcWidth: width, srcHeight: height, maxSide: maxSide) }
        after = (0..<channels).map { _ in Thumbnail(srcWidth: width, srcHeight: height, maxSide: maxSide) }
    }

    /// The thumbnails' rows that source rows `r` touch, encoded for the merge of the parts of a slide.
    public func encode(rows r: Range<Int>) -> [UInt8] {
        var w = ByteWriter()
        for t in before + after {
            let s = t.state(rows: r)
            w.int(s.rows.lowerBound); w.int(s.rows.upperBound); w.doubles(s.sum); w.ints(s.cnt)
        }
        return w.bytes
    }

    /// Adds a part's `encode(rows:)`.
    public func add(encoded bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        for t in before + after {
            let lo = try r.int(), hi = try r.int(), sum = try r.doubles(), cnt = try r.ints()
            guard lo >= 0, hi >= lo, hi <= t.height, sum.count == (hi - lo) * t.width, cnt.count == sum.count else { throw ByteReader.Truncated() }
            t.add(state: (lo..<hi, sum, cnt))
        }
        guard r.atEnd else { throw ByteReader.Truncated() }
    }

    /// Channel c's input | result, contrast-stretched, captioned "<name> before" and "after".
    public func pair(_ c: Int, name: String) -> Canvas {
        Canvas.sideBySide([(Self.gray(before[c]), "\(name) before"), (Self.gray(after[c]), "after")])
    }

    /// Every channel's result, contrast-stretched, four to a row, each named.
    public func contactSheet(names: [String]) -> Canvas {
        Canvas.sheet(after.map(Self.gray), names: names, columns: 4)
    }

    static func gray(_ t: Thumbnail) -> Canvas {
        let s = Preview.stretch(t.plane, width: t.width, height: t.height)
        return Canvas(gray: s.pixels, width: s.width, height: s.height)
    }
}

extension Canvas {
    /// Pictures side by side, 4 px apart on black, each captioned at its top left.
    public static func sideBySide(_ pictures: [(Canvas, String)]) -> Canvas {
        var out = Canvas(width: pictures.map { $0.0.width }.reduce(0, +) + 4 * max(0, pictures.count - 1),
                         height: pictures.map { $0.0.height }.max() ?? 0, fill: (0, 0, 0))
        var x = 0, xs: [Int] = []
        for (p, _) in pictures { out.blit(p, at: x, 0); xs.append(x); x += p.width + 4 }
        for (i, (_, caption)) in pictures.enumerated() { out.text(caption, x: xs[i] + 4, y: 4, scale: 2) }
        return out
    }

    /// Tiles of the first tile's size on a grid of `columns` (fewer when there are fewer tiles),
    /// 4 px apart on black, each named at its top left.
    public static func sheet(_ tiles: [Canvas], names: [String], columns: Int) -> Canvas {
        let tw = tiles.first?.width ?? 0, th = tiles.first?.height ?? 0
        let cols = max(1, min(tiles.count, columns)), rows = (tiles.count + cols - 1) / cols
        var out = Canvas(width: cols * (tw + 4), height: rows * (th + 4), fill: (0, 0, 0))
        for (i, t) in tiles.enumerated() {
            let x = (i % cols) * (tw + 4), y = (i / cols) * (th + 4)
            out.blit(t, at: x, y)
            out.text(names[i], x: x + 4, y: y + 4, scale: 2)
        }
        return out
    }
}
