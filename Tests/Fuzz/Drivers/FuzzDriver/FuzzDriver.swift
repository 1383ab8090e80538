import Foundation
import CLibFuzzer
import EpipeFuzzTargets

/// The target this process fuzzes (set once, before libFuzzer starts).
nonisolated(unsafe) private var current: FuzzTarget = .tiff

/// Runs libFuzzer on `target`'s entry function with the process's arguments (libFuzzer's flags,
/// corpus folders or inputs to replay). An input that makes the entry function report a defect
/// (a refusal that is not one clear line, an inconsistent result) stops the run as a crash, like a
/// trap or a sanitizer report does, and libFuzzer saves it.
public func runLibFuzzer(_ target: FuzzTarget) -> Never {
    current = target
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let rc = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        let input = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
        if case .defect(let why) = current.run(input) {
            fputs("fuzz-\(current.rawValue): DEFECT: \(why)\n", stderr)
            abort()
        }
        return 0
    }
    exit(rc)
}
