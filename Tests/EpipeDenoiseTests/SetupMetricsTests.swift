import XCTest
import Foundation
import EpipeKernels
@testable import EpipeDenoise

/// What epipe-denoise does between opening its files and writing them, reachable without the binary:
/// params from job.json and flags, the setup on one image (recipes, blanks, bands, illumination),
/// and the per-channel QC metrics and warnings the manifest records.
final class SetupMetricsTests: XCTestCase {
    let names = ["DAPI", "CD3", "Blank1"], isBlank = [false, false, true]

    func testMergedJobAndFlags() throws {
        // job.json's per-channel settings hold until --channel-param is given, which replaces them as a whole.
        let job: [String: Setting?] = ["gaussian": 2], jobPer: [String: [String: Setting]] = ["DAPI": ["median": true]]
        let a = try DenoiseParams.merged(job: job, jobPerChannel: jobPer, flags: [:], perChannelFlags: [:])
        XCTAssertEqual(a.gaussian, 2); XCTAssertEqual(a.perChannel, jobPer)
        let b = try DenoiseParams.merged(job: job, jobPerChannel: jobPer, flags: ["gaussian": 1, "median": nil], perChannelFlags: ["CD3": ["tophat": 5, "rolling-ball": "off"]])
        XCTAssertEqual(b.gaussian, 1); XCTAssertEqual(b.perChannel, ["CD3": ["tophat": 5, "rolling-ball": "off"]])
        // --tophat alone replaces the default rolling ball; not when a rolling ball is given anywhere.
        XCTAssertEqual(try DenoiseParams.merged(job: [:], jobPerChannel: [:], flags: ["tophat": 7], perChannelFlags: [:]).rollingBall, "off")
        XCTAssertThrowsError(try DenoiseParams.merged(job: ["rolling-ball": 20], jobPerChannel: [:], flags: ["tophat": 7], perChannelFlags: [:])) { e in
            XCTAssertTrue("\(e)".contains("choose one"), "\(e)")
        }
        // A job.json key given as null still counts as given (as before the move).
        XCTAssertThrowsError(try DenoiseParams.merged(job: ["rolling-ball": nil], jobPerChannel: [:], flags: ["tophat": 7], perChannelFlags: [:]))
    }

    func testChannelParamFlags() throws {
        XCTAssertEqual(try DenoiseParams.perChannel(flags: ["DAPI:rolling-ball=off", "DAPI:gaussian=1.5", "CD3:median=true"]),
                       ["DAPI": ["rolling-ball": "off", "gaussian": 1.5], "CD3": ["median": "true"]])
        XCTAssertEqual(try DenoiseParams.perChannel(flags: ["A:B:c=x=y"]), ["A": ["B:c": "x=y"]], "the first colon and the first = after it split")
        for bad in ["DAPI", "DAPI=3", "rolling-ball=off:x"] {
            XCTAssertThrowsError(try DenoiseParams.perChannel(flags: [bad])) { e in
                XCTAssertEqual("\(e)", "--channel-param \(bad): expected NAME:key=value, e.g. DAPI:rolling-ball=off")
            }
        }
    }

    func testSetupRecipesBlanksAndBands() throws {
        let p = DenoiseParams()
        let s = try DenoiseSetup(params: p, names: names, isBlank: isBlank, cycles: [1, 1, 1], background: [nil, nil, nil],
                                 selected: nil, autoHotPixels: 3277, width: 1000)
        XCTAssertEqual(s.blankChannels, [2])
        XCTAssertEqual(s.recipes[2], ChannelRecipe(), "a blank channel is kept as is")
        XCTAssertTrue(s.recipes[0].blanks && s.recipes[1].blanks, "blanks exist: markers subtract them")
        XCTAssertEqual(s.blankWeights[1].map { $0.channel }, [2])
        XCTAssertEqual(s.bandRows, DenoiseStream.autoBandRows(width: 1000, channels: 3))
        XCTAssertEqual(s.bandCount(height: s.bandRows + 1), 2)
        XCTAssertEqual(s.flatChannels, [])
        // --channels: the others are copied unchanged; --band; MCMICRO's background column wins over cycles.
        var q = p; q.band = 64
        let t = try DenoiseSetup(params: q, names: names, isBlank: isBlank, cycles: nil, background: [2, nil, nil],
                                 selected: [0], autoHotPixels: nil, width: 1000)
        XCTAssertEqual(t.bandRows, 64)
        XCTAssertFalse(t.recipes[0].isIdentity); XCTAssertTrue(t.recipes[1].isIdentity)
        XCTAssertEqual(t.blankWeights[0].map { $0.channel }, [2]); XCTAssertEqual(t.blankWeights[0].map { $0.weight }, [1])
        // blanks=true without blank channels: one line.
        var r = p; r.blanks = true
        XCTAssertThrowsError(try DenoiseSetup(params: r, names: ["DAPI", "CD3"], isBlank: [false, false], cycles: nil, background: [nil, nil],
                                              selected: nil, autoHotPixels: nil, width: 10)) { e in
            XCTAssertTrue("\(e)".hasPrefix("--blanks: no blank channels found"), "\(e)"); XCTAssertFalse("\(e)".contains("\n"))
        }
    }

