import Foundation
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// Progress of long work: a bar with rate and ETA on a terminal, plain lines otherwise.
/// `onUpdate` is called at most every `every` seconds (the stage runner uses it to
/// rewrite the running manifest, which is what epipe-status reads).
public final class ProgressReporter: @unchecked Sendable {
    public let label: String
    public let unit: String
    public private(set) var total: Int
    public private(set) var done = 0
    let start = Time.now()
    var lastDraw = 0.0
    var lastLine = -1.0
    var lastUpdate = 0.0
    let lock = NSLock()
    let quiet: Bool
    let onUpdate: (@Sendable (ProgressRef) -> Void)?

    public init(label: String, total: Int, unit: String, quiet: Bool = false, onUpdate: (@Sendable (ProgressRef) -> Void)? = nil) {
        self.label = label; self.total = max(total, 1); self.unit = unit; self.quiet = quiet; self.onUpdate = onUpdate
        onUpdate?(ProgressRef(done: 0, total: self.total, unit: unit))
    }

    public func advance(_ n: Int = 1) {
        lock.lock()
        done = min(total, done + n)
        let now = Time.now()
        let d = done, t = total
        var text: String? = nil, line: String? = nil, upd = false
        let el = now - start
        let rate = el > 0 ? Double(d) / el : 0
        let eta = rate > 0 ? Double(t - d) / rate : 0
        if !quiet {
            if Term.stderrIsTTY {
                if now - lastDraw > 0.1 || d == t {
                    lastDraw = now
                    let w = 28, f = Int(Double(w) * Double(d) / Double(t))
                    text = "\(label) [" + String(repeating: "#", count: f) + String(repeating: " ", count: w - f) + "] \(d)/\(t) \(unit) " + String(format: "%.1f/s", rate) + " ETA " + ProgressReporter.clock(eta)
                }
            } else if now - lastLine >= 5 || d == t {
                lastLine = now
                line = "\(label): \(d)/\(t) \(unit) (\(Int(100 * Double(d) / Double(t)))%), " + String(format: "%.1f %@/s", rate, unit) + ", ETA " + ProgressReporter.clock(eta)
            }
        }
        if now - lastUpdate >= 2 || d == t { lastUpdate = now; upd = true }
        lock.unlock()
        if let text { if d == t { Term.clearBar() } else { Term.bar(text) } }
        if let line { Term.stderr(line) }
        if upd { onUpdate?(ProgressRef(done: d, total: t, unit: unit)) }
        // every progress update is a safe point: a SIGTERM/SIGINT received stops the program here
        Fault.point("progress")
        Interrupt.checkpoint()
    }

    public func finish() { lock.lock(); let rest = total - done; lock.unlock(); if rest > 0 { advance(rest) } else if Term.stderrIsTTY { Term.clearBar() } }

    public static func clock(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "--:--" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
