import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes to stderr (one line each) and, when a job is known, appends to jobs/<id>/logs/<stage>.log.
public final class StageLog: @unchecked Sendable {
    let tool: String
    let lock = NSLock()
    var fd: Int32 = -1
    public let quiet: Bool

    public init(tool: String, file: String? = nil, quiet: Bool = false) {
        self.tool = tool; self.quiet = quiet
        if let f = file {
            try? Files.mkdir((f as NSString).deletingLastPathComponent)
            fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        }
    }
    deinit { if fd >= 0 { close(fd) } }

    public func info(_ msg: String) { emit(msg, toStderr: !quiet) }
    public func warn(_ msg: String) { emit("warning: " + msg, toStderr: true) }
    public func error(_ msg: String) { emit("error: " + msg, toStderr: true) }
    /// Only into the job's log file.
    public func detail(_ msg: String) { emit(msg, toStderr: false) }

    func emit(_ msg: String, toStderr: Bool) {
        lock.lock(); defer { lock.unlock() }
        if toStderr { Term.stderr("\(tool): \(msg)") }
        if fd >= 0 {
            let line = "\(Time.iso(Date())) \(tool)[\(getpid())] \(msg)\n"
            _ = line.withCString { write(fd, $0, strlen($0)) }
        }
    }
}
