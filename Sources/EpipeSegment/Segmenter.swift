import Foundation
import Dispatch
import EpipeKernels

/// How the foreground threshold is applied.
public enum ThresholdMethod: String, Codable, Sendable, Equatable {
    /// One value for the whole plane: `NucleiParams.threshold`, or Otsu of the smoothed plane.
    case global
    /// For uneven slides: per pixel max(global value x `lowThresholdFraction`, mean of the smoothed
    /// plane over a (8 x diameter)^2 box window) x 1 — i.e. a pixel must also stand out from its
    /// neighbourhood, which follows illumination gradients and autofluorescent stroma.
    case adaptive
}

/// How touching nuclei are split (and, for `.blend`, how the foreground is found).
public enum SplitMethod: String, Codable, Sendable, Equatable {
    /// Default: background-corrected signal, permissive mask, seeds and flooding on a blend of
    /// shape (distance transform) and neighbourhood-normalised intensity, per-object boundary;
    /// see `Segmenter.splitByBlend` (Blend.swift).
    case blend
    /// The recipe tuned on generated slides before real nuclei were measured (it over-splits
    /// textured chromatin): seeds = h-maxima of the log of the plane smoothed at diameter / 8 (blur leaves the gap
    /// between touching nuclei darker than their centres, also when their union is convex);
    /// watershed of the log smoothed intensity from the seeds inside a permissive mask
    /// (smoothed > `lowThresholdFraction` x threshold); then each object keeps only its pixels
    /// above `relativeThreshold` x its own peak (dim nuclei beside bright ones keep their own,
    /// lower cut; the blur halo of bright nuclei is trimmed).
    case intensity
    /// The classic recipe: distance-transform maxima seeds, watershed of the distance map in the
    /// Otsu mask.
    case distance
}

/// Parameters of nucleus segmentation.
///
/// Pipeline of `Segmenter.nuclei` with `split == .blend` (the default): Blend.swift
/// (`Segmenter.splitByBlend`), on the signal of `signalPlan`, then step 4 below. With the earlier
/// recipes (`.intensity`, `.distance`) or without `splitTouching`:
/// 1. Gaussian smoothing of the nuclear plane with `smoothSigma` (0 = off).
/// 2. Threshold T = `threshold` if given (a tiled run passes the slide's value so every tile
///    agrees), else Otsu of the smoothed plane.
/// 3. `split == .intensity`: see `SplitMethod.intensity`; mask = smoothed >
///    `lowThresholdFraction` x T (with `.adaptive`, also > local mean). Holes of each object are
///    filled when `fillHoles`.
///    `split == .distance` (classic): foreground = smoothed > T (with `.adaptive`, per pixel
///    max(T, local mean)); optional hole filling; if `splitTouching`: exact Euclidean distance
///    transform, smoothed with `distanceSmoothSigma`; seeds are the regional maxima whose
///    dynamic is >= `seedH`, thinned so that no two seeds of one connected component are closer
///    than `seedMinDistance`; then a seeded watershed (priority flood, 8-connected, highest
///    distance first) restricted to the foreground.
///    Without `splitTouching` (either method): 8-connected components of the foreground (smoothed > T).
/// 4. Objects smaller than `minArea` px are removed; labels are renumbered 1...N in raster
///    order of each object's first pixel.
public struct NucleiParams: Codable, Sendable, Equatable {
    public var smoothSigma: Double = 0.75
    public var minArea: Int = 20
    public var fillHoles: Bool = true
    public var splitTouching: Bool = true
    /// Typical nucleus diameter in px; drives the splitting parameters below.
    public var nucleusDiameter: Double = 12
    /// Fixed foreground threshold on the smoothed plane (nil = Otsu of the smoothed plane).
    public var threshold: Float? = nil
    public var thresholdMethod: ThresholdMethod = .global
    public var split: SplitMethod = .blend
    /// `.intensity`: permissive mask level as a fraction of the threshold (also the floor of `.adaptive`).
    public var lowThresholdFraction: Double = 0.4
    /// `.intensity`: each object keeps its pixels above this fraction of its own peak (smoothed).
    public var relativeThreshold: Double = 0.5
    /// `.intensity`: minimum dynamic of a seed in natural-log intensity units (0.015 = 1.5 % contrast).
    public var intensitySeedH: Double = 0.015
    /// Splitting control: minimum distance (px) between two seeds of one clump (nil = the
    /// method's default from the diameter: 0.2 D for `.intensity`, 0.25 D for `.distance`).
    public var seedMinDistanceOverride: Double? = nil
    /// Splitting control: minimum dynamic of a seed (nil = `intensitySeedH` for `.intensity`, in
    /// log-intensity units; `seedH` px for `.distance`). Higher splits less.
    public var seedHOverride: Double? = nil
    /// `.intensity`: weight (log units at distance >= diameter / 2) of the distance-to-mask-edge
    /// term added to the seed and flooding images, so touching nuclei of flat intensity split by shape.
    public var distanceWeight: Double = 0.2
    /// `.intensity`: seeding passes; pass k > 1 segments what the relative cut of earlier passes
    /// left (nuclei too dim to form their own maximum beside a bright neighbour).
    public var passes: Int = 2
    /// `.blend`: radius (px) of the top-hat disk that removes the local background (nil = the
    /// diameter; 0 = off).
    public var backgroundRadius: Double? = nil
    /// `.blend`: permissive mask level as a fraction of the threshold.
    public var blendMaskFraction: Double = 0.5
    /// `.blend`: weight of the normalised intensity against the capped distance (0...1) in g.
    public var blendIntensityWeight: Double = 2
    /// `.blend`: the intensity term is divided by its maximum within this many diameters (a
    /// square of side 2 x this x D + 1): dim and bright nuclei weigh alike. Half a diameter: a
    /// bright neighbour's peak stays out of a nucleus's window, so touching nuclei of unequal
    /// brightness keep their own maxima (generated slides: F1 +0.04 to +0.05; real sets within 0.012).
    public var blendNormalisationRadius: Double = 0.5
    /// `.blend`: minimum dynamic of a seed in g (`seedHOverride` replaces it).
    public var blendSeedH: Double = 0.08
    /// `.blend`: each object keeps its pixels whose signal exceeds this fraction of its peak.
    public var blendRelativeCut: Double = 0.3
    /// `.blend`: seeding passes; pass k > 1 segments what the relative cut of earlier passes left.
    public var blendPasses: Int = 2

