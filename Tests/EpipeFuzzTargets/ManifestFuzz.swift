import Foundation
import EpipeCore
import EpipeStore
import EpipeDenoise
import EpipeSegment
import EpipeCluster
import EpipeSpatial

/// The JSON files epipe reads back: job.json (decoded, validated, and its `params.<stage>` merged
/// over each stage's defaults and decoded as the runner does), <stage>/manifest.json (decoded, its
/// free-form values read the ways status and the part runner read them), epipe.json, ledger
/// entries and `--json` events. What decodes must encode and decode to the same value, since
/// epipe rewrites these files.
enum ManifestFuzz {
    static func run(_ data: UnsafeRawBufferPointer) -> FuzzOutcome {
        let bytes = Data(data)
        var said: [String] = []
        var refusals: [String] = []

        /// Decodes `T` as `Schema.decode` does; nil (refusal noted) when refused, a defect returned
        /// through `defect` when the refusal or the round trip is wrong.
        func decode<T: Codable & Equatable>(_ t: T.Type, _ schema: String, _ name: String) -> Result<T?, Defect> {
            do {
                let v = try Schema.decode(T.self, expected: schema, from: bytes, path: name)
                let again: T
                do { again = try JSONDecoder().decode(T.self, from: JSON.encode(v)) }
                catch { return .failure(Defect("\(name) decoded but its own encoding does not decode: \(error)")) }
                guard again == v else { return .failure(Defect("\(name) changes when written and read again: \(v) became \(again)")) }
                return .success(v)
            } catch {
                switch Check.refusal(error) {
                case .refused(let m): refusals.append(m); return .success(nil)
                case .defect(let d): return .failure(Defect(d))
                case .accepted: return .success(nil)
                }
            }
        }

        // job.json
        switch decode(JobSpec.self, Schema.job, "job.json") {
        case .failure(let d): return .defect(d.message)
        case .success(let job?):
            do {
                try job.validate(path: "job.json")
                for s in job.stages { _ = job.next(after: s) }
                let p = try stageParams(job)
                said.append("job \(job.id) stages \(job.stages.joined(separator: ",")) params \(p)")
            } catch {
                let o = Check.refusal(error)
                if case .defect = o { return o }
                if case .refused(let m) = o { refusals.append(m) }
            }
        case .success(nil): break
        }

        // <stage>/manifest.json
        switch decode(StageManifest.self, Schema.stage, "manifest.json") {
        case .failure(let d): return .defect(d.message)
        case .success(let m?):
            var n = 0
            for v in Array(m.params.values) + Array(m.metrics.values) { n += walk(v) }
            _ = m.metrics["parts"]?.intValue     // what the part runner reads
            _ = m.progress.map { $0.total > 0 ? Double($0.done) / Double($0.total) : 0 }
            said.append("manifest \(m.stage) \(m.status.rawValue) \(n) values")
        case .success(nil): break
        }

        for r in [decode(RootConfig.self, Schema.root, "epipe.json").map { $0.map { "root \($0.store)" } },
                  decode(LedgerEntry.self, Schema.ledger, "ledger.json").map { $0.map { "ledger \($0.source)" } },
                  decode(EventLine.self, Schema.event, "event.json").map { $0.map { "event \($0.event.status)" } }] {
            switch r {
            case .failure(let d): return .defect(d.message)
            case .success(let s?): said.append(s)
            case .success(nil): break
            }
        }

        // any JSON value (the free-form parts alone)
        if let v = try? JSONDecoder().decode(JSONValue.self, from: bytes) { _ = walk(v) }

        if said.isEmpty {
            guard let first = refusals.first else { return .defect("refused without a message") }
            return .refused(first)
        }
        return .accepted(said.joined(separator: "; "))
    }

    struct Defect: Error { let message: String; init(_ m: String) { message = m } }

    /// StageEvent is not Equatable; compared through its JSON.
    struct EventLine: Codable, Equatable {
        var event: StageEvent
        init(from decoder: Decoder) throws { event = try StageEvent(from: decoder) }
        func encode(to encoder: Encoder) throws { try event.encode(to: encoder) }
        static func == (a: EventLine, b: EventLine) -> Bool { JSON.line(a.event) == JSON.line(b.event) }
    }

