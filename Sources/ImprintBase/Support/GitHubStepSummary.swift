import Foundation

/// The GitHub Actions job summary: Markdown appended to the file `$GITHUB_STEP_SUMMARY` names, when it is set.
package enum GitHubStepSummary {
    /// Appends `markdown`; does nothing outside GitHub Actions. A summary that cannot be written is a warning, never
    /// the job's failure.
    package static func append(_ markdown: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard let path = environment["GITHUB_STEP_SUMMARY"], !path.isEmpty else { return }
        do {
            try AtomicFile.append(Array(markdown.utf8), to: path)
        } catch {
            Console.err("imprint: warning: cannot write the GitHub step summary: \(error)")
        }
    }
}
