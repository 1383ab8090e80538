import Foundation

/// Reads a stage's parameter object (the defaults, job.json's `params.<stage>` and the flags,
/// merged) key by key for a params struct's `init(from:)`: numbers may be given as strings ("8"),
/// a missing key is nil (the struct keeps its default), and every refusal is one line naming the
/// key, thrown through `fail` as the struct's own error type. Unknown keys are refused up front so
/// a typo is not silently ignored.
public struct ParamReader {
    public let container: KeyedDecodingContainer<AnyKey>
    let fail: (String) -> Error

    public init(_ decoder: Decoder, known: [String], fail: @escaping (String) -> Error) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
        self.fail = fail
        let set = Set(known)
        if let bad = container.allKeys.map(\.stringValue).filter({ !set.contains($0) }).sorted().first {
            throw fail("\(bad): unknown parameter; known: \(known.joined(separator: ", "))")
        }
    }

    public func has(_ key: String) -> Bool { container.contains(AnyKey(key)) }

    /// The key's number (a JSON number or a numeric string); nil when absent; refused otherwise.
    public func number(_ key: String, _ what: String) throws -> Double? {
        let a = AnyKey(key)
        guard container.contains(a) else { return nil }
        if let v = try? container.decode(Double.self, forKey: a) { return v }
        if let s = try? container.decode(String.self, forKey: a), let v = Double(s.trimmingCharacters(in: .whitespaces)) { return v }
        throw fail("\(key): expected \(what)")
    }

    /// A whole number within `range`.
    public func whole(_ key: String, _ range: ClosedRange<Double>, _ what: String) throws -> Int? {
        guard let v = try number(key, what) else { return nil }
        guard v == v.rounded(), range.contains(v) else { throw fail("\(key): expected \(what), got \(Self.text(v))") }
        return Int(v)
    }

    /// A finite number for which `ok` holds.
    public func real(_ key: String, _ ok: (Double) -> Bool, _ what: String) throws -> Double? {
        guard let v = try number(key, what) else { return nil }
        guard v.isFinite, ok(v) else { throw fail("\(key): expected \(what), got \(Self.text(v))") }
        return v
    }

    /// A string, trimmed; `what` names what is expected when the value is not a string.
    public func string(_ key: String, _ what: String = "a string") throws -> String? {
        let a = AnyKey(key)
        guard container.contains(a) else { return nil }
        guard let s = try? container.decode(String.self, forKey: a) else { throw fail("\(key): expected \(what)") }
        return s.trimmingCharacters(in: .whitespaces)
    }

    /// One of an enumeration's raw values (case-insensitive).
    public func choice<E: RawRepresentable & CaseIterable>(_ key: String, _: E.Type) throws -> E? where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s.lowercased()) else {
            throw fail("\(key): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(s)\"")
        }
        return e
    }

    /// A number as a user wrote it: 8, not 8.0.
    public static func text(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
}
