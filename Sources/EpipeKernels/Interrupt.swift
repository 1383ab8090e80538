import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGTERM and SIGINT for the programs that write (the stages and ingest): a program stops at its
/// next safe point, never in the middle of a write.
///
/// `install()` (first thing in a program) blocks both signals in the process (every thread started
/// afterwards inherits the mask) and waits for them with `sigwait` on a thread of its own, so no code
/// runs in a signal handler: a signal only sets a flag. The program's work then calls
/// `checkpoint()` at its safe points (every progress update: a band, a tile row, a step, a MiB
/// copied; between jobs). When a signal has come, the checkpoint runs the stop handler of the
/// job in progress (`during`: it marks the job interrupted and gives back its queue claim), removes
/// every temporary file still open (`TempFiles`) and ends the process with 128 + the signal
/// (143 for TERM, 130 for INT). While a program waits with nothing in progress (`idle`: reading job
/// directories on stdin, polling a queue) a signal ends it at once.
public enum Interrupt {
    static let received = Atomic<Int32>(0)

    final class State: @unchecked Sendable {
        let lock = NSLock()
        var installed = false
        var idle = false
        var stopping = false
        var handler: ((Int32) -> Void)? = nil
    }
    static let state = State()
    /// Held by a stop (for good: the process ends) and by `commit`, so a job's last writes and a stop
    /// never interleave.
    static let commitLock = NSLock()

    /// The signal received (SIGTERM or SIGINT), 0 when none.
    public static var pending: Int32 { received.load(ordering: .relaxed) }

    /// The exit status for a signal: 128 + its number.
    public static func status(_ sig: Int32) -> Int32 { 128 + sig }

    /// Blocks SIGTERM and SIGINT and starts the thread that waits for them. Idempotent.
    public static func install() {
        let s = state
        s.lock.lock()
        if s.installed { s.lock.unlock(); return }
        s.installed = true
        s.lock.unlock()
        var set = sigset_t()
        sigemptyset(&set); sigaddset(&set, SIGTERM); sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        let waited = set
        let t = Thread {
            var set = waited
            while true {
                var sig: Int32 = 0
                if sigwait(&set, &sig) == 0 { arrived(sig) }
            }
        }
        t.name = "epipe-signals"
        t.start()
    }

    static func arrived(_ sig: Int32) {
        _ = received.compareExchange(expected: 0, desired: sig, ordering: .relaxed)
        let s = state
        s.lock.lock()
        let idle = s.idle && !s.stopping
        s.lock.unlock()
        if idle { stop(received.load(ordering: .relaxed)) }
    }

    /// A safe point: returns at once unless a signal has come; then stops (never returns).
    @inline(__always)
    public static func checkpoint() {
        let sig = received.load(ordering: .relaxed)
        if sig != 0 { stop(sig) }
    }

    /// Runs `body` (one job) with `handler` as what a stop does first: mark the job interrupted,
    /// give back its claim (it runs on the thread that reached the safe point).
    public static func during<T>(_ handler: @escaping (Int32) -> Void, _ body: () throws -> T) rethrows -> T {
        let s = state
        s.lock.lock(); s.handler = handler; s.lock.unlock()
        defer { s.lock.lock(); s.handler = nil; s.lock.unlock() }
        return try body()
    }

    /// `during` for code that cannot be a closure: `begin(handler)` ... `end()`.
    public static func begin(_ handler: @escaping (Int32) -> Void) { let s = state; s.lock.lock(); s.handler = handler; s.lock.unlock() }
    public static func end() { let s = state; s.lock.lock(); s.handler = nil; s.lock.unlock() }

    /// Runs `body` (a wait with nothing in progress) during which a signal ends the process at once.
    public static func idle<T>(_ body: () throws -> T) rethrows -> T {
        let s = state
        s.lock.lock(); s.idle = true; s.lock.unlock()
        checkpoint()
        defer { s.lock.lock(); s.idle = false; s.lock.unlock() }
        return try body()
    }

    /// Brackets a job's last write (its complete or failed manifest), `commitBegin(); defer { commitEnd() }`,
    /// so that a stop waits for it to end; after a stop began, `commitBegin` never returns (the process is
    /// ending).
    public static func commitBegin() { commitLock.lock() }
    public static func commitEnd() { commitLock.unlock() }

    /// Stops the process: the job's handler, temporary files removed, exit 128 + sig.
    static func stop(_ sig: Int32) -> Never {
        commitLock.lock()   // never released
        let s = state
        s.lock.lock()
        if s.stopping { s.lock.unlock(); while true { pause() } }
        s.stopping = true
        let h = s.handler
        s.lock.unlock()
        h?(sig)
        TempFiles.removeAll()
        _exit(status(sig))
    }
}

/// The temporary files (and folders) this process has open: created under a temporary name,
/// not yet renamed into place or removed. A stop removes them (`Interrupt`); a crash leaves them to
/// the next run's sweep.
public enum TempFiles {
    final class Registry: @unchecked Sendable {
        let lock = NSLock()
        var paths: Set<String> = []
        var closed = false
    }
    static let registry = Registry()

    /// The temporary name of `path`: `.name.tmp-PID-RANDOM` in the same folder.
    public static func name(for path: String) -> String {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return dir + "/." + base + ".tmp-\(getpid())-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    }

    /// Records a temporary file or folder just created. After a stop began it is removed at once.
    public static func created(_ path: String) {
        let r = registry
        r.lock.lock(); defer { r.lock.unlock() }
        if r.closed { remove(path); return }
        r.paths.insert(path)
    }

    /// The temporary file was renamed into place or removed.
    public static func finished(_ path: String) {
        let r = registry
        r.lock.lock(); r.paths.remove(path); r.lock.unlock()
    }

    /// Removes every temporary file still open; later ones are removed as they are created.
    static func removeAll() {
        let r = registry
        r.lock.lock(); defer { r.lock.unlock() }
        r.closed = true
        for p in r.paths { remove(p) }
        r.paths = []
    }

    static func remove(_ p: String) {
        if unlink(p) != 0 {
            let e = errno
            if e == EISDIR || e == EPERM { try? FileManager.default.removeItem(atPath: p) }
        }
    }
}
