import Foundation
import ArgumentParser
import EpipeCore
import EpipeImage
import EpipeStage
import EpipeStore
import EpipeSpatial

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

        --cells FILE takes a per-cell table segmented by another tool instead (MCMICRO/MCQuant CSV, a \
        steinbock or CellProfiler export, a SCIMAP table): it is copied into the store with its sha256 like \
        a scan, checked, and becomes a job whose segment stage is already complete: segment/cells.csv holds \
        the table with the id column renamed CellID (the first of CellID, cell_id, Object, ObjectNumber, \
        label; else --id; else CellID 1..n is added) and the coordinates renamed X_centroid/Y_centroid \
        (--x/--y, else the first pair present of X_centroid/Y_centroid, X_position/Y_position, \
        centroid-1/centroid-0 (steinbock: centroid-0 is the row, y), Location_Center_X/Location_Center_Y); \
        every other column is kept. The job is queued for cluster (--stages cluster,stats, the default) or \
        for stats alone (--stages stats; stats then reads the table's cell-type column, --label). A table \
        with only an id, coordinates and a cell-type column is enough for stats. A table that cannot be \
        read, lacks coordinates, has a non-numeric coordinate, a repeated id or no rows is refused (exit 2, \
        one line) and nothing is registered. Taking the same file again does nothing; a changed file makes \
        a new job.

          epipe-ingest --cells quant/cells.csv --x X_position --y Y_position | epipe-cluster | epipe-stats
          epipe-ingest --cells typed.csv --stages stats --label cell_type | epipe-stats
        """)

    @Option(name: .long, help: "The epipe root (else $EPIPE_ROOT, else ./epipe-data).")
    var root: String?

    @Option(name: .long, help: "A folder to scan (may repeat); same as a positional path.")
    var from: [String] = []

    @Option(name: .long, help: "Only take files whose mtime is at least this many seconds old (default \(Int(IngestParams.defaultSettle)); 0 with --cells).")
    var settle: Double?

    @Option(name: .long, help: "Comma-separated stages for new jobs (default: the root's epipe.json; with --cells: cluster,stats, or cluster or stats).")
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

    @Option(name: .long, help: ArgumentHelp("A per-cell table segmented by another tool (CSV: MCQuant, steinbock, CellProfiler, SCIMAP) to register as a job whose segment stage is done; instead of scans.", valueName: "file"))
    var cells: String?

    @Option(name: .customLong("x"), help: ArgumentHelp("With --cells: the x coordinate column (default: X_centroid, X_position, centroid-1 or Location_Center_X, whichever is there).", valueName: "column"))
    var xColumn: String?

    @Option(name: .customLong("y"), help: ArgumentHelp("With --cells: the y coordinate column (default: Y_centroid, Y_position, centroid-0 or Location_Center_Y).", valueName: "column"))
    var yColumn: String?

    @Option(name: .customLong("id"), help: ArgumentHelp("With --cells: the cell id column (default: CellID, cell_id, Object, ObjectNumber or label; none: CellID 1..n is added).", valueName: "column"))
    var idColumn: String?

    @Option(name: .long, help: ArgumentHelp("With --cells: the cell-type column stats counts (job.json params.stats.label; default \(StatsParams().label)); checked when stats runs without cluster.", valueName: "column"))
    var label: String?

    @Argument(help: "Folders or image files to ingest.")
    var paths: [String] = []

    func run() throws {
        if let cells { return try runCells(cells) }
        let cellFlags = [("--x", xColumn), ("--y", yColumn), ("--id", idColumn), ("--label", label)].filter { $0.1 != nil }.map { $0.0 }
        if let f = cellFlags.first { throw EpipeError.badInput("\(f): only with --cells FILE (a per-cell table)") }
        let sources = paths + from
        guard !sources.isEmpty else { throw ValidationError("give at least one folder or file to ingest (or --from DIR), or --cells FILE") }
        let p = try IngestParams(settle: settle ?? IngestParams.defaultSettle, stages: stages, name: name, param: param, maxPixels: maxPixels)
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

    /// `--cells FILE`: one per-cell table becomes one job (see the discussion above).
    func runCells(_ cells: String) throws {
        if let other = (paths + from).first { throw EpipeError.badInput("--cells \(cells): takes one table and no scans (\(other)); ingest scans in a separate call") }
        guard Files.exists(cells) else { throw EpipeError.badInput("\(cells): no such file") }
        guard !Files.isDirectory(cells) else { throw EpipeError.badInput("\(cells): is a folder; --cells takes one CSV file") }
        let p = try IngestParams(settle: settle ?? 0, stages: stages, name: name, param: param, maxPixels: maxPixels)
        let stageList = try p.cellStageList()
        var params = p.params
        if let label { params["stats", default: [:]]["label"] = .string(label) }
        // Stats without cluster reads this table: its cell-type column must be there now, not fail later.
        let clusterRuns = stageList.contains("cluster")
        let statsLabel = params["stats"]?["label"]?.stringValue ?? StatsParams().label
        let options = CellTable.Options(id: idColumn, x: xColumn, y: yColumn, required: !clusterRuns && stageList.contains("stats") ? [statsLabel] : [], clusterRuns: clusterRuns)
        let jobName = p.name ?? CellTable.jobName(cells)
        try Names.validateName(jobName, what: "job name", path: cells)

        let root = try Root(Root.resolve(self.root))
        let cfg = try root.config()
        let intake = Intake(root: root, store: try FileStore(uri: cfg.store), ledger: try Ledger(dir: root.ledgerDir), stages: stageList, params: params)
        let log = StageLog(tool: "epipe-ingest", file: root.path + "/ledger/ingest.log", quiet: quiet)
        let src = Files.canonical(cells)
        guard let size = Files.size(src), let mtime = Files.mtime(src) else { throw EpipeError.badInput("\(cells): cannot read") }
        let age = Date().timeIntervalSince(mtime)
        if age < p.settle { log.info("\(src): modified \(Int(age)) s ago, waiting for --settle \(Int(p.settle)) s; 0 new jobs"); return }
        if try intake.alreadyTaken(src, bytes: size, mtime: mtime) { log.info("\(src): unchanged since it was taken (ledger); 0 new jobs"); return }
        do {
            let prog = ProgressReporter(label: "\(jobName) copy", total: Int(max(1, size >> 20)), unit: "MiB", quiet: quiet || size < (64 << 20))
            var last = 0
            let (outcome, table) = try intake.takeCells(src, name: jobName, mtime: mtime, options: options, progress: { d, _ in
                let mb = Int(d >> 20); if mb > last { prog.advance(mb - last); last = mb }
            }, copied: { prog.finish() })
            guard case .registered(let id, let jobDir, let raw) = outcome else { log.info("\(src): same content as its job (ledger); 0 new jobs"); return }
            let renamed = [(table.id, "CellID"), (table.x, "X_centroid"), (table.y, "Y_centroid")].compactMap { f, t in f.flatMap { $0 == t ? nil : "\($0) -> \(t)" } }
            log.info("\(jobName): \(table.table.rows.count) cells x \(table.table.header.count) columns (\(table.tool) table\(renamed.isEmpty ? "" : "; " + renamed.joined(separator: ", "))), \(raw.bytes) bytes, sha256 \(raw.sha256.prefix(12)) -> job \(id), next \(stageList[1])")
            for w in table.warnings { log.warn("\(jobName): \(w)") }
            if json {
                Term.stdout(JSON.line(StageEvent(stage: "ingest", job: Files.canonical(jobDir), id: id, name: jobName, status: "complete", next: stageList[1])))
            } else { Term.stdout(Files.canonical(jobDir)) }
        } catch {
            log.error(describe(error))
            throw EpipeExit((error as? EpipeError)?.exitCode ?? 1)
        }
    }

    static func main() { runMain(Self.self) }
}
