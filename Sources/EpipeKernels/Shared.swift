/// The two boxes that let unsafe buffers, pointers and non-Sendable values cross into
/// `DispatchQueue.concurrentPerform` (or `parallelChunks`) closures. The compiler cannot check
/// these: the caller guarantees that concurrent workers write disjoint elements and that the
/// boxed storage outlives the parallel section.
///
/// - `UnsafeShared(x)`: any value (a buffer pointer, an array read by all workers, a tuple of
///   readers); read it as `.value`.
/// - `SharedPointer(p)`: a mutable pointer, indexed directly (`P[i]`, `P[i] = v`), for hot
///   loops that write into one preallocated buffer.

/// A value handed to parallel workers (see the file comment). Replaces the per-module copies
/// `UnsafeSendable`, `Shared` and `SharedBox`.
public struct UnsafeShared<T>: @unchecked Sendable {
    public let value: T
    @inlinable @inline(__always) public init(_ value: T) { self.value = value }
}

/// A mutable pointer handed to parallel workers, indexed like the pointer (see the file comment).
public struct SharedPointer<Pointee>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Pointee>
    @inlinable @inline(__always) public init(_ pointer: UnsafeMutablePointer<Pointee>) { self.pointer = pointer }
    @inlinable public subscript(i: Int) -> Pointee {
        @inline(__always) get { pointer[i] }
        @inline(__always) nonmutating set { pointer[i] = newValue }
    }
}
