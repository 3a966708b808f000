import Foundation
import Testing
@testable import ImprintCore

@Suite struct DockerIgnoreTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var patterns: [String]
        var path: String
        var excluded: Bool
        var testDescription: String { "\(patterns) \(path) → \(excluded)" }
    }

    /// The case table of REFERENCE §1 plus patternmatcher's own corner cases.
    static let rows: [Row] = [
        Row(patterns: ["**"], path: "dir/file", excluded: true),
        Row(patterns: ["**/"], path: "file", excluded: true),
        Row(patterns: ["dir/**"], path: "dir/dir2/file", excluded: true),
        Row(patterns: ["abc/**"], path: "abc", excluded: false),
        Row(patterns: ["**/dir"], path: "dir/file", excluded: true),
        Row(patterns: ["**/*.txt"], path: "file.txt", excluded: true),
        Row(patterns: ["**/**/*.txt2"], path: "dir/dir/file.txt", excluded: false),
        Row(patterns: ["a/*.txt"], path: "a/dir/file.txt", excluded: false),
        Row(patterns: ["a[b-d]e"], path: "aae", excluded: false),
        Row(patterns: ["a[b-d]e"], path: "ace", excluded: true),
        Row(patterns: ["a[^b-d]e"], path: "aae", excluded: true),
        Row(patterns: [".*"], path: ".foo", excluded: true),
        Row(patterns: [".*"], path: "foo", excluded: false),
        Row(patterns: ["abc.def"], path: "abcdef", excluded: false),
        Row(patterns: ["**/.foo"], path: "bar.foo", excluded: false),
        Row(patterns: ["a(b)c/def"], path: "a(b)c/def", excluded: true),
        Row(patterns: ["a\\*b"], path: "a*b", excluded: true),
        Row(patterns: ["a\\*b"], path: "axb", excluded: false),
        Row(patterns: ["**", "!util/docker/web"], path: "util/docker/web/foo", excluded: false),
        Row(patterns: ["**", "!util/docker/web", "util/docker/web/foo"], path: "util/docker/web/foo", excluded: true),
        Row(patterns: ["docs/*", "!docs/README.md"], path: "docs/README.md", excluded: false),
        Row(patterns: ["a*/b"], path: "a/c/b", excluded: false),
        Row(patterns: ["a*"], path: "ab/c", excluded: true),
        Row(patterns: ["docs"], path: "docs/README.md", excluded: true),
        Row(patterns: ["*.go", "!fileutils.go"], path: "fileutils.go", excluded: false),
        Row(patterns: ["!fileutils.go", "*.go"], path: "fileutils.go", excluded: true),
        Row(patterns: ["*.md", "!README*.md", "README-secret.md"], path: "README-secret.md", excluded: true),
        Row(patterns: ["*.md", "README-secret.md", "!README*.md"], path: "README-secret.md", excluded: false),
        Row(patterns: ["./a"], path: "a", excluded: true),
        Row(patterns: ["/a/b"], path: "a/b", excluded: true),
        Row(patterns: ["a/../b"], path: "b", excluded: true),
        Row(patterns: ["a/"], path: "a/x", excluded: true),
        Row(patterns: ["f?o"], path: "f/o", excluded: false),
        Row(patterns: ["**foo"], path: "xfoo", excluded: true),   // patternmatcher's suffix fast path
        Row(patterns: ["x+y"], path: "x+y", excluded: true),
        Row(patterns: ["x+y"], path: "xxy", excluded: false),
        Row(patterns: ["dir/**/z"], path: "dir/z", excluded: true),
        Row(patterns: ["dir/**/z"], path: "dir/a/b/z", excluded: true),
        Row(patterns: ["café"], path: "café", excluded: true),
        Row(patterns: ["caf?"], path: "café", excluded: true),
    ]

    @Test(arguments: rows)
    func matchesLikeBuildKit(_ row: Row) throws {
        let ig = try DockerIgnore.parse(Array(row.patterns.joined(separator: "\n").utf8), file: ".dockerignore")
        #expect(try ig.matches(Array(row.path.utf8), parent: nil).excluded == row.excluded)
    }

    /// buildah 1.28's fileutils hands `( ) + | { }` to the regexp; the current docker CLI's patternmatcher (the
    /// legacy builder's context) escapes them, as BuildKit does.
    @Test func buildahKeepsRegexMetacharactersTheLegacyCLIDoesNot() throws {
        let ig = try DockerIgnore.parse(Array("a(b)c\nx+y\n".utf8), file: "f", semantics: .buildah)
        #expect(try ig.matches(Array("abc".utf8), parent: nil).excluded)
        #expect(try !ig.matches(Array("a(b)c".utf8), parent: nil).excluded)
        #expect(try ig.matches(Array("xxy".utf8), parent: nil).excluded)
        for semantics in [IgnoreSemantics.classic, .buildkit] {
            let lit = try DockerIgnore.parse(Array("a(b)c\nx+y\n{a}\nx|y\n".utf8), file: "f", semantics: semantics)
            for path in ["a(b)c", "x+y", "{a}", "x|y"] { #expect(try lit.matches(Array(path.utf8), parent: nil).excluded, "\(semantics): \(path)") }
            for path in ["abc", "xxy", "a", "x"] { #expect(try !lit.matches(Array(path.utf8), parent: nil).excluded, "\(semantics): \(path)") }
        }
    }

    /// The docker CLI re-includes `.dockerignore` and the Dockerfile that the patterns exclude (legacy builder only).
    @Test func legacyCLIReincludesTheBuildFiles() throws {
        let data = Array("*\n!app.py\n".utf8)
        let classic = try DockerIgnore.parse(data, file: "f", semantics: .classic).reincludingBuildFiles(dockerfile: "Dockerfile")
        #expect(classic.patterns.map(\.text) == ["*", "app.py", ".dockerignore", "Dockerfile"] && classic.patterns.suffix(2).allSatisfy { $0.exclusion && $0.line == 0 })
        for name in [".dockerignore", "Dockerfile", "app.py"] { #expect(try !classic.matches(Array(name.utf8), parent: nil).excluded) }
        #expect(try classic.matches(Array("other".utf8), parent: nil).excluded)
        for semantics in [IgnoreSemantics.buildkit, .buildah] {
            let other = try DockerIgnore.parse(data, file: "f", semantics: semantics).reincludingBuildFiles(dockerfile: "Dockerfile")
            #expect(other.patterns.count == 2)
        }
        // Nothing to re-include when nothing excludes them.
        #expect(try DockerIgnore.parse(Array("*.log\n".utf8), file: "f", semantics: .classic).reincludingBuildFiles(dockerfile: "Dockerfile").patterns.count == 1)
    }

    @Test func parsing() throws {
        let ig = try DockerIgnore.parse(Array("\u{FEFF}# comment\n  \n #x\n ! /y \n\ta/./b/\r\n".utf8), file: "f")
        #expect(ig.patterns.map(\.text) == ["#x", "y", "a/b"])
        #expect(ig.patterns.map(\.exclusion) == [false, true, false])
        #expect(ig.patterns.map(\.line) == [3, 4, 5])
    }

    @Test(arguments: ["[", "[-]", "[]", "a\\", "[a-]", "!"])
    func invalidPatterns(_ p: String) {
        #expect(throws: ImprintError.self) { try DockerIgnore.parse(Array("ok\n\(p)\n".utf8), file: ".dockerignore") }
    }

    @Test func descendRules() throws {
        let bk = try DockerIgnore.parse(Array("build\n!build/**/*.keep\n".utf8), file: "f")
        #expect(bk.mustDescend(intoExcluded: Array("build".utf8)))
        #expect(bk.mustDescend(intoExcluded: Array("other".utf8)))  // any wildcard exception: BuildKit walks in
        let classic = try DockerIgnore.parse(Array("build\n!build/**/*.keep\n".utf8), file: "f", semantics: .classic)
        #expect(classic.mustDescend(intoExcluded: Array("build".utf8)))
        #expect(!classic.mustDescend(intoExcluded: Array("build/sub".utf8)))
        let prefixOnly = try DockerIgnore.parse(Array("docs\n!docs/keep.md\n".utf8), file: "f")
        #expect(prefixOnly.mustDescend(intoExcluded: Array("docs".utf8)))
        #expect(!prefixOnly.mustDescend(intoExcluded: Array("other".utf8)))
    }
}

/// The ways BuildKit's reading of an ignore file differed from imprint's, each answered by BuildKit's own code
/// (the oracle of ci/fuzzing/dockerignore_contexts.py): the files it sends, or that it refuses the context.
@Suite struct BuildKitRuleTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var rule: String
        var ignore: [UInt8]
        var files: [String]
        /// What BuildKit sends of `files` (besides .dockerignore), or nil for an error.
        var sent: [String]?
        var testDescription: String { rule }
    }

    static func row(_ rule: String, _ ignore: String, _ files: [String], _ sent: [String]?) -> Row {
        Row(rule: rule, ignore: Array(ignore.utf8), files: files, sent: sent)
    }

    static let rows: [Row] = [
        row("trimmed again after cleaning: `a /` is `a`", "a /\n", ["a", "b"], ["b"]),
        row("`./ a` is `a`", "./ a\n", ["a", "b"], ["b"]),
        row("`./!a` is an exception", "*\n./!a\n", ["a", "b"], ["a"]),
        row("`/!a` is an exception", "*\n/!a\n", ["a", "b"], ["a"]),
        row("`!/` excludes the root: an error", "!/\n", ["a"], nil),
        row("`!/b/..` excludes the root: an error", "x\n!/b/..\n", ["a"], nil),
        row("`a\\d` is a regexp digit class", "a\\d\n", ["a1", "ab"], ["ab"]),
        row("`a\\w` is a word character", "a\\w\n", ["ab", "a-"], ["a-"]),
        row("`a\\b` is a word boundary", "a\\b\n", ["a", "ab"], ["ab"]),
        row("`[[:alpha:]]` is a POSIX class", "[[:alpha:]]\n", ["a", "1"], ["1"]),
        row("`^a*` anchors", "^a*\n", ["ab", "ba"], ["ba"]),
        row("`__\\pycache__` is an invalid class: an error when matching reaches it", "__\\pycache__\n", ["x"], nil),
        row("`\\1` is a backreference Go rejects", "\\1\n", ["a"], nil),
        row("`[[:foo:]]` is an unknown class", "[[:foo:]]\n", ["a"], nil),
        row("a bad pattern matching never reaches is no error", "*\n[z-a]\n", ["a", "b"], []),
        row("a trailing backslash is no error (`\\$`: a literal dollar)", "ab*\\\n", ["ab$", "abc"], ["abc"]),
        row("U+000B is whitespace", "\u{0B}b\u{0B}\n", ["b", "c"], ["c"]),
        row("U+2028 and U+2029 are whitespace", "\u{2028}b\u{2029}\n", ["b", "c"], ["c"]),
        row("a stray CR is whitespace", "b\r\n", ["b", "c"], ["c"]),
        row("U+200B is not whitespace", "\u{200B}b\n", ["b"], ["b"]),
        row("a BOM on a later line stays in an exact pattern", "x\n\u{FEFF}b\n", ["b"], ["b"]),
        row("a BOM on a later line is dropped from a regexp", "x\n\u{FEFF}b*\n", ["b", "bc"], []),
        row("`|` is alternation once the pattern is a regexp", "x*|b\n", ["xa", "b", "cb"], []),
        row("`|` in an exact pattern is a literal", "a|b\n", ["a", "b"], ["a", "b"]),
        row("`{2}` is a repetition", "a{2}*\n", ["aa", "aaa", "a"], ["a"]),
        Row(rule: "a line of 64 KiB is an error", ignore: Array(repeating: UInt8(ascii: "x"), count: 65536) + [0x0A], files: ["a"], sent: nil),
        Row(rule: "a line just under 64 KiB is read", ignore: Array(repeating: UInt8(ascii: "x"), count: 65535) + [0x0A], files: ["a"], sent: ["a"]),
        Row(rule: "invalid UTF-8 in an exact pattern matches the same bytes", ignore: [0x61, 0xFF, 0x0A], files: ["a\u{FFFD}", "ab"], sent: ["a\u{FFFD}", "ab"]),
    ]

    @Test(arguments: rows)
    func buildKitSendsWhatTheRuleSays(_ row: Row) throws {
        let root = NSTemporaryDirectory() + "imprint-rule-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for f in row.files { FileManager.default.createFile(atPath: root + "/" + f, contents: Data("x".utf8)) }
        FileManager.default.createFile(atPath: root + "/.dockerignore", contents: Data(row.ignore))
        do {
            let ig = try DockerIgnore.parse(row.ignore, file: ".dockerignore")
            let (tree, _) = try ContextWalker(ignore: ig).walk(root)
            let sent = tree.entries.map { $0.path.lossyString }.filter { $0 != ".dockerignore" }.sorted()
            #expect(row.sent != nil, "BuildKit refuses this context; imprint sent \(sent)")
            #expect(sent == (row.sent ?? []).sorted())
        } catch let e as ImprintError {
            #expect(row.sent == nil, "imprint refused what BuildKit sends: \(e.message)")
        }
    }
}
