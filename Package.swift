// swift-tools-version:6.0
import PackageDescription

// Hot-loop libraries: no overflow/bounds/exclusivity checks in release builds.
let release: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]
// Stage glue and executables keep Swift's safety checks (a bad range traps instead of running on).
let glue: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "epipe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "epipe-ingest", targets: ["epipe-ingest"]),
        .executable(name: "epipe-denoise", targets: ["epipe-denoise"]),
        .executable(name: "epipe-segment", targets: ["epipe-segment"]),
        .executable(name: "epipe-cluster", targets: ["epipe-cluster"]),
        .executable(name: "epipe-stats", targets: ["epipe-stats"]),
        .executable(name: "epipe-status", targets: ["epipe-status"]),
        .executable(name: "epipe-synth", targets: ["epipe-synth"]),
        // The fuzz targets' entry functions, for the libFuzzer drivers in Tests/Fuzz (a package of its own,
        // built with -sanitize=fuzzer,address by `make fuzz`); not installed.
        .library(name: "EpipeFuzzTargets", targets: ["EpipeFuzzTargets"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // System libraries (Debian: libtiff-dev, libpng-dev, zlib1g-dev, pkg-config).
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4", providers: [.apt(["libtiff-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libdeflate (a dependency of libtiff-dev): the same DEFLATE/zlib streams, several times faster.
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .target(name: "CTIFFShim", dependencies: ["CTIFF"]),

        // Libraries: plain inputs and outputs, tested without files where possible.
        .target(name: "EpipeCore", dependencies: ["EpipeKernels", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "EpipeImage", dependencies: ["EpipeKernels", "CTIFF", "CTIFFShim", "CPNG", "CZlib", "CDeflate"], swiftSettings: release),
        // Shared kernels of the algorithm modules (and the file write loop of EpipeCore/EpipeStore): Sendable
        // boxes, parallelChunks, the scratch pool, SplitMix64, the filter plan and Gaussian, Otsu, float sort
        // keys, the CSV reader, a string CodingKey, histograms, hand-offs. Depends on nothing.
        .target(name: "EpipeKernels", swiftSettings: release),
        .target(name: "EpipeDenoise", dependencies: ["EpipeKernels"], swiftSettings: release),
        .target(name: "EpipeSegment", dependencies: ["EpipeKernels"], swiftSettings: release),
        .target(name: "EpipeCluster", dependencies: ["EpipeKernels"], swiftSettings: release),
        .target(name: "EpipeSpatial", dependencies: ["EpipeKernels", "EpipeCluster"], swiftSettings: release),
        .target(name: "EpipeSynth", dependencies: ["EpipeKernels"], swiftSettings: release),
        .target(name: "EpipeStore", dependencies: ["EpipeCore", "EpipeKernels", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "EpipeStage", dependencies: [
            "EpipeCore", "EpipeImage", "EpipeKernels", "EpipeStore", "CDeflate",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: glue),

        // The QC report (ROOT/report.html, jobs/<id>/report.html) from job.json and the manifests.
        .target(name: "EpipeReport", dependencies: ["EpipeCore", "EpipeKernels", "EpipeStage"], swiftSettings: glue),

        // Executables: flags, I/O, manifests.
        .executableTarget(name: "epipe-ingest", dependencies: ["EpipeStage", "EpipeStore", "EpipeSpatial"], swiftSettings: glue),
        .target(name: "EpipeDenoiseStage", dependencies: ["EpipeStage", "EpipeDenoise", "EpipeKernels", "EpipeImage", "EpipeCore"], swiftSettings: glue),
        .executableTarget(name: "epipe-denoise", dependencies: ["EpipeStage", "EpipeDenoise", "EpipeDenoiseStage"], swiftSettings: glue),
        .target(name: "EpipeSegmentStage", dependencies: ["EpipeStage", "EpipeSegment", "EpipeKernels", "EpipeImage", "EpipeCore"], swiftSettings: glue),
        .executableTarget(name: "epipe-segment", dependencies: ["EpipeStage", "EpipeSegmentStage"], swiftSettings: glue),
        .executableTarget(name: "epipe-cluster", dependencies: ["EpipeStage", "EpipeCluster"], swiftSettings: glue),
        .executableTarget(name: "epipe-stats", dependencies: ["EpipeStage", "EpipeSpatial"], swiftSettings: glue),
        .executableTarget(name: "epipe-status", dependencies: ["EpipeStage", "EpipeReport"], swiftSettings: glue),
        .executableTarget(name: "epipe-synth", dependencies: ["EpipeStage", "EpipeSynth"], swiftSettings: glue),

        .target(name: "EpipeTestSupport", dependencies: ["EpipeKernels"], path: "Tests/EpipeTestSupport"),
        // One entry function per fuzz target (TIFF, OME-XML, markers.csv, job/manifest JSON, CSV tables): run by
        // the libFuzzer drivers (Tests/Fuzz) and, on the saved corpus and regressions, by EpipeFuzzTests.
        .target(name: "EpipeFuzzTargets", dependencies: [
            "EpipeCore", "EpipeKernels", "EpipeImage", "CTIFFShim", "EpipeStore", "EpipeStage",
            "EpipeDenoise", "EpipeSegment", "EpipeCluster", "EpipeSpatial",
        ], path: "Tests/EpipeFuzzTargets"),
        .testTarget(name: "EpipeCoreTests", dependencies: ["EpipeCore", "EpipeKernels"]),
        .testTarget(name: "EpipeStageTests", dependencies: ["EpipeStage", "EpipeCore", "EpipeImage", "EpipeDenoise", "EpipeTestSupport"]),
        .testTarget(name: "EpipeKernelsTests", dependencies: ["EpipeKernels", "EpipeTestSupport"]),
        .testTarget(name: "EpipeImageTests", dependencies: ["EpipeImage"]),
        .testTarget(name: "EpipeDenoiseTests", dependencies: ["EpipeDenoise", "EpipeKernels", "EpipeTestSupport"]),
        .testTarget(name: "EpipeSegmentTests", dependencies: ["EpipeSegment", "EpipeKernels", "EpipeSynth", "EpipeImage", "EpipeTestSupport"]),
        .testTarget(name: "EpipeClusterTests", dependencies: ["EpipeCluster", "EpipeKernels", "EpipeTestSupport", "EpipeSynth"]),
        .testTarget(name: "EpipeSpatialTests", dependencies: ["EpipeSpatial", "EpipeTestSupport", "EpipeCluster", "EpipeSynth"]),
        .testTarget(name: "EpipeSynthTests", dependencies: ["EpipeSynth"]),
        .testTarget(name: "EpipeStoreTests", dependencies: ["EpipeStore", "EpipeCore", "EpipeTestSupport"]),
        .testTarget(name: "EpipeReportTests", dependencies: ["EpipeReport", "EpipeCore", "EpipeImage"]),
        .testTarget(name: "EpipeFuzzTests", dependencies: ["EpipeFuzzTargets"]),
        .testTarget(name: "EndToEndTests", dependencies: ["EpipeCore", "EpipeImage", "EpipeSegment", "EpipeCluster", "EpipeStore", "EpipeReport", "EpipeTestSupport"]),
    ]
)