    public init(smoothSigma: Double = 0.75, minArea: Int = 20, fillHoles: Bool = true,
                splitTouching: Bool = true, nucleusDiameter: Double = 12, threshold: Float? = nil,
                thresholdMethod: ThresholdMethod = .global, split: SplitMethod = .blend) {
        self.smoothSigma = smoothSigma
        self.minArea = minArea
        self.fillHoles = fillHoles
        self.splitTouching = splitTouching
        self.nucleusDiameter = nucleusDiameter
        self.threshold = threshold
        self.thresholdMethod = thresholdMethod
        self.split = split
    }

    enum CodingKeys: String, CodingKey {
        case smoothSigma, minArea, fillHoles, splitTouching, nucleusDiameter, threshold, thresholdMethod, split
        case lowThresholdFraction, relativeThreshold, intensitySeedH, distanceWeight, passes
        case seedMinDistanceOverride, seedHOverride
        case backgroundRadius, blendMaskFraction, blendIntensityWeight, blendNormalisationRadius, blendSeedH, blendRelativeCut, blendPasses
    }

    /// Missing keys (older parameter files) take the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NucleiParams()
        smoothSigma = try c.decodeIfPresent(Double.self, forKey: .smoothSigma) ?? d.smoothSigma
        minArea = try c.decodeIfPresent(Int.self, forKey: .minArea) ?? d.minArea
        fillHoles = try c.decodeIfPresent(Bool.self, forKey: .fillHoles) ?? d.fillHoles
        splitTouching = try c.decodeIfPresent(Bool.self, forKey: .splitTouching) ?? d.splitTouching
        nucleusDiameter = try c.decodeIfPresent(Double.self, forKey: .nucleusDiameter) ?? d.nucleusDiameter
        threshold = try c.decodeIfPresent(Float.self, forKey: .threshold)
        thresholdMethod = try c.decodeIfPresent(ThresholdMethod.self, forKey: .thresholdMethod) ?? d.thresholdMethod
        split = try c.decodeIfPresent(SplitMethod.self, forKey: .split) ?? d.split
        lowThresholdFraction = try c.decodeIfPresent(Double.self, forKey: .lowThresholdFraction) ?? d.lowThresholdFraction
        relativeThreshold = try c.decodeIfPresent(Double.self, forKey: .relativeThreshold) ?? d.relativeThreshold
        intensitySeedH = try c.decodeIfPresent(Double.self, forKey: .intensitySeedH) ?? d.intensitySeedH
        seedMinDistanceOverride = try c.decodeIfPresent(Double.self, forKey: .seedMinDistanceOverride)
        seedHOverride = try c.decodeIfPresent(Double.self, forKey: .seedHOverride)
        distanceWeight = try c.decodeIfPresent(Double.self, forKey: .distanceWeight) ?? d.distanceWeight
        passes = try c.decodeIfPresent(Int.self, forKey: .passes) ?? d.passes
        backgroundRadius = try c.decodeIfPresent(Double.self, forKey: .backgroundRadius)
        blendMaskFraction = try c.decodeIfPresent(Double.self, forKey: .blendMaskFraction) ?? d.blendMaskFraction
        blendIntensityWeight = try c.decodeIfPresent(Double.self, forKey: .blendIntensityWeight) ?? d.blendIntensityWeight
        blendNormalisationRadius = try c.decodeIfPresent(Double.self, forKey: .blendNormalisationRadius) ?? d.blendNormalisationRadius
        blendSeedH = try c.decodeIfPresent(Double.self, forKey: .blendSeedH) ?? d.blendSeedH
        blendRelativeCut = try c.decodeIfPresent(Double.self, forKey: .blendRelativeCut) ?? d.blendRelativeCut
        blendPasses = try c.decodeIfPresent(Int.self, forKey: .blendPasses) ?? d.blendPasses
    }

    /// The filters that turn the nuclear plane into the signal that is thresholded: for `.blend`
    /// Gaussian at max(`smoothSigma`, D/12) then a white top-hat of radius `backgroundRadius`
    /// (default D); otherwise the Gaussian at `smoothSigma`. A tiled run streams the slide's
    /// histogram of this signal for its one threshold.
    public var signalPlan: FilterPlan {
        if split == .blend && splitTouching {
            let r = Int((backgroundRadius ?? nucleusDiameter).rounded())
            return FilterPlan([.gaussian(sigma: Swift.max(smoothSigma, nucleusDiameter / 12))] + (r > 0 ? [.tophat(radius: r)] : []))
        }
        return FilterPlan(smoothSigma > 0 ? [.gaussian(sigma: smoothSigma)] : [])
    }

    /// Minimum dynamic of a distance maximum to seed its own nucleus: max(0.5, 0.05 * diameter) px.
    public var seedH: Double { seedHOverride ?? Swift.max(0.5, 0.05 * nucleusDiameter) }
    /// Minimum distance between two seeds in one component: max(1, 0.25 * diameter) px.
    public var seedMinDistance: Double { seedMinDistanceOverride ?? Swift.max(1, 0.25 * nucleusDiameter) }
    /// Gaussian sigma applied to the distance map before seeding/flooding: min(0.5, diameter / 24).
    /// (Smoothing lowers cone-shaped distance peaks by ~1.25 sigma, which eats into the dynamic
    /// of small touching nuclei, so it is kept light.)
    public var distanceSmoothSigma: Double { Swift.min(0.5, nucleusDiameter / 24) }
    /// `.intensity`: sigma of the seed image, diameter / 8.
    public var seedSmoothSigma: Double { nucleusDiameter / 8 }
    /// `.adaptive`: side of the local-mean box window, 8 x diameter (odd).
    public var adaptiveWindow: Int { Int(8 * nucleusDiameter) | 1 }
}

