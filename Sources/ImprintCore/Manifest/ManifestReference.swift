/// A manifest named on the command line: a manifest file, or `history:REF` (a record of the history store).
public enum ManifestReference {
    public static func isHistory(_ spec: String) -> Bool { spec.hasPrefix("history:") }

    /// The manifest and a name for it in reports.
    /// - Throws: `notFound` for a missing file or record; `badInput` for an invalid manifest.
    public static func load(_ spec: String, history: String? = nil) throws -> (manifest: Manifest, name: String) {
        if isHistory(spec) {
            let ref = String(spec.dropFirst("history:".count))
            let store = try HistoryStore(at: history ?? HistoryStore.defaultLocation(), create: false)
            let entry = try store.resolve(ref)
            return (try store.manifest(for: entry), "history record \(entry.record.short) (\(ref))")
        }
        return (try Manifest.parse(try readFile(spec, what: "manifest"), source: spec), spec)
    }
}
