import XCTest
import Foundation
import EpipeCore

/// Runs the built binaries. EPIPE_BIN names their folder (make test sets it to the
/// release build); else the folder of the test bundle (the debug build).
enum Bin {
    static let dir: String = {
        if let d = ProcessInfo.processInfo.environment["EPIPE_BIN"], Files.exists(d + "/epipe-ingest") { return d }
        var u = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if u.path.hasSuffix(".xctest") || u.path.contains(".xctest/") { u = u.deletingLastPathComponent() }
        for _ in 0..<4 {
            if Files.exists(u.path + "/epipe-ingest") { return u.path }
            u = u.deletingLastPathComponent()
        }
        let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return here.path + "/.build/debug"
    }()
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static func path(_ name: String) -> String { dir + "/" + name }
}

struct RunResult { var code: Int32; var out: String; var err: String
    var lines: [String] { out.split(separator: "\n").map(String.init) }
    var errLines: [String] { err.split(separator: "\n").map(String.init) }
}

@discardableResult
func exec(_ exe: String, _ args: [String], stdin: String? = nil, env: [String: String] = [:], cwd: String? = nil) throws -> RunResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe.hasPrefix("/") ? exe : Bin.path(exe))
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    e["PATH"] = Bin.dir + ":" + (e["PATH"] ?? "/usr/bin:/bin")
    p.environment = e
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let o = Pipe(), er = Pipe(), i = Pipe()
    p.standardOutput = o; p.standardError = er; p.standardInput = i
    try p.run()
    if let stdin { i.fileHandleForWriting.write(Data(stdin.utf8)) }
    try i.fileHandleForWriting.close()
    // Read both pipes concurrently so neither fills up.
    nonisolated(unsafe) var errData = Data()
    let g = DispatchGroup()
    g.enter()
    DispatchQueue.global().async { errData = er.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    // A hung binary fails the test instead of hanging the suite.
    let limit = Double(ProcessInfo.processInfo.environment["EPIPE_TEST_TIMEOUT"] ?? "") ?? 600
    let watchdog = DispatchWorkItem { if p.isRunning { p.terminate(); kill(p.processIdentifier, SIGKILL) } }
    DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: watchdog)
    let outData = o.fileHandleForReading.readDataToEndOfFile()
    g.wait()
    p.waitUntilExit()
    watchdog.cancel()
    if p.terminationReason == .uncaughtSignal {
        XCTFail("\(exe) \(args.joined(separator: " ")) was killed by signal \(p.terminationStatus) (timeout \(Int(limit)) s or crash)")
    }
    return RunResult(code: p.terminationStatus, out: String(decoding: outData, as: UTF8.self), err: String(decoding: errData, as: UTF8.self))
}

func sh(_ script: String, cwd: String? = nil) throws -> RunResult { try exec("/bin/bash", ["-c", script], cwd: cwd) }

class E2ECase: XCTestCase {
    var tmp = ""
    override func setUpWithError() throws {
        guard Files.exists(Bin.path("epipe-ingest")) else { throw XCTSkip("binaries not built at \(Bin.dir)") }
        tmp = NSTemporaryDirectory() + "epipe-e2e-" + UUID().uuidString
        try Files.mkdir(tmp)
    }
    override func tearDownWithError() throws { if !tmp.isEmpty { try? FileManager.default.removeItem(atPath: tmp) } }

    /// Small synthetic slides in DIR.
    func synth(_ dir: String, count: Int = 1, size: Int = 320, channels: Int = 4, seed: Int = 3, name: String = "s") throws -> [String] {
        let r = try exec("epipe-synth", ["--out", dir, "--truth", dir + "-truth", "--width", "\(size)", "--height", "\(size)",
                                         "--channels", "\(channels)", "--count", "\(count)", "--seed", "\(seed)", "--name", name, "--quiet"])
        XCTAssertEqual(r.code, 0, r.err)
        return r.lines
    }

    /// Usage or bad input: exit 2 and one line that names the problem.
    func assertRefused(_ r: RunResult, _ word: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.code, 2, r.err, file: file, line: line)
        XCTAssertEqual(r.errLines.count, 1, r.err, file: file, line: line)
        XCTAssertTrue(r.err.contains(word), "\(word): \(r.err)", file: file, line: line)
        XCTAssertEqual(r.out, "", file: file, line: line)
    }

    func manifest(_ job: String, _ stage: String) throws -> StageManifest { try StageManifest.load(job + "/" + stage + "/manifest.json") }

    func assertComplete(_ job: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for s in Names.defaultStages {
            let m = try manifest(job, s)
            XCTAssertEqual(m.status, .complete, "\(job) \(s)", file: file, line: line)
            for o in m.outputs { XCTAssertTrue(Files.exists(job + "/" + o.path), o.path, file: file, line: line) }
        }
    }
}
