import ArgumentParser
import Foundation
import ImprintCore

/// `--history DIR`, shared by every history command and `fingerprint --record`.
struct HistoryOptions: ParsableArguments {
    @Option(name: .customLong("history"), help: "The history store (default: $IMPRINT_HISTORY, else $XDG_DATA_HOME/imprint/history, else ~/.local/share/imprint/history).", completion: .directory)
    var path: String?
    var location: String { path ?? HistoryStore.defaultLocation() }

    func open(create: Bool = false) throws -> HistoryStore { try HistoryStore(at: location, create: create) }
}

extension ImprintCommand {
    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "history",
            abstract: "Keep every build's manifest in a compressed, deduplicated store.",
            discussion: """
            Directory objects are stored once across builds (their id is the directory's Merkle digest), so a \
            build that changes ten files costs a few kilobytes. REF is @ or @~N (N-th before the newest), a tag, \
            or a unique prefix of a record id or root digest.

            Examples:
              imprint fingerprint . -o manifest.json --record --tag nightly
              imprint history add manifest.json --tag v1.2.0 --image-digest sha256:…
              imprint history list --since 2024-05-01
              imprint history diff @~1 @
              imprint history show v1.2.0 --format json > manifest.json
              imprint history export @~9 @~8 -o builds.imprint-history.gz && imprint history import builds.imprint-history.gz
              imprint history prune --keep-last 200 --keep-tag release
              imprint history fsck

            Exit status: 0 ok; 1 diff found differences or fsck found corruption; 2 bad input or failure.
            """,
            subcommands: [Add.self, List.self, Show.self, Diff.self, Export.self, Import.self, Push.self, Pull.self, Prune.self, Fsck.self]
        )
    }
}

