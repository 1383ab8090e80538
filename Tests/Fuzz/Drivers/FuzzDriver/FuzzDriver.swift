import Foundation
import CLibFuzzer
import EpipeFuzzTargets

/// One input through `target`'s entry function. An input that makes the entry function report a
/// defect (a refusal that is not one clear line, an inconsistent result) stops the run as a crash,
/// like a trap or a sanitizer report does, and libFuzzer saves it.
/// With EPIPE_FUZZ_VERBOSE=1 each outcome is printed (to replay inputs: fuzz-TARGET FILE...).
public func fuzz(_ target: FuzzTarget, _ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: size == 0 ? nil : data, count: size)
    let outcome = target.run(input)
    if verbose { FileHandle.standardError.write(Data("fuzz-\(target.rawValue): \(outcome)\n".utf8)) }
    if case .defect(let why) = outcome {
        FileHandle.standardError.write(Data("fuzz-\(target.rawValue): DEFECT: \(why)\n".utf8))
        abort()
    }
    return 0
}

private let verbose = ProcessInfo.processInfo.environment["EPIPE_FUZZ_VERBOSE"] == "1"

/// libFuzzer's driver on the process's arguments (its flags, corpus folders or inputs to replay),
/// calling `entry` (the executable's LLVMFuzzerTestOneInput) on each input.
public func runLibFuzzer(_ entry: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, entry))
}