public enum Segmenter {
    /// Nuclear plane -> labels 1...N (0 background); see `NucleiParams` for the recipe.
    /// `threshold` is the global threshold T used (given or Otsu).
    public static func nuclei(_ plane: [Float], width: Int, height: Int, params: NucleiParams) -> (labels: [UInt32], count: Int, threshold: Float) {
        precondition(plane.count == width * height)
        let n = width * height
        guard n > 0 else { return ([], 0, 0) }
        if params.splitTouching && params.split == .blend {
            let signal = params.signalPlan.apply(plane: plane, width: width, height: height).values
            let t = params.threshold ?? Threshold.otsu(signal)
            var labels = splitByBlend(signal: signal, threshold: t, width: width, height: height, params: params)
            let count = removeSmallAndRelabel(&labels, minArea: params.minArea)
            return (labels, count, t)
        }
        let smooth = params.smoothSigma > 0 ? Gaussian.blur(plane, width: width, height: height, sigma: params.smoothSigma) : plane
        let t = params.threshold ?? Threshold.otsu(smooth)
        let local: [Float]? = params.thresholdMethod == .adaptive
            ? Threshold.boxMean(smooth, width: width, height: height, window: params.adaptiveWindow) : nil
        var labels: [UInt32]
        if params.splitTouching && params.split == .intensity {
            labels = splitByIntensity(plane, smooth: smooth, threshold: t, local: local, width: width, height: height, params: params)
        } else {
            var mask = [Bool](repeating: false, count: n)
            smooth.withUnsafeBufferPointer { s in
                mask.withUnsafeMutableBufferPointer { m in
                    if let local { for i in 0..<n { m[i] = s[i] > t && s[i] > local[i] } }
                    else { for i in 0..<n { m[i] = s[i] > t } }
                }
            }
            if params.fillHoles { fillHoles(&mask, width: width, height: height) }
            if params.splitTouching {
                labels = splitByDistance(mask, width: width, height: height, params: params)
            } else {
                labels = connectedComponents(mask, width: width, height: height).labels
            }
        }
        let count = removeSmallAndRelabel(&labels, minArea: params.minArea)
        return (labels, count, t)
    }

