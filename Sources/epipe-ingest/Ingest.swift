import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeStore

@main
struct Ingest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "epipe-ingest",
        abstract: "Copy new or changed scans into the store with end-to-end checksums and register one job per scan.",
        discussion: """
        Scans folders (recursively) and files for TIFF/OME-TIFF/QPTIFF images whose mtime is older \
        than --settle seconds, copies each new or changed one into the root's store (SHA-256 of the \
        source while reading, re-read and compared after writing; an interrupted copy resumes), records \
        it in ROOT/ledger, writes ROOT/jobs/<id>/job.json and queues the job for its first stage. \
        Prints each new job directory on stdout, so it can start a pipeline:

          epipe-ingest /mnt/scanner | epipe-denoise | epipe-segment | epipe-cluster | epipe-stats

        A markers.csv beside a scan (MCMICRO's form, column marker_name) travels with it.
        """)

    @Option(name: .long, help: "The epipe root (else $EPIPE_ROOT, else ./epipe-data).")
    var root: String?

    @Option(name: .long, help: "A folder to scan (may repeat); same as a positional path.")
    var from: [String] = []

    @Option(name: .long, help: "Only take files whose mtime is at least this many seconds old.")
    var settle: Double = IngestParams.defaultSettle

    @Option(name: .long, help: "Comma-separated stages for new jobs (default: the root's epipe.json).")
    var stages: String?

    @Option(name: .long, help: "Job name (only with a single scan; default: the file name).")
    var name: String?

    @Option(name: .long, help: "Per-job parameter stage.key=value (may repeat), e.g. segment.nuclear=DAPI.")
    var param: [String] = []

    @Option(name: .long, help: "Refuse images with more pixels (width x height x channels) than this.")
    var maxPixels: Int = IngestParams.defaultMaxPixels

    @Flag(name: .long, help: "Print one JSON event per new job instead of its directory.")
    var json = false

    @Flag(name: [.short, .long], help: "Only warnings and errors on stderr.")
    var quiet = false

    @Argument(help: "Folders or image files to ingest.")
    var paths: [String] = []

    func run() throws {
        let sources = paths + from
        guard !sources.isEmpty else { throw ValidationError("give at least one folder or file to ingest (or --from DIR)") }
        let p = try IngestParams(settle: settle, stages: stages, name: name, param: param, maxPixels: maxPixels)
        let root = try Root(Root.resolve(self.root))
        let cfg = try root.config()
        let stageList = try p.stageList(config: cfg)
        let intake = Intake(root: root, store: try FileStore(uri: cfg.store), ledger: try Ledger(dir: root.ledgerDir), stages: stageList, params: p.params)
        let log = StageLog(tool: "epipe-ingest", file: root.path + "/ledger/ingest.log", quiet: quiet)

        let files = try Scans.collect(sources)
        try p.check(scans: files.count)
        var worst: Int32 = 0
        var newJobs = 0, unchanged = 0, settling = 0
        let now = Date()
        for f in files {
            let src = Files.canonical(f)
            guard let size = Files.size(src), let mtime = Files.mtime(src) else { continue }
            if now.timeIntervalSince(mtime) < p.settle { settling += 1; log.detail("\(src): modified \(Int(now.timeIntervalSince(mtime))) s ago, waiting for --settle \(Int(p.settle)) s"); continue }
            if try intake.alreadyTaken(src, bytes: size, mtime: mtime) { unchanged += 1; continue }
            do {
                // Check the image before copying: a bad scan never becomes a job.
                let info = try ImageReader(path: src, maxPixels: p.maxPixels).info
                let jobName = p.name ?? Scans.jobName(src)
                try Names.validateName(jobName, what: "job name", path: src)
                let prog = ProgressReporter(label: "\(jobName) copy", total: Int(max(1, size >> 20)), unit: "MiB", quiet: quiet || size < (64 << 20))
                var last = 0
                let outcome = try intake.take(src, name: jobName, mtime: mtime, progress: { d, _ in
                    let mb = Int(d >> 20); if mb > last { prog.advance(mb - last); last = mb }
                }, copied: { prog.finish() })
                guard case .registered(let id, let jobDir, let raw) = outcome else { unchanged += 1; continue }
                log.info("\(jobName): \(info.width)x\(info.height)x\(info.channels) \(info.pixelType.rawValue), \(raw.bytes) bytes, sha256 \(raw.sha256.prefix(12)) -> job \(id)")
                newJobs += 1
                if json {
                    Term.stdout(JSON.line(StageEvent(stage: "ingest", job: Files.canonical(jobDir), id: id, name: jobName, status: "complete", next: stageList.first)))
                } else { Term.stdout(Files.canonical(jobDir)) }
            } catch {
                worst = max(worst, (error as? EpipeError)?.exitCode ?? 2)
                let msg = describe(error)
                log.error(msg.hasPrefix(src) || msg.hasPrefix(f) ? msg : "\(src): \(msg)")
            }
        }
        if newJobs + unchanged + settling > 0 || files.isEmpty {
            log.info("\(newJobs) new job(s), \(unchanged) unchanged, \(settling) still settling, \(files.count) scan(s) seen")
        }
        if worst != 0 { throw EpipeExit(worst) }
    }

    static func main() { runMain(Self.self) }
}
