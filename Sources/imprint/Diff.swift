import ArgumentParser
import Foundation
import ImprintCore

extension ImprintCommand {
    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Compare two images, trees or manifests: files, layers, config, embedded manifests, bytecode.",
            discussion: """
            Each side is any source imprint reads: an image (OCI layout, oci-archive, docker-archive; \
            --platform picks from an index), a container or directory tar or - (stdin), a directory, a manifest \
            file, or a history record (history:REF). Mixed pairs work, e.g. an image against the manifest CI recorded.

            Identical subtrees (equal Merkle digests) are never walked. For every changed path the report says \
            which layer last wrote it on each side. Two images sharing bottom layers are compared at about the \
            cost of the layers they do not share: shared files nothing above them touches are not hashed (the \
            JSON report then has no tree digest for the sides).

            What changed inside: each modified text file's unified diff (at most --max-diff-bytes of each; binary \
            files get the first differing byte), read again from the one layer that last wrote it; installed \
            packages added, removed or at another version (dpkg, apk, Python dist-info, npm package.json), and \
            installed Python files that do not match their package's RECORD (edited after pip install). Only \
            file content, modes, types and owners are compared unless --metadata: mtimes, tar headers and layer \
            boundaries never make two sides differ.

            Examples:
              imprint diff app-tested.tar app-running.tar
              imprint diff oci:./layout:1.4 manifest.json --include '/app/**'
              docker export web-1 | imprint diff manifest.json - --format json
              imprint diff a.tar b.tar --format html -o diff.html
              imprint diff manifest.json app.tar --format sarif -o diff.sarif
              imprint diff oci:./v1:latest oci:./v2:latest --packages-only
              imprint diff v1.tar v2.tar --ignore-file .diffignore --ignore '**/__pycache__'

            Exit status: 0 identical, 1 different, 2 bad input or failure.
            """
        )

        enum Format: String, CaseIterable, ExpressibleByArgument { case text, json, html, sarif }

        @Argument(help: ArgumentHelp("The first side (A). " + SourceForms.diffSide), completion: .file()) var a: String
        @Argument(help: "The second side (B), in any form the first side takes.", completion: .file()) var b: String
        @Option(help: "Report format: text, json, html or sarif (SARIF 2.1.0).") var format: Format = .text
        @Option(name: .customLong("sarif-root"), help: ArgumentHelp("For --format sarif: the repository root the result paths are relative to (default: the git work tree holding --sarif-context, else the current directory).", valueName: "dir"), completion: .directory)
        var sarifRoot: String?
        @Option(name: .customLong("sarif-context"), help: ArgumentHelp("For --format sarif: the build context's directory in the repository, which the report's paths are relative to (default: the current directory).", valueName: "dir"), completion: .directory)
        var sarifContext: String = "."
        @Option(name: .shortAndLong, help: "Write the report here (atomically) instead of stdout.", completion: .file()) var output: String?
        @Option(help: "Show at most this many entries per class in text output.") var limit: Int?
        @Option(name: .customLong("include"), help: "Compare only paths matching this glob (.dockerignore syntax, relative to /); repeatable (as verify --include).") var include: [String] = []
        @Option(name: .customLong("only"), help: .hidden) var onlyAlias: [String] = []
        var only: [String] { include + onlyAlias }
        @Option(name: .customLong("ignore"), help: "Leave out paths matching this glob; repeatable.") var ignore: [String] = []
        @Option(name: .customLong("ignore-file"), help: ArgumentHelp("Leave out paths matching the patterns of this file (.dockerignore syntax: comments, ! exceptions); repeatable.", valueName: "file"), completion: .file()) var ignoreFiles: [String] = []
        @Option(name: .customLong("max-diff-bytes"), help: ArgumentHelp("Read at most this many bytes of each modified file for its content diff.", valueName: "bytes")) var maxDiffBytes: Int = 256 << 10
        @Flag(name: .customLong("no-content"), help: "Do not read modified files for content diffs.") var noContent = false
        @Flag(name: .customLong("no-packages"), help: "Do not compare installed packages (dpkg, apk, Python dist-info, npm).") var noPackages = false
        @Flag(name: .customLong("packages-only"), help: "Report only packages added, removed or changed, and installed files that do not match their RECORD.") var packagesOnly = false
        @Flag(help: "What differs without meaning is no difference: layer boundaries, build history and creation time, when the files and the rest of the config are equal.") var semantic = false
        @Option(help: ArgumentHelp("A CPython whose disassembly of modified .pyc files is diffed (it must read their magic number).", valueName: "python"), completion: .file()) var python: String?
        @Flag(help: "Also compare mtimes and xattrs.") var metadata = false
        @OptionGroup var platformOption: PlatformOption
        @OptionGroup var registry: RegistryFlags
        @Option(help: "For a manifest against an image or tree: where the context is in the other side (found when omitted).") var at: String?
        @Flag(help: .hidden) var noLayerSharing = false
        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            if maxDiffBytes < 1 { throw ValidationError("--max-diff-bytes must be at least 1") }
            if packagesOnly && noPackages { throw ValidationError("--packages-only and --no-packages contradict each other") }
        }

        func run() throws {
            try runReportingErrors {
                var request = DiffRequest(a: a, b: b)
                request.registry = registry.options
                request.platform = platformOption.platform
                request.at = at
                request.layerSharing = !noLayerSharing
                request.differ.metadata = metadata
                (request.differ.only, request.differ.ignore) = (only, ignore)
                request.ignoreFiles = ignoreFiles
                request.contentDiffs = !noContent
                request.maxDiffBytes = maxDiffBytes
                request.packages = !noPackages
                request.packagesOnly = packagesOnly
                request.semantic = semantic
                request.python = python
                let (report, statistics) = try request.run()
                if let statistics, DiffRequest.statisticsRequested {
                    Console.err("imprint-diff-stats \(statistics.json)")
                }
                switch format {
                case .text: try writeOutput(Array(DiffReportFormat.text(report, limit: limit, colour: output == nil && Console.colour).utf8), to: output)
                case .json: try writeOutput(DiffReportFormat.json(report), to: output)
                case .html: try writeOutput(Array(DiffReportFormat.html(report).utf8), to: output)
                case .sarif: try writeOutput(SARIF.diff(report, placement: SARIFPlacement(root: sarifRoot, context: sarifContext, about: [a, b].filter(isRegularFile))), to: output)
                }
                try conclude(report)
            }
        }
    }
}

/// True for a path that is a regular file (a manifest or an archive on one side of a diff).
private func isRegularFile(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}
