// swift-tools-version:6.0
// The libFuzzer targets, kept out of the normal build: `ci/fuzz [TARGET] [SECONDS]` builds them with
// -sanitize=fuzzer,address and runs them on seed corpora made from real inputs.
import PackageDescription

let targets = ["tar", "gzip", "pyc", "dockerignore", "manifest", "image-json", "image-archive", "history-object", "history-export", "registry"]

func camel(_ t: String) -> String { "Fuzz" + t.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined() }

let package = Package(
    name: "imprint-fuzz",
    products: targets.map { .executable(name: camel($0), targets: [camel($0)]) },
    dependencies: [.package(name: "imprint", path: "../..")],
    targets: [
        .target(name: "FuzzDriver", dependencies: [.product(name: "ImprintFuzz", package: "imprint")], path: "Targets/FuzzDriver"),
    ] + targets.map { t in
        .executableTarget(
            name: camel(t),
            dependencies: ["FuzzDriver", .product(name: "ImprintFuzz", package: "imprint")],
            path: "Targets/\(camel(t))",
            // SwiftPM names the entry point <Module>_main; libFuzzer brings a main of its own. Point main at ours.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--defsym", "-Xlinker", "main=\(camel(t))_main"])]
        )
    }
)
