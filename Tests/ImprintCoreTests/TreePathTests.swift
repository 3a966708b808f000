import Testing
@testable import ImprintCore

@Suite struct TreePathTests {
    @Test(arguments: [
        ("/app/", "app"), ("app//pkg/./mod.py", "app/pkg/mod.py"), ("/", ""), ("", ""), (".", ""),
        ("/../app", "app"), ("app/../../etc", "etc"), ("./.imprint/manifest.json", ".imprint/manifest.json"),
        ("a/b/..", "a"), ("..hidden/x", "..hidden/x"),
    ])
    func normalisesAsTheKernelResolvesInsideARoot(path: String, expected: String) {
        #expect(TreePath(path).string == expected)
        // Normalising twice changes nothing.
        #expect(TreePath(TreePath(path).bytes) == TreePath(path))
    }

    @Test func tarEntriesThatLeaveTheRootAreRefused() throws {
        #expect(try TreePath(tarEntry: Array("./app/../app/x".utf8), source: "layer").string == "app/x")
        #expect(try TreePath(tarEntry: Array("a/b/../..".utf8), source: "layer").string == "")
        for bad in ["../x", "a/../../x", "/../../etc/passwd"] {
            #expect(throws: ImprintError.self) { try TreePath(tarEntry: Array(bad.utf8), source: "layer") }
        }
    }

    @Test func pathsCompose() {
        let p = TreePath("/app/pkg/mod.py")
        #expect(p.parent == TreePath("app/pkg") && TreePath("app").parent == .root && TreePath.root.parent == nil)
        #expect(TreePath("app").appending(TreePath("pkg/mod.py")) == p && TreePath.root.appending(p) == p)
        #expect(p.isWithin(TreePath("app")) && !TreePath("application").isWithin(TreePath("app")) && p.isWithin(.root))
        #expect(p.absolute == "/app/pkg/mod.py" && p.components.count == 3)
        #expect(TreePath("a/b") < TreePath("a0") && TreePath("B") < TreePath("a"))
    }
}
