// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "imprint",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "imprint", targets: ["imprint"]),
        .library(name: "ImprintCore", targets: ["ImprintCore"]),
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
            cxxSettings: [.unsafeFlags(["-std=c++17"])],
            linkerSettings: [.linkedLibrary("re2")]
        ),
        .target(
            name: "ImprintCore",
            dependencies: ["CZlib", "COpenSSL", "CImprintRE2", .product(name: "Yams", package: "Yams")],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "imprint",
            dependencies: ["ImprintCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // Benchmark drivers for ci/bench (not shipped).
        .executableTarget(
            name: "imprint-bench",
            dependencies: ["ImprintCore"],
            path: "Sources/ImprintBench",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "ImprintCoreTests",
            dependencies: ["ImprintCore"],
            exclude: ["Fixtures"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "ImprintCLITests",
            dependencies: ["ImprintCore"],
            exclude: ["Support", "Fixtures"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
