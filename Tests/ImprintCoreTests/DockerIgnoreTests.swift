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

    @Test func classicKeepsRegexMetacharacters() throws {
        let ig = try DockerIgnore.parse(Array("a(b)c\nx+y\n".utf8), file: "f", semantics: .classic)
        #expect(try ig.matches(Array("abc".utf8), parent: nil).excluded)
        #expect(try !ig.matches(Array("a(b)c".utf8), parent: nil).excluded)
        #expect(try ig.matches(Array("xxy".utf8), parent: nil).excluded)
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
