import Foundation
import Testing

/// The stale-COPY risk: content that changed while size, mtime and mode did not, each way it happens for real,
/// against the file times `fingerprint --record` kept; an ordinary edit is not a risk.
@Suite struct StaleCopyTests {
    /// Records the context, applies `change` (a shell script run in the temp dir), then fingerprints again.
    func check(_ change: String, setup: String = "true", sourceLocation: SourceLocation = #_sourceLocation) throws -> RunResult {
        try withTempDir { dir in
            try writeFile(dir + "/ctx/app.py", "VERSION = 1\n")
            try writeFile(dir + "/ctx/other.py", "print(0)\n")
            try writeFile(dir + "/ctx/.dockerignore", "*.pyc\n")
            let env = ["IMPRINT_HISTORY": dir + "/history"]
            try sh(setup, cwd: dir, sourceLocation: sourceLocation)
            #expect(try imprint(["fingerprint", dir + "/ctx", "--record", "--digest-only", "-q"], env: env).status == 0, sourceLocation: sourceLocation)
            try sh(change, cwd: dir, sourceLocation: sourceLocation)
            // Default: against the newest record of this context.
            let r = try imprint(["fingerprint", dir + "/ctx", "--digest-only"], env: env)
            #expect(r.status == 0, sourceLocation: sourceLocation)
            // And named explicitly, with --strict making it fail.
            let named = try imprint(["fingerprint", dir + "/ctx", "--digest-only", "--against", "@", "--strict"], env: env)
            #expect(named.err.contains("cache-stale-risk") == r.err.contains("cache-stale-risk"), sourceLocation: sourceLocation)
            #expect(named.status == (r.err.contains("cache-stale-risk") ? 1 : 0), sourceLocation: sourceLocation)
            return r
        }
    }

    func expectRisk(_ r: RunResult, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.err.contains("imprint: cache-stale-risk: app.py: content changed since record"), "\(r.err)", sourceLocation: sourceLocation)
        #expect(!r.err.contains("cache-stale-risk: other.py"), sourceLocation: sourceLocation)
    }

    @Test func cpPreservingTimes() throws {
        expectRisk(try check("printf 'VERSION = 2\\n' > new.py && touch -r ctx/app.py new.py && cp -p new.py ctx/app.py"))
    }

    @Test func rsyncArchiveMode() throws {
        try requireTool("rsync")
        // --checksum: rsync's own quick check (size and mtime) would skip the file, the same blind spot.
        expectRisk(try check("mkdir up && printf 'VERSION = 2\\n' > up/app.py && touch -r ctx/app.py up/app.py && rsync -a --checksum up/ ctx/"))
    }

    @Test func tarExtraction() throws {
        // Each build unpacks a tarball (whole-second mtimes): v1 then v2, packed with the same time.
        expectRisk(try check("mkdir v2 && printf 'VERSION = 2\\n' > v2/app.py && touch -d @1700000000 v2/app.py && tar -C v2 -cf v2.tar app.py && tar -C ctx -xf v2.tar",
                             setup: "mkdir v1 && cp ctx/app.py v1/ && touch -d @1700000000 v1/app.py && tar -C v1 -cf v1.tar app.py && tar -C ctx -xf v1.tar"))
    }

    @Test func touchReference() throws {
        expectRisk(try check("cp -p ctx/app.py ref && printf 'VERSION = 2\\n' > ctx/app.py && touch -r ref ctx/app.py"))
    }

    @Test func mtimeRestoringCheckout() throws {
        // Tools that set each file's mtime to its last commit's time (git-restore-mtime and the like), with two
        // commits made in the same second.
        try requireTool("git")
        let git = "git -c user.name=ci -c user.email=ci@example.org"
        let at = "GIT_AUTHOR_DATE=@1700000000 GIT_COMMITTER_DATE=@1700000000"
        expectRisk(try check("cd ctx && printf 'VERSION = 2\\n' > app.py && \(at) \(git) commit -qam v2 && touch -d @$(git log -1 --format=%ct -- app.py) app.py",
                             setup: "cd ctx && git init -q && git add -A && \(at) \(git) commit -qm v1 && touch -d @$(git log -1 --format=%ct -- app.py) app.py"))
    }

    @Test func sameSecondEditOnACoarseMtimeFilesystem() throws {
        // A filesystem with whole-second mtimes: the record and the edit fall in the same second.
        let r = try withTempDir { dir -> RunResult in
            try writeFile(dir + "/ctx/app.py", "VERSION = 1\n")
            try writeFile(dir + "/ctx/.dockerignore", "*.pyc\n")
            let env = ["IMPRINT_HISTORY": dir + "/history"]
            try sh("touch -d @1700000000 ctx/app.py", cwd: dir)
            #expect(try imprint(["fingerprint", dir + "/ctx", "--record", "-q", "--digest-only"], env: env).status == 0)
            try sh("printf 'VERSION = 2\\n' > ctx/app.py && touch -d @1700000000 ctx/app.py", cwd: dir)
            return try imprint(["fingerprint", dir + "/ctx", "--digest-only"], env: env)
        }
        expectRisk(r)
    }

    @Test func anOrdinaryEditIsNoRisk() throws {
        let r = try check("sleep 0.01 && printf 'VERSION = 2\\n' > ctx/app.py")
        #expect(!r.err.contains("cache-stale-risk"), "\(r.err)")
        // Nor is a touch without a content change, nor a same-size edit that moves the mtime.
        let t = try check("touch ctx/app.py")
        #expect(!t.err.contains("cache-stale-risk"))
    }

    @Test func noRecordNoCheckAndABadReferenceIsAnError() throws {
        try withTempDir { dir in
            try writeFile(dir + "/ctx/app.py", "x\n")
            let none = try imprint(["fingerprint", dir + "/ctx", "--digest-only"], env: ["IMPRINT_HISTORY": dir + "/nowhere"])
            #expect(none.status == 0 && !none.err.contains("cache-stale-risk"))
            let bad = try imprint(["fingerprint", dir + "/ctx", "--against", "@", "--digest-only"], env: ["IMPRINT_HISTORY": dir + "/nowhere"])
            #expect(bad.status == 2 && bad.err.hasPrefix("imprint: error: "), "\(bad.err)")
        }
    }
}

