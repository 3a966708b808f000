import Foundation

/// The files in `Fixtures/`, a resource of this test target (copied into its bundle by the build).
enum Fixture {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "fixture \(name) is not in the test bundle's Fixtures" }
    }

    /// The path of `Fixtures/<name>` in the test bundle.
    static func url(_ name: String) throws -> URL {
        guard let base = Bundle.module.resourceURL else { throw Missing(name: name) }
        let url = base.appendingPathComponent("Fixtures/" + name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(name: name) }
        return url
    }
}
