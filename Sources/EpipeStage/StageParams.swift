import Foundation
import EpipeCore

/// Typed stage params: one `Codable` struct in the stage's library whose decoder validates it.
extension StageTool {
    /// The params once: `defaults` encoded, overlaid by job.json's `params.<stage>`, overlaid by
    /// the flags given, decoded (and so validated) as `P`; returns the struct and its encoding,
    /// which is what the manifest records. A value that does not decode is bad input: one line,
    /// "<stage> param <the struct's message>".
    public func typedParams<P: Codable>(_ job: Job, defaults: P, flags: [String: JSONValue?]) throws -> (params: P, record: [String: JSONValue]) {
        let base = try JSONDecoder().decode([String: JSONValue].self, from: JSON.encode(defaults, pretty: false))
        var merged = base
        for (k, v) in job.spec.params[stage] ?? [:] { merged[k] = v }
        for (k, v) in flags { if let v { merged[k] = v } }
        let p: P = try decodeParams(merged)
        return (p, try record(p))
    }

    /// A params struct as the manifest records it: its JSON object.
    public func record<P: Encodable>(_ params: P) throws -> [String: JSONValue] {
        try JSONDecoder().decode([String: JSONValue].self, from: JSON.encode(params, pretty: false))
    }

    /// A recorded (already validated) params object back as `P`.
    public func decodeParams<P: Decodable>(_ params: [String: JSONValue]) throws -> P {
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
