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
    var settle: Double = 30

    @Option(name: .long, help: "Comma-separated stages for new jobs (default: the root's epipe.json).")
    var stages: String?

    @Option(name: .long, help: "Job name (only with a single scan; default: the file name).")
    var name: String?

    @Option(name: .long, help: "Per-job parameter stage.key=value (may repeat), e.g. segment.nuclear=DAPI.")
    var param: [String] = []

    @Option(name: .long, help: "Refuse images with more pixels (width x height x channels) than this.")
    var maxPixels: Int = 20_000_000_000

    @Flag(name: .long, help: "Print one JSON event per new job instead of its directory.")
    var json = false

    @Flag(name: [.short, .long], help: "Only warnings and errors on stderr.")
    var quiet = false

    @Argument(help: "Folders or image files to ingest.")
    var paths: [String] = []

    static let extensions = [".ome.tif", ".ome.tiff", ".tif", ".tiff", ".qptiff", ".btf", ".tf8", ".tf2"]

    func run() throws {
        let sources = paths + from
        guard !sources.isEmpty else { throw ValidationError("give at least one folder or file to ingest (or --from DIR)") }
        if let n = name { try Names.validateName(n, what: "job name", path: "--name") }
        let root = try Root(Root.resolve(self.root))
        let cfg = try root.config()
        let stageList = stages.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? cfg.stages
        for s in stageList where !Names.stages.contains(s) {
            throw EpipeError.badInput("--stages: unknown stage \"\(s)\"; known: \(Names.stages.joined(separator: ","))")
        }
        guard !stageList.isEmpty else { throw EpipeError.badInput("--stages: empty stage list") }
        var params: [String: [String: JSONValue]] = [:]
        for p in param {
            guard let eq = p.firstIndex(of: "="), let dot = p[..<eq].firstIndex(of: ".") else {
                throw EpipeError.badInput("--param \(p): expected stage.key=value, e.g. segment.nuclear=DAPI")
            }
            let st = String(p[..<dot]), key = String(p[p.index(after: dot)..<eq]), val = String(p[p.index(after: eq)...])
            guard Names.stages.contains(st) else { throw EpipeError.badInput("--param \(p): unknown stage \"\(st)\"") }
            params[st, default: [:]][key] = Double(val).map { .number($0) } ?? (val == "true" ? .bool(true) : val == "false" ? .bool(false) : .string(val))
        }
        let store = try FileStore(uri: cfg.store)
        let ledger = try Ledger(dir: root.ledgerDir)
        let log = StageLog(tool: "epipe-ingest", file: root.path + "/ledger/ingest.log", quiet: quiet)

        var files: [String] = []
        for s in sources {
            guard Files.exists(s) else { throw EpipeError.badInput("\(s): no such file or folder") }
            if Files.isDirectory(s) { files += Self.scan(s) } else { files.append(s) }
        }
        if name != nil && files.count > 1 { throw EpipeError.badInput("--name: given, but \(files.count) scans were found; --name needs exactly one") }
        var worst: Int32 = 0
        var newJobs = 0, unchanged = 0, settling = 0
        let now = Date()
        for f in files {
            let src = Files.canonical(f)
            guard let size = Files.size(src), let mtime = Files.mtime(src) else { continue }
            if now.timeIntervalSince(mtime) < settle { settling += 1; log.detail("\(src): modified \(Int(now.timeIntervalSince(mtime))) s ago, waiting for --settle \(Int(settle)) s"); continue }
            if let e = try ledger.entry(for: src), e.bytes == size, e.mtime == mtime.timeIntervalSince1970,
               Files.exists(String(e.dest.dropFirst(7))) {
                unchanged += 1; continue
            }
            do {
                // Check the image before copying: a bad scan never becomes a job.
                let reader = try ImageReader(path: src, maxPixels: maxPixels)
                let info = reader.info
                var base = (src as NSString).lastPathComponent
                for ext in Self.extensions where base.lowercased().hasSuffix(ext) { base = String(base.dropLast(ext.count)); break }
                let jobName = name ?? Names.sanitize(base)
                try Names.validateName(jobName, what: "job name", path: src)
                let ext = Self.extensions.first { src.lowercased().hasSuffix($0) } ?? ".tif"
                let prog = ProgressReporter(label: "\(jobName) copy", total: Int(max(1, size >> 20)), unit: "MiB", quiet: quiet || size < (64 << 20))
                var last = 0
                let tmpKey = "\(jobName)-incoming\(ext)"
                let raw0 = try store.put(source: src, key: tmpKey) { d, _ in
                    let mb = Int(d >> 20); if mb > last { prog.advance(mb - last); last = mb }
                }
                prog.finish()
                let key = "\(jobName)-\(raw0.sha256.prefix(8))\(ext)"
                if Files.exists(store.path(key)) { unlink(store.path(tmpKey)) } else {
                    try AtomicFile.commit(temporary: store.path(tmpKey), to: store.path(key))
                }
                let raw = RawRef(uri: store.uri(key), sha256: raw0.sha256, bytes: raw0.bytes)
                let prev = try ledger.entry(for: src)
                if let p = prev, p.sha256 == raw.sha256, let j = p.job, Files.exists(root.jobsDir + "/" + j + "/job.json") {
                    // Touched but unchanged: same content, same job.
                    try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: j))
                    unchanged += 1; continue
                }
                var markersURI: String? = nil
                let mcsv = ((src as NSString).deletingLastPathComponent) + "/markers.csv"
                if Files.exists(mcsv) {
                    let mref = try store.put(source: mcsv, key: "\(jobName)-\(raw.sha256.prefix(8))-markers.csv")
                    markersURI = mref.uri
                }
                let day = String(Time.iso(Date()).prefix(10))
                let id = "\(day)-\(jobName)-\(raw.sha256.prefix(6))"
                let jobDir = root.jobsDir + "/" + id
                if !Files.exists(jobDir + "/job.json") {
                    let spec = JobSpec(id: id, name: jobName, raw: raw, stages: stageList, params: params, source: src, markers: markersURI)
                    try Job.create(root: root, spec: spec)
                    try Queue(root: root, stage: stageList[0]).enqueue(id: id, jobDir: jobDir)
                }
                try ledger.record(LedgerEntry(source: src, bytes: raw.bytes, mtime: mtime.timeIntervalSince1970, sha256: raw.sha256, dest: raw.uri, job: id))
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

    static func scan(_ dir: String) -> [String] {
        var out: [String] = []
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        while let rel = e.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.hasPrefix(".") { if Files.isDirectory(dir + "/" + rel) { e.skipDescendants() }; continue }
            let lower = name.lowercased()
            if extensions.contains(where: { lower.hasSuffix($0) }) && !Files.isDirectory(dir + "/" + rel) { out.append(dir + "/" + rel) }
        }
        return out.sorted()
    }

    static func main() { runMain(Self.self) }
}
