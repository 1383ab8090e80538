import Foundation
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// queue/<stage>/{new,cur,done,failed}, Maildir-style. An entry is a file named by the
/// job id holding the job's path. A claim renames new/<id> to cur/<id>@<host>.<pid>;
/// rename is atomic, so of several workers exactly one wins. The worker touches its
/// claim as a heartbeat; a claim not touched for `staleAfter` seconds is given back.
public struct Queue: Sendable {
    public let root: Root
    public let stage: String
    public init(root: Root, stage: String) { self.root = root; self.stage = stage }

    public var dir: String { root.path + "/queue/" + stage }
    public func sub(_ s: String) -> String { dir + "/" + s }

    public func ensure() throws { for s in ["new", "cur", "done", "failed"] { try Files.mkdir(sub(s)) } }

    public struct Claim: Sendable {
        public let id: String
        public let path: String      // cur/<id>@host.pid
        public let jobDir: String
    }

    /// Puts a job in new/ (replacing a stale done/failed entry of the same id).
    public func enqueue(id: String, jobDir: String) throws {
        try Names.validateID(id, path: dir)
        try ensure()
        // An entry already pending or claimed needs nothing more; an entry in done/ or failed/ goes
        // (after the new one is written: a crash in between leaves the job queued twice, which the
        // next enqueue repairs, never nowhere).
        if !(Files.exists(sub("new") + "/" + id) || !claims(of: id).isEmpty) {
            // the temporary entry of an enqueue of this job that crashed
            AtomicFile.sweep(directory: sub("new"), olderThan: 60, deadOwner: true) { $0.hasPrefix("." + id + ".tmp-") }
            try AtomicFile.write(jobDir + "\n", to: sub("new") + "/" + id)
            Fault.point("queued")
        }
        unlink(sub("done") + "/" + id); unlink(sub("failed") + "/" + id)
    }

    /// Where job `id` is in this queue: the folders (new, cur, done, failed) holding an entry of it,
    /// one per entry.
    public func places(of id: String) -> [String] {
        var r: [String] = []
        if Files.exists(sub("new") + "/" + id) { r.append("new") }
        r += claims(of: id).map { _ in "cur" }
        if Files.exists(sub("done") + "/" + id) { r.append("done") }
        if Files.exists(sub("failed") + "/" + id) { r.append("failed") }
        return r
    }

    /// The claims (names in cur/) of job `id`.
    public func claims(of id: String) -> [String] { Files.list(sub("cur")).filter { $0.hasPrefix(id + "@") } }

    /// Claims one entry; nil when new/ is empty. Throws when the queue cannot be written (a read-only
    /// root, permissions): a worker must say so, not take the queue for empty.
    ///
    /// The job is ROOT/jobs/<id> of this queue's root, whatever path the entry holds: an entry never
    /// sends a worker out of its root (and a root mounted at another path on another host still works).
    public func claim() throws -> Claim? {
        try ensure()
        for id in Files.list(sub("new")) where !id.hasPrefix(".") {
            let tag = "\(id)@\(Host.name).\(getpid())"
            let from = sub("new") + "/" + id, to = sub("cur") + "/" + tag
            if rename(from, to) == 0 {
                touch(to)
                return Claim(id: id, path: to, jobDir: root.jobsDir + "/" + id)
            }
            let e = errno
            // another worker took it first (ENOENT): try the next one
            if e != ENOENT {
                throw EpipeError.failed("\(from): cannot claim (\(String(cString: strerror(e)))); \(e == EROFS ? "the root is on a read-only file system: remount it read-write" : "check that this user can write \(dir)")")
            }
        }
        return nil
    }

    public func heartbeat(_ c: Claim) { touch(c.path) }

    /// True while the claim is still its worker's: false once it was given back to new/ (by
    /// `epipe-status --requeue-stale` or another worker's stale reaping), when the worker must stop.
    public func holds(_ c: Claim) -> Bool { Files.exists(c.path) }

    /// Moves a finished claim to done/ or failed/; the entry's mtime is then the finish time.
    public func finish(_ c: Claim, ok: Bool) {
        let dest = sub(ok ? "done" : "failed") + "/" + c.id
        if rename(c.path, dest) == 0 { touch(dest); unlink(sub(ok ? "failed" : "done") + "/" + c.id); AtomicFile.syncDirectory(of: dest) }
    }

    /// Retires the pending entry (in new/) of a job that a direct run finished, to done/ or
    /// failed/. A claimed entry (in cur/) is left to its worker.
    /// A job that completes by hand after an earlier failure also leaves failed/ for done/, so the
    /// queue's failures are the jobs that are failed now.
    public func retire(id: String, ok: Bool) {
        let dest = sub(ok ? "done" : "failed") + "/" + id
        if rename(sub("new") + "/" + id, dest) == 0 || (ok && rename(sub("failed") + "/" + id, dest) == 0) { touch(dest) }
    }

    /// Gives the claim named `name` in cur/ (`<id>@<host>.<pid>`) back to new/; false when it is gone.
    public func giveBack(claim name: String) -> Bool {
        guard let at = name.firstIndex(of: "@") else { return false }
        let to = sub("new") + "/" + String(name[..<at])
        guard rename(sub("cur") + "/" + name, to) == 0 else { return false }
        touch(to); AtomicFile.syncDirectory(of: to)
        return true
    }

    /// A claim whose worker is taken for gone: its heartbeat is older than the limit, or its owner is
    /// a process of this host that no longer exists (killed: no need to wait out the limit).
    public struct StaleClaim: Sendable {
        public var name: String; public var id: String; public var owner: String
        /// Seconds since the last heartbeat.
        public var age: Double
        public var ownerGone: Bool
        public var describe: String {
            ownerGone ? "claimed by \(owner), a process that is gone; epipe-status --requeue-stale gives it back"
                : "claimed by \(owner), no heartbeat for \(ProgressReporter.clock(age)); epipe-status --requeue-stale gives it back"
        }
    }

    public func staleClaims(staleAfter: TimeInterval, now: Date = Date()) -> [StaleClaim] {
        entries("cur").compactMap { name in
            guard let at = name.firstIndex(of: "@"), let m = Files.mtime(sub("cur") + "/" + name) else { return nil }
            let owner = String(name[name.index(after: at)...])
            let age = max(0, now.timeIntervalSince(m)).rounded()
            var gone = false
            if let dot = owner.lastIndex(of: "."), String(owner[..<dot]) == Host.name, let pid = Int32(owner[owner.index(after: dot)...]) {
                gone = kill(pid, 0) != 0 && errno == ESRCH
            }
            guard age > staleAfter || gone else { return nil }
            return StaleClaim(name: name, id: String(name[..<at]), owner: owner, age: age, ownerGone: gone)
        }
    }

    /// Gives stale claims back to new/ and returns them. The claim's owner is not asked: should it
    /// still run, it stops when it finds its claim gone.
    @discardableResult
    public func reapStale(staleAfter: TimeInterval) -> [StaleClaim] {
        staleClaims(staleAfter: staleAfter).filter { giveBack(claim: $0.name) }
    }

    public struct Counts: Codable, Sendable { public var new: Int; public var cur: Int; public var done: Int; public var failed: Int }
    public func counts() -> Counts {
        func n(_ s: String) -> Int { Files.list(sub(s)).filter { !$0.hasPrefix(".") }.count }
        return Counts(new: n("new"), cur: n("cur"), done: n("done"), failed: n("failed"))
    }
    public func entries(_ s: String) -> [String] { Files.list(sub(s)).filter { !$0.hasPrefix(".") } }

    func touch(_ p: String) { utimes(p, nil) }
}
