import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TEST ONLY: fault injection for the crash and signal tests (Tests/EndToEndTests/CrashTests.swift).
/// Never set it in production; nothing in epipe reads it but this.
///
/// `EPIPE_FAULT`, read once when the first point is reached, is a comma-separated list of:
///
///     kill@NAME#N     SIGKILL this process the N-th time (default 1) point NAME is reached
///     term@NAME#N     send SIGTERM to this process there instead (it then stops at its next safe point)
///     int@NAME#N      the same with SIGINT
///     trace:FILE      append the name of every point reached to FILE, one a line (to count them)
///
/// NAME `*` matches any point (`kill@*#40`: the 40th point reached, whatever it is). The points:
///
///     temp-written       a temporary file is complete and synced, before its rename into place
///     renamed            just after such a rename (before the folder is synced)
///     output-chunk       a piece of an output went into its temporary file (a TIFF tile row, a
///                        streamed buffer, a copied block, an S3 part, a file of a zarr store)
///     manifest-running   a stage (or part) wrote its running manifest, before its work
///     progress           a progress update (a band, a tile row, a step, a MiB copied: a safe point;
///                        the running manifest is rewritten at most every 2 s, and at the end)
///     outputs-hashed     the outputs are written and hashed, before the complete manifest
///     manifest-complete  the complete manifest is written, before the queues are told
///     queued             the next stage's queue entry is written
///     claimed            a drain worker claimed an entry (renamed new/ to cur/)
///     parts-moved        a merge moved <stage>/parts aside, before deleting it
///     stored             ingest: an object is stored and verified, before its job and ledger entry
///
/// Unset, `Fault.point` costs one load of a constant `false`.
public enum Fault {
    /// Whether EPIPE_FAULT was set when the process started.
    public static let armed: Bool = plan != nil

    @inline(__always)
    public static func point(_ name: StaticString) {
        if armed { hit("\(name)") }
    }

    struct Action { var signal: Int32; var name: String; var nth: Int }
    struct Plan { var actions: [Action] = []; var trace: Int32 = -1 }

    static let plan: Plan? = {
        guard let spec = ProcessInfo.processInfo.environment["EPIPE_FAULT"], !spec.isEmpty else { return nil }
        var p = Plan()
        for item in spec.split(separator: ",").map(String.init) {
            if item.hasPrefix("trace:") {
                p.trace = open(String(item.dropFirst(6)), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                continue
            }
            guard let at = item.firstIndex(of: "@") else { continue }
            let verb = item[..<at]
            var rest = String(item[item.index(after: at)...]), nth = 1
            if let h = rest.firstIndex(of: "#") { nth = Int(rest[rest.index(after: h)...]) ?? 1; rest = String(rest[..<h]) }
            let sig: Int32 = verb == "kill" ? SIGKILL : verb == "term" ? SIGTERM : verb == "int" ? SIGINT : 0
            if sig != 0 { p.actions.append(Action(signal: sig, name: rest, nth: nth)) }
        }
        return p
    }()

    final class Counts: @unchecked Sendable {
        let lock = NSLock()
        var byName: [String: Int] = [:]
        var all = 0
    }
    static let counts = Counts()

    static func hit(_ name: String) {
        guard let p = plan else { return }
        let c = counts
        c.lock.lock()
        let n = (c.byName[name] ?? 0) + 1
        c.byName[name] = n
        c.all += 1
        let any = c.all
        if p.trace >= 0 { let line = name + "\n"; _ = line.withCString { write(p.trace, $0, strlen($0)) } }
        c.lock.unlock()
        for a in p.actions where (a.name == name && a.nth == n) || (a.name == "*" && a.nth == any) {
            kill(getpid(), a.signal)
            if a.signal == SIGKILL { while true { pause() } }
        }
    }
}
