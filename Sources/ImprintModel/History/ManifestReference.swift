import Foundation
/// A manifest named on the command line: a manifest file, or `history:REF` (a record of the history store).
package enum ManifestReference {
    package static func isHistory(_ spec: String) -> Bool { spec.hasPrefix("history:") }

    /// The manifest and a name for it in reports.
    /// - Throws: `notFound` for a missing file or record; `badInput` for an invalid manifest.
    package static func load(_ spec: String, history: String? = nil, cache: ManifestCache? = nil) throws -> (manifest: Manifest, name: String) {
        if isHistory(spec) {
            let ref = String(spec.dropFirst("history:".count))
            let store = try HistoryStore(at: history ?? HistoryStore.defaultLocation(), create: false)
            let entry = try store.resolve(ref)
            return (try store.manifest(for: entry), "history record \(entry.record.short) (\(ref))")
        }
        let bytes = try readFile(spec, what: "manifest")
        return (try cache?.parse(bytes, source: spec) ?? Manifest.parse(bytes, source: spec), spec)
    }
}

/// Parsed manifests by the SHA-256 of their bytes, for work that reads the same manifest again and again
/// (`imprint watch`: every round, every container of one image). A cached manifest is shared: callers only read it.
package final class ManifestCache: @unchecked Sendable {  // why: `entries` is only touched under `lock`
    private let lock = NSLock()
    private var entries: [Digest: Manifest] = [:]

    package init() {}

    /// `Manifest.parse(bytes, source:)`, once per distinct content.
    package func parse(_ bytes: [UInt8], source: String) throws -> Manifest {
        let key = SHA256.hash(bytes)
        lock.lock()
        if let m = entries[key] { lock.unlock(); return m }
        lock.unlock()
        let m = try Manifest.parse(bytes, source: source)
        lock.lock(); entries[key] = m; lock.unlock()
        return m
    }
}
