/// "Did you mean …?" for a mistyped name: the closest candidate by edit distance, when it is close enough to be a
/// typo (at most 2 edits, or a third of the word's length for longer words).
package enum Suggestion {
    package static func closest(to word: String, among candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance($0, word)) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
        return best.0
    }

    /// Levenshtein distance over Characters.
    package static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var row = Array(0...y.count)
        for i in 1...x.count {
            var prev = row[0]
            row[0] = i
            for j in 1...y.count {
                let cur = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[y.count]
    }

    /// The usage-error line for a mistyped subcommand: the first word of `arguments` (options skipped) that names no
    /// subcommand where `subcommands(path)` lists some, with the closest name when one is near. Nil when every word
    /// names a command or the commands end before the words do.
    package static func unknownCommand(in arguments: [String], subcommands: ([String]) -> [String]) -> String? {
        var path = ["imprint"]
        for word in arguments where !word.hasPrefix("-") {
            let names = subcommands(path)
            if names.contains(word) { path.append(word); continue }
            guard !names.isEmpty else { return nil }
            var line = "imprint: error: '\(path.joined(separator: " "))' has no command '\(word)'"
            if let best = closest(to: word, among: names) { line += "; did you mean '\(best)'?" }
            return line
        }
        return nil
    }

    /// swift-argument-parser's `Error: Something …` in imprint's one error style, `imprint: error: something …`.
    package static func errorLine(_ parserLine: String) -> String {
        guard parserLine.hasPrefix("Error: ") else { return parserLine }
        let rest = parserLine.dropFirst("Error: ".count)
        return "imprint: error: " + rest.prefix(1).lowercased() + rest.dropFirst()
    }
}
