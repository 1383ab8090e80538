import Foundation
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
        // An entry already pending or claimed needs nothing more.
        if Files.exists(sub("new") + "/" + id) || !claims(of: id).isEmpty { return }
        try AtomicFile.write(jobDir + "\n", to: sub("new") + "/" + id)
        unlink(sub("done") + "/" + id); unlink(sub("failed") + "/" + id)
    }

    func claims(of id: String) -> [String] { Files.list(sub("cur")).filter { $0.hasPrefix(id + "@") } }

    /// Claims one entry; nil when new/ is empty.
    public func claim() throws -> Claim? {
        try ensure()
        for id in Files.list(sub("new")) where !id.hasPrefix(".") {
            let tag = "\(id)@\(Host.name).\(getpid())"
            let from = sub("new") + "/" + id, to = sub("cur") + "/" + tag
            if rename(from, to) == 0 {
                touch(to)
                let jd = (try? String(contentsOfFile: to, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                return Claim(id: id, path: to, jobDir: jd.isEmpty ? root.jobsDir + "/" + id : jd)
            }
        }
        return nil
    }

    public func heartbeat(_ c: Claim) { touch(c.path) }

    public func finish(_ c: Claim, ok: Bool) {
        let dest = sub(ok ? "done" : "failed") + "/" + c.id
        if rename(c.path, dest) == 0 { AtomicFile.syncDirectory(of: dest) }
    }

    /// Retires the pending entry (in new/) of a job that a direct run finished, to done/ or
    /// failed/. A claimed entry (in cur/) is left to its worker.
    public func retire(id: String, ok: Bool) {
        _ = rename(sub("new") + "/" + id, sub(ok ? "done" : "failed") + "/" + id)
    }

    /// Returns claims whose heartbeat is older than staleAfter to new/. Returns their ids.
    @discardableResult
    public func reapStale(staleAfter: TimeInterval) -> [String] {
        var back: [String] = []
        let now = Date()
        for name in Files.list(sub("cur")) where name.contains("@") {
            let p = sub("cur") + "/" + name
            guard let m = Files.mtime(p), now.timeIntervalSince(m) > staleAfter else { continue }
            let id = String(name[..<name.firstIndex(of: "@")!])
            // the heartbeat's age alone decides (the claim's owner is not asked)
            if rename(p, sub("new") + "/" + id) == 0 { back.append(id) }
        }
        return back
    }

    public struct Counts: Codable, Sendable { public var new: Int; public var cur: Int; public var done: Int; public var failed: Int }
    public func counts() -> Counts {
        func n(_ s: String) -> Int { Files.list(sub(s)).filter { !$0.hasPrefix(".") }.count }
        return Counts(new: n("new"), cur: n("cur"), done: n("done"), failed: n("failed"))
    }
    public func entries(_ s: String) -> [String] { Files.list(sub(s)).filter { !$0.hasPrefix(".") } }

    func touch(_ p: String) { utimes(p, nil) }
}
