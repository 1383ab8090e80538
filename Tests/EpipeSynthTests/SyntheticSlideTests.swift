import XCTest
import Foundation
import EpipeSynth

final class SyntheticSlideTests: XCTestCase {
    /// Renders the slide in bands of the given heights and concatenates them.
    func render(_ slide: SyntheticSlide, heights: [Int]) -> SynthBand {
        let W = slide.config.width, C = slide.config.channels
        var out = SynthBand(y0: 0, count: 0, width: W, channels: Array(repeating: [], count: C), nuclei: [], cells: [])
        var y = 0
        var k = 0
        while y < slide.config.height {
            let h = min(heights[k % heights.count], slide.config.height - y)
            let b = slide.renderBand(y0: y, count: h)
            XCTAssertEqual(b.y0, y); XCTAssertEqual(b.count, h); XCTAssertEqual(b.width, W)
            XCTAssertEqual(b.nuclei.count, h * W); XCTAssertEqual(b.cells.count, h * W)
            for c in 0..<C { XCTAssertEqual(b.channels[c].count, h * W); out.channels[c] += b.channels[c] }
            out.nuclei += b.nuclei; out.cells += b.cells
            y += h; k += 1
        }
        out.count = y
        return out
    }

    func whole(_ slide: SyntheticSlide) -> SynthBand { slide.renderBand(y0: 0, count: slide.config.height) }

