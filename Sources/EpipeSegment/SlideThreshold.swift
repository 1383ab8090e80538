import Foundation
import EpipeKernels

/// Otsu's threshold from a histogram of integer levels (e.g. a uint16 channel streamed band by
/// band), so a tiled run uses one slide-wide threshold. Foreground is `value > threshold`.
/// Same rule as `Threshold.otsu` on integer data: the largest level of the lower class.
public enum SlideThreshold {
    public static func otsu(counts: [Int]) -> Float { Float(Otsu.level(counts: counts)) }
}