    /// Intensity-seeded watershed with per-object relative threshold (`SplitMethod.intensity`).
    static func splitByIntensity(_ plane: [Float], smooth: [Float], threshold t: Float, local: [Float]?, width w: Int, height h: Int,
                                 params: NucleiParams) -> [UInt32] {
        let n = w * h
        let low = Float(params.lowThresholdFraction) * t
        var mask = [Bool](repeating: false, count: n)
        // log intensity: contrast-relative seeds and flooding; floor keeps it scale-free
        let floor = Swift.max(Float(1e-12), t > 0 ? 0.01 * t : 1e-6)
        let seedImg = params.seedSmoothSigma > 0 ? Gaussian.blur(plane, width: w, height: h, sigma: params.seedSmoothSigma) : plane
        var logS = [Float](repeating: 0, count: n), logW = [Float](repeating: 0, count: n)
        var dm = [Bool](repeating: false, count: n)
        smooth.withUnsafeBufferPointer { S in
            var mn = Float.infinity
            for i in 0..<n where S[i] < mn { mn = S[i] }
            mask.withUnsafeMutableBufferPointer { M in
                dm.withUnsafeMutableBufferPointer { D in
                    if let local {
                        local.withUnsafeBufferPointer { Lc in
                            for i in 0..<n { M[i] = S[i] > low && S[i] > mn && S[i] > Lc[i] }
                        }
                    } else {
                        for i in 0..<n { M[i] = S[i] > low && S[i] > mn }
                    }
                    for i in 0..<n { D[i] = M[i] && S[i] > t }
                }
            }
            seedImg.withUnsafeBufferPointer { SI in
                logS.withUnsafeMutableBufferPointer { LS in
                    logW.withUnsafeMutableBufferPointer { LW in
                        for i in 0..<n { LS[i] = log(Swift.max(SI[i], floor)); LW[i] = log(Swift.max(S[i], floor)) }
                    }
                }
            }
        }
        let dw = Float(params.distanceWeight)
        let rad = Float(Swift.max(1, params.nucleusDiameter / 2))
        let r = Float(params.relativeThreshold)
        var lab = [UInt32](repeating: 0, count: n)
        var next: UInt32 = 0
        var remaining = mask
        mask = []
        var fs = [Float](repeating: 0, count: n), fw = [Float](repeating: 0, count: n)
        var markers = [UInt32](repeating: 0, count: n)
        let passes = Swift.max(1, params.passes)
        for pass in 0..<passes {
            // shape term: distance to the edge of the region in units of the radius x
            // distanceWeight (log units), capped at 2 radii (splits flat-topped touching nuclei).
            // Pass 1 measures it in the global-threshold mask (the true outline of bright nuclei).
            let dist: [Float] = dw > 0 ? DistanceTransform.edt(pass == 0 ? dm : remaining, width: w, height: h) : []
            if pass == 0 { dm = [] }
            logS.withUnsafeBufferPointer { LS in logW.withUnsafeBufferPointer { LW in
                fs.withUnsafeMutableBufferPointer { FS in fw.withUnsafeMutableBufferPointer { FW in
                    if dw > 0 {
                        dist.withUnsafeBufferPointer { D in
                            let cap = 2 * rad, k = dw / rad
                            for i in 0..<n { let d = k * Swift.min(D[i], cap); FS[i] = LS[i] + d; FW[i] = LW[i] + d }
                        }
                    } else {
                        for i in 0..<n { FS[i] = LS[i]; FW[i] = LW[i] }
                    }
                } }
            } }
            let (cc, ncc) = connectedComponents(remaining, width: w, height: h)
            if ncc == 0 { break }
            let seeds = seedPixels(fs, mask: remaining, width: w, height: h, h: Float(params.seedHOverride ?? params.intensitySeedH),
                                   minDistance: params.seedMinDistanceOverride ?? Swift.max(1, 0.2 * params.nucleusDiameter),
                                   components: cc, componentCount: ncc)
            if seeds.isEmpty { break }
            markers.withUnsafeMutableBufferPointer { M in
                M.update(repeating: 0)
                for (k, p) in seeds.enumerated() { M[p] = UInt32(k + 1) }
            }
            var pl = watershed(fw, markers: markers, mask: remaining, width: w, height: h, highFirst: true, components: cc, componentCount: ncc)
            // per-object cut at relativeThreshold x peak of the smoothed plane
            let m = seeds.count
            var keep = [Bool](repeating: true, count: m + 1)
            var added = false
            pl.withUnsafeMutableBufferPointer { P in
                smooth.withUnsafeBufferPointer { S in
                    var peak = [Float](repeating: -.infinity, count: m + 1)
                    peak.withUnsafeMutableBufferPointer { PK in
                        for i in 0..<n { let l = Int(P[i]); if l != 0 && S[i] > PK[l] { PK[l] = S[i] } }
                        for i in 0..<n { let l = Int(P[i]); if l != 0 && S[i] <= r * PK[l] { P[i] = 0 } }
                    }
                }
                if pass > 0 {
                    // later passes find nuclei left in the cut-off remainder (dim beside bright);
                    // thin leftovers (halo rings, slivers) are not nuclei: an object must hold a pixel
                    // whose distance to the nearest unlabelled pixel is >= 0.2 D (the same test as the
                    // maximum of the Euclidean distance transform of the labelled pixels).
                    let thick = Segmenter.thickLabels(UnsafeBufferPointer(P), count: m, width: w, height: h,
                                                      minThick: Float(0.2 * params.nucleusDiameter))
                    for l in 1...m where !thick[l] { keep[l] = false }
                }
                var map = [UInt32](repeating: 0, count: m + 1)
                for l in 1...m where keep[l] { next += 1; map[l] = next }
                lab.withUnsafeMutableBufferPointer { L in
                    for i in 0..<n where P[i] != 0 { let v = map[Int(P[i])]; if v != 0 { L[i] = v; added = true } }
                }
            }
            if !added || pass == passes - 1 { break }
            // remainder for the next pass: unassigned mask pixels farther than 2 px from any object
            Segmenter.keepLeftover(&remaining, labels: lab, width: w, height: h)
        }
        if params.fillHoles { fillObjectHoles(&lab, width: w, height: h) }
        return lab
    }

    /// Labels 1...m that hold a pixel whose distance to the nearest pixel outside the label (or
    /// labelled 0) is >= minThick (the maximum of the label's Euclidean distance transform), by
    /// testing the disk of radius minThick around each pixel until one fits. Index 0 unused.
    static func thickLabels(_ P: UnsafeBufferPointer<UInt32>, count m: Int, width w: Int, height h: Int, minThick: Float) -> [Bool] {
        let offs = Segmenter.diskOffsets(width: w) { d2 in Float(Double(d2).squareRoot()) < minThick }
        var thick = [Bool](repeating: false, count: m + 1)
        for i in 0..<(w * h) {
            let l = Int(P[i])
            if l == 0 || thick[l] { continue }
            let x = i % w, y = i / w
            var ok = true
            for o in offs {
                let xx = x + o.dx, yy = y + o.dy
                if xx < 0 || yy < 0 || xx >= w || yy >= h { continue }
                if P[i + o.off] == 0 { ok = false; break }
            }
            if ok { thick[l] = true }
        }
        return thick
    }

    /// What a later seeding pass works on: `remaining` keeps its pixels that are not labelled and
    /// farther than 2 px from every labelled pixel.
    static func keepLeftover(_ remaining: inout [Bool], labels: [UInt32], width w: Int, height h: Int) {
        let near = Segmenter.diskOffsets(width: w) { d2 in d2 <= 4 }
        labels.withUnsafeBufferPointer { L in
            remaining.withUnsafeMutableBufferPointer { R in
                for i in 0..<(w * h) where R[i] {
                    if L[i] != 0 { R[i] = false; continue }
                    let x = i % w, y = i / w
                    for o in near {
                        let xx = x + o.dx, yy = y + o.dy
                        if xx < 0 || yy < 0 || xx >= w || yy >= h { continue }
                        if L[i + o.off] != 0 { R[i] = false; break }
                    }
                }
            }
        }
    }

