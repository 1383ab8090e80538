import Dispatch
import Foundation

let workerCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Runs body(lo, hi) over [0, n) split into contiguous chunks on all cores.
func parallelChunks(_ n: Int, minChunk: Int = 1, _ body: @Sendable (Int, Int) -> Void) {
    if n <= 0 { return }
    let chunks = max(1, min(n / max(minChunk, 1), workerCount * 4))
    if chunks == 1 { body(0, n); return }
    DispatchQueue.concurrentPerform(iterations: chunks) { k in
        let lo = n * k / chunks, hi = n * (k + 1) / chunks
        if lo < hi { body(lo, hi) }
    }
}

/// Reusable raw memory blocks for per-band scratch buffers (avoids page-fault churn on every band).
final class ScratchPool: @unchecked Sendable {
    struct Block { let pointer: UnsafeMutableRawPointer; let bytes: Int }
    private let lock = NSLock()
    private var free: [Block] = []

    func take(bytes: Int) -> Block {
        lock.lock(); defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.bytes >= bytes }) { return free.remove(at: i) }
        return Block(pointer: .allocate(byteCount: max(bytes, 64), alignment: 64), bytes: max(bytes, 64))
    }

    func give(_ b: Block) {
        lock.lock(); defer { lock.unlock() }
        free.append(b)
        free.sort { $0.bytes > $1.bytes }
        while free.count > 1 { free.removeLast().pointer.deallocate() }
    }

    func purge() {
        lock.lock(); defer { lock.unlock() }
        for b in free { b.pointer.deallocate() }
        free = []
    }

    deinit { for b in free { b.pointer.deallocate() } }
}
