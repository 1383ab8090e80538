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
        Moves every file under the folders given (recursively; hidden ones skipped), the files given, or \
        paths on stdin (-), narrowed by --include/--exclude globs, whose mtime is older than --settle \
        seconds, into the store: the root's (file://, the default) or --to s3://bucket/prefix on any \
        S3-compatible server (--endpoint, --region; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/\
        AWS_SESSION_TOKEN or ~/.aws/credentials and --profile). TIFF/OME-TIFF/QPTIFF images are checked \
        and become jobs (ROOT/jobs/<id>/job.json, queued for their first stage); other files travel to \
        files/<folder>/<path>. The source's SHA-256 is computed while reading and the stored copy is \
        verified (file://: re-read; s3://: part checksums, object metadata, HEAD) before ROOT/ledger records \
        it; a file whose size and mtime the ledger has is skipped (--checksum re-hashes). An interrupted \
        copy or multipart upload resumes. Each run is reported in ROOT/ingest/runs/<time>.json. Prints each \
        new job directory on stdout, so it can start a pipeline:

          epipe-ingest /mnt/scanner | epipe-denoise | epipe-segment | epipe-cluster | epipe-stats
          epipe-ingest --to s3://lab-scans/raw --endpoint https://s3.lab.example /mnt/scanner

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

    @Option(name: .long, help: ArgumentHelp("Destination store: s3://bucket/prefix on any S3-compatible server, or file:///path (default: the root's epipe.json store, ROOT/store).", valueName: "uri"))
    var to: String?

    @Option(name: .long, help: ArgumentHelp("S3 endpoint URL (default https://s3.<region>.amazonaws.com); path-style addressing.", valueName: "url"))
    var endpoint: String?

    @Option(name: .long, help: "S3 region (default: epipe.json's, else us-east-1).")
    var region: String?

    @Option(name: .long, help: "Profile of the shared credentials file (default: AWS_PROFILE, else default); AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN win.")
    var profile: String?

    @Option(name: .long, help: ArgumentHelp("Only files whose relative path or name matches one of these globs (may repeat).", valueName: "glob"))
    var include: [String] = []

    @Option(name: .long, help: ArgumentHelp("Leave out files whose relative path or name matches (may repeat; wins over --include).", valueName: "glob"))
    var exclude: [String] = []

    @Flag(name: .long, help: "Re-hash every source, also those whose size and mtime match the ledger, and re-send any whose content or stored copy differs.")
    var checksum = false

    @Option(name: .customLong("part-size"), help: "S3 multipart part size in MiB (5...5120; default 64). Smaller files go in one PUT.")
    var partSize: Int = 64

    @Option(name: .long, help: "S3 parts in flight (1...64; default 4).")
    var parallel: Int = 4

    @Option(name: .long, help: "S3 attempts per request before a file fails (1...20; default 6), with exponential backoff and jitter between them.")
    var retries: Int = 6

    @Option(name: .long, help: ArgumentHelp("Bandwidth limit in MB/s for what is sent (default: none).", valueName: "MB/s"))
    var bwlimit: Double?

    @Flag(name: .customLong("dry-run"), help: "List what would move and the estimated time; move nothing, register nothing.")
    var dryRun = false

    @Flag(name: .customLong("delete-source-after-verify"), help: "Delete each source file once its stored copy's size and sha256 are confirmed equal to it.")
    var deleteSourceAfterVerify = false

    func run() throws {
        if let cells { return try runCells(cells) }
        let cellFlags = [("--x", xColumn), ("--y", yColumn), ("--id", idColumn), ("--label", label)].filter { $0.1 != nil }.map { $0.0 }
        if let f = cellFlags.first { throw EpipeError.badInput("\(f): only with --cells FILE (a per-cell table)") }
        var sources = (paths + from).filter { $0 != "-" }
        if (paths + from).contains("-") {
            while let line = readLine() { let t = line.trimmingCharacters(in: .whitespaces); if !t.isEmpty { sources.append(t) } }
        }
        guard !sources.isEmpty else { throw ValidationError("give at least one folder or file to ingest (or --from DIR, or - for paths on stdin), or --cells FILE") }
        guard (5...5120).contains(partSize) else { throw EpipeError.badInput("--part-size \(partSize): expected 5...5120 MiB (S3's limits)") }
        guard (1...20).contains(retries) else { throw EpipeError.badInput("--retries \(retries): expected 1...20") }
        guard (1...64).contains(parallel) else { throw EpipeError.badInput("--parallel \(parallel): expected 1...64") }
        if let b = bwlimit, !(b > 0) { throw EpipeError.badInput("--bwlimit \(b): expected MB/s > 0") }
        var o = IngestOptions()
        (o.root, o.settle, o.stages, o.name, o.param, o.maxPixels, o.json, o.quiet) = (root, settle, stages, name, param, maxPixels, json, quiet)
        (o.to, o.endpoint, o.region, o.profile, o.include, o.exclude, o.checksum) = (to, endpoint, region, profile, include, exclude, checksum)
        (o.partSize, o.parallel, o.retries, o.bwlimit, o.dryRun, o.deleteSourceAfterVerify) = (partSize, parallel, retries, bwlimit, dryRun, deleteSourceAfterVerify)
        try IngestRun(options: o, sources: sources).run()
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
        // one ingest at a time on a root: two runs on one table register it once
        let lock = try IngestRun.lock(root, quiet: quiet)
        defer { withExtendedLifetime(lock) {} }
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
