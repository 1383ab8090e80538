import Foundation

/// How many rows the streamed quantification takes at a time.
public enum QuantPlan {
    /// Rows per quantification sub-band so that the channel planes of one sub-band take about
    /// `budgetBytes` (Float32 per pixel and channel), between 8 and 256 rows. With the median,
    /// the values of open cells are bounded by (these rows + the tallest open cell's height)
    /// x width x channels x 4 bytes per compartment (see `CellAccumulator`).
    public static func subBandRows(width: Int, channels: Int, budgetBytes: Int = 128 << 20) -> Int {
        let row = max(1, width * max(1, channels) * 4)
        return max(8, min(256, budgetBytes / row))
    }
}
