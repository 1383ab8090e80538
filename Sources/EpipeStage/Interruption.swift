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
/// files still open and exits 143 (TERM) or 130 (INT). Filled in as the job goes (job, manifest);
/// `done` once the complete manifest is written, after which a stop leaves the job alone.
final class JobStop: @unchecked Sendable {
    private let lock = NSLock()
    let stage: String, tool: String
    private let claim: (Queue, Queue.Claim)?
    private var job: Job?, log: StageLog?, box: ManifestBox?, manifestPath: String?, started = Date(), tag = ""
    private var done = false
    /// A part run: rewrites the stage manifest from the parts' (after the part's says interrupted).
    private var after: (() -> Void)?

    init(stage: String, tool: String, claim: (Queue, Queue.Claim)?) { self.stage = stage; self.tool = tool; self.claim = claim }

    func started(job: Job, log: StageLog, tag: String = "") { lock.lock(); self.job = job; self.log = log; self.tag = tag; lock.unlock() }
    func running(_ box: ManifestBox, path: String, started: Date, after: (() -> Void)? = nil) {
        lock.lock(); self.box = box; manifestPath = path; self.started = started; self.after = after; lock.unlock()
    }
    /// The job is complete (or failed and recorded): a later stop has nothing to undo.
    func finished() { lock.lock(); done = true; lock.unlock() }

    /// The stop handler (any thread; the process ends right after).
    func stop(_ sig: Int32) {
        lock.lock()
        let (job, log, box, path, started, tag, done, after) = (self.job, self.log, self.box, manifestPath, self.started, self.tag, self.done, self.after)
        lock.unlock()
        if done { return }
        let name = sig == SIGINT ? "SIGINT" : "SIGTERM"
        if let box, let path { box.interrupt(error: "interrupted by \(name); rerun the stage", started: started, path: path) }
        after?()
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

extension ManifestBox {
    /// Marks the running manifest interrupted and writes it (the box takes no progress after).
    func interrupt(error: String, started: Date, path: String) {
        withLocked { m in
            m.status = .interrupted; m.error = error; m.finished = Time.iso(Date())
            m.seconds = (Date().timeIntervalSince(started) * 1000).rounded() / 1000
            m.peak_rss_bytes = Memory.peakRSS()
            try? AtomicFile.write(JSON.encode(m), to: path)
        }
    }
}

extension StageRunner {
    /// Removes the temporary files and folders a killed run of this stage left in its folder (qc/ and
    /// a zarr store's included; the parts' folders aside: each part sweeps its own), under the lock
    /// the parts take to rewrite the stage manifest. The caller holds the stage's lock.
    func sweep(_ job: Job) {
        let lock = FileLock(path: job.stageDir(stage) + "/.manifest.lock")
        AtomicFile.sweep(directory: job.stageDir(stage), olderThan: 0, recursive: true, skip: ["parts"])
        withExtendedLifetime(lock) {}
    }
}