    func testIlluminationFromFileOrEstimated() throws {
        let w = 64, h = 48
        var p = DenoiseParams(); p.flatfield = "auto"; p.darkfield = 5; p.band = 16
        p.perChannel = ["CD3": ["flatfield": "off"]]
        let s = try DenoiseSetup(params: p, names: names, isBlank: isBlank, cycles: nil, background: [nil, nil, nil],
                                 selected: nil, autoHotPixels: nil, width: w)
        XCTAssertEqual(s.flatChannels, [0, 2], "blanks are flat-field corrected like the markers")
        let plane = (0..<(w * h)).map { Float(100 + ($0 % w)) }
        // A given flat-field: its planes, no estimation pass.
        var asked: [Int] = [], estimated = 0
        let a = try s.illumination(width: w, height: h, dark: p.darkfieldConstant, darkImage: false,
                                   flatPlane: { asked.append($0); return plane }, read: { _, _, n in XCTFail("no pass"); return [Float](repeating: 1, count: n * w) },
                                   estimating: { _ in estimated += 1; return {} })
        XCTAssertEqual(asked, [0, 2]); XCTAssertEqual(estimated, 0)
        XCTAssertNotNil(a[0].flat); XCTAssertNil(a[1].flat); XCTAssertEqual(a.map { $0.dark }, [5, 5, 5])
        // None given: one pass over the image, reported band by band.
        var bands = 0, total = 0, reads = 0
        let b = try s.illumination(width: w, height: h, dark: nil, darkImage: true, flatPlane: nil,
                                   read: { _, y0, n in reads += 1; return Array(plane[(y0 * w)..<((y0 + n) * w)]) },
                                   estimating: { n in total = n; return { bands += 1 } })
        XCTAssertEqual(total, 3); XCTAssertEqual(bands, 3); XCTAssertEqual(reads, 3 * 2)
        XCTAssertNotNil(b[2].flat); XCTAssertNil(b[1].flat)
        XCTAssertTrue(b.allSatisfy { $0.darkImage && $0.dark == 0 })
        // No channel flat-fields: neither.
        let none = try DenoiseSetup(params: DenoiseParams(), names: names, isBlank: isBlank, cycles: nil, background: [nil, nil, nil],
                                    selected: nil, autoHotPixels: nil, width: w)
        let c = try none.illumination(width: w, height: h, dark: nil, darkImage: false, flatPlane: nil,
                                      read: { _, _, _ in XCTFail("no pass"); return [] }, estimating: { _ in XCTFail("no pass"); return {} })
        XCTAssertTrue(c.allSatisfy { $0.isIdentity })
    }

    func hist(_ values: [Float]) -> ChannelHistograms {
        let h = ChannelHistograms()
        values.withUnsafeBufferPointer { h.addBefore($0); h.addAfter($0) }
        return h
    }

    func testChannelMetricsAndWarnings() {
        let focus = FocusAccumulator.score([Float](repeating: 1, count: 16), width: 4, height: 4)
        func metrics(_ v: [Float], blank: Bool = false) -> ChannelMetrics {
            ChannelMetrics(name: "CD3", histograms: hist(v), hotPixels: 3, focus: focus, blank: blank, recipe: ChannelRecipe())
        }
        // background 10, 5% bright: p10 10, p99 1000, sbr 1001/11 = 91
        let good = metrics((0..<100).map { $0 < 95 ? 10 : 1000 })
        XCTAssertEqual(good.backgroundBefore, 10); XCTAssertEqual(good.p99Before, 1000); XCTAssertEqual(good.signalToBackground, 91)
        XCTAssertEqual(good.meanBefore, (95 * 10 + 5 * 1000) / 100); XCTAssertEqual(good.hotPixelsReplaced, 3)
        XCTAssertFalse(good.processed); XCTAssertNil(good.warning)
        XCTAssertEqual(metrics((0..<100).map { $0 < 10 ? 65535 : 10 }).warning, "CD3: 10% of pixels saturated")
        XCTAssertEqual(metrics([Float](repeating: 7, count: 100)).warning, "CD3: channel is empty (flat)")
        XCTAssertEqual(metrics((0..<100).map { Float(100 + $0 % 20) }).warning, "CD3: low signal-to-background 1.17")
        XCTAssertNil(metrics([Float](repeating: 7, count: 100), blank: true).warning, "blank channels are not warned about")
        // The manifest's keys, written here once.
        let keys = Set((try! JSONSerialization.jsonObject(with: JSONEncoder().encode(good)) as! [String: Any]).keys)
        XCTAssertEqual(keys, ["background_before", "background_after", "p99_before", "p99_after", "signal_to_background", "saturated_fraction",
                              "hot_pixels_replaced", "focus", "blank", "processed", "mean_before", "mean_after"])
    }

