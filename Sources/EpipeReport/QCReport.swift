import Foundation
import EpipeCore

/// The QC report: one self-contained HTML page per job (ROOT/jobs/<id>/report.html) and one for
/// the root (ROOT/report.html). Both read job.json and the stages' manifests only (a job page also
/// reads the headers of its QC pictures and the tail of a failed stage's log); both are written
/// atomically (AtomicFile: a temporary name, then rename).
public enum QCReport {
    public static let fileName = "report.html"

    /// Writes ROOT/jobs/<id>/report.html atomically; returns its path. Bad input when the job
    /// does not exist.
    @discardableResult
    public static func writeJob(root: Root, id: String) throws -> String {
        let job = try load(root: root, id: id)
        return try write(job, root: root, rootLink: Files.exists(rootPath(root)))
    }

    /// Writes ROOT/report.html (every job), and with `jobPages` (re)writes each job's page from the
    /// same reading of its manifests; returns the root page's path. Memory holds one job's
    /// manifests at a time plus one small row a job.
    @discardableResult
    public static func writeRoot(root: Root, jobPages: Bool = true) throws -> String {
        var rows: [JobRow] = []
        for id in root.allJobIDs() {
            let job = JobView.load(root: root, id: id)
            var linked = jobPages && job.spec != nil
            if linked { try write(job, root: root, rootLink: true) }
            else { linked = Files.exists(job.dir + "/" + fileName) }
            rows.append(JobRow(job, linked: linked))
        }
        let path = rootPath(root)
        try root.checkInside(path)
        try AtomicFile.write(RootPage.render(RootTable(rows: rows), root: root.path), to: path)
        return path
    }

    /// The HTML of a job's page, without writing it.
    public static func jobHTML(root: Root, id: String) throws -> String {
        JobPage.render(try load(root: root, id: id), rootLink: Files.exists(rootPath(root)))
    }

    /// The HTML of the root page, without writing it or any job page.
    public static func rootHTML(root: Root) -> String {
        let rows = root.allJobIDs().map { id in
            let job = JobView.load(root: root, id: id)
            return JobRow(job, linked: Files.exists(job.dir + "/" + fileName))
        }
        return RootPage.render(RootTable(rows: rows), root: root.path)
    }

    public static func rootPath(_ root: Root) -> String { root.path + "/" + fileName }

    static func load(root: Root, id: String) throws -> JobView {
        let dir = try root.jobDir(id)
        guard Files.exists(dir + "/job.json") else { throw EpipeError.badInput("\(id): no such job under \(root.jobsDir)") }
        let job = JobView.load(root: root, id: id)
        if let e = job.invalid { throw EpipeError.badInput(e) }
        return job
    }

    @discardableResult
    static func write(_ job: JobView, root: Root, rootLink: Bool) throws -> String {
        let path = job.dir + "/" + fileName
        try root.checkInside(path)
        try AtomicFile.write(JobPage.render(job, rootLink: rootLink), to: path)
        return path
    }
}