    /// Offsets (dx, dy, index delta) of the disk {(dx, dy) != 0 : inside(dx^2 + dy^2)}, nearest first.
    static func diskOffsets(width w: Int, inside: (Int) -> Bool) -> [(dx: Int, dy: Int, off: Int)] {
        var r = 0
        while inside((r + 1) * (r + 1)) && r < 4096 { r += 1 }
        var out: [(dx: Int, dy: Int, off: Int, d2: Int)] = []
        if r > 0 {
            for dy in -r...r { for dx in -r...r where (dx != 0 || dy != 0) && inside(dx * dx + dy * dy) { out.append((dx, dy, dy * w + dx, dx * dx + dy * dy)) } }
        }
        out.sort { $0.d2 < $1.d2 || ($0.d2 == $1.d2 && $0.off < $1.off) }
        return out.map { ($0.dx, $0.dy, $0.off) }
    }

    /// Fills background holes enclosed by a single object (4-connected background regions not
    /// touching the border whose 4-neighbours all carry one label).
    static func fillObjectHoles(_ lab: inout [UInt32], width w: Int, height h: Int) {
        let n = w * h
        let bg = lab.map { $0 == 0 }
        var mask = bg.map { !$0 }
        fillHoles(&mask, width: w, height: h)
        // candidate hole pixels: filled by fillHoles; group 4-connected and check bordering labels
        var seen = [Bool](repeating: false, count: n)
        var stack: [Int] = [], region: [Int] = []
        for s in 0..<n where bg[s] && mask[s] && !seen[s] {
            seen[s] = true; stack = [s]; region.removeAll(keepingCapacity: true)
            var owner: UInt32 = 0, single = true
            while let p = stack.popLast() {
                region.append(p)
                let x = p % w, y = p / w
                for q in [x > 0 ? p - 1 : -1, x + 1 < w ? p + 1 : -1, y > 0 ? p - w : -1, y + 1 < h ? p + w : -1] where q >= 0 {
                    if bg[q] { if !seen[q] { seen[q] = true; stack.append(q) } }
                    else if owner == 0 { owner = lab[q] } else if lab[q] != owner { single = false }
                }
            }
            if single && owner != 0 { for p in region { lab[p] = owner } }
        }
    }

    /// Distance-transform seeded watershed of a binary mask (step 4 of `NucleiParams`).
    public static func splitByDistance(_ mask: [Bool], width: Int, height: Int, params: NucleiParams) -> [UInt32] {
        let n = width * height
        var dist = DistanceTransform.edt(mask, width: width, height: height)
        for i in 0..<n where dist[i].isInfinite { dist[i] = Float(width + height) }
        if params.distanceSmoothSigma > 0 {
            dist = Gaussian.blur(dist, width: width, height: height, sigma: params.distanceSmoothSigma)
            for i in 0..<n where !mask[i] { dist[i] = 0 }
        }
        let (cc, ncc) = connectedComponents(mask, width: width, height: height)
        let seeds = seedPixels(dist, mask: mask, width: width, height: height, h: Float(params.seedH), minDistance: params.seedMinDistance,
                               components: cc, componentCount: ncc)
        var markers = [UInt32](repeating: 0, count: n)
        for (k, p) in seeds.enumerated() { markers[p] = UInt32(k + 1) }
        return watershed(dist, markers: markers, mask: mask, width: width, height: height, highFirst: true, components: cc, componentCount: ncc)
    }

    /// Seeds = one pixel per regional maximum of `f` (within `mask`, 8-connected) whose dynamic
    /// is >= h (the global maximum of each component always qualifies), then greedy thinning
    /// by `minDistance` within each connected component, highest first. Returns pixel indices
    /// (grouped by component, highest first within a component).
    /// Implementation: per 8-connected component (components in parallel), union-find over its
    /// pixels in decreasing order of `f` (ties: lower index first); when two components of the
    /// upper level set meet at level v the one with the lower peak dies with dynamic = peak - v
    /// (equal peaks: the later pixel index dies).
    public static func seedPixels(_ f: [Float], mask: [Bool], width w: Int, height h: Int, h hmin: Float, minDistance: Double) -> [Int] {
        let (cc, ncc) = connectedComponents(mask, width: w, height: h)
        return seedPixels(f, mask: mask, width: w, height: h, h: hmin, minDistance: minDistance, components: cc, componentCount: ncc)
    }