    /// A whole streamed run on a small image: the histograms see every pixel before and after, the
    /// metrics name every channel, blank channels are kept, a hot pixel is counted.
    func testStreamedRunMetrics() throws {
        let w = 40, h = 30
        var planes = (0..<3).map { c in (0..<(w * h)).map { i in Float(200 + 50 * c + (i % w > 20 ? 800 : 0)) } }
        planes[1][5 * w + 5] = 30000   // one hot pixel in CD3
        var p = DenoiseParams(); p.band = 16
        let setup = try DenoiseSetup(params: p, names: names, isBlank: isBlank, cycles: nil, background: [nil, nil, nil],
                                     selected: nil, autoHotPixels: 3277, width: w)
        let stream = setup.stream(width: w, height: h, illumination: try setup.illumination(width: w, height: h, dark: nil, darkImage: false,
                                                                                       flatPlane: nil, read: { _, _, _ in [] }))
        let hist = names.map { _ in ChannelHistograms() }
        let pl = planes
        let res = try stream.run(read: { c, y0, n in Array(pl[c][(y0 * w)..<((y0 + n) * w)]) },
                                 input: { c, _, _, band in hist[c].addBefore(band) },
                                 emit: { c, _, _, out in out.withUnsafeBufferPointer { hist[c].addAfter($0) } })
        XCTAssertTrue(hist.allSatisfy { $0.before.n == w * h && $0.after.n == w * h })
        let m = DenoiseMetrics(stream: stream, result: res, histograms: hist, names: names, isBlank: isBlank)
        XCTAssertEqual([m.width, m.height, m.channels, m.bandRows, m.halo], [w, h, 3, 16, stream.halo])
        XCTAssertEqual(Set(m.perChannel.keys), Set(names))
        XCTAssertEqual(m.perChannel["CD3"]?.hotPixelsReplaced, 1)
        XCTAssertEqual(m.perChannel["Blank1"]?.processed, false); XCTAssertEqual(m.perChannel["Blank1"]?.blank, true)
        XCTAssertEqual(m.perChannel["Blank1"]?.meanBefore, m.perChannel["Blank1"]?.meanAfter, "kept as is")
        XCTAssertLessThan(m.perChannel["CD3"]!.backgroundAfter, m.perChannel["CD3"]!.backgroundBefore, "blank and background subtracted")
        XCTAssertEqual(m.recipe, ["DAPI: hot-pixels 3277.0, blank subtraction, rolling-ball 50.0",
                                  "CD3: hot-pixels 3277.0, blank subtraction, rolling-ball 50.0", "Blank1: blank (kept as is)"])
        let keys = Set((try JSONSerialization.jsonObject(with: JSONEncoder().encode(m)) as! [String: Any]).keys)
        XCTAssertEqual(keys, ["width", "height", "channels", "band_rows", "halo", "recipe", "per_channel", "warnings"])
    }

    func testRecipeSummary() {
        var r = ChannelRecipe()
        XCTAssertEqual(r.summary(name: "CD3", blank: false), "CD3: unchanged")
        r.hotPixels = 100; r.flatfield = true; r.median = true; r.rollingBall = 25; r.lightBackground = true; r.gaussian = 1.5
        XCTAssertEqual(r.summary(name: "CD3", blank: false), "CD3: hot-pixels 100.0, flat-field, median 3x3, rolling-ball 25.0 light, gaussian 1.5")
        r.rollingBall = nil; r.tophat = 9
        XCTAssertEqual(r.summary(name: "CD3", blank: false), "CD3: hot-pixels 100.0, flat-field, median 3x3, top-hat 9, gaussian 1.5")
        XCTAssertEqual(r.summary(name: "Blank", blank: true), "Blank: blank (kept as is)")
    }
}
