import Foundation

/// A growable per-id column with a stable base address (safe to write from several threads at
/// different indices).
final class IdColumn<T> {
    private(set) var p: UnsafeMutablePointer<T>
    private(set) var count: Int
    let fill: T
    init(fill: T) { self.fill = fill; count = 1; p = .allocate(capacity: 1); p.initialize(to: fill) }
    func grow(to n: Int) {
        guard n > count else { return }
        let q = UnsafeMutablePointer<T>.allocate(capacity: n)
        q.moveInitialize(from: p, count: count)
        (q + count).initialize(repeating: fill, count: n - count)
        p.deallocate()
        p = q; count = n
    }
    subscript(i: Int) -> T {
        get { p[i] }
        set { p[i] = newValue }
    }
    deinit { p.deinitialize(count: count); p.deallocate() }
}
