import Foundation
import EpipeCore
import EpipeStore

/// What a killed run left: temporary files and folders (`.name.tmp-PID-RANDOM`, `.name.old-PID-RANDOM`)
/// that the next run of the same writer removes before it writes (see AtomicFile.sweep).
extension StageRunner {
    /// Removes the temporary files and folders a killed run of this stage left in its folder (qc/ and a
    /// zarr store's included; the parts' folders aside: each part sweeps its own), under the lock the
    /// parts take to rewrite the stage manifest. The caller holds the stage's lock.
    func sweep(_ job: Job) {
        let lock = FileLock(path: job.stageDir(stage) + "/.manifest.lock")
        AtomicFile.sweep(directory: job.stageDir(stage), olderThan: 0, recursive: true, skip: ["parts"])
        withExtendedLifetime(lock) {}
    }
}

extension IngestRun {
    /// Removes the temporary files a killed run left (the runs take turns under the ingest lock, so
    /// nothing else writes these): in the ledger, the run reports, the S3 resume records and the file
    /// store (a `.partial-` copy is not one: the next put of its source resumes it).
    static func sweep(root: Root, store: any ObjectStore) {
        for d in [root.ledgerDir, root.path + "/ingest/runs", root.path + "/ingest/uploads"] { AtomicFile.sweep(directory: d, olderThan: 0) }
        if let fs = store as? FileStore { AtomicFile.sweep(directory: fs.root, olderThan: 0) }
    }
}