    /// `seedPixels` by local floods instead of a union-find over every pixel: the candidates are
    /// the pixels that come first (in decreasing f, ties by lower index) among their 8 mask
    /// neighbours (the peaks the union-find creates); a candidate has dynamic < h iff a pixel
    /// processed before it is reachable through mask pixels q with f(peak) - f(q) < h (the
    /// union-find merges it into that stronger peak's tree at a level above peak - h). Each test
    /// floods only that small neighbourhood of the peak. Same seeds, same order.
    static func seedPixels(_ f: [Float], mask: [Bool], width w: Int, height h: Int, h hmin: Float, minDistance: Double,
                           components cc: [UInt32], componentCount ncc: Int) -> [Int] {
        let n = w * h
        precondition(f.count == n && mask.count == n && cc.count == n && n < Int(Int32.max), "Int32 pixel indices")
        guard ncc > 0 else { return [] }
        // 1. candidates (row ranges in parallel)
        let parts = h >= 64 ? 4 : 1
        let foundP = UnsafeMutablePointer<[Int32]>.allocate(capacity: parts)
        foundP.initialize(repeating: [], count: parts)
        defer { foundP.deinitialize(count: parts); foundP.deallocate() }
        let found = UnsafeShared(foundP)
        let F = UnsafeShared(f), M = UnsafeShared(mask)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var out: [Int32] = []
            F.value.withUnsafeBufferPointer { Fp in M.value.withUnsafeBufferPointer { Mp in
                for y in (h * part / parts)..<(h * (part + 1) / parts) {
                    let y0 = y > 0 ? -1 : 0, y1 = y + 1 < h ? 1 : 0
                    for x in 0..<w {
                        let p = y * w + x
                        if !Mp[p] { continue }
                        let fp = Fp[p]
                        let x0 = x > 0 ? -1 : 0, x1 = x + 1 < w ? 1 : 0
                        var peak = true
                        outer: for dy in y0...y1 {
                            for dx in x0...x1 {
                                let q = p + dy * w + dx
                                if q == p || !Mp[q] { continue }
                                let fq = Fp[q]
                                if fq > fp || (fq == fp && q < p) { peak = false; break outer }
                            }
                        }
                        if peak { out.append(Int32(p)) }
                    }
                }
            } }
            found.value[part] = out
        }
        var cands: [Int32] = []
        for k in 0..<parts { cands += foundP[k] }
        // 2. dynamic test by a local flood from each candidate (candidates in parallel chunks)
        let nc = cands.count
        var keep = [Bool](repeating: true, count: nc)
        if hmin > 0 && nc > 0 {
            let chunks = nc >= 64 ? 8 : 1
            let C = UnsafeShared(cands)
            keep.withUnsafeMutableBufferPointer { Kb in
                let K = UnsafeShared(Kb.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    let stamp = UnsafeMutablePointer<Int32>.allocate(capacity: n)
                    stamp.initialize(repeating: -1, count: n)
                    defer { stamp.deallocate() }
                    var stack: [Int32] = []
                    F.value.withUnsafeBufferPointer { Fp in M.value.withUnsafeBufferPointer { Mp in
                        for ci in (nc * chunk / chunks)..<(nc * (chunk + 1) / chunks) {
                            let m = Int(C.value[ci]), fm = Fp[m]
                            let tag = Int32(ci)
                            stamp[m] = tag
                            stack.removeAll(keepingCapacity: true)
                            stack.append(Int32(m))
                            var weak = false
                            flood: while let s = stack.popLast() {
                                let p = Int(s)
                                let x = p % w, y = p / w
                                let y0 = y > 0 ? -1 : 0, y1 = y + 1 < h ? 1 : 0
                                let x0 = x > 0 ? -1 : 0, x1 = x + 1 < w ? 1 : 0
                                for dy in y0...y1 {
                                    for dx in x0...x1 {
                                        let q = p + dy * w + dx
                                        if stamp[q] == tag || !Mp[q] { continue }
                                        let fq = Fp[q]
                                        if !(fm - fq < hmin) { continue }
                                        if fq > fm || (fq == fm && q < m) { weak = true; break flood }
                                        stamp[q] = tag
                                        stack.append(Int32(q))
                                    }
                                }
                            }
                            if weak { K.value[ci] = false }
                        }
                    } }
                }
            }
        }
        // 3. by component, in decreasing f (ties: lower index), thinned by minDistance
        var byComp: [(c: UInt32, key: UInt64)] = []
        byComp.reserveCapacity(nc)
        f.withUnsafeBufferPointer { Fp in
            for (i, p) in cands.enumerated() where keep[i] {
                byComp.append((cc[Int(p)], UInt64(~Fp[Int(p)].sortKey) << 32 | UInt64(UInt32(p))))
            }
        }
        byComp.sort { $0.c != $1.c ? $0.c < $1.c : $0.key < $1.key }
        let md2 = minDistance * minDistance
        var out: [Int] = []
        var kept: [Int] = []
        var i = 0
        while i < byComp.count {
            let c = byComp[i].c
            kept.removeAll(keepingCapacity: true)
            while i < byComp.count && byComp[i].c == c {
                keepApart(Int(byComp[i].key & 0xffff_ffff), &kept, width: w, minDistance2: md2)
                i += 1
            }
            out.append(contentsOf: kept)
        }
        return out
    }

    /// Greedy thinning of seeds: appends pixel `p` to `kept` unless a kept seed lies closer than
    /// sqrt(minDistance2) (seeds come highest first, so the higher of two close seeds stays).
    @inline(__always) static func keepApart(_ p: Int, _ kept: inout [Int], width w: Int, minDistance2 md2: Double) {
        let px = Double(p % w), py = Double(p / w)
        for q in kept {
            let dx = px - Double(q % w), dy = py - Double(q / w)
            if dx * dx + dy * dy < md2 { return }
        }
        kept.append(p)
    }


    /// Sorts `keys` ascending by their high 32 bits, keeping the input order of equal high halves
    /// (stable). When the low halves ascend in the input (pixel indices in raster order), the
    /// result equals `keys.sort()`. LSD radix sort, 8 bits per pass, constant bytes skipped;
    /// insertion sort for short arrays.
    static func sortKeysByHigh32(_ keys: inout [UInt64], scratch: inout [UInt64]) {
        let n = keys.count
        if n < 2 { return }
        keys.withUnsafeMutableBufferPointer { K in
            if n <= 48 {
                for i in 1..<n {
                    let k = K[i]; let hk = k >> 32
                    var j = i
                    while j > 0 && (K[j - 1] >> 32) > hk { K[j] = K[j - 1]; j -= 1 }
                    K[j] = k
                }
                return
            }
            if scratch.count < n { scratch = [UInt64](repeating: 0, count: n) }
            scratch.withUnsafeMutableBufferPointer { T in
                var src = K.baseAddress!, dst = T.baseAddress!
                var count = [Int](repeating: 0, count: 256)
                var inScratch = false
                count.withUnsafeMutableBufferPointer { C in
                    for shift in stride(from: 32, to: 64, by: 8) {
                        for b in 0..<256 { C[b] = 0 }
                        for i in 0..<n { C[Int((src[i] >> UInt64(shift)) & 0xff)] += 1 }
                        if C[Int((src[0] >> UInt64(shift)) & 0xff)] == n { continue }   // one byte value: order unchanged
                        var sum = 0
                        for b in 0..<256 { let c = C[b]; C[b] = sum; sum += c }
                        for i in 0..<n { let k = src[i]; let b = Int((k >> UInt64(shift)) & 0xff); dst[C[b]] = k; C[b] += 1 }
                        swap(&src, &dst)
                        inScratch.toggle()
                    }
                }
                if inScratch { K.baseAddress!.update(from: T.baseAddress!, count: n) }
            }
        }
    }

    /// Splits components 1...count into contiguous ranges with roughly equal pixel totals
    /// (`start[c+1] - start[c]` = size of component c). Returns range bounds.
    static func componentChunks(start: [Int], count: Int, total: Int) -> [Int] {
        let nChunks = total > 1 << 16 ? 16 : 1
        var bounds = [1]
        var acc = 0
        for c in 1...count {
            acc += start[c + 1] - start[c]
            if acc >= total * bounds.count / nChunks && bounds.count < nChunks { bounds.append(c + 1) }
        }
        if bounds.last! != count + 1 { bounds.append(count + 1) }
        return bounds
    }

    /// Seeded watershed by priority flood (Meyer), 8-connected, restricted to `mask`.
    /// With `highFirst` the highest values of `f` flood first (i.e. the watershed of -f).
    /// Equal priorities are processed in insertion order (markers first, in raster order).
    /// Pixels not reachable from any marker stay 0; markers outside the mask keep their label
    /// and may flood into adjacent mask pixels.
    /// Implementation: the 8-connected components of (mask or marker) never interact, so each is
    /// flooded with its own small queue, components in parallel; the result is identical to a
    /// single global queue.
    public static func watershed(_ f: [Float], markers: [UInt32], mask: [Bool], width w: Int, height h: Int, highFirst: Bool) -> [UInt32] {
        let n = w * h
        precondition(f.count == n && markers.count == n && mask.count == n && n < Int(Int32.max), "Int32 pixel indices")
        var region = [Bool](repeating: false, count: n)
        for i in 0..<n { region[i] = mask[i] || markers[i] != 0 }
        let (cc, ncc) = connectedComponents(region, width: w, height: h)
        region = []
        return watershed(f, markers: markers, mask: mask, width: w, height: h, highFirst: highFirst, components: cc, componentCount: ncc)
    }

    /// For flooding components independently: each component's size, its markers (pixel indices in
    /// raster order: `mList[mStart[c] ..< mStart[c + 1]]`), and contiguous ranges of components with
    /// roughly equal pixel totals (`componentChunks`), one per parallel worker.
    static func componentMarkers(_ markers: [UInt32], components cc: [UInt32], componentCount ncc: Int)
        -> (size: [Int], mStart: [Int], mList: [Int32], bounds: [Int]) {
        markers.withUnsafeBufferPointer { M in componentSeeds(components: cc, componentCount: ncc) { M[$0] != 0 } }
    }

    /// `componentMarkers` with the seeds the pixels where `isSeed` holds (`ncc > 0`).
    @inline(__always)
    static func componentSeeds(components cc: [UInt32], componentCount ncc: Int, isSeed: (Int) -> Bool)
        -> (size: [Int], mStart: [Int], mList: [Int32], bounds: [Int]) {
        let n = cc.count
        var size = [Int](repeating: 0, count: ncc + 1)
        var mStart = [Int](repeating: 0, count: ncc + 2)
        for i in 0..<n {
            let c = Int(cc[i]); size[c] += 1
            if isSeed(i) { mStart[c + 1] += 1 }
        }
        for c in 0...ncc { mStart[c + 1] += mStart[c] }
        var mList = [Int32](repeating: 0, count: mStart[ncc + 1])
        var fillPos = mStart
        for i in 0..<n where isSeed(i) { let c = Int(cc[i]); mList[fillPos[c]] = Int32(i); fillPos[c] += 1 }
        var sizeStart = [Int](repeating: 0, count: ncc + 2)
        for c in 0...ncc { sizeStart[c + 1] = sizeStart[c] + size[c] }
        return (size, mStart, mList, componentChunks(start: sizeStart, count: ncc, total: n - size[0]))
    }

    /// The priority flood (Meyer) of `watershed` and of the membrane watershed (`Cells`): each
    /// component's seeds (`componentSeeds`) are queued in order, then pixels pop in order of `f`
    /// (ascending; descending with `highFirst`), equal values in the order they were queued, and
    /// `step.expand` labels each popped pixel's unlabelled neighbours and queues them. One small
    /// heap per worker; the ranges of components in `bounds` in parallel. A step writes only into
    /// the popped pixel's component, so the result is that of one global queue.
    static func heapFlood<Step: FloodStep>(_ f: UnsafeBufferPointer<Float>, highFirst: Bool,
                                           seeds: (size: [Int], mStart: [Int], mList: [Int32], bounds: [Int]), step: Step) {
        let (size, mStart, mList, B) = seeds
        let F = UnsafeShared(f.baseAddress!), S = UnsafeShared(size), ML = UnsafeShared(mList), MS = UnsafeShared(mStart)
        let X = UnsafeShared(step)
        DispatchQueue.concurrentPerform(iterations: B.count - 1) { chunk in
            let c0 = B[chunk], c1 = B[chunk + 1]
            var cap = 1
            for c in c0..<c1 where MS.value[c + 1] > MS.value[c] { cap = Swift.max(cap, S.value[c]) }
            var queue = FloodQueue(heap: MinHeap(capacity: cap), f: F.value, highFirst: highFirst)
            defer { queue.heap.deallocate() }
            let step = X.value
            for c in c0..<c1 {
                let ma = MS.value[c], mb = MS.value[c + 1]
                if ma == mb { continue }
                queue.age = 0
                for k in ma..<mb { queue.push(Int(ML.value[k])) }
                while queue.heap.count > 0 { step.expand(Int(queue.heap.pop()), &queue) }
            }
        }
    }

    /// `watershed` with precomputed 8-connected components of (mask or marker).
    static func watershed(_ f: [Float], markers: [UInt32], mask: [Bool], width w: Int, height h: Int, highFirst: Bool,
                          components cc: [UInt32], componentCount ncc: Int) -> [UInt32] {
        var out = markers
        guard ncc > 0 else { return out }
        let seeds = componentMarkers(markers, components: cc, componentCount: ncc)
        out.withUnsafeMutableBufferPointer { Ob in f.withUnsafeBufferPointer { Fp in mask.withUnsafeBufferPointer { Mp in
            heapFlood(Fp, highFirst: highFirst, seeds: seeds,
                      step: WatershedStep(labels: Ob.baseAddress!, mask: Mp.baseAddress!, width: w, height: h))
        } } }
        return out
    }

    /// `watershed`'s step: a popped pixel's label goes to its unlabelled 8-neighbours in the mask.
    struct WatershedStep: FloodStep {
        let labels: UnsafeMutablePointer<UInt32>, mask: UnsafePointer<Bool>
        let width: Int, height: Int
        @inline(__always) func expand(_ p: Int, _ queue: inout FloodQueue) {
            let lab = labels[p]
            window3x3(p, width: width, height: height) { q in
                if labels[q] != 0 || !mask[q] { return }
                labels[q] = lab
                queue.push(q)
            }
        }
    }


    /// Removes labels with area < minArea and renumbers the rest 1...N in raster order of first
    /// pixel. Returns N.
    @discardableResult
    public static func removeSmallAndRelabel(_ labels: inout [UInt32], minArea: Int) -> Int {
        var maxL: UInt32 = 0
        for v in labels where v > maxL { maxL = v }
        var area = [Int](repeating: 0, count: Int(maxL) + 1)
        for v in labels { area[Int(v)] += 1 }
        var map = [UInt32](repeating: UInt32.max, count: Int(maxL) + 1)
        map[0] = 0
        var next: UInt32 = 0
        labels.withUnsafeMutableBufferPointer { L in
            for i in 0..<L.count {
                let v = Int(L[i])
                if v == 0 { continue }
                if map[v] == UInt32.max {
                    if area[v] >= minArea { next += 1; map[v] = next } else { map[v] = 0 }
                }
                L[i] = map[v]
            }
        }
        return Int(next)
    }
}

