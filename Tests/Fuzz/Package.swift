// swift-tools-version:6.0
// The libFuzzer drivers of epipe's fuzz targets: one executable per target, each a libFuzzer main
// around the entry function in EpipeFuzzTargets (Tests/EpipeFuzzTargets of the root package).
// Built by Tests/Fuzz/run.sh (`make fuzz`, `make test`) with
//   swift build --package-path Tests/Fuzz --scratch-path .build/fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
// (lld: SwiftPM links an executable with --defsym main=<target>_main, and gold fails on that beside
// libFuzzer's own main). Never part of the normal build.
import PackageDescription

let targets = ["tiff", "omexml", "markers", "manifest", "csv"]

let package = Package(
    name: "epipe-fuzz",
    platforms: [.macOS(.v13)],
    products: targets.map { .executable(name: "fuzz-\($0)", targets: ["fuzz-\($0)"]) },
    dependencies: [.package(name: "epipe", path: "../..")],
    targets: [
        // LLVMFuzzerRunDriver, libFuzzer's entry for a program that has its own main
        .target(name: "CLibFuzzer", path: "Drivers/CLibFuzzer"),
        .target(name: "FuzzDriver", dependencies: ["CLibFuzzer", .product(name: "EpipeFuzzTargets", package: "epipe")],
                path: "Drivers/FuzzDriver"),
    ] + targets.map {
        .executableTarget(name: "fuzz-\($0)", dependencies: ["FuzzDriver"], path: "Drivers/fuzz-\($0)")
    }
)
