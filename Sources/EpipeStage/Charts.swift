import Foundation

/// QC charts the table stages draw: a heatmap, horizontal bars, a map of categorised points.
extension Canvas {
    /// One row per `rows` label (written at the left), one column per `columns` label (written
    /// downwards, a letter per line), each cell `cell` px coloured `Canvas.diverging(values[r][c])`
    /// (z in [-2, 2]); black text on white.
    public static func heatmap(rows: [String], columns: [String], values: [[Double]], cell: Int = 18) -> Canvas {
        let left = (rows.map { textWidth($0) }.max() ?? 0) + 8
        let top = (columns.map { $0.count }.max() ?? 0) * 9 + 6
        var hm = Canvas(width: left + columns.count * cell + 2, height: top + rows.count * cell + 2, fill: (255, 255, 255))
        for (j, name) in columns.enumerated() { for (i, ch) in name.enumerated() { hm.text(String(ch), x: left + j * cell + 6, y: 3 + i * 9, color: (0, 0, 0), box: nil) } }
        for (r, name) in rows.enumerated() {
            hm.text(name, x: 3, y: top + r * cell + 5, color: (0, 0, 0), box: nil)
            for j in columns.indices { hm.rect(left + 1 + j * cell, top + 1 + r * cell, cell - 1, cell - 1, diverging(values[r][j])) }
        }
        return hm
    }

    /// One line per label (black, scale 2), then a bar in the label's categorical colour, 400 px
    /// for the first value (give the values largest first), at least 1 px; white background.
    public static func bars(labels: [String], values: [Double]) -> Canvas {
        let lw = (labels.map { textWidth($0, scale: 2) }.max() ?? 0) + 20
        var bar = Canvas(width: lw + 420, height: max(1, labels.count) * 22 + 12)
        let top = max(values.first ?? 1, 1e-9)
        for i in labels.indices {
            bar.text(labels[i], x: 8, y: 8 + i * 22, scale: 2, color: (0, 0, 0), box: nil)
            bar.rect(lw, 6 + i * 22, max(1, Int(400 * values[i] / top)), 18, color(i))
        }
        return bar
    }

    /// Points (x, y) as 3 px squares on black, scaled so the larger extent is `side` px, coloured by
    /// their category's place in `order` (categories not in it take the first colour), with a legend
    /// of the first 20 of `order`. Non-finite points are left out.
    public static func pointMap(xs: [Double], ys: [Double], categories: [String], order: [String], side: Double = 1024) -> Canvas {
        let mx = max(1, xs.max() ?? 1), my = max(1, ys.max() ?? 1)
        let s = side / max(mx, my)
        var sc = Canvas(width: Int(mx * s) + 4, height: Int(my * s) + 4, fill: (0, 0, 0))
        let index = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        for i in 0..<xs.count where xs[i].isFinite && ys[i].isFinite {
            sc.rect(Int(xs[i] * s), Int(ys[i] * s), 3, 3, color(index[categories[i]] ?? 0))
        }
        for i in 0..<min(order.count, 20) { sc.rect(8, 8 + i * 18, 12, 12, color(i)); sc.text(order[i], x: 26, y: 8 + i * 18, scale: 2) }
        return sc
    }
}