/// What `Segmenter.heapFlood` does with a popped pixel: label the neighbours it lets in and queue them.
protocol FloodStep {
    func expand(_ p: Int, _ queue: inout FloodQueue)
}

/// The queue of one flood worker: pixels keyed by (`f` in flood order, then queueing order).
struct FloodQueue {
    var heap: MinHeap
    let f: UnsafePointer<Float>
    let highFirst: Bool
    var age: UInt64 = 0
    init(heap: MinHeap, f: UnsafePointer<Float>, highFirst: Bool) { self.heap = heap; self.f = f; self.highFirst = highFirst }
    @inline(__always) mutating func push(_ q: Int) {
        let k = f[q].sortKey
        heap.push(UInt64(highFirst ? ~k : k) << 32 | age, Int32(q))
        age += 1
    }
}

/// Fixed-capacity 4-ary min-heap of (UInt64 key, Int32 payload); keys are unique in use
/// (they embed an insertion counter), so pop order is deterministic (the same as any other
/// min-heap's). Four children per node halve the depth of the sift-down that dominates pops.
struct MinHeap {
    let keys: UnsafeMutablePointer<UInt64>
    let vals: UnsafeMutablePointer<Int32>
    var count = 0
    init(capacity: Int) {
        keys = .allocate(capacity: Swift.max(1, capacity))
        vals = .allocate(capacity: Swift.max(1, capacity))
    }
    func deallocate() { keys.deallocate(); vals.deallocate() }
    @inline(__always) mutating func push(_ k: UInt64, _ v: Int32) {
        var i = count
        count += 1
        while i > 0 {
            let p = (i - 1) >> 2
            let pk = keys[p]
            if pk <= k { break }
            keys[i] = pk; vals[i] = vals[p]
            i = p
        }
        keys[i] = k; vals[i] = v
    }
    @inline(__always) mutating func pop() -> Int32 {
        let tv = vals[0]
        count -= 1
        let n = count
        if n > 0 {
            let lk = keys[n], lv = vals[n]
            var i = 0
            while true {
                let c0 = 4 * i + 1
                if c0 >= n { break }
                var c = c0
                var ck = keys[c0]
                let cEnd = Swift.min(c0 + 4, n)
                var j = c0 + 1
                while j < cEnd { let jk = keys[j]; if jk < ck { c = j; ck = jk }; j += 1 }
                if ck >= lk { break }
                keys[i] = ck; vals[i] = vals[c]
                i = c
            }
            keys[i] = lk; vals[i] = lv
        }
        return tv
    }
}