/// `fingerprint --against REF` with a Dockerfile: which COPY/ADD misses the cache, and why.
@Suite struct CachePredictionTests {
    @Test func namesTheInstructionsThatRebuildAndTheFilesThatCauseIt() throws {
        try withTempDir { dir in
            try writeFile(dir + "/ctx/requirements.txt", "flask\n")
            try writeFile(dir + "/ctx/src/app.py", "print(1)\n")
            try writeFile(dir + "/ctx/src/util.py", "U = 1\n")
            try writeFile(dir + "/ctx/docs/readme.md", "docs\n")
            try writeFile(dir + "/ctx/.dockerignore", "docs\n")
            try writeFile(dir + "/ctx/Dockerfile", "FROM scratch\nCOPY requirements.txt /app/\nCOPY src/ /app/src/\nCOPY Dockerfile /app/\n")
            let env = ["IMPRINT_HISTORY": dir + "/h"]
            #expect(try imprint(["fingerprint", dir + "/ctx", "--record", "-q", "--digest-only"], env: env).status == 0)
            try sh("sleep 0.01; printf 'print(2)\\n' > ctx/src/app.py; touch ctx/src/new.py; printf 'more docs\\n' > ctx/docs/readme.md", cwd: dir)
            let r = try imprint(["fingerprint", dir + "/ctx", "--against", "@", "--digest-only"], env: env)
            #expect(r.status == 0, "\(r.err)")
            let lines = r.err.split(separator: "\n").map(String.init).filter { $0.hasPrefix("imprint: cache: ") }
            #expect(lines.count == 3, "\(r.err)")
            #expect(lines[0].contains("line 2 `COPY requirements.txt /app/`: inputs unchanged"), "\(lines)")
            #expect(lines[1].contains("line 3 `COPY src/ /app/src/`: cache miss, 2 inputs changed: src/app.py (changed), src/new.py (added)"), "\(lines)")
            #expect(lines[2].contains("line 4 `COPY Dockerfile /app/`: rebuilds (an earlier instruction missed the cache)"), "\(lines)")
            // An excluded file's change is no cache miss.
            #expect(!r.err.contains("readme.md"))
        }
    }
}
