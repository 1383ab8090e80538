import Foundation
import ArgumentParser
import EpipeCore
#if canImport(Glibc)
import Glibc
#endif

/// Flags every stage shares.
public struct StageOptions: ParsableArguments, Sendable {
    public init() {}

    @Option(name: .long, help: "The epipe root (else $EPIPE_ROOT, else ./epipe-data). Used with --drain/--watch.")
    public var root: String?

    @Flag(name: .long, help: "Claim jobs from ROOT/queue/<stage>/new until none is left, forwarding each to the next stage's queue.")
    public var drain = false

    @Flag(name: .long, help: "Like --drain, then keep polling for new jobs.")
    public var watch = false

    @Option(name: .long, help: "Seconds between polls with --watch.")
    public var pollInterval: Double = 5

    @Option(name: .long, help: "Seconds after which a claim without heartbeat is given back to the queue.")
    public var staleAfter: Double = 600

    @Flag(name: .long, help: "Rerun even when the stage's manifest is up to date.")
    public var force = false

    @Flag(name: .long, help: "Print one JSON event per finished job on stdout instead of the job directory.")
    public var json = false

    @Flag(name: [.short, .long], help: "Only warnings and errors on stderr.")
    public var quiet = false

    @Argument(help: "Job directories (ROOT/jobs/<id>); else read one per line from stdin.")
    public var jobs: [String] = []
}

/// Parses a command, maps usage errors to exit 2, runs it.
public func runMain<C: ParsableCommand>(_ type: C.Type, arguments: [String]? = nil) -> Never {
    tuneAllocator()
    do {
        var cmd = try type.parseAsRoot(arguments)
        try cmd.run()
        exit(0)
    } catch let e as EpipeExit {
        exit(e.code)
    } catch let e as EpipeError {
        Term.stderr("\(type._commandName): \(e.message)")
        exit(e.exitCode)
    } catch {
        let code = type.exitCode(for: error)
        let msg = type.fullMessage(for: error)
        if code == .success {
            if !msg.isEmpty { print(msg) }
            exit(0)
        }
        if !msg.isEmpty { Term.stderr(msg.split(separator: "\n").prefix(6).joined(separator: "\n")) }
        exit(code == .validationFailure ? 2 : code.rawValue)
    }
}

public struct EpipeExit: Error { public let code: Int32; public init(_ c: Int32) { code = c } }

/// Large per-tile work arrays (a few MB each, allocated and freed many times per second on several
/// threads) would otherwise be mmapped and unmapped every time, paying page faults and
/// address-space lock contention; keep them in the malloc heaps instead (glibc only).
func tuneAllocator() {
    #if os(Linux)
    _ = c_mallopt(-3, 64 << 20)    // M_MMAP_THRESHOLD
    _ = c_mallopt(-1, 256 << 20)   // M_TRIM_THRESHOLD
    #endif
}

#if os(Linux)
@_silgen_name("mallopt") private func c_mallopt(_ param: Int32, _ value: Int32) -> Int32
#endif
