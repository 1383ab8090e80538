extension Float {
    /// An unsigned key in the order of the floats: `a < b` implies `a.sortKey < b.sortKey`
    /// (negative values have their bits inverted, non-negative ones the sign bit set), so floats
    /// sort as integers (radix sorts, heap keys packed with an index). `-0` sorts just below
    /// `+0`; NaNs sort beyond the infinities (negative NaNs below `-inf`).
    @inlinable public var sortKey: UInt32 {
        @inline(__always) get {
            let b = bitPattern
            return (b & 0x8000_0000) != 0 ? ~b : (b | 0x8000_0000)
        }
    }
}
