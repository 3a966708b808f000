import Foundation
import Yams

/// One step of a pipeline file.
package struct PipelineStep: Sendable {
    package var name: String
    /// A shell command, run with `/bin/sh -c`.
    package var run: String
    package var inputs: [String] = []
    package var outputs: [String] = []
    package var needs: [String] = []
    /// Variables set for the step; part of the cache key.
    package var env: [String: String] = [:]
    /// Variables passed through from imprint's environment; recorded and part of the cache key.
    package var passEnv: [String] = []
    package var timeout: Double?
    package var cache = false
    package var exclude: [String] = []
    /// Where the step is declared (1-based), for messages.
    package var line: Int = 0

    package var argv: [String] { ["/bin/sh", "-c", run] }
}

/// A parsed pipeline file (`ci/pipeline.yml`):
///
/// ```yaml
/// exclude: [.build]            # optional, .dockerignore syntax, for every step
/// env: {LC_ALL: C}             # optional, for every step
/// steps:
///   build:
///     run: swift build -c release
///     inputs: [Sources, Package.swift]
///     outputs: [.build/release/imprint]
///     cache: true
///   test:
///     run: swift test
///     needs: [build]
///     timeout: 20m
///     env: [CI]                # a list passes variables through; a mapping sets them
/// ```
package struct PipelineFile: Sendable {
    package var path: String
    /// Steps in file order.
    package var steps: [PipelineStep]

    package static let topLevelKeys = ["steps", "env", "exclude", "version"]
    package static let stepKeys = ["run", "inputs", "outputs", "needs", "env", "timeout", "cache", "exclude"]

    package func step(_ name: String) -> PipelineStep? { steps.first { $0.name == name } }

    /// Parses and validates a pipeline file.
    /// - Throws: `ImprintError.badInput` with `file:line:column` for invalid YAML, unknown keys, wrong types,
    ///   unknown or cyclic `needs`.
    package static func load(_ path: String) throws -> PipelineFile {
        let bytes = try readFile(path, what: "pipeline file")
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ImprintError.badInput("\(path): not UTF-8 text")
        }
        return try parse(text, path: path)
    }

    package static func parse(_ text: String, path: String) throws -> PipelineFile {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw ImprintError.badInput("\(path):\(yamlErrorText(e))")
        }
        func at(_ n: Node?) -> String { n?.mark.map { "\(path):\($0.line):\($0.column)" } ?? path }
        guard let root, case .mapping(let top) = root else {
            throw ImprintError.badInput("\(at(root)): a pipeline file is a mapping with a 'steps' key")
        }
        var globalEnv: [String: String] = [:], globalPass: [String] = [], globalExclude: [String] = []
        var stepsNode: Node?
        for (k, v) in top {
            guard let key = k.string else { throw ImprintError.badInput("\(at(k)): keys must be strings") }
            switch key {
            case "steps": stepsNode = v
            case "env": (globalEnv, globalPass) = try parseEnv(v, where: "the top level", at: at)
            case "exclude": globalExclude = try strings(v, key: "exclude", where: "the top level", at: at)
            case "version":
                guard v.int == 1 else { throw ImprintError.badInput("\(at(v)): unsupported pipeline version \(v.string ?? "?") (this imprint reads version 1)") }
            default:
                throw ImprintError.badInput("\(at(k)): unknown key '\(key)' at the top level (expected one of: \(topLevelKeys.joined(separator: ", ")))")
            }
        }
        guard let stepsNode, case .mapping(let stepMap) = stepsNode else {
            throw ImprintError.badInput("\(at(stepsNode ?? root)): 'steps' must be a mapping of step names to steps")
        }
        var steps: [PipelineStep] = []
        var seen = Set<String>()
        for (k, v) in stepMap {
            guard let name = k.string else { throw ImprintError.badInput("\(at(k)): step names must be strings") }
            do { try StepSpec.validateName(name) } catch let e as ImprintError { throw ImprintError.badInput("\(at(k)): \(e.message)") }
            guard seen.insert(name).inserted else { throw ImprintError.badInput("\(at(k)): step '\(name)' is declared twice") }
            guard case .mapping(let body) = v else { throw ImprintError.badInput("\(at(v)): step '\(name)' must be a mapping") }
            var s = PipelineStep(name: name, run: "")
            s.line = k.mark?.line ?? 0
            s.env = globalEnv
            s.passEnv = globalPass
            s.exclude = globalExclude
            var hasRun = false
            let wh = "step '\(name)'"
            for (sk, sv) in body {
                guard let key = sk.string else { throw ImprintError.badInput("\(at(sk)): keys must be strings") }
                switch key {
                case "run":
                    guard case .scalar = sv, let r = sv.string, !r.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                        throw ImprintError.badInput("\(at(sv)): 'run' of \(wh) must be a non-empty shell command")
                    }
                    s.run = r; hasRun = true
                case "inputs": s.inputs = try strings(sv, key: key, where: wh, at: at).map(ArtifactHasher.clean)
                case "outputs": s.outputs = try strings(sv, key: key, where: wh, at: at).map(ArtifactHasher.clean)
                case "needs": s.needs = try strings(sv, key: key, where: wh, at: at)
                case "exclude": s.exclude = globalExclude + (try strings(sv, key: key, where: wh, at: at))
                case "env":
                    let (set, pass) = try parseEnv(sv, where: wh, at: at)
                    s.env.merge(set) { _, new in new }
                    s.passEnv += pass
                case "timeout":
                    guard let t = sv.string else { throw ImprintError.badInput("\(at(sv)): 'timeout' of \(wh) must be a duration like 30s or 5m") }
                    s.timeout = try parseDuration(t, what: "\(at(sv)): 'timeout' of \(wh)")
                case "cache":
                    guard case .scalar = sv, let b = sv.bool else { throw ImprintError.badInput("\(at(sv)): 'cache' of \(wh) must be true or false") }
                    s.cache = b
                default:
                    throw ImprintError.badInput("\(at(sk)): unknown key '\(key)' in \(wh) (expected one of: \(stepKeys.joined(separator: ", ")))")
                }
            }
            if !hasRun { throw ImprintError.badInput("\(at(k)): \(wh) has no 'run' command") }
            steps.append(s)
        }
        if steps.isEmpty { throw ImprintError.badInput("\(at(stepsNode)): 'steps' is empty") }
        let file = PipelineFile(path: path, steps: steps)
        try file.validateNeeds(at: { name in
            let s = steps.first { $0.name == name }
            return "\(path):\(s?.line ?? 0)"
        })
        return file
    }

    /// Checks that every `needs` names a step and that there is no cycle.
    package func validateNeeds(at: (String) -> String) throws {
        let names = Set(steps.map(\.name))
        for s in steps {
            for n in s.needs where !names.contains(n) {
                throw ImprintError.badInput("\(at(s.name)): step '\(s.name)' needs '\(n)', which is not a step in this file")
            }
            if s.needs.contains(s.name) { throw ImprintError.badInput("\(at(s.name)): step '\(s.name)' needs itself (cycle \(s.name) -> \(s.name))") }
        }
        // Depth-first search with colours; the stack gives the cycle's path.
        var colour: [String: Int] = [:]  // 0 white, 1 on the stack, 2 done
        var stack: [String] = []
        let byName = Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0) })
        func visit(_ n: String) throws {
            colour[n] = 1
            stack.append(n)
            for m in byName[n]!.needs {
                if colour[m] == 1 {
                    let cycle = stack[stack.lastIndex(of: m)!...] + [m]
                    throw ImprintError.badInput("\(at(m)): 'needs' forms a cycle: \(cycle.joined(separator: " -> "))")
                }
                if colour[m, default: 0] == 0 { try visit(m) }
            }
            stack.removeLast()
            colour[n] = 2
        }
        for s in steps where colour[s.name, default: 0] == 0 { try visit(s.name) }
    }

    /// The named step and everything it needs, transitively; all steps when `target` is nil.
    package func selection(_ target: String?) throws -> Set<String> {
        guard let target else { return Set(steps.map(\.name)) }
        guard step(target) != nil else {
            throw ImprintError.badInput("\(path): no step named '\(target)' (steps: \(steps.map(\.name).joined(separator: ", ")))")
        }
        var out = Set<String>()
        var todo = [target]
        while let n = todo.popLast() {
            if out.insert(n).inserted { todo += step(n)!.needs }
        }
        return out
    }

    /// Parses `30s`, `5m`, `1h`, `1h30m`, `90` (seconds), `1.5s`.
    package static func parseDuration(_ text: String, what: String) throws -> Double {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let v = Double(t), v > 0 { return v }
        var total = 0.0, number = ""
        var any = false
        for c in t {
            if c.isNumber || c == "." { number.append(c); continue }
            guard let v = Double(number) else { number = "x"; break }
            switch c {
            case "s": total += v
            case "m": total += v * 60
            case "h": total += v * 3600
            default: number = "x"
            }
            if number == "x" { break }
            number = ""; any = true
        }
        guard any, number.isEmpty, total > 0 else {
            throw ImprintError.badInput("\(what): invalid duration \"\(text)\" (use 30s, 5m, 1h30m)")
        }
        return total
    }

    private static func strings(_ n: Node, key: String, where wh: String, at: (Node?) -> String) throws -> [String] {
        switch n {
        case .scalar:
            guard let s = n.string else { break }
            return [s]
        case .sequence(let seq):
            return try seq.map { e in
                guard case .scalar = e, let s = e.string, !s.isEmpty else {
                    throw ImprintError.badInput("\(at(e)): '\(key)' of \(wh) must list strings")
                }
                return s
            }
        default: break
        }
        throw ImprintError.badInput("\(at(n)): '\(key)' of \(wh) must be a string or a list of strings")
    }

    private static func parseEnv(_ n: Node, where wh: String, at: (Node?) -> String) throws -> ([String: String], [String]) {
        switch n {
        case .mapping(let m):
            var out: [String: String] = [:]
            for (k, v) in m {
                guard let key = k.string, case .scalar = v, let value = v.string else {
                    throw ImprintError.badInput("\(at(v)): 'env' of \(wh) must map names to strings")
                }
                out[key] = value
            }
            return (out, [])
        case .sequence:
            return ([:], try strings(n, key: "env", where: wh, at: at))
        default:
            throw ImprintError.badInput("\(at(n)): 'env' of \(wh) must be a mapping (set) or a list of names (pass through)")
        }
    }

    /// `line:column: problem` from a Yams error, on one line.
    package static func yamlErrorText(_ e: YamlError) -> String {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { "\($0.text) at \($0.mark.line):\($0.mark.column), " } ?? ""
            return "\(mark.line):\(mark.column): invalid YAML: \(ctx)\(problem)"
        case let .reader(problem, offset, _, _):
            return " invalid YAML: \(problem)\(offset.map { " at byte \($0)" } ?? "")"
        default:
            return " invalid YAML: \(e)".replacingOccurrences(of: "\n", with: " ")
        }
    }
}

extension PipelineFile {
    /// Inputs that are another step's outputs without a `needs` path to that step: their custody cannot be
    /// checked in a run that has both (the two may run side by side). One line each.
    package func warnings() -> [String] {
        var out: [String] = []
        for s in steps {
            var ancestors = Set<String>()
            var todo = s.needs
            while let n = todo.popLast() { if ancestors.insert(n).inserted { todo += step(n)?.needs ?? [] } }
            for input in s.inputs {
                for p in steps where p.name != s.name && !ancestors.contains(p.name) {
                    for o in p.outputs where o == input || o.hasPrefix(input == "." ? "" : input + "/") || input.hasPrefix(o + "/") {
                        out.append("\(path):\(s.line): step '\(s.name)' reads \(input), which overlaps output \(o) of step '\(p.name)', but does not need '\(p.name)'")
                    }
                }
            }
        }
        return out
    }
}