    /// Reads every value the ways readers do; returns how many values there were.
    static func walk(_ v: JSONValue) -> Int {
        _ = v.intValue; _ = v.doubleValue; _ = v.stringValue; _ = v.boolValue; _ = v.description
        switch v {
        case .array(let a): return 1 + a.reduce(0) { $0 + walk($1) }
        case .object(let o): return 1 + o.values.reduce(0) { $0 + walk($1) }
        default: return 1
        }
    }

    /// Each stage's params as its runner makes them: the defaults encoded, overlaid by the job's
    /// `params.<stage>`, decoded (and so validated); refusals are bad input naming the stage.
    static func stageParams(_ job: JobSpec) throws -> String {
        var out: [String] = []
        for stage in Names.stages {
            let given = job.params[stage] ?? [:]
            switch stage {
            case "denoise":
                var layer: [String: Setting?] = [:], perChannel: [String: [String: Setting]] = [:]
                for (k, v) in given where k != "per-channel" { layer[k] = try setting(v, k) }
                for (ch, o) in given["per-channel"]?.objectValue ?? [:] {
                    guard let o = o.objectValue else { throw EpipeError.badInput("denoise param per-channel \(ch): expected an object of settings, got \(o)") }
                    perChannel[ch] = try o.compactMapValues { try setting($0, "per-channel \(ch)") }
                }
                let p: DenoiseParams
                do { p = try DenoiseParams.merged(job: layer, jobPerChannel: perChannel, flags: [:], perChannelFlags: [:]) }
                catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
                let again: DenoiseParams = try typed(stage, record(p))
                _ = again.bandRows; _ = again.channelList; _ = again.darkfieldConstant; _ = again.writesFloat
                for name in perChannel.keys.sorted() {
                    do { _ = try again.recipe(for: name, autoHotPixels: 3277, hasBlanks: true) }
                    catch let e as DenoiseParamError { throw EpipeError.badInput(e.description) }
                }
                out.append("denoise ok")
            case "segment": _ = try typed(stage, merged(SegmentParams(), given)) as SegmentParams; out.append("segment ok")
            case "cluster": _ = try typed(stage, merged(ClusterParams(), given)) as ClusterParams; out.append("cluster ok")
            default: _ = try typed(stage, merged(StatsParams(), given)) as StatsParams; out.append("stats ok")
            }
        }
        return out.joined(separator: ",")
    }

    /// DenoiseTool's reading of one job.json value as a setting.
    static func setting(_ v: JSONValue, _ k: String) throws -> Setting? {
        switch v {
        case .number(let d): return .number(d)
        case .string(let s): return .word(s)
        case .bool(let b): return .flag(b)
        case .null: return nil
        default: throw EpipeError.badInput("denoise param \(k): expected a number, a word or true/false, got \(v)")
        }
    }

    static func record<P: Encodable>(_ p: P) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: JSON.encode(p, pretty: false))
    }

    static func merged<P: Encodable>(_ defaults: P, _ given: [String: JSONValue]) throws -> [String: JSONValue] {
        var m = try record(defaults)
        for (k, v) in given { m[k] = v }
        return m
    }

    /// The runner's `decodeParams`: a value that does not decode is bad input, "<stage> param ...".
    static func typed<P: Decodable>(_ stage: String, _ params: [String: JSONValue]) throws -> P {
        do { return try JSONDecoder().decode(P.self, from: JSON.encode(params, pretty: false)) }
        catch let e as DecodingError {
            switch e {
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c):
                let key = c.codingPath.map(\.stringValue).joined(separator: ".")
                throw EpipeError.badInput("\(stage) param \(key.isEmpty ? "" : key + ": ")\(c.debugDescription)")
            @unknown default: throw EpipeError.badInput("\(stage) params: \(e)")
            }
        } catch { throw EpipeError.badInput("\(stage) param \(error)") }
    }
}
