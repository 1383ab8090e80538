import Foundation
import Dispatch

/// The cores this process may use (read once: on Linux it may read cgroup files).
let coreCount = Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Runs `body(lo, hi)` over `0..<n` split into contiguous chunks, on all cores.
///
/// Chunks: at most four per core, each of at least `minChunk` items (`n / minChunk` chunks,
/// rounded down), with boundaries `n * k / chunks`; every index is covered exactly once. With
/// `cost` (the work per item, e.g. the row width times the taps), the whole range runs as one
/// chunk on the calling thread when `n * cost < 2^15` (too little work to be worth the threads).
/// Callers write disjoint results per index, so the split never changes an output.
public func parallelChunks(_ n: Int, minChunk: Int = 1, cost: Int = 1 << 15, _ body: @Sendable (Int, Int) -> Void) {
    guard n > 0 else { return }
    if cost < 1 << 15 && n * cost < 1 << 15 { body(0, n); return }
    let chunks = Swift.max(1, Swift.min(n / Swift.max(minChunk, 1), 4 * coreCount))
    if chunks == 1 { body(0, n); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { k in
        let lo = n * k / chunks, hi = n * (k + 1) / chunks
        if lo < hi { body(lo, hi) }
    }
}

/// A pool of float scratch buffers, reused across calls so that their pages are faulted in once
/// (fresh large allocations are mmapped and page-faulted on first touch, which cost about a third
/// of the filter time before the pool). Thread-safe.
///
/// `take(n)` returns the smallest free buffer holding `n` floats if it is not more than about
/// twice as large, else a new one; `give` returns it. Idle buffers beyond `retainBytes` or
/// `maxBuffers` are freed, the smallest first.
public final class ScratchPool: @unchecked Sendable {
    /// The process-wide pool of the filter plans' grids: at most 1 GiB kept when idle
    /// (`releaseAll()` frees it).
    public static let shared = ScratchPool(retainBytes: 1 << 30)

    public let retainBytes: Int
    public let maxBuffers: Int
    private let lock = NSLock()
    private var free: [(p: UnsafeMutablePointer<Float>, cap: Int)] = []
    private var retained = 0   // floats in `free`

    public init(retainBytes: Int = 1 << 30, maxBuffers: Int = .max) {
        self.retainBytes = retainBytes
        self.maxBuffers = maxBuffers
    }

    /// A buffer of at least `n` floats and its capacity (pass both back to `give`).
    public func take(_ n: Int) -> (UnsafeMutablePointer<Float>, Int) {
        lock.lock()
        var best = -1
        for i in free.indices where free[i].cap >= n && free[i].cap <= 2 * n + 4096 {
            if best < 0 || free[i].cap < free[best].cap { best = i }
        }
        if best >= 0 {
            let b = free.remove(at: best)
            retained -= b.cap
            lock.unlock()
            return (b.p, b.cap)
        }
        lock.unlock()
        return (.allocate(capacity: n), n)
    }

    public func give(_ p: UnsafeMutablePointer<Float>, _ cap: Int) {
        lock.lock()
        free.append((p, cap))
        retained += cap
        var evict: [UnsafeMutablePointer<Float>] = []
        while !free.isEmpty && (retained * MemoryLayout<Float>.stride > retainBytes || free.count > maxBuffers) {
            var i = 0
            for j in free.indices where free[j].cap < free[i].cap { i = j }
            let b = free.remove(at: i)
            retained -= b.cap
            evict.append(b.p)
        }
        lock.unlock()
        for q in evict { q.deallocate() }
    }

    /// Frees every idle buffer.
    public func releaseAll() {
        lock.lock()
        let all = free
        free = []; retained = 0
        lock.unlock()
        for b in all { b.p.deallocate() }
    }

    deinit { for b in free { b.p.deallocate() } }
}
