import Foundation
import Synchronization

/// What a site serves, compared with the build: every file of the manifest under the served directory is fetched
/// at its URL as a browser would get it (through every cache on the way) and, when that answer is not the build's,
/// once more past the caches (a `Cache-Control: no-cache` request for a URL no cache has seen), so each stale
/// answer is placed: a cache in front keeps old bytes, or the origin itself serves them. Entry points (HTML pages)
/// are read for the assets they reference, and service-worker scripts for the URLs they precache: a reference the
/// build does not contain is old code a browser will load.
package struct ServedSiteCheck {
    /// The URL the served directory is published at (`https://example.com/` or `…/app/`).
    package var base: URL
    package var manifest: Manifest
    /// The directory of the manifest that is served at `base` ("" for the manifest's root).
    package var servedRoot: String = ""
    /// Only files matching these `.dockerignore`-syntax globs (relative to `servedRoot`) are checked.
    package var include: [String] = []
    /// Requests in flight at once.
    package var concurrency: Int = 8
    /// Names the build that bytes come from: (path under the served root, SHA-256 hex) → a description.
    package var whichBuild: ((String, String) -> String?)?
    /// Largest body read per asset.
    package var maxBodyBytes: Int = 256 << 20

    package init(base: URL, manifest: Manifest) {
        self.base = base
        self.manifest = manifest
    }

    /// The answer for one asset.
    package struct Asset: Sendable {
        package enum State: String, Sendable {
            /// The bytes a browser gets are the build's.
            case served
            /// A cache in front serves other bytes; past it, the origin serves the build's.
            case staleCache = "stale-cache"
            /// The origin itself serves other bytes.
            case staleOrigin = "stale-origin"
            /// 404 (or 410).
            case missing
            /// Another status, or the request failed.
            case failed
        }
        package var path: String
        package var url: String
        package var state: State
        package var status: Int?
        package var expectedSha256: String
        package var servedSha256: String?
        package var originSha256: String?
        /// Cache facts of the answer a browser gets (Age, Cache-Control, ETag, Last-Modified, Via, X-Cache…).
        package var cacheFacts: [(String, String)]
        package var error: String?
        /// The build the served bytes come from, when the history knows them.
        package var fromBuild: String?
    }

    /// The headers that explain where an answer came from.
    static let cacheHeaders = ["age", "cache-control", "etag", "last-modified", "expires", "via", "x-cache", "x-cache-status",
                               "cf-cache-status", "x-served-by", "x-cache-hits", "server-timing"]

    /// Fetches every asset and judges it and the entry points; a report in verify's shape.
    package func run(client: HTTPClient, progress: ((Int, Int) -> Void)? = nil) throws -> (report: VerifyReport, assets: [Asset]) {
        let files = try servedFiles()
        if files.isEmpty {
            throw ImprintError.badInput("the manifest has no file under '\(servedRoot.isEmpty ? "." : servedRoot)' to compare with \(base.absoluteString)")
        }
        let done = Atomic<Int>(0)
        let assets: [Asset] = parallelMap(files, workers: max(1, concurrency)) { file in
            let a = fetch(file.path, expected: file.sha256, client: client)
            if let progress { progress(done.add(1, ordering: .relaxed).newValue, files.count) }
            return a
        }
        var findings: [VerifyFinding] = []
        for a in assets where a.state != .served {
            findings.append(finding(for: a))
        }
        let known = Set(files.map(\.path))
        let bodies = entryPointBodies(assets: assets, client: client)
        // References the build does not contain: in the pages as served, and in the service workers' precache lists.
        let unknown = bodies.pages.map { ($0.0, Self.references(inHTML: $0.1), true) }
            + bodies.workers.map { ($0.0, Self.precacheURLs(inScript: $0.1), false) }
        for (file, refs, isPage) in unknown {
            for ref in refs {
                guard let path = localPath(ref, relativeTo: file), !known.contains(path) else { continue }
                findings.append(isPage
                    ? VerifyFinding(.served, .error, path: file,
                        message: "\(file) as served references \(ref), which the build does not contain: a browser loads code of another build",
                        expected: [("in build", "no")], actual: [("reference", ref)], detail: "unknown-reference")
                    : VerifyFinding(.served, .error, path: file,
                        message: "the service worker \(file) precaches \(ref), which the build does not contain: browsers keep serving that old asset offline and on reload",
                        expected: [("in build", "no")], actual: [("precached", ref)], detail: "stale-precache"))
            }
        }
        findings.sort { ($0.path, $0.detail ?? "") < ($1.path, $1.detail ?? "") }
        let verdict: VerifyReport.Verdict = findings.contains { $0.severity == .error } ? .mismatch : .verified
        let report = VerifyReport(verdict: verdict, trust: .none, manifestSource: "", manifestDigest: manifest.rootDigest,
                                  expectedDigest: nil, target: base.absoluteString, targetKind: "served site",
                                  at: servedRoot.isEmpty ? "/" : servedRoot, actualDigest: nil, findings: findings,
                                  warnings: bodies.warnings, entriesChecked: assets.count)
        return (report, assets)
    }

    // MARK: Files and URLs

    struct ServedFile: Sendable { var path: String; var sha256: String }

    /// Regular files of the manifest under `servedRoot`, relative to it, in path order.
    func servedFiles() throws -> [ServedFile] {
        let root = servedRoot.split(separator: "/").joined(separator: "/")
        let filter = try include.isEmpty ? nil : DockerIgnore.parse(Array(include.joined(separator: "\n").utf8), file: "--include").checked()
        var out: [ServedFile] = []
        try manifest.tree.walk { path, node in
            guard node.type == .file else { return }
            let full = path.lossyString
            let rel: String
            if root.isEmpty { rel = full } else if full.hasPrefix(root + "/") { rel = String(full.dropFirst(root.count + 1)) } else { return }
            if rel.hasPrefix(".imprint/") { return }
            if let filter, !(try filter.matches(Array(rel.utf8), parent: nil).excluded) { return }
            out.append(ServedFile(path: rel, sha256: node.digest.hex))
        }
        return out
    }

    /// The URL of a path under the served root (each segment percent-encoded).
    func url(of path: String) -> URL {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/;?#")
        let encoded = path.split(separator: "/", omittingEmptySubsequences: false)
            .map { String($0).addingPercentEncoding(withAllowedCharacters: allowed) ?? String($0) }.joined(separator: "/")
        var b = base.absoluteString
        if !b.hasSuffix("/") { b += "/" }
        return URL(string: b + encoded)!
    }

    /// The served-root path a reference in `page` points at, when it is this site's (same origin, under the base).
    func localPath(_ ref: String, relativeTo page: String) -> String? {
        let trimmed = ref.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("data:") || trimmed.hasPrefix("#") || trimmed.hasPrefix("javascript:") || trimmed.hasPrefix("blob:") { return nil }
        guard let resolved = URL(string: trimmed, relativeTo: url(of: page))?.absoluteURL,
              resolved.scheme == base.scheme, resolved.host == base.host, resolved.port == base.port else { return nil }
        var b = base.path
        if !b.hasSuffix("/") { b += "/" }
        let p = resolved.path
        guard p.hasPrefix(b) else { return nil }
        let rel = String(p.dropFirst(b.count))
        return rel.isEmpty || rel.hasSuffix("/") ? rel + "index.html" : rel
    }

    // MARK: Fetching

    func fetch(_ path: String, expected: String, client: HTTPClient) -> Asset {
        let u = url(of: path)
        var asset = Asset(path: path, url: u.absoluteString, state: .failed, status: nil, expectedSha256: expected,
                          servedSha256: nil, originSha256: nil, cacheFacts: [], error: nil, fromBuild: nil)
        do {
            let first = try get(u, bypass: false, client: client)
            asset.status = first.status
            asset.cacheFacts = first.facts
            if first.status == 404 || first.status == 410 { asset.state = .missing; return asset }
            guard first.status == 200, let sha = first.sha256 else {
                asset.error = "answered \(first.status)"
                return asset
            }
            asset.servedSha256 = sha
            if sha == expected { asset.state = .served; return asset }
            // Past the caches: a URL no cache has stored, and a request that asks caches to revalidate.
            var bust = URLComponents(url: u, resolvingAgainstBaseURL: false)!
            bust.queryItems = (bust.queryItems ?? []) + [URLQueryItem(name: "imprint-nocache", value: UUID().uuidString)]
            let second = try get(bust.url!, bypass: true, client: client)
            asset.originSha256 = second.status == 200 ? second.sha256 : nil
            asset.state = asset.originSha256 == expected ? .staleCache : .staleOrigin
            asset.fromBuild = whichBuild?(path, sha)
        } catch let e as TransportError {
            asset.error = e.message
        } catch let e as ImprintError {
            asset.error = e.message
        } catch {
            asset.error = "\(error)"
        }
        return asset
    }

    struct Answer { var status: Int; var sha256: String?; var facts: [(String, String)]; var body: [UInt8]? }

    /// GETs `url` asking for gzip (decoded as a browser would) and returns the SHA-256 of the decoded body.
    func get(_ url: URL, bypass: Bool, client: HTTPClient, keepBody: Bool = false) throws -> Answer {
        var headers = ["Accept-Encoding": "gzip", "User-Agent": "imprint/\(Imprint.version) (served-site check)"]
        if bypass { headers["Cache-Control"] = "no-cache"; headers["Pragma"] = "no-cache" }
        let r = try client.send(HTTPRequest(method: "GET", url: url, headers: headers))
        let facts = Self.cacheHeaders.compactMap { h in r.header(h).map { (h, $0) } }
        guard r.status == 200 else { r.discard(); return Answer(status: r.status, sha256: nil, facts: facts, body: nil) }
        let encoding = (r.header("content-encoding") ?? "identity").lowercased().trimmingCharacters(in: .whitespaces)
        let source: ByteSource
        switch encoding {
        case "", "identity": source = r.body
        case "gzip", "x-gzip": source = GzipDecoder(r.body, name: url.absoluteString)
        default:
            r.discard()
            throw ImprintError(.failure, "\(url.absoluteString) answered with Content-Encoding \(encoding), which imprint does not decode (it asked for gzip)")
        }
        let hasher = SHA256()
        var kept: [UInt8]? = keepBody ? [] : nil
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let n = try source.read(into: buffer)
            if n == 0 { break }
            total += n
            if total > maxBodyBytes { r.discard(); throw ImprintError(.failure, "\(url.absoluteString) is larger than \(maxBodyBytes) bytes") }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            hasher.update(chunk)
            if keepBody { kept!.append(contentsOf: chunk) }
        }
        return Answer(status: 200, sha256: hasher.finish().hex, facts: facts, body: kept)
    }

    // MARK: Entry points and service workers

    struct EntryBodies { var pages: [(String, String)] = []; var workers: [(String, String)] = []; var warnings: [String] = [] }

    /// The served text of the HTML pages of the build (at most 50) and of its service-worker scripts: the pages a
    /// browser starts from, and the scripts that decide what it serves offline.
    func entryPointBodies(assets: [Asset], client: HTTPClient) -> EntryBodies {
        var out = EntryBodies()
        let pages = assets.filter { ($0.path.hasSuffix(".html") || $0.path.hasSuffix(".htm")) && $0.state != .missing }.prefix(50)
        var workerPaths = Set(assets.map(\.path).filter { Self.looksLikeServiceWorker($0) })
        for page in pages {
            guard let a = try? get(URL(string: page.url)!, bypass: false, client: client, keepBody: true), let body = a.body else {
                out.warnings.append("could not read \(page.url) for the assets it references")
                continue
            }
            let text = String(decoding: body, as: UTF8.self)
            out.pages.append((page.path, text))
            for ref in Self.serviceWorkerRegistrations(inHTML: text) {
                if let p = localPath(ref, relativeTo: page.path) { workerPaths.insert(p) }
            }
        }
        for path in workerPaths.sorted() {
            guard let a = try? get(url(of: path), bypass: false, client: client, keepBody: true), a.status == 200, let body = a.body else { continue }
            out.workers.append((path, String(decoding: body, as: UTF8.self)))
        }
        return out
    }

    static func looksLikeServiceWorker(_ path: String) -> Bool {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        return ["sw.js", "service-worker.js", "serviceworker.js", "ngsw-worker.js"].contains(name.lowercased())
    }

    /// `src` and `href` of the elements a browser loads: script, link (stylesheet, modulepreload, preload, icon,
    /// manifest), img, source, iframe.
    static func references(inHTML html: String) -> [String] {
        var out: [String] = []
        let tag = try! NSRegularExpression(pattern: "<(script|link|img|source|iframe)\\b[^>]*>", options: [.caseInsensitive])  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        let attr = try! NSRegularExpression(pattern: "\\b(src|href)\\s*=\\s*(?:\"([^\"]*)\"|'([^']*)'|([^\\s>]+))", options: [.caseInsensitive])  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        let ns = html as NSString
        for m in tag.matches(in: html, range: NSRange(location: 0, length: ns.length)) {
            let element = ns.substring(with: m.range)
            let name = ns.substring(with: m.range(at: 1)).lowercased()
            if name == "link" {
                let rel = element.lowercased()
                // Links a browser does not load as part of the page (canonical, alternate, external pages).
                if !(rel.contains("stylesheet") || rel.contains("preload") || rel.contains("icon") || rel.contains("manifest")) { continue }
            }
            let e = element as NSString
            for a in attr.matches(in: element, range: NSRange(location: 0, length: e.length)) {
                for g in 2...4 where a.range(at: g).location != NSNotFound {
                    out.append(decodeEntities(e.substring(with: a.range(at: g))))
                }
            }
        }
        return out
    }

    /// `navigator.serviceWorker.register('…')` calls in a page.
    static func serviceWorkerRegistrations(inHTML html: String) -> [String] {
        let re = try! NSRegularExpression(pattern: "serviceWorker\\s*\\.\\s*register\\s*\\(\\s*[\"'`]([^\"'`]+)[\"'`]")  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        let ns = html as NSString
        return re.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range(at: 1)) }
    }

    /// The URLs a service worker precaches: workbox's `precacheAndRoute([{url, revision}…])` manifests and
    /// `cache.addAll([...])` lists.
    static func precacheURLs(inScript js: String) -> [String] {
        var out: [String] = []
        let ns = js as NSString
        let entry = try! NSRegularExpression(pattern: "[\"']?url[\"']?\\s*:\\s*[\"']([^\"']+)[\"']")  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        for m in entry.matches(in: js, range: NSRange(location: 0, length: ns.length)) { out.append(ns.substring(with: m.range(at: 1))) }
        let addAll = try! NSRegularExpression(pattern: "addAll\\s*\\(\\s*\\[([^\\]]*)\\]")  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        let item = try! NSRegularExpression(pattern: "[\"']([^\"']+)[\"']")  // trap-ok: a constant pattern, compiled by ServedSiteTests on every run
        for m in addAll.matches(in: js, range: NSRange(location: 0, length: ns.length)) {
            let list = ns.substring(with: m.range(at: 1)) as NSString
            for i in item.matches(in: list as String, range: NSRange(location: 0, length: list.length)) { out.append(list.substring(with: i.range(at: 1))) }
        }
        return out
    }

    static func decodeEntities(_ s: String) -> String {
        s.replacingOccurrences(of: "&amp;", with: "&").replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
    }

    // MARK: Findings

    func finding(for a: Asset) -> VerifyFinding {
        let facts = a.cacheFacts.map { "\($0.0): \($0.1)" }.joined(separator: ", ")
        let why = facts.isEmpty ? "" : " (\(facts))"
        let from = a.fromBuild.map { "; these bytes are \($0)" } ?? ""
        var actual: [(String, String)] = []
        if let s = a.servedSha256 { actual.append(("served sha256", s)) }
        if let o = a.originSha256 { actual.append(("origin sha256", o)) }
        actual.append(contentsOf: a.cacheFacts)
        let expected = [("sha256", a.expectedSha256)]
        switch a.state {
        case .served:
            return VerifyFinding(.served, .info, path: a.path, message: "\(a.url) serves the build", detail: "served")
        case .staleCache:
            return VerifyFinding(.served, .error, path: a.path,
                message: "\(a.url): a cache in front serves other bytes than the build\(why); past the caches the origin serves the build's\(from)",
                expected: expected, actual: actual, detail: "stale-cache")
        case .staleOrigin:
            let origin = a.originSha256 == nil ? "the request past the caches failed" : (a.originSha256 == a.servedSha256 ? "the origin serves the same bytes" : "the origin serves yet other bytes")
            return VerifyFinding(.served, .error, path: a.path,
                message: "\(a.url) serves other bytes than the build, and past the caches too (\(origin))\(why)\(from)",
                expected: expected, actual: actual, detail: "stale-origin")
        case .missing:
            return VerifyFinding(.served, .error, path: a.path, message: "\(a.url) answered \(a.status ?? 404): the build's file is not served\(why)",
                expected: expected, actual: actual, detail: "missing-asset")
        case .failed:
            return VerifyFinding(.served, .error, path: a.path, message: "\(a.url): \(a.error ?? "no answer")",
                expected: expected, actual: actual, detail: "fetch-failed")
        }
    }
}
