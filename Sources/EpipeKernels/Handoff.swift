import Foundation

/// A bounded first-in first-out hand-off between one producer thread and one consumer thread.
///
/// `put` blocks while `capacity` items wait; `take` blocks until an item arrives and returns nil
/// after `close()` once drained (rethrowing the producer's error if it closed with one).
/// `cancel()` (consumer side) makes every later `put` throw `Handoff.Cancelled`, so a producer
/// stops soon after its consumer failed.
public final class Handoff<T>: @unchecked Sendable {
    public struct Cancelled: Error {}
    private let cond = NSCondition()
    private var items: [T] = []
    private var closed = false, cancelled = false
    private var failure: Error?
    public let capacity: Int

    public init(capacity: Int) { precondition(capacity >= 1); self.capacity = capacity }

    public func put(_ x: T) throws {
        cond.lock(); defer { cond.unlock() }
        while items.count >= capacity && !cancelled { cond.wait() }
        if cancelled { throw Cancelled() }
        items.append(x)
        cond.broadcast()
    }

    /// Producer: no more items (with `error`, the consumer's `take` throws it after the items).
    public func close(_ error: Error? = nil) {
        cond.lock(); closed = true; if failure == nil { failure = error }; cond.broadcast(); cond.unlock()
    }

    /// Consumer: stop the producer (its next `put` throws) and drop waiting items.
    public func cancel() {
        cond.lock(); cancelled = true; items.removeAll(); cond.broadcast(); cond.unlock()
    }

    public func take() throws -> T? {
        cond.lock(); defer { cond.unlock() }
        while items.isEmpty && !closed { cond.wait() }
        if !items.isEmpty { let x = items.removeFirst(); cond.broadcast(); return x }
        if let e = failure, !(e is Cancelled) { throw e }
        return nil
    }

    /// Runs `produce` on a new thread, feeding this hand-off, and `consume` on the calling thread
    /// with each item; returns when both are done. An error on either side stops the other and
    /// is rethrown (the consumer's first).
    public func run(produce: @escaping @Sendable (Handoff<T>) throws -> Void, consume: (T) throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let t = Thread { [self] in
            do { try produce(self); self.close() } catch { self.close(error) }
            done.signal()
        }
        t.stackSize = 8 << 20
        t.start()
        do {
            while let x = try take() { try consume(x) }
        } catch {
            cancel(); done.wait()
            throw error
        }
        done.wait()
    }
}
