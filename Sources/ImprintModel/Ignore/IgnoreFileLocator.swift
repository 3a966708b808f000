import Foundation

/// Which ignore file a builder reads for a context, and the rules it then applies: `<Dockerfile>.dockerignore`,
/// `.containerignore` or `.dockerignore` depending on the builder (`IgnoreSemantics`), or the file given with
/// `--ignore-file`.
package struct IgnoreFileLocator: Sendable {
    package var context: String
    /// The Dockerfile given with `-f`.
    package var dockerfile: String?
    /// An ignore file that replaces the builder's choice (like buildah's `--ignorefile`).
    package var ignoreFile: String?
    package var semantics: IgnoreSemantics

    package init(context: String, dockerfile: String? = nil, ignoreFile: String? = nil, semantics: IgnoreSemantics = .buildkit) {
        self.context = context; self.dockerfile = dockerfile; self.ignoreFile = ignoreFile; self.semantics = semantics
    }

    /// The ignore file the builder would use, or nil when there is none: `<Dockerfile>.dockerignore` beside the
    /// Dockerfile (`-f`, or the default `Dockerfile`, as BuildKit's dockerui reads it), else the context's
    /// `.dockerignore`.
    /// - Throws: `notFound` when `-f` names a Dockerfile that does not exist.
    package func resolve() throws -> String? {
        if let ignoreFile { return ignoreFile }
        let fm = FileManager.default
        if let df = dockerfile {
            let candidates = df.hasPrefix("/") ? [df] : [df, (context as NSString).appendingPathComponent(df)]
            guard let existing = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw ImprintError(.notFound, "the Dockerfile \(df) does not exist (looked in the working directory and in the context \(context))")
            }
            // `<Dockerfile>.dockerignore`: BuildKit's Dockerfile frontend and buildah read it; the legacy CLI does not.
            if semantics != .classic && fm.fileExists(atPath: existing + ".dockerignore") { return existing + ".dockerignore" }
        } else if semantics == .buildkit {
            // The default Dockerfile is `Dockerfile` in the context (BuildKit falls back to `dockerfile`); its
            // ignore file is always `Dockerfile.dockerignore`.
            let specific = (context as NSString).appendingPathComponent("Dockerfile.dockerignore")
            if fm.fileExists(atPath: specific) { return specific }
        } else if semantics == .buildah {
            // buildah's default is `Containerfile`, else `Dockerfile`: the ignore file beside the one it builds.
            for name in ["Containerfile", "Dockerfile"] where fm.fileExists(atPath: (context as NSString).appendingPathComponent(name)) {
                let specific = (context as NSString).appendingPathComponent(name + ".dockerignore")
                if fm.fileExists(atPath: specific) { return specific }
                break
            }
        }
        // buildah reads `.containerignore` before `.dockerignore`.
        for name in semantics == .buildah ? [".containerignore", ".dockerignore"] : [".dockerignore"] {
            let root = (context as NSString).appendingPathComponent(name)
            if fm.fileExists(atPath: root) { return root }
        }
        return nil
    }

    /// The Dockerfile's path relative to the context, as the docker CLI names it (`Dockerfile` by default; a
    /// Dockerfile outside the context keeps its path, which no pattern of the context matches).
    package var relativeDockerfile: String {
        guard let df = dockerfile else { return "Dockerfile" }
        let ctx = URL(fileURLWithPath: context).standardizedFileURL.path
        let abs = URL(fileURLWithPath: df.hasPrefix("/") || !FileManager.default.fileExists(atPath: (context as NSString).appendingPathComponent(df)) ? df
                      : (context as NSString).appendingPathComponent(df)).standardizedFileURL.path
        return abs.hasPrefix(ctx + "/") ? String(abs.dropFirst(ctx.count + 1)) : df
    }

    /// The ignore rules the builder would apply (the docker CLI's re-included build files too), and the file they
    /// come from as the manifest names it (nil: none).
    package func load() throws -> (DockerIgnore, String?) {
        guard let path = try resolve() else { return (DockerIgnore.none(semantics), nil) }
        let ignore = try DockerIgnore.parse(try readFile(path, what: "ignore file"), file: path, semantics: semantics)
        return (ignore.reincludingBuildFiles(dockerfile: relativeDockerfile), displayPath(path))
    }

    /// A path inside the context as context-relative; others as given.
    package func displayPath(_ p: String) -> String {
        let ctx = URL(fileURLWithPath: context).standardizedFileURL.path
        let abs = URL(fileURLWithPath: p).standardizedFileURL.path
        if abs.hasPrefix(ctx + "/") { return String(abs.dropFirst(ctx.count + 1)) }
        return p
    }
}
