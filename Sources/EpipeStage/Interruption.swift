import Foundation
import EpipeCore
import EpipeKernels
#if canImport(Glibc)
import Glibc
#endif

/// What a stage does when SIGTERM or SIGINT stops it at a safe point (`Interrupt`) in the middle of a
/// job: its manifest (the stage's, or the part's) says `interrupted` with the signal as its error, its
/// queue claim goes back to new/ (another worker takes the job), the raw image fetched for it is
/// removed, and it says so on stderr and in the job's log. `Interrupt` then removes the temporary
/// files still open and exits 143 (TERM) or 130 (INT). Filled in as the job goes (job, manifest). A
/// job whose manifest box is closed is complete (`StageRunner.complete` closes it and writes the
/// complete manifest while a stop waits): a stop then leaves it alone.
final class JobStop: @unchecked Sendable {
    private let lock = NSLock()
    let stage: String, tool: String
    private let claim: (Queue, Queue.Claim)?
    private var job: Job?, log: StageLog?, box: ManifestBox?, manifestPath: String?, started = Date(), tag = ""
    /// A part run: rewrites the stage manifest from the parts' (after the part's says interrupted).
    private var after: (() -> Void)?

    init(stage: String, tool: String, claim: (Queue, Queue.Claim)?) { self.stage = stage; self.tool = tool; self.claim = claim }

    func started(job: Job, log: StageLog, tag: String = "") { lock.lock(); self.job = job; self.log = log; self.tag = tag; lock.unlock() }
    func running(_ box: ManifestBox, path: String, started: Date, after: (() -> Void)? = nil) {
        lock.lock(); self.box = box; manifestPath = path; self.started = started; self.after = after; lock.unlock()
    }

    /// The stop handler (any thread; the process ends right after).
    func stop(_ sig: Int32) {
        lock.lock()
        let (job, log, box, path, started, tag, after) = (self.job, self.log, self.box, manifestPath, self.started, self.tag, self.after)
        lock.unlock()
        let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
        if let box, let path {
            guard var m = box.closeForStop() else { return }   // complete: nothing to undo
            m.status = .interrupted; m.error = "interrupted by \(name); rerun the stage"; m.finished = Time.iso(Date())
            m.seconds = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
            m.peak_rss_bytes = Memory.peakRSS()
            try? AtomicFile.write(JSON.encode(m), to: path)
            after?()
        }
        var where_ = "rerun it to continue"
        if let (q, c) = claim, q.holds(c), q.giveBack(claim: (c.path as NSString).lastPathComponent) {
            where_ = "the job is back in queue/\(stage)/new"
        }
        if let job { RawCache.clean(job) }
        let what = job.map { $0.spec.name + (tag.isEmpty ? "" : " " + tag) } ?? "job"
        if let log { log.warn("\(what): interrupted by \(name) at a safe point; temporary files removed; \(where_)") }
        else { Term.stderr("\(tool): interrupted by \(name); \(where_)") }
    }
}
