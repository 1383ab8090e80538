import Foundation

/// QC charts the table stages draw: a heatmap, horizontal bars, a map of categorised points.
extension Canvas {
    /// One row per `rows` label (written at the left), one column per `columns` label (written
    /// downwards, a letter per line), each cell `cell` px coloured `Canvas.diverging(values[r][c])`
    /// (z in [-2, 2]); black text on white.
    /// `marks[r][c]` true puts a black dot in the cell's centre (e.g. a significant pair).
    public static func heatmap(rows: [String], columns: [String], values: [[Double]], cell: Int = 18, marks: [[Bool]]? = nil) -> Canvas {
        let left = (rows.map { textWidth($0) }.max() ?? 0) + 8
        let top = (columns.map { $0.count }.max() ?? 0) * 9 + 6
        var hm = Canvas(width: left + columns.count * cell + 2, height: top + rows.count * cell + 2, fill: (255, 255, 255))
        for (j, name) in columns.enumerated() { for (i, ch) in name.enumerated() { hm.text(String(ch), x: left + j * cell + 6, y: 3 + i * 9, color: (0, 0, 0), box: nil) } }
        for (r, name) in rows.enumerated() {
            hm.text(name, x: 3, y: top + r * cell + 5, color: (0, 0, 0), box: nil)
            for j in columns.indices {
                hm.rect(left + 1 + j * cell, top + 1 + r * cell, cell - 1, cell - 1, diverging(values[r][j]))
                if marks?[r][j] == true { hm.rect(left + j * cell + cell / 2 - 1, top + r * cell + cell / 2 - 1, 4, 4, (0, 0, 0)) }
            }
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

    /// One horizontal bar per row (its label at the left), 600 px long, split into segments in
    /// proportion to `parts[r]` (each in the column's categorical colour), with a legend of
    /// `columns` below; for comparing compositions (cell types per sample).
    public static func stackedBars(rows: [String], columns: [String], parts: [[Double]]) -> Canvas {
        let lw = (rows.map { textWidth($0, scale: 2) }.max() ?? 0) + 20
        let legendRows = (columns.count + 3) / 4
        var c = Canvas(width: lw + 620, height: rows.count * 24 + 20 + legendRows * 20 + 8)
        for (r, name) in rows.enumerated() {
            c.text(name, x: 8, y: 10 + r * 24, scale: 2, color: (0, 0, 0), box: nil)
            let total = parts[r].reduce(0) { $0 + max(0, $1) }
            var x0 = 0.0
            for (j, v) in parts[r].enumerated() where total > 0 && v > 0 {
                let x1 = x0 + 600 * v / total
                let a = Int(x0.rounded()), b = Int(x1.rounded())
                if b > a { c.rect(lw + a, 8 + r * 24, b - a, 20, color(j)) }
                x0 = x1
            }
        }
        let y0 = rows.count * 24 + 20
        for (j, name) in columns.enumerated() {
            let x = 8 + (j % 4) * 160, y = y0 + (j / 4) * 20
            c.rect(x, y, 12, 12, color(j)); c.text(String(name.prefix(22)), x: x + 16, y: y + 3, color: (0, 0, 0), box: nil)
        }
        return c
    }
}
