import FuzzDriver

// libFuzzer's entry; SwiftPM's main (below) hands it to libFuzzer's driver.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { fuzz(.omexml, data, size) }

runLibFuzzer(fuzzOne)
