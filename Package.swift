// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "imprint",
    products: [
        .executable(name: "imprint", targets: ["imprint"]),
        // The one public library surface: the fuzz entry points, for the libFuzzer package in ci/fuzzing. The layers'
        // declarations are `package`: they serve this package's command line, benchmark and tests, not other packages.
        .library(name: "ImprintFuzz", targets: ["ImprintFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Go's regexp syntax in linear time, for .dockerignore patterns (BuildKit compiles them to Go regexps).
        .target(
            name: "CImprintRE2",
            linkerSettings: [.linkedLibrary("re2")]
        ),
        // The layers, bottom to top: each target depends only on the one below it (ARCHITECTURE.md).
        .target(
            name: "ImprintBase",
            dependencies: ["COpenSSL"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ImprintFormats",
            dependencies: ["ImprintBase", "CZlib", "COpenSSL"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ImprintModel",
            dependencies: ["ImprintFormats", "CImprintRE2"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ImprintSources",
            dependencies: ["ImprintModel"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ImprintCompare",
            dependencies: ["ImprintSources", .product(name: "Yams", package: "Yams")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "ImprintCore",
            dependencies: ["ImprintCompare"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Entry points for the fuzzers and the regression corpus (ci/fuzzing), over every layer.
        .target(
            name: "ImprintFuzz",
            dependencies: ["ImprintCore"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "imprint",
            dependencies: ["ImprintCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Benchmark drivers for ci/bench (not shipped).
        .executableTarget(
            name: "imprint-bench",
            dependencies: ["ImprintCore"],
            path: "Sources/ImprintBench",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "ImprintCoreTests",
            dependencies: ["ImprintCore", "ImprintFuzz"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "ImprintCLITests",
            dependencies: ["ImprintCore"],
            exclude: ["Support"],
            resources: [.copy("Fixtures")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ],
    cxxLanguageStandard: .cxx17
)
