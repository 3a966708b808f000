import Foundation

/// `history list`'s filter: every condition given must hold; the newest records first, at most `limit` of them.
package struct HistoryQuery: Sendable, Equatable {
    package var tags: [String] = []
    package var commitPrefix: String?
    /// Nanoseconds since the epoch: records at or after `since` and before `until`.
    package var since: Int64?
    package var until: Int64?
    package var limit: Int?

    package init() {}

    /// A query from the command line's texts; times are YYYY-MM-DD, RFC 3339 or @epoch.
    package init(tags: [String], commit: String?, since: String?, until: String?, limit: Int?) throws {
        func time(_ s: String?) throws -> Int64? {
            guard let s else { return nil }
            guard let t = HistoryTime.parse(s) else { throw ImprintError.badInput("invalid time \(s): use YYYY-MM-DD, RFC 3339 or @epoch") }
            return t
        }
        self.tags = tags
        self.commitPrefix = commit
        self.since = try time(since)
        self.until = try time(until)
        self.limit = limit
    }

    package func matches(_ e: HistoryEntry) -> Bool {
        tags.allSatisfy(e.tags.contains)
            && (commitPrefix.map { c in e.gitCommit?.hasPrefix(c) ?? false } ?? true)
            && (since.map { e.recordedNanos >= $0 } ?? true)
            && (until.map { e.recordedNanos < $0 } ?? true)
    }

    /// The entries (newest first, as `HistoryStore.entries()` gives them) that match.
    package func apply(_ entries: [HistoryEntry]) -> [HistoryEntry] {
        let matching = entries.filter(matches)
        guard let limit else { return matching }
        return Array(matching.prefix(max(0, limit)))
    }
}
