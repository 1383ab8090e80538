// Deterministic hashing, random draws and smooth value-noise fields.
// Everything in the generator derives from hashes of (seed, position/index), never from a
// sequential random stream, so any region of the slide can be reproduced in isolation.

import Foundation
import EpipeKernels

@inline(__always) func mix64(_ v: UInt64) -> UInt64 { SplitMix64.hash(v) }

@inline(__always) func hash2(_ a: UInt64, _ b: UInt64) -> UInt64 {
    mix64(mix64(a) ^ (b &* 0xA24B_AED4_963E_E407))
}

@inline(__always) func hash3(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    mix64(hash2(a, b) ^ (c &* 0x9FB2_1C65_1E98_DF25))
}

@inline(__always) func hash4(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) -> UInt64 {
    mix64(hash3(a, b, c) ^ (d &* 0xD6E8_FEB8_6659_FD93))
}

@inline(__always) func u64(_ i: Int) -> UInt64 { UInt64(bitPattern: Int64(i)) }

/// Uniform in [0, 1).
@inline(__always) func unit(_ h: UInt64) -> Double { Double(h >> 11) * 0x1p-53 }

/// Approximately standard normal from one 64-bit hash (Irwin-Hall sum of four 16-bit uniforms,
/// rescaled to unit variance). Cheap, used for per-pixel noise.
@inline(__always) func fastGauss(_ h: UInt64) -> Float {
    let a = Float(h & 0xFFFF), b = Float((h >> 16) & 0xFFFF)
    let c = Float((h >> 32) & 0xFFFF), d = Float(h >> 48)
    return ((a + b + c + d) * (1.0 / 65536.0) - 2.0) * 1.7320508
}

/// The draws of the sequential generator for per-object parameters (seeded from a hash of the object key).
extension SplitMix64 {
    @inline(__always) init(_ seed: UInt64) { self.init(seed: seed) }
    @inline(__always) mutating func uniform() -> Double { nextUnit() }
    @inline(__always) mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }
    mutating func gauss() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
    mutating func chance(_ p: Double) -> Bool { uniform() < p }
    /// Lognormal with median 1 and log-sd `sigma`.
    mutating func lognormal(_ sigma: Double) -> Double { exp(sigma * gauss()) }
}

/// Smooth 2-D value noise in [-1, 1] with lattice spacing `scale` pixels (quintic interpolation).
struct ValueNoise: Sendable {
    let seed: UInt64
    let inv: Double
    init(seed: UInt64, scale: Double) { self.seed = seed; self.inv = 1 / max(scale, 1e-6) }

    @inline(__always) func lattice(_ i: Int, _ j: Int) -> Double {
        Double(hash3(seed, u64(i), u64(j)) >> 11) * 0x1p-52 - 1
    }

    @inline(__always) func callAsFunction(_ x: Double, _ y: Double) -> Double {
        let fx = x * inv, fy = y * inv
        let x0 = fx.rounded(.down), y0 = fy.rounded(.down)
        let i = Int(x0), j = Int(y0)
        let tx = fx - x0, ty = fy - y0
        let sx = tx * tx * tx * (tx * (tx * 6 - 15) + 10)
        let sy = ty * ty * ty * (ty * (ty * 6 - 15) + 10)
        let v00 = lattice(i, j), v10 = lattice(i + 1, j)
        let v01 = lattice(i, j + 1), v11 = lattice(i + 1, j + 1)
        let a = v00 + (v10 - v00) * sx
        let b = v01 + (v11 - v01) * sx
        return a + (b - a) * sy
    }
}

/// Fractal sum of value-noise octaves, normalised to roughly unit standard deviation.
struct FractalNoise: Sendable {
    let octaves: [ValueNoise]
    let weights: [Double]
    init(seed: UInt64, scale: Double, octaves n: Int, persistence: Double = 0.5) {
        var o: [ValueNoise] = [], w: [Double] = []
        var amp = 1.0, s = scale, total = 0.0
        for k in 0..<n {
            o.append(ValueNoise(seed: hash2(seed, UInt64(k + 1)), scale: s))
            w.append(amp); total += amp * amp
            amp *= persistence; s *= 0.5
        }
        // One octave of value noise has sd ~0.36; rescale the sum to sd ~1.
        let norm = 1 / (0.36 * total.squareRoot())
        octaves = o; weights = w.map { $0 * norm }
    }
    @inline(__always) func callAsFunction(_ x: Double, _ y: Double) -> Double {
        var s = 0.0
        for k in 0..<octaves.count { s += weights[k] * octaves[k](x, y) }
        return s
    }
}

@inline(__always) func smoothstep(_ e0: Double, _ e1: Double, _ x: Double) -> Double {
    let t = min(max((x - e0) / (e1 - e0), 0), 1)
    return t * t * (3 - 2 * t)
}
