import Foundation

/// Fixed slots that parallel workers fill, one slot each (`concurrentPerform`). Each slot is its
/// own memory location, so concurrent writes to different slots do not race (unlike element
/// writes to a shared Swift array, which may copy the buffer under another writer).
public final class Slots<T>: @unchecked Sendable {
    private let p: UnsafeMutablePointer<T?>
    public let count: Int
    public init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: Swift.max(1, count))
        p.initialize(repeating: nil, count: count)
    }
    deinit { p.deinitialize(count: count); p.deallocate() }
    public subscript(i: Int) -> T? {
        get { precondition(i >= 0 && i < count); return p[i] }
        set { precondition(i >= 0 && i < count); p[i] = newValue }
    }
    /// All slots in order.
    public var values: [T?] { (0..<count).map { p[$0] } }
}