extension ImprintCommand.History {
    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Add manifests to the history, one record each.",
            discussion: """
            Every manifest and step record is read and checked before the first record is added; prints each \
            new record id and root digest as it is published.

            Example: imprint history add manifest.json --tag release

            Exit status: 0 ok; 2 bad input (an unreadable or invalid manifest) or failure.
            """
        )
        @OptionGroup var history: HistoryOptions
        @Argument(help: "Manifest JSON files written by imprint fingerprint.", completion: .file()) var manifests: [String]
        @Option(name: .customLong("tag"), help: "A tag for the record (repeatable).") var tags: [String] = []
        @Option(help: "The digest of the image built from this context.") var imageDigest: String?
        @Option(name: .customLong("step"), help: "A JSON file holding one step record to store with the record (repeatable).", completion: .file()) var steps: [String] = []

        func validate() throws {
            if manifests.isEmpty { throw ValidationError("give at least one manifest") }
        }

        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                try history.open(create: true).add(manifestFiles: manifests, tags: tags, imageDigest: imageDigest, stepFiles: steps) { e in
                    Console.out("\(e.record.prefixed) \(e.root.prefixed)")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List records, newest first.",
            discussion: """
            Build records (fingerprint --record, history add) in one table, step records (imprint run, imprint \
            pipeline) in another; --format json lists both (schemas/history-list.schema.json).

            Example: imprint history list --tag release --since 2024-05-01 --format json

            Exit status: 0 ok; 2 bad input or an unreadable store.
            """
        )
        @OptionGroup var history: HistoryOptions
        @Option(name: .customLong("tag"), help: "Only records carrying this tag (repeatable: all must match).") var tags: [String] = []
        @Option(help: "Only records whose git commit starts with this.") var commit: String?
        @Option(help: "Only records added at or after this time (YYYY-MM-DD, RFC 3339 or @epoch).") var since: String?
        @Option(help: "Only records added before this time (YYYY-MM-DD, RFC 3339 or @epoch).") var until: String?
        @Option(name: .shortAndLong, help: "At most this many records.") var limit: Int?
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let query = try HistoryQuery(tags: tags, commit: commit, since: since, until: until, limit: limit)
                let list = query.apply(try history.open().entries())
                if output.json {
                    Console.outRaw(HistoryFormat.listJSON(list))
                } else {
                    Console.outRaw(Array(HistoryFormat.list(list).utf8))
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show one record, or the manifest it stores.",
            discussion: """
            Formats: summary (for people), json (the manifest, byte-identical to what fingerprint wrote), record \
            (the record JSON, schemas/history-record.schema.json), paths (one entry per line).
            Example: imprint history show @~1 --format json -o manifest.json

            Exit status: 0 ok; 2 bad input or failure (nothing is changed).
            """
        )
        enum Format: String, CaseIterable, ExpressibleByArgument { case summary, json, record, paths }
        @OptionGroup var history: HistoryOptions
        @Argument(help: "The record: @~N, a tag, or a record/root digest prefix.") var ref: String
        @Option(help: "summary, json, record or paths.") var format: Format = .summary
        @Option(name: .shortAndLong, help: "Write here (atomically) instead of stdout.", completion: .file()) var output: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let store = try history.open()
                let e = try store.resolve(ref)
                let body: [UInt8]
                switch format {
                case .json: body = try store.manifest(for: e).jsonBytes()
                case .record: body = try store.objects.read(e.record, kind: .record).body
                case .paths: body = HistoryFormat.paths(try store.tree(root: e.root))
                case .summary: body = Array(try store.verifiedSummary(e).utf8)
                }
                try writeOutput(body, to: output)
            }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "diff",
            abstract: "Compare two records' trees, skipping identical subtrees by id.",
            discussion: """
            Prints A (added), D (removed) or M (modified) and the path, in tree order.
            Example: imprint history diff @~1 @     Exit status: 0 identical, 1 different, 2 failure.
            """
        )
        @OptionGroup var history: HistoryOptions
        @Argument(help: "The older record.") var from: String
        @Argument(help: "The newer record.") var to: String
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            let changes = try runReportingErrors {
                let store = try history.open()
                let a = try store.resolve(from), b = try store.resolve(to)
                let changes = try store.diff(from: a.root, to: b.root)
                Console.outRaw(HistoryFormat.diff(changes, from: a, to: b, json: output.json))
                return changes
            }
            try conclude(changes)
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write records and every object they need to one gzip archive.",
            discussion: """
            With no REF, exports every record (schemas/history-export.schema.json describes the archive's index).

            Example: imprint history export release -o release.imprint-history.gz

            Exit status: 0 ok; 2 bad input or failure (nothing is written).
            """
        )
        @OptionGroup var history: HistoryOptions
        @Argument(help: "Records to export (default: all).") var refs: [String] = []
        @Option(name: .shortAndLong, help: "The archive to write.", completion: .file()) var output: String
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let store = try history.open()
                let chosen = try store.select(refs)
                let n = try store.export(chosen, to: output)
                Console.note("imprint: exported \(chosen.count) records, \(n) objects to \(output)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Add the records of an export archive, verifying every object first.",
            discussion: """
            Every object is verified before it is added; idempotent.

            Example: imprint history import builds.imprint-history.gz --history /mnt/cache/history

            Exit status: 0 ok; 2 a corrupt or unreadable archive, or failure (nothing is imported).
            """
        )
        @OptionGroup var history: HistoryOptions
        @Argument(help: "The archive written by history export.", completion: .file()) var archive: String
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let r = try history.open(create: true).importArchive(archive)
                Console.note("imprint: imported \(r.recordsAdded) records (\(r.recordsPresent) already present), \(r.objectsWritten) objects (\(r.objectsPresent) already present)")
            }
        }
    }

    struct Push: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "push",
            abstract: "Share the history through a registry repository (merging what is already there).",
            discussion: """
            Pulls the history already stored in the repository (if any) and imports it, then pushes every record as \
            one export archive (an OCI artifact under the tag imprint-history-NAME). Runners that push and pull the \
            same repository share one history. Fails closed: when the shared history exists but cannot be read in \
            full, nothing is pushed (exit 2), so no shared record is ever lost. With --archive, pushes an export \
            archive (or its unpacked directory) as it is, replacing what the tag held. Prints the artifact's digest.

            Examples:
              imprint history push registry://registry.example.com/ci/imprint-history
              imprint history push registry://registry.example.com/ci/imprint-history --archive ../out/history.tar.gz --name nightly

            Exit status: 0 pushed; 2 bad input or failure (nothing pushed).
            """
        )
        @OptionGroup var history: HistoryOptions
        @OptionGroup var registry: RegistryFlags
        @Argument(help: "The repository: registry://HOST[:PORT]/REPO.") var repository: String
        @Option(help: "Name of the shared history (tag imprint-history-NAME).") var name = "default"
        @Option(help: "Push this export archive (or unpacked export directory) as it is, instead of the store.", completion: .file()) var archive: String?
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                if let archive {
                    Console.out(try RegistryArtifacts.pushHistoryArchive(at: archive, to: repository, name: name, options: registry.options).prefixed)
                    return
                }
                let store = try history.open(create: true)
                let r = try RegistryArtifacts.shareHistory(store, to: repository, name: name, options: registry.options)
                if let m = r.merged { Console.note("imprint: merged \(m.recordsAdded) records from \(repository)") }
                Console.out(r.pushed.prefixed)
                Console.note("imprint: pushed \(r.records) records to \(repository) (imprint-history-\(name))")
            }
        }
    }

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pull",
            abstract: "Import the history shared in a registry repository.",
            discussion: """
            Every object is verified before it is added; idempotent. With -o or --directory, writes the shared \
            export archive (or unpacks it) instead of importing it.

            Examples:
              imprint history pull registry://registry.example.com/ci/imprint-history
              imprint history pull registry://registry.example.com/ci/imprint-history --name nightly -o ../out/history.tar.gz

            Exit status: 0 ok; 2 bad input, a corrupt or missing shared history, or failure (nothing imported).
            """
        )
        @OptionGroup var history: HistoryOptions
        @OptionGroup var registry: RegistryFlags
        @Argument(help: "The repository: registry://HOST[:PORT]/REPO.") var repository: String
        @Option(help: "Name of the shared history (tag imprint-history-NAME).") var name = "default"
        @Option(name: .shortAndLong, help: "Write the export archive here (atomically) instead of importing it.", completion: .file()) var output: String?
        @Option(help: "Unpack the export archive into this new directory instead of importing it.", completion: .directory) var directory: String?
        @OptionGroup var quietFlag: QuietFlag

        func validate() throws {
            if output != nil && directory != nil { throw ValidationError("give at most one of -o FILE and --directory DIR") }
        }

        func run() throws {
            try runReportingErrors {
                if output != nil || directory != nil {
                    try RegistryArtifacts.pullHistoryArchive(from: repository, name: name, output: output, directory: directory, options: registry.options)
                    return
                }
                let r = try RegistryArtifacts.pullHistoryAndImport(from: repository, name: name, into: try history.open(create: true), options: registry.options)
                Console.note("imprint: imported \(r.recordsAdded) records (\(r.recordsPresent) already present) from \(repository)")
            }
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prune",
            abstract: "Remove old records and every object no remaining record needs.",
            discussion: """
            A record is removed when it meets every criterion given and has no --keep-tag tag.
            Example: imprint history prune --keep-last 100 --older-than 30 --keep-tag release

            Exit status: 0 ok; 2 bad input or failure (nothing is changed).
            """
        )
        @OptionGroup var history: HistoryOptions
        @Option(help: "Keep the N newest records.") var keepLast: Int?
        @Option(help: "Remove only records added more than DAYS days ago.") var olderThan: Int?
        @Option(name: .customLong("keep-tag"), help: "Never remove records with this tag (repeatable).") var keepTags: [String] = []
        @Flag(help: "Report what would be removed; remove nothing.") var dryRun = false

        func validate() throws {
            if keepLast == nil && olderThan == nil { throw ValidationError("give --keep-last N and/or --older-than DAYS") }
        }

        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            try runReportingErrors {
                let r = try history.open().prune(HistoryPrunePolicy(keepLast: keepLast, olderThanDays: olderThan, keepTags: keepTags, dryRun: dryRun))
                for e in r.removedRecords { Console.out("\(dryRun ? "would remove" : "removed") \(e.record.prefixed) \(e.recorded)") }
                Console.note("imprint: \(dryRun ? "would remove" : "removed") \(r.removedRecords.count) records and \(r.removedObjects) objects; kept \(r.keptRecords) records")
            }
        }
    }

    struct Fsck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fsck",
            abstract: "Re-hash every object and check every record is complete.",
            discussion: """
            Unreferenced objects (left by an interrupted add or prune) are reported but are not an error.

            Example: imprint history fsck --history /var/lib/ci/imprint-history --format json

            Exit status: 0 sound, 1 corrupt or missing objects, 2 failure.
            """
        )
        @OptionGroup var history: HistoryOptions
        @OptionGroup var output: TextOrJSONFormat
        @OptionGroup var quietFlag: QuietFlag

        func run() throws {
            let report = try runReportingErrors {
                let r = try history.open().fsck()
                Console.outRaw(HistoryFormat.fsck(r, json: output.json))
                if !output.json {
                    Console.note("imprint: checked \(r.objectsChecked) objects, \(r.recordsChecked) records: \(r.corrupt.count) corrupt, \(r.missing.count) missing, \(r.unreferenced.count) unreferenced")
                }
                return r
            }
            try conclude(report)
        }
    }
}
