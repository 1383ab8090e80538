/// Any string key of a keyed container: to see which keys a params object holds and to read
/// keys that are not the struct's `CodingKeys` (the stages' params decoding).
public struct AnyKey: CodingKey {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ s: String) { stringValue = s }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}
