/// A slide's units of streaming work (denoise: row bands; segment: tile rows) split into `parts`
/// contiguous runs for independent workers (`--tiles N --tile I`): part i gets units
/// `[units * i / parts, units * (i + 1) / parts)`, so sizes differ by at most one, every unit is in
/// exactly one part, in order, and part i + 1 starts where part i ends. A part is a horizontal strip
/// of whole units; each worker reads the context rows (halo) its units need itself.
public struct PartSplit: Sendable, Equatable {
    public let units: Int, parts: Int

    /// nil when the split is impossible: fewer than one part, or more parts than units (a part
    /// would be empty).
    public init?(units: Int, parts: Int) {
        guard parts >= 1, units >= parts else { return nil }
        self.units = units; self.parts = parts
    }

    /// The units of part `i` (0 ..< parts).
    public func range(_ i: Int) -> Range<Int> {
        precondition(i >= 0 && i < parts, "part \(i) of \(parts)")
        return (units * i / parts)..<(units * (i + 1) / parts)
    }

    /// The part holding unit `u`.
    public func part(of u: Int) -> Int {
        precondition(u >= 0 && u < units)
        var i = Swift.min(parts - 1, u * parts / units)
        while range(i).lowerBound > u { i -= 1 }
        while range(i).upperBound <= u { i += 1 }
        return i
    }

    /// Rows [y0, y1) of part `i` when unit u covers rows [u * unitRows, min(height, (u + 1) * unitRows)).
    public func rows(_ i: Int, unitRows: Int, height: Int) -> Range<Int> {
        let r = range(i)
        return (r.lowerBound * unitRows)..<Swift.min(height, r.upperBound * unitRows)
    }
}
