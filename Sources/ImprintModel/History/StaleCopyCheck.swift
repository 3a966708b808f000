import Foundation

/// `fingerprint --against`: which earlier record a new fingerprint is compared with for the stale-COPY risk, and
/// what that comparison says (cache-stale-risk findings; with a Dockerfile and an explicit REF, which COPY/ADD
/// miss the cache since it).
package struct StaleCopyCheck: Sendable {
    package enum Baseline: Sendable, Equatable {
        /// `--against none`: no comparison.
        case none
        /// `--against REF`: that record; it must exist.
        case record(String)
        /// No `--against`: the newest record of the same context, when the store has one.
        case newestOfContext
    }

    package struct Outcome: Sendable {
        package var findings: [HygieneFinding] = []
        /// `CachePrediction.text()` lines (explicit REF and a Dockerfile with COPY/ADD only).
        package var cacheLines: [String] = []
        /// Why the check said less than it could ("record … has no file times", "the store cannot be read").
        package var notes: [String] = []
    }

    package var baseline: Baseline
    package var storeLocation: String

    package init(against: String?, storeLocation: String) {
        switch against {
        case nil: baseline = .newestOfContext
        case "none": baseline = .none
        case let ref?: baseline = .record(ref)
        }
        self.storeLocation = storeLocation
    }

    /// Whether the fingerprint must keep file times: to record them, or to compare them with a baseline.
    package func needsFileTimes(recording: Bool) -> Bool {
        switch baseline {
        case .none: return recording
        case .record: return true
        case .newestOfContext: return recording || FileManager.default.fileExists(atPath: storeLocation)
        }
    }

    /// Compares `manifest` (fingerprinted with file times) of `context` with the baseline.
    /// An explicit REF that cannot be resolved is an error; the implicit baseline never fails the fingerprint, but
    /// a store that exists and cannot be read is named in `notes`.
    package func run(_ manifest: Manifest, context: String, predictCache: Bool) throws -> Outcome {
        var out = Outcome()
        switch baseline {
        case .none:
            return out
        case .record(let ref):
            let store = try HistoryStore(at: storeLocation, create: false)
            let e = try store.resolve(ref)
            if predictCache, let d = manifest.metadata.dockerfile, !d.parsed.copies.isEmpty {
                out.cacheLines = try CachePrediction(dockerfile: d.parsed, current: manifest.tree, previous: try store.tree(root: e.root)).text()
            }
            guard let times = try store.fileTimes(record: e.record) else {
                out.notes.append("history record \(e.record.short) (\(ref)) has no file times (recorded without fingerprint --record): the stale-COPY check is skipped")
                return out
            }
            out.findings = times.staleRisks(in: manifest.tree, against: "record \(e.record.short)")
        case .newestOfContext:
            guard FileManager.default.fileExists(atPath: storeLocation) else { return out }
            do {
                let store = try HistoryStore(at: storeLocation, create: false)
                guard let (e, times) = try store.latestFileTimes(context: context) else { return out }
                out.findings = times.staleRisks(in: manifest.tree, against: "record \(e.record.short)")
            } catch {
                out.notes.append("the stale-COPY check is skipped: the history store \(storeLocation) cannot be read (\(error))")
            }
        }
        return out
    }
}