    func assertIdentical(_ a: SynthBand, _ b: SynthBand, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.nuclei, b.nuclei, "nuclei differ", file: file, line: line)
        XCTAssertEqual(a.cells, b.cells, "cells differ", file: file, line: line)
        XCTAssertEqual(a.channels.count, b.channels.count, file: file, line: line)
        for c in 0..<min(a.channels.count, b.channels.count) {
            let same = a.channels[c].withUnsafeBytes { x in b.channels[c].withUnsafeBytes { y in x.elementsEqual(y) } }
            XCTAssertTrue(same, "channel \(c) differs", file: file, line: line)
        }
    }

    // MARK: - Determinism and band invariance

    func testDeterministicFromSeed() {
        let cfg = SynthConfig(width: 200, height: 160, channels: 5, seed: 42)
        let a = SyntheticSlide(cfg), b = SyntheticSlide(cfg)
        XCTAssertEqual(a.cells(), b.cells())
        XCTAssertGreaterThan(a.cellCount, 20)
        assertIdentical(whole(a), whole(b))
        var cfg2 = cfg; cfg2.seed = 43
        let c = SyntheticSlide(cfg2)
        XCTAssertNotEqual(a.cells(), c.cells())
        XCTAssertNotEqual(whole(a).channels[0], whole(c).channels[0])
    }

    func testBandInvariance() {
        var cfg = SynthConfig(width: 237, height: 203, channels: 4, seed: 9)
        cfg.fieldSize = 96   // several illumination tiles and hot-pixel repeats inside the image
        cfg.hotPixelRate = 1e-3
        cfg.defocusedFieldFraction = 0.5   // tiles with different PSF widths
        let slide = SyntheticSlide(cfg)
        let ref = whole(slide)
        for heights in [[1], [7, 50, 3, 100, 13], [64], [2, 101]] {
            assertIdentical(render(slide, heights: heights), ref)
        }
        // A fresh instance renders the same bytes for an interior band.
        let other = SyntheticSlide(cfg)
        let band = other.renderBand(y0: 77, count: 31)
        let W = cfg.width
        XCTAssertEqual(band.cells, Array(ref.cells[77 * W..<108 * W]))
        XCTAssertEqual(band.channels[2], Array(ref.channels[2][77 * W..<108 * W]))
    }

    func testBandInvarianceWithVesselsAndFollicles() {
        // Coarser pixels so that vessels (with red blood cells) and immune aggregates fall inside a small image.
        var chosen: SynthConfig?
        for seed in UInt64(1)...40 {
            let cfg = SynthConfig(width: 300, height: 260, channels: 9, seed: seed, nucleusDiameter: 6, pixelSizeMicrons: 1.5)
            let probe = SyntheticSlide(cfg)
            var lumen = 0
            for y in stride(from: 0, to: 260, by: 3) { for x in stride(from: 0, to: 300, by: 3) where probe.region(x: Double(x), y: Double(y)) == .vesselLumen { lumen += 1 } }
            if lumen > 20 { chosen = cfg; break }
        }
        guard let cfg = chosen else { return XCTFail("no seed with vessels") }
        let slide = SyntheticSlide(cfg)
        let ref = whole(slide)
        for heights in [[5, 17], [100], [1, 2, 3, 200]] {
            assertIdentical(render(slide, heights: heights), ref)
        }
    }

    func testEdgeCases() {
        for (w, h) in [(1, 1), (3, 2), (2, 40)] {
            let slide = SyntheticSlide(SynthConfig(width: w, height: h, channels: 2, seed: 5))
            let b = whole(slide)
            XCTAssertEqual(b.channels[0].count, w * h)
            XCTAssertEqual(Set(b.cells.filter { $0 != 0 }), Set(slide.cells().map(\.id)))
        }
        var cfg = SynthConfig(width: 64, height: 64, channels: 1, seed: 5)
        cfg.cellDensity = 0
        let empty = SyntheticSlide(cfg)
        XCTAssertEqual(empty.cellCount, 0)
        let b = whole(empty)
        XCTAssertTrue(b.cells.allSatisfy { $0 == 0 })
        XCTAssertEqual(empty.renderBand(y0: 10, count: 0).cells.count, 0)
        var noisy = SynthConfig(width: 64, height: 64, channels: 1, seed: 5)
        noisy.noiseScale = 0; noisy.psfSigma = 0; noisy.hotPixelRate = 0
        XCTAssertEqual(whole(SyntheticSlide(noisy)).channels[0].count, 64 * 64)
        let tiny = SyntheticSlide(SynthConfig(width: 96, height: 96, channels: 1, seed: 2, nucleusDiameter: 3))
        XCTAssertEqual(Set(whole(tiny).cells.filter { $0 != 0 }), Set(tiny.cells().map(\.id)))
    }

    func testValuesAreQuantisedUInt16() {
        let slide = SyntheticSlide(SynthConfig(width: 128, height: 128, channels: 3, seed: 3))
        let b = whole(slide)
        for ch in b.channels {
            for v in ch { XCTAssert(v >= 0 && v <= 65535 && v == v.rounded()) }
            let mean = ch.reduce(0, +) / Float(ch.count)
            XCTAssertGreaterThan(mean, 50)   // offset + autofluorescence background
        }
    }

    // MARK: - Ground-truth consistency

    func testLabelConsistency() {
        let cfg = SynthConfig(width: 320, height: 256, channels: 2, seed: 11)
        let slide = SyntheticSlide(cfg)
        let b = whole(slide)
        let cells = slide.cells()
        XCTAssertEqual(cells.count, slide.cellCount)
        XCTAssertEqual(cells.map(\.id), (1...UInt32(cells.count)).map { $0 }, "ids are 1...N in order")
        for i in 0..<b.nuclei.count where b.nuclei[i] != 0 {
            XCTAssertEqual(b.cells[i], b.nuclei[i], "nucleus pixel outside its cell")
        }
        let present = Set(b.cells.filter { $0 != 0 })
        XCTAssertEqual(present, Set(cells.map(\.id)), "cells() lists exactly the ids present")
        let nucleiPresent = Set(b.nuclei.filter { $0 != 0 })
        var borderCut = 0
        for c in cells {
            let inside = c.x >= 0 && c.y >= 0 && c.x < Double(cfg.width) && c.y < Double(cfg.height)
            if inside {
                let o = Int(c.y) * cfg.width + Int(c.x)
                // The pixel containing the centre (or its nearest pixel centre) belongs to the nucleus.
                XCTAssertTrue(nucleiPresent.contains(c.id))
                XCTAssertEqual(b.cells[o], c.id, "centre pixel of cell \(c.id) not labelled with it")
            } else {
                borderCut += 1
            }
            XCTAssert((0..<6).contains(c.type))
        }
        XCTAssertGreaterThan(borderCut, 0, "cells cut by the border with centres outside are listed")
        // Nuclei are a proper subset of cells (cytoplasm exists) and labels touch (tessellation).
        let nucArea = b.nuclei.filter { $0 != 0 }.count, cellArea = b.cells.filter { $0 != 0 }.count
        XCTAssertLessThan(Double(nucArea), 0.85 * Double(cellArea))
        var touching = 0
        for y in 0..<cfg.height { for x in 1..<cfg.width {
            let a = b.cells[y * cfg.width + x - 1], c = b.cells[y * cfg.width + x]
            if a != 0 && c != 0 && a != c { touching += 1 }
        } }
        XCTAssertGreaterThan(touching, 200, "neighbouring cells touch")
    }

    // MARK: - Signal

    func testNuclearStainInsideNuclei() {
        let slide = SyntheticSlide(SynthConfig(width: 256, height: 256, channels: 1, seed: 5))
        let b = whole(slide)
        var inS = 0.0, inN = 0, outS = 0.0, outN = 0
        for i in 0..<b.nuclei.count {
            if b.nuclei[i] != 0 { inS += Double(b.channels[0][i]); inN += 1 }
            else if b.cells[i] == 0 { outS += Double(b.channels[0][i]); outN += 1 }
        }
        XCTAssertGreaterThan(inN, 1000); XCTAssertGreaterThan(outN, 1000)
        XCTAssertGreaterThan(inS / Double(inN), 4 * outS / Double(outN))
    }

    func testMembraneRimAndCytoplasm() {
        let slide = SyntheticSlide(SynthConfig(width: 512, height: 512, channels: 4, seed: 21))
        XCTAssertEqual(slide.channelNames.prefix(4), ["DAPI", "CD45", "PanCK", "CD3"])
        XCTAssertEqual(slide.compartments[1], .membrane)
        XCTAssertEqual(slide.compartments[2], .cytoplasm)
        let b = whole(slide)
        let W = 512
        let typeOf = Dictionary(uniqueKeysWithValues: slide.cells().map { ($0.id, $0.type) })
        // CD45 on T cells: boundary pixels vs interior pixels (>= 2 px from any other label).
        var rim = 0.0, rimN = 0, inner = 0.0, innerN = 0
        // PanCK on tumour cells: cytoplasm vs nucleus.
        var cyto = 0.0, cytoN = 0, nuc = 0.0, nucN = 0
        for y in 2..<(W - 2) { for x in 2..<(W - 2) {
            let o = y * W + x, id = b.cells[o]
            guard id != 0, let t = typeOf[id] else { continue }
            if t == 1 {
                let n4 = [o - 1, o + 1, o - W, o + W].contains { b.cells[$0] != id }
                var far = true
                for dy in -2...2 { for dx in -2...2 where b.cells[o + dy * W + dx] != id { far = false } }
                if n4 { rim += Double(b.channels[1][o]); rimN += 1 } else if far { inner += Double(b.channels[1][o]); innerN += 1 }
            } else if t == 0 {
                if b.nuclei[o] == 0 { cyto += Double(b.channels[2][o]); cytoN += 1 } else { nuc += Double(b.channels[2][o]); nucN += 1 }
            }
        } }
        XCTAssertGreaterThan(rimN, 100); XCTAssertGreaterThan(innerN, 20)
        XCTAssertGreaterThan(rim / Double(rimN), 1.15 * inner / Double(innerN), "membrane marker brighter at the boundary")
        XCTAssertGreaterThan(cytoN, 100); XCTAssertGreaterThan(nucN, 100)
        XCTAssertGreaterThan(cyto / Double(cytoN), 1.3 * nuc / Double(nucN), "cytoplasmic marker brighter outside the nucleus")
    }

    func testKi67InNucleiOfPositiveSubset() {
        let slide = SyntheticSlide(SynthConfig(width: 384, height: 384, channels: 9, seed: 6))
        XCTAssertEqual(slide.channelNames[8], "Ki67")
        XCTAssertEqual(slide.compartments[8], .nuclear)
        let b = whole(slide)
        var positive = Set<UInt32>(), total = 0
        for c in slide.cells() where c.type == 0 {
            total += 1
            if let e = slide.expression(id: c.id), e[8] > 0.3 { positive.insert(c.id) }
        }
        XCTAssertGreaterThan(total, 50)
        let frac = Double(positive.count) / Double(total)
        XCTAssert(frac > 0.15 && frac < 0.6, "Ki67+ fraction of tumour cells \(frac)")
        var nuc = 0.0, nucN = 0, cyt = 0.0, cytN = 0, neg = 0.0, negN = 0
        for i in 0..<b.cells.count where b.cells[i] != 0 {
            let v = Double(b.channels[8][i])
            if positive.contains(b.cells[i]) {
                if b.nuclei[i] != 0 { nuc += v; nucN += 1 } else { cyt += v; cytN += 1 }
            } else if b.nuclei[i] != 0 { neg += v; negN += 1 }
        }
        XCTAssertGreaterThan(nuc / Double(nucN), 1.5 * cyt / Double(cytN), "Ki67 is nuclear")
        XCTAssertGreaterThan(nuc / Double(nucN), 2 * neg / Double(negN), "Ki67+ nuclei brighter than Ki67- nuclei")
    }

    func testProfilesAndNames() {
        let slide = SyntheticSlide(SynthConfig(width: 64, height: 64, channels: 25, seed: 1))
        XCTAssertEqual(slide.channelNames.count, 25)
        XCTAssertEqual(slide.channelNames[0], "DAPI")
        XCTAssertEqual(slide.channelNames[24], "M24")
        XCTAssertEqual(Set(slide.channelNames).count, 25)
        XCTAssertEqual(slide.cellTypeNames, ["Tumor", "T cell", "B cell", "Macrophage", "Stroma", "Endothelial"])
        XCTAssertEqual(slide.profiles.count, 6)
        for row in slide.profiles {
            XCTAssertEqual(row.count, 25)
            XCTAssert(row.allSatisfy { $0 >= 0 && $0 <= 1 })
            XCTAssertGreaterThan(row[0], 0.5)   // every type has a nucleus
        }
        XCTAssertGreaterThan(slide.profiles[0][2], 0.8)   // tumour PanCK
        XCTAssertGreaterThan(slide.profiles[1][3], 0.8)   // T cell CD3
        XCTAssertEqual(slide.profiles[0][3], 0)
        // Ground-truth expression follows the profile.
        let cells = slide.cells()
        if let t = cells.first(where: { $0.type == 1 }), let e = slide.expression(id: t.id) {
            XCTAssertGreaterThan(e[3], e[2])
        }
        XCTAssertNil(slide.expression(id: 0))
        XCTAssertNil(slide.expression(id: UInt32(cells.count + 1)))
    }

    // MARK: - Spatial structure and density

    func testTypesDensityAndClustering() {
        let cfg = SynthConfig(width: 1024, height: 1024, channels: 1, seed: 2)
        let slide = SyntheticSlide(cfg)
        let cells = slide.cells()
        XCTAssertGreaterThan(cells.count, 2000)
        var counts = [Int](repeating: 0, count: 6)
        for c in cells { counts[c.type] += 1 }
        let p = counts.map { Double($0) / Double(cells.count) }
        XCTAssertGreaterThan(p[0], 0.1, "tumour cells"); XCTAssertLessThan(p[0], 0.75)
        XCTAssertGreaterThan(p[1], 0.03, "T cells"); XCTAssertGreaterThan(p[4], 0.05, "stroma")
        XCTAssertGreaterThan(p[3], 0.02, "macrophages"); XCTAssertGreaterThan(p[5], 0.003, "endothelium")
        // Same-type nearest neighbour fraction well above the random-labelling expectation.
        let cellSize = 32.0
        var grid = [Int: [Int]]()
        for (i, c) in cells.enumerated() { grid[Int(c.x / cellSize + 100) * 100_000 + Int(c.y / cellSize + 100), default: []].append(i) }
        var same = 0
        for (i, c) in cells.enumerated() {
            var best = Double.infinity, bt = -1
            let gx = Int(c.x / cellSize + 100), gy = Int(c.y / cellSize + 100)
            for dx in -1...1 { for dy in -1...1 { for j in grid[(gx + dx) * 100_000 + gy + dy] ?? [] where j != i {
                let d = (cells[j].x - c.x) * (cells[j].x - c.x) + (cells[j].y - c.y) * (cells[j].y - c.y)
                if d < best { best = d; bt = cells[j].type }
            } } }
            if bt == c.type { same += 1 }
        }
        let observed = Double(same) / Double(cells.count)
        let expected = p.reduce(0) { $0 + $1 * $1 }
        XCTAssertGreaterThan(observed, expected + 0.15, "types cluster spatially (\(observed) vs \(expected))")
        // Coverage close to the configured density.
        let b = whole(slide)
        let coverage = Double(b.cells.lazy.filter { $0 != 0 }.count) / Double(b.cells.count)
        XCTAssertEqual(coverage, cfg.cellDensity, accuracy: 0.05)
        // Tumour regions are denser than stroma.
        var tum = (0, 0), str = (0, 0)
        for y in stride(from: 0, to: 1024, by: 4) { for x in stride(from: 0, to: 1024, by: 4) {
            let r = slide.region(x: Double(x) + 0.5, y: Double(y) + 0.5)
            let covered = b.cells[y * 1024 + x] != 0 ? 1 : 0
            if r == .tumour { tum.0 += covered; tum.1 += 1 } else if r == .stroma { str.0 += covered; str.1 += 1 }
        } }
        if tum.1 > 500 && str.1 > 500 {
            XCTAssertGreaterThan(Double(tum.0) / Double(tum.1), Double(str.0) / Double(str.1) + 0.2)
        }
    }

    func testDensityFollowsConfig() {
        for density in [0.3, 0.7] {
            var cfg = SynthConfig(width: 768, height: 768, channels: 1, seed: 4)
            cfg.cellDensity = density
            let slide = SyntheticSlide(cfg)
            let b = slide.renderBand(y0: 0, count: 768)
            let coverage = Double(b.cells.lazy.filter { $0 != 0 }.count) / Double(b.cells.count)
            XCTAssertEqual(coverage, density, accuracy: 0.05, "density \(density)")
        }
    }

    func testFolliclesAndVessels() {
        // A larger, coarse-pixel slide so that several follicles and vessels fit.
        let cfg = SynthConfig(width: 1500, height: 1500, channels: 1, seed: 8, nucleusDiameter: 6, pixelSizeMicrons: 1.0)
        let slide = SyntheticSlide(cfg)
        let cells = slide.cells()
        let bInCore = cells.filter { slide.region(x: $0.x, y: $0.y) == .follicleCore }
        if bInCore.count > 50 {
            XCTAssertGreaterThan(Double(bInCore.filter { $0.type == 2 }.count) / Double(bInCore.count), 0.6)
        }
        let endo = cells.filter { $0.type == 5 }
        XCTAssertGreaterThan(endo.count, 20)
        let onWall = endo.filter { slide.region(x: $0.x, y: $0.y) == .vesselWall }.count
        XCTAssertGreaterThan(Double(onWall) / Double(endo.count), 0.5, "endothelium lines vessels")
        XCTAssertEqual(cells.filter { slide.region(x: $0.x, y: $0.y) == .vesselLumen }.count, 0, "lumens are empty")
    }

    // MARK: - Misc

    func testConfigCodable() throws {
        var cfg = SynthConfig(width: 100, height: 50, channels: 3, seed: 77)
        cfg.psfSigma = 1.4
        let data = try JSONEncoder().encode(cfg)
        XCTAssertEqual(try JSONDecoder().decode(SynthConfig.self, from: data), cfg)
        let minimal = try JSONDecoder().decode(SynthConfig.self, from: Data(#"{"width": 10, "height": 20, "seed": 5}"#.utf8))
        XCTAssertEqual(minimal, SynthConfig(width: 10, height: 20, seed: 5))
    }

    func testModerateSizeCompletesInBands() {
        let cfg = SynthConfig(width: 2048, height: 1536, channels: 4, seed: 12)
        let slide = SyntheticSlide(cfg)
        XCTAssertGreaterThan(slide.cellCount, 5000)
        var labelled = Set<UInt32>()
        var y = 0
        while y < cfg.height {
            let b = slide.renderBand(y0: y, count: min(256, cfg.height - y))
            for v in b.cells where v != 0 { labelled.insert(v) }
            y += b.count
        }
        XCTAssertEqual(labelled.count, slide.cellCount)
    }
}
