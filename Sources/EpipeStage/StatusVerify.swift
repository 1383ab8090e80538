import Foundation
import EpipeCore

/// `epipe-status --verify`: one job's outputs re-hashed against their manifests, its raw scan against
/// job.json, and the files under the job directory that no manifest lists (orphans: leftovers of an
/// earlier run with other params, debris of an interrupted write, files put there by hand).
public enum StatusVerify {
    public struct Result: Sendable {
        /// Missing files and digests that differ: the data is damaged.
        public var problems: [String] = []
        /// Job-relative paths of files no manifest lists.
        public var orphans: [String] = []
        /// damaged (any problem), orphans (only orphans), ok.
        public var verdict: String { !problems.isEmpty ? "damaged" : (!orphans.isEmpty ? "orphans" : "ok") }
    }

    /// Files every job directory may hold besides the stages' outputs: job.json, the QC report,
    /// logs, a stage's manifest and lock, the raw-image cache of a running stage.
    static func expected(_ rel: String) -> Bool {
        let parts = rel.split(separator: "/").map(String.init)
        if parts.count == 1 { return rel == "job.json" || rel == "report.html" }
        if parts[0] == "logs" || parts[0] == ".cache" { return true }
        // a stage run in parts: its lock of the stage manifest, the parts' manifests, locks and shared facts
        if parts.count == 2 && parts[1] == ".manifest.lock" { return true }
        if parts.count >= 3 && parts[1] == "parts" && [".lock", "manifest.json", "shared.json", ".shared.lock"].contains(parts.last!) { return true }
        return parts.count == 2 && (parts[1] == "manifest.json" || parts[1] == ".lock")
    }

    public static func check(_ r: Root, id: String, spec: JobSpec?) -> Result {
        var res = Result()
        let dir = r.jobsDir + "/" + id
        guard let spec else { res.problems.append("\(dir)/job.json: unreadable"); return res }
        if Files.isSymlink(dir) { res.problems.append("\(dir): a symbolic link, not a job folder; not read"); return res }
        if spec.raw.uri.hasPrefix("file://") {
            let p = String(spec.raw.uri.dropFirst(7))
            if let job = try? Job(dir: dir), let why = RawCache.outside(job, path: p, uri: spec.raw.uri) {
                res.problems.append("\(spec.raw.uri): raw scan \(why); not read")
            } else if let (h, _) = try? Digest.sha256(file: p) {
                if h != spec.raw.sha256 { res.problems.append("\(p): raw scan sha256 differs from job.json") }
            } else { res.problems.append("\(p): raw scan missing") }
        }
        var listed = Set<String>()
        var busy: [String] = []   // stage folders whose files no manifest can vouch for yet
        for s in Names.stages {
            let mp = dir + "/" + s + "/manifest.json"
            guard Files.exists(mp) else { continue }
            let m: StageManifest
            do { m = try StageManifest.load(mp) } catch { res.problems.append("\(mp): unreadable: \(describe(error))"); busy.append(s); continue }
            if m.status != .complete { busy.append(s); continue }
            for o in m.outputs {
                listed.insert(o.path)
                let p: String
                do { p = try Job.resolve(o.path, in: dir) } catch { res.problems.append("\(mp): \(describe(error))"); continue }
                if let (h, _) = try? Digest.sha256(file: p) {
                    if h != o.sha256 { res.problems.append("\(p): sha256 differs from \(s)/manifest.json") }
                } else { res.problems.append("\(p): missing") }
            }
        }
        // the outputs of a stage's parts (--tiles N --tile I), as their manifests list them
        for s in Names.stages {
            let pd = dir + "/" + s + "/parts"
            for n in (try? FileManager.default.contentsOfDirectory(atPath: pd)) ?? [] {
                guard let m = try? StageManifest.load(pd + "/" + n + "/manifest.json") else { continue }
                for o in m.outputs { listed.insert(o.path) }
            }
        }
        guard let walk = FileManager.default.enumerator(atPath: dir) else { return res }
        while let rel = walk.nextObject() as? String {
            if let t = walk.fileAttributes?[.type] as? FileAttributeType, t == .typeDirectory { continue }
            if expected(rel) || listed.contains(rel) { continue }
            if busy.contains(where: { rel.hasPrefix($0 + "/") }) { continue }
            res.orphans.append(rel)
        }
        res.orphans.sort()
        return res
    }
}
