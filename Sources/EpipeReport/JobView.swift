import Foundation
import EpipeCore
import EpipeStage
#if canImport(Glibc)
import Glibc
#endif

/// A job as the report reads it: job.json and each stage's manifest, nothing else.
struct JobView: Sendable {
    /// One stage: its status and its manifest when there is one.
    struct Stage: Sendable {
        var name: String
        /// complete, failed, running, dead (running, but its worker on this host is gone), pending (no
        /// manifest), invalid (a manifest that cannot be read).
        var status: String
        var manifest: StageManifest?
        /// Why the stage is dead or invalid.
        var problem: String?
        /// Whether job.json lists the stage (a stage run by hand outside the list is still shown).
        var listed: Bool

        var metrics: [String: JSONValue] { manifest?.metrics ?? [:] }
        var warnings: [String] { metrics["warnings"]?.arrayValue?.compactMap { $0.stringValue } ?? [] }
        var isBad: Bool { ["failed", "dead", "invalid"].contains(status) }
        /// What went wrong, from the manifest or from reading it.
        var error: String? { manifest?.error ?? problem }
        /// The PNG outputs (the QC pictures), in manifest order.
        var pictures: [FileRef] { manifest?.outputs.filter { $0.path.lowercased().hasSuffix(".png") } ?? [] }
    }

    var id: String
    var dir: String
    var spec: JobSpec?
    /// Why job.json cannot be read.
    var invalid: String?
    var stages: [Stage]

    /// The job's state as `epipe-status` counts it (StatusReport.jobState): failed, stale (a worker
    /// died), complete, running, partial or queued; invalid when job.json cannot be read.
    var state: String { invalid != nil ? "invalid" : StatusReport.jobState(stages.map { $0.status }) }
    var name: String { spec?.name ?? id }
    func stage(_ s: String) -> Stage? { stages.first { $0.name == s } }
    /// Every warning of every stage, as "stage: warning".
    var warnings: [String] { stages.flatMap { s in s.warnings.map { s.name + ": " + $0 } } }

    /// Reads jobs/<id>: job.json, then the manifest of each stage job.json lists and of any other
    /// known stage that has one. Never throws: what cannot be read is recorded.
    static func load(root: Root, id: String) -> JobView {
        let dir = root.jobsDir + "/" + id
        let job: Job
        do { job = try Job(dir: dir) } catch {
            return JobView(id: id, dir: dir, spec: nil, invalid: message(error), stages: [])
        }
        let extra = Names.stages.filter { !job.spec.stages.contains($0) && Files.exists(job.manifestPath($0)) }
        let stages = job.spec.stages.map { stage($0, of: job, listed: true) } + extra.map { stage($0, of: job, listed: false) }
        return JobView(id: id, dir: job.dir, spec: job.spec, invalid: nil, stages: stages)
    }

    static func stage(_ s: String, of job: Job, listed: Bool) -> Stage {
        let mp = job.manifestPath(s)
        guard Files.exists(mp) else { return Stage(name: s, status: "pending", listed: listed) }
        let m: StageManifest
        do { m = try StageManifest.load(mp) } catch {
            return Stage(name: s, status: "invalid", problem: message(error), listed: listed)
        }
        var st = Stage(name: s, status: m.status.rawValue, manifest: m, listed: listed)
        if m.status == .running && m.host == Host.name && kill(m.pid, 0) != 0 && errno == ESRCH {
            st.status = "dead"; st.problem = "worker pid \(m.pid) on \(m.host) is gone; rerun epipe-\(s) on this job"
        }
        return st
    }

    static func message(_ e: Error) -> String {
        if let e = e as? EpipeError { return e.message }
        return String(describing: e).replacingOccurrences(of: "\n", with: " ")
    }
}

/// The QC numbers of one denoised channel (`per_channel.<name>` of the denoise manifest).
struct ChannelQC: Sendable, Equatable {
    var name: String
    var values: [String: JSONValue]
    var focus: Double? { values["focus"]?.doubleValue }
    var backgroundBefore: Double? { values["background_before"]?.doubleValue }
    var blank: Bool { values["blank"]?.boolValue ?? false }

    /// The channels of a denoise manifest's metrics, in channel order (the order of `recipe`, whose
    /// lines start "<name>: "), else by name.
    static func list(_ metrics: [String: JSONValue]) -> [ChannelQC] {
        guard let per = metrics["per_channel"]?.objectValue else { return [] }
        var order: [String] = []
        for line in metrics["recipe"]?.arrayValue ?? [] {
            guard let s = line.stringValue, let r = s.range(of: ": ") else { continue }
            let n = String(s[..<r.lowerBound])
            if per[n] != nil && !order.contains(n) { order.append(n) }
        }
        order += per.keys.filter { !order.contains($0) }.sorted()
        return order.map { ChannelQC(name: $0, values: per[$0]?.objectValue ?? [:]) }
    }
}

/// The last lines of a log file, reading only its tail.
enum LogTail {
    static func lines(_ path: String, count: Int = 20, maxBytes: Int = 32 << 10) -> [String] {
        guard let h = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? h.close() }
        guard let end = try? h.seekToEnd() else { return [] }
        let start = end > UInt64(maxBytes) ? end - UInt64(maxBytes) : 0
        try? h.seek(toOffset: start)
        guard let data = try? h.readToEnd() else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        if start > 0 && !lines.isEmpty { lines.removeFirst() }   // most likely cut in the middle
        return Array(lines.suffix(count))
    }
}

/// Width and height of a PNG from its header (24 bytes), nil when the file is missing or no PNG.
enum PNGSize {
    static func of(_ path: String) -> (width: Int, height: Int)? {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? h.close() }
        guard let d = try? h.read(upToCount: 24), d.count == 24 else { return nil }
        let b = [UInt8](d)
        guard b[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], b[12..<16] == [0x49, 0x48, 0x44, 0x52] else { return nil }
        func be(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        let w = be(16), hh = be(20)
        return w > 0 && hh > 0 ? (w, hh) : nil
    }
}
