import XCTest
import Foundation
import EpipeCore
import EpipeImage
import EpipeReport

/// The QC report in a real browser: a root the binaries built (one job through every stage, one
/// whose segment failed on a cut-short image, its cluster and stats pending), both report pages
/// opened in headless Chromium: every picture loads, no script error or console message, and a
/// screenshot of the expected size that is not blank.
final class ReportBrowserTests: E2ECase {
    /// EPIPE_CHROMIUM, else the first Chromium or Chrome on PATH (`make browser` installs one).
    static let browser: String? = {
        let env = ProcessInfo.processInfo.environment
        if let e = env["EPIPE_CHROMIUM"], FileManager.default.isExecutableFile(atPath: e) { return e }
        for dir in (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome-headless-shell"] {
                let p = dir + "/" + name
                if FileManager.default.isExecutableFile(atPath: p) { return p }
            }
        }
        return nil
    }()

    func testReportPagesInHeadlessChromium() throws {
        guard let browser = Self.browser else {
            throw XCTSkip("no chromium on PATH (make browser installs it; or set EPIPE_CHROMIUM): the QC report's browser test is skipped")
        }
        let scans = tmp + "/scans", rootDir = tmp + "/root"
        _ = try synth(scans, count: 2, size: 512, channels: 4)
        let den = try sh("set -o pipefail; epipe-ingest --root \(rootDir) --settle 0 --quiet \(scans) | epipe-denoise -q")
        XCTAssertEqual(den.code, 0, den.err)
        let jobs = den.lines.sorted()
        XCTAssertEqual(jobs.count, 2, den.out)
        guard jobs.count == 2 else { return }
        let (good, bad) = (jobs[0], jobs[1])
        // Cut the second job's denoised image short: its segment fails reading it.
        let image = bad + "/denoise/image.ome.tif"
        XCTAssertEqual(truncate(image, off_t(Files.size(image)! / 2)), 0)
        let rest = try exec("/bin/bash", ["-c", "epipe-segment -q | epipe-cluster -q | epipe-stats -q"], stdin: jobs.joined(separator: "\n") + "\n")
        XCTAssertEqual(rest.lines, [good], rest.err)
        try assertComplete(good)
        let failed = try manifest(bad, "segment")
        XCTAssertEqual(failed.status, .failed)
        let error = try XCTUnwrap(failed.error)

        let root = try Root(rootDir, create: false)
        let rootPage = try QCReport.writeRoot(root: root)
        XCTAssertEqual(rootPage, root.path + "/report.html")
        let goodPage = good + "/report.html", badPage = bad + "/report.html"
        let goodHTML = try String(contentsOfFile: goodPage, encoding: .utf8), badHTML = try String(contentsOfFile: badPage, encoding: .utf8)
        let rootHTML = try String(contentsOfFile: rootPage, encoding: .utf8)
        // every QC picture of the complete job's manifests is on its page, linked to the full-size file
        var pictures = 0
        for s in Names.defaultStages {
            for o in try manifest(good, s).outputs where o.path.hasSuffix(".png") {
                pictures += 1
                XCTAssertTrue(goodHTML.contains("<a href=\"\(o.path)\"><img src=\"\(o.path)\""), o.path)
            }
        }
        XCTAssertGreaterThan(pictures, 10)
        XCTAssertEqual(Self.count("<img ", in: goodHTML), pictures)
        // the failed job: its error, its log, and what is pending; the root page marks it
        XCTAssertTrue(badHTML.contains(Self.escaped(error)), error)
        XCTAssertTrue(badHTML.contains("Last log lines"))
        XCTAssertTrue(badHTML.contains("Pending: no manifest yet; epipe-cluster"))
        XCTAssertTrue(rootHTML.contains("class=\"flagged\"") && rootHTML.contains("segment failed"))
        XCTAssertEqual(Self.count("<tr id=\"job-", in: rootHTML), 2)

        for (page, html) in [(goodPage, goodHTML), (badPage, badHTML), (rootPage, rootHTML)] {
            let name = (page as NSString).deletingLastPathComponent
            let dom = try chromium(browser, ["--virtual-time-budget=15000", "--dump-dom", "file://" + page])
            XCTAssertEqual(dom.code, 0, dom.err)
            let status = Self.attributes(of: "qc-status", in: dom.out)
            XCTAssertEqual(status["data-ready"], "1", "\(name): the load handler ran: \(status)")
            XCTAssertEqual(status["data-images"], String(Self.count("<img ", in: html)), "\(name): images the browser saw")
            if page == goodPage { XCTAssertEqual(status["data-images"], String(pictures)) }
            XCTAssertEqual(status["data-broken"], "0", "\(name): pictures that did not load")
            XCTAssertEqual(status["data-errors"], "0", "\(name): script errors")
            let console = dom.errLines.filter { $0.contains(":CONSOLE") }
            XCTAssertEqual(console, [], "\(name): console messages")
        }

        for (page, shot) in [(goodPage, tmp + "/job.png"), (rootPage, tmp + "/root.png")] {
            let r = try chromium(browser, ["--screenshot=" + shot, "--window-size=1280,2000", "file://" + page])
            XCTAssertEqual(r.code, 0, r.err)
            let png = try PNG.read(path: shot)
            XCTAssertEqual(png.width, 1280, shot); XCTAssertEqual(png.height, 2000, shot)
            // not blank: a good share of pixels differ from the page's background, with some spread
            let c = png.channels, n = png.width * png.height
            let bg = Array(png.pixels[0..<c])
            var differ = 0, sum = 0.0, sum2 = 0.0
            for i in 0..<n {
                var l = 0.0, d = false
                for k in 0..<c { let v = png.pixels[i * c + k]; l += Double(v); if abs(Int(v) - Int(bg[k])) > 8 { d = true } }
                l /= Double(c); sum += l; sum2 += l * l
                if d { differ += 1 }
            }
            let sd = (sum2 / Double(n) - (sum / Double(n)) * (sum / Double(n))).squareRoot()
            XCTAssertGreaterThan(Double(differ) / Double(n), 0.01, "\(shot): almost every pixel is background")
            XCTAssertGreaterThan(sd, 5, "\(shot): no contrast")
        }
    }

    /// Headless Chromium with a profile of its own, logging to stderr (console messages included).
    func chromium(_ browser: String, _ args: [String]) throws -> RunResult {
        try exec(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--hide-scrollbars",
                           "--user-data-dir=" + tmp + "/chromium-profile", "--enable-logging=stderr", "--v=0"] + args)
    }

    static func count(_ needle: String, in s: String) -> Int { s.components(separatedBy: needle).count - 1 }

    /// The attributes of the element with `id` in serialised HTML.
    static func attributes(of id: String, in html: String) -> [String: String] {
        guard let start = html.range(of: "id=\"\(id)\""), let open = html[..<start.lowerBound].lastIndex(of: "<"),
              let close = html[start.upperBound...].firstIndex(of: ">") else { return [:] }
        let tag = String(html[open..<close])
        var out: [String: String] = [:]
        let re = try! NSRegularExpression(pattern: "([a-zA-Z-]+)=\"([^\"]*)\"")
        for m in re.matches(in: tag, range: NSRange(tag.startIndex..., in: tag)) {
            out[String(tag[Range(m.range(at: 1), in: tag)!])] = String(tag[Range(m.range(at: 2), in: tag)!])
        }
        return out
    }

    static func escaped(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}
