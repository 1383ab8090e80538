import XCTest
import Foundation
import EpipeKernels

/// parallelChunks, the scratch pool and the Sendable boxes.
final class ParallelTests: XCTestCase {
    /// Every index of 0..<n is passed to exactly one chunk, for any size and chunking rule.
    func testParallelChunksCoverEachIndexOnce() {
        for n in [0, 1, 2, 3, 7, 31, 33, 127, 1000, 1001, 4099, 65537] {
            for (minChunk, cost) in [(1, 1 << 15), (8, 1 << 15), (32, 1), (16, 300), (5, 7)] {
                let hits = UnsafeMutablePointer<Int32>.allocate(capacity: Swift.max(1, n))
                hits.initialize(repeating: 0, count: Swift.max(1, n))
                defer { hits.deallocate() }
                let H = SharedPointer(hits)
                parallelChunks(n, minChunk: minChunk, cost: cost) { lo, hi in
                    precondition(lo < hi)
                    for i in lo..<hi { H[i] += 1 }
                }
                XCTAssertEqual((0..<n).filter { hits[$0] != 1 }, [], "n \(n), minChunk \(minChunk), cost \(cost)")
            }
        }
    }

    /// Chunks hold at least minChunk items (when there are more than one), and little work runs as one chunk.
    func testChunkSizes() {
        final class Spans: @unchecked Sendable { let lock = NSLock(); var s: [Range<Int>] = [] }
        for (n, minChunk) in [(100, 8), (1000, 1), (17, 4)] {
            let spans = Spans()
            parallelChunks(n, minChunk: minChunk) { lo, hi in spans.lock.lock(); spans.s.append(lo..<hi); spans.lock.unlock() }
            XCTAssertTrue(spans.s.count == 1 || spans.s.allSatisfy { $0.count >= minChunk }, "\(n) \(minChunk): \(spans.s)")
        }
        let spans = Spans()
        parallelChunks(100, minChunk: 1, cost: 10) { lo, hi in spans.s.append(lo..<hi) }
        XCTAssertEqual(spans.s, [0..<100], "100 x 10 operations: one chunk")
    }

    func testScratchPoolReusesFittingBuffersAndEvictsTheSmallest() {
        let pool = ScratchPool(retainBytes: .max, maxBuffers: 1)
        let (a, ca) = pool.take(1000)
        XCTAssertGreaterThanOrEqual(ca, 1000)
        pool.give(a, ca)
        let (b, cb) = pool.take(900)
        XCTAssertEqual(b, a, "a free buffer that fits is reused")
        let (c, cc) = pool.take(100_000)
        XCTAssertNotEqual(c, a)
        pool.give(b, cb); pool.give(c, cc)
        let (d, cd) = pool.take(100_000)
        XCTAssertEqual(d, c, "one buffer kept: the largest")
        let (e, ce) = pool.take(100)
        XCTAssertNotEqual(e, c, "a buffer more than twice as large as needed is not handed out")
        pool.give(d, cd); pool.give(e, ce)
        pool.releaseAll()
    }

    func testFileIOWritesAllBytesAtTheOffset() throws {
        let path = NSTemporaryDirectory() + "epipe-fileio-\(getpid())"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd); unlink(path) }
        let bytes = [UInt8](repeating: 7, count: 1 << 20) + [1, 2, 3]
        XCTAssertEqual(bytes.withUnsafeBytes { FileIO.writeAll(fd, $0) }, 0)
        XCTAssertEqual([UInt8](repeating: 9, count: 2).withUnsafeBytes { FileIO.writeAll(fd, $0, offset: 1) }, 0)
        XCTAssertEqual([UInt8]().withUnsafeBytes { FileIO.writeAll(fd, $0) }, 0, "nothing to write")
        let back = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(back.count, bytes.count)
        XCTAssertEqual(Array(back.prefix(4)), [7, 9, 9, 7])
        XCTAssertEqual(Array(back.suffix(3)), [1, 2, 3])
        XCTAssertEqual([UInt8](repeating: 1, count: 4).withUnsafeBytes { FileIO.writeAll(-1, $0) }, EBADF, "the errno of a failed write")
    }
}
