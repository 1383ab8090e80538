import XCTest
import Foundation
import EpipeCore
import EpipeCluster

/// Every method of epipe-cluster on cells that epipe-segment found on a generated slide (make
/// demo's panel: DAPI, CD45, PanCK, CD3, CD20, CD68), scored against the generator's cell types.
/// A segmented cell takes the type of the nearest true cell centre within 6 px. Stroma and
/// endothelium carry none of these markers, so no method can tell them apart (the best a
/// clustering can do here is about 0.8). Floors sit under the measured values (printed).
final class ClusterSlideTests: E2ECase {
    func testMethodsOnSegmentedSlide() throws {
        let scans = tmp + "/scans"
        let img = try synth(scans, size: 1536, channels: 6, seed: 7, name: "slide")
        XCTAssertEqual(img.count, 1)
        let ing = try exec("epipe-ingest", ["--root", tmp + "/root", "--settle", "0", "-q", scans])
        let job = ing.out.trimmingCharacters(in: .whitespacesAndNewlines)
        for st in ["denoise", "segment"] { let r = try exec("epipe-" + st, ["-q", job]); XCTAssertEqual(r.code, 0, r.err) }
        // truth: the nearest true centre within 6 px
        let truth = try CSVTable.read(scans + "-truth/slide-cells.csv")
        let tx = truth.doubles("X")!, ty = truth.doubles("Y")!, tt = truth.strings("type")!
        var grid: [Int: [Int]] = [:]
        func key(_ x: Double, _ y: Double) -> Int { Int(x / 8) * 100_000 + Int(y / 8) }
        for i in tt.indices { grid[key(tx[i], ty[i]), default: []].append(i) }
        let cells = try CSVTable.read(job + "/segment/cells.csv")
        let cx = cells.doubles("X_centroid")!, cy = cells.doubles("Y_centroid")!
        var matched: [(Int, String)] = []
        for c in cx.indices {
            var best = -1, bd = 36.0
            for gx in (Int(cx[c] / 8) - 1)...(Int(cx[c] / 8) + 1) {
                for gy in (Int(cy[c] / 8) - 1)...(Int(cy[c] / 8) + 1) {
                    for i in grid[gx * 100_000 + gy] ?? [] {
                        let d = (tx[i] - cx[c]) * (tx[i] - cx[c]) + (ty[i] - cy[c]) * (ty[i] - cy[c])
                        if d < bd { bd = d; best = i }
                    }
                }
            }
            if best >= 0 { matched.append((c, tt[best])) }
        }
        XCTAssertGreaterThan(Double(matched.count), 0.85 * Double(cx.count), "segmented cells find their true centre")
        let types = Dictionary(uniqueKeysWithValues: Set(tt).sorted().enumerated().map { ($1, $0) })
        let truthLabels = matched.map { types[$0.1]! }
        func ari(_ args: [String]) throws -> (Double, Int) {
            let r = try exec("epipe-cluster", ["-q", "--force"] + args + [job])
            XCTAssertEqual(r.code, 0, r.err)
            let lab = try CSVTable.read(job + "/cluster/cells.csv").strings("phenotype")!
            let ids = Dictionary(uniqueKeysWithValues: Set(lab).sorted().enumerated().map { ($1, $0) })
            return (Agreement.adjustedRandIndex(matched.map { ids[lab[$0.0]]! }, truthLabels), ids.count)
        }
        let workflow = Bin.packageRoot + "/Tests/Data/synth/demo_workflow.csv"
        var report: [String] = []
        for (args, floor) in [(["--method", "leiden"], 0.15), (["--method", "leiden", "--resolution", "0.1"], 0.5),
                              (["--method", "kmeans", "--k", "6"], 0.45), (["--method", "flowsom", "--k", "6"], 0.5),
                              (["--method", "rules", "--workflow", workflow], 0.6)] {
            let (a, k) = try ari(args)
            report.append("\(args.joined(separator: " ")): ARI \(String(format: "%.4f", a)) (\(k) phenotypes)")
            XCTAssertGreaterThanOrEqual(a, floor, args.joined(separator: " "))
        }
        print("slide 1536^2 x 6, \(cx.count) cells, \(matched.count) matched:\n" + report.joined(separator: "\n"))
    }
}
