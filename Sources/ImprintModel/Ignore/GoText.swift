/// The Go standard-library behaviour BuildKit's `.dockerignore` handling rests on, on raw bytes (a Go string is
/// bytes, not necessarily UTF-8): `utf8.DecodeRune`, `strings.TrimSpace`, `filepath.Clean`, `filepath.Match`'s
/// syntax check and `bufio.Scanner`'s line splitting. Each function follows Go 1.19's code.
package enum GoText {
    package static let runeError: UInt32 = 0xFFFD
    package static let slash = UInt8(ascii: "/")

    // MARK: unicode/utf8

    /// `utf8.DecodeRune`: the rune at `i` and its width; an invalid or truncated sequence is `(U+FFFD, 1)`.
    package static func decodeRune(_ b: UnsafeBufferPointer<UInt8>, _ i: Int) -> (rune: UInt32, width: Int) {
        let n = b.count - i
        guard n > 0 else { return (runeError, 0) }
        let x = b[i]
        if x < 0x80 { return (UInt32(x), 1) }
        // The first byte decides the length and the range the second byte must fall in (utf8.first/acceptRanges).
        let size: Int, lo: UInt8, hi: UInt8
        switch x {
        case 0xC2...0xDF: size = 2; lo = 0x80; hi = 0xBF
        case 0xE0: size = 3; lo = 0xA0; hi = 0xBF
        case 0xE1...0xEC, 0xEE, 0xEF: size = 3; lo = 0x80; hi = 0xBF
        case 0xED: size = 3; lo = 0x80; hi = 0x9F
        case 0xF0: size = 4; lo = 0x90; hi = 0xBF
        case 0xF1...0xF3: size = 4; lo = 0x80; hi = 0xBF
        case 0xF4: size = 4; lo = 0x80; hi = 0x8F
        default: return (runeError, 1)
        }
        guard n >= size else { return (runeError, 1) }
        let b1 = b[i + 1]
        guard b1 >= lo && b1 <= hi else { return (runeError, 1) }
        if size == 2 { return (UInt32(x & 0x1F) << 6 | UInt32(b1 & 0x3F), 2) }
        let b2 = b[i + 2]
        guard b2 & 0xC0 == 0x80 else { return (runeError, 1) }
        if size == 3 { return (UInt32(x & 0x0F) << 12 | UInt32(b1 & 0x3F) << 6 | UInt32(b2 & 0x3F), 3) }
        let b3 = b[i + 3]
        guard b3 & 0xC0 == 0x80 else { return (runeError, 1) }
        return (UInt32(x & 0x07) << 18 | UInt32(b1 & 0x3F) << 12 | UInt32(b2 & 0x3F) << 6 | UInt32(b3 & 0x3F), 4)
    }

    /// `utf8.DecodeLastRune` of `b[..<end]`.
    package static func decodeLastRune(_ b: UnsafeBufferPointer<UInt8>, end: Int) -> (rune: UInt32, width: Int) {
        guard end > 0 else { return (runeError, 0) }
        var start = end - 1
        if b[start] < 0x80 { return (UInt32(b[start]), 1) }
        let lim = max(0, end - 4)
        start -= 1
        while start >= lim {
            if b[start] & 0xC0 != 0x80 { break }
            start -= 1
        }
        if start < 0 { start = 0 }
        let (r, size) = decodeRune(UnsafeBufferPointer(rebasing: b[start..<end]), 0)
        if start + size != end { return (runeError, 1) }
        return (r, size)
    }

    /// `utf8.EncodeRune` (U+FFFD for surrogates and values past U+10FFFF).
    package static func appendRune(_ r: UInt32, to out: inout [UInt8]) {
        var r = r
        if (0xD800...0xDFFF).contains(r) || r > 0x10FFFF { r = runeError }
        switch r {
        case 0..<0x80: out.append(UInt8(r))
        case 0x80..<0x800:
            out.append(0xC0 | UInt8(r >> 6)); out.append(0x80 | UInt8(r & 0x3F))
        case 0x800..<0x10000:
            out.append(0xE0 | UInt8(r >> 12)); out.append(0x80 | UInt8((r >> 6) & 0x3F)); out.append(0x80 | UInt8(r & 0x3F))
        default:
            out.append(0xF0 | UInt8(r >> 18)); out.append(0x80 | UInt8((r >> 12) & 0x3F))
            out.append(0x80 | UInt8((r >> 6) & 0x3F)); out.append(0x80 | UInt8(r & 0x3F))
        }
    }

    /// The bytes as Go's regexp package sees them: every byte that does not start a valid UTF-8 sequence is read
    /// as U+FFFD. (RE2 would instead never match such a byte, so it is given the replacement character.)
    package static func regexpSubject(_ bytes: Bytes) -> Bytes {
        guard bytes.contains(where: { $0 >= 0x80 }) else { return bytes }
        var out: Bytes = []
        out.reserveCapacity(bytes.count + 8)
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                let (r, w) = decodeRune(b, i)
                if r == runeError && w == 1 { appendRune(runeError, to: &out) } else { out.append(contentsOf: b[i..<(i + w)]) }
                i += w
            }
        }
        return out
    }

    // MARK: unicode, strings

    /// `unicode.IsSpace`.
    package static func isSpace(_ r: UInt32) -> Bool {
        if r <= 0xFF {
            switch r {
            case 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0: return true
            default: return false
            }
        }
        // The White_Space table outside Latin-1.
        return r == 0x1680 || (0x2000...0x200A).contains(r) || r == 0x2028 || r == 0x2029 || r == 0x202F
            || r == 0x205F || r == 0x3000
    }

    /// `strings.TrimSpace`.
    package static func trimSpace(_ s: Bytes) -> Bytes {
        s.withUnsafeBufferPointer { b in
            var start = 0
            while start < b.count {
                let (r, w) = decodeRune(b, start)
                if !isSpace(r) || (r == runeError && w == 1) { break }
                start += w
            }
            var end = b.count
            while end > start {
                let (r, w) = decodeLastRune(b, end: end)
                if !isSpace(r) || (r == runeError && w == 1) { break }
                end -= w
            }
            return Array(b[start..<end])
        }
    }

    // MARK: path/filepath

    /// `filepath.Clean` for slash-separated paths.
    package static func clean(_ path: Bytes) -> Bytes {
        if path.isEmpty { return [UInt8(ascii: ".")] }
        let rooted = path[0] == slash
        let n = path.count
        var out: Bytes = []
        out.reserveCapacity(n)
        var r = 0, dotdot = 0
        if rooted { out.append(slash); r = 1; dotdot = 1 }
        let dot = UInt8(ascii: ".")
        while r < n {
            if path[r] == slash {
                r += 1
            } else if path[r] == dot && (r + 1 == n || path[r + 1] == slash) {
                r += 1
            } else if path[r] == dot && path[r + 1] == dot && (r + 2 == n || path[r + 2] == slash) {
                r += 2
                if out.count > dotdot {
                    out.removeLast()
                    while out.count > dotdot && out[out.count - 1] != slash { out.removeLast() }
                } else if !rooted {
                    if !out.isEmpty { out.append(slash) }
                    out.append(dot); out.append(dot)
                    dotdot = out.count
                }
            } else {
                if (rooted && out.count != 1) || (!rooted && !out.isEmpty) { out.append(slash) }
                while r < n && path[r] != slash { out.append(path[r]); r += 1 }
            }
        }
        if out.isEmpty { out.append(dot) }
        return out
    }

    /// True when `filepath.Match(pattern, ".")` returns `ErrBadPattern` — the only syntax check patternmatcher
    /// makes when it reads the patterns. It is not a full check: Match stops at the first chunk that cannot match.
    package static func matchReportsBadPattern(_ pattern: Bytes) -> Bool {
        pattern.withUnsafeBufferPointer { p in
            var pat = p[...]
            var name: ArraySlice<UInt8> = [UInt8(ascii: ".")][...]
            while !pat.isEmpty {
                let (star, chunk, rest) = scanChunk(pat)
                pat = rest
                if star && chunk.isEmpty { return false }  // trailing star: matches or not, no error
                let (t, ok, bad) = matchChunk(chunk, name)
                if ok && (t.isEmpty || !pat.isEmpty) { name = t; continue }
                if bad { return true }
                if star {
                    var i = name.startIndex
                    var advanced = false
                    while i < name.endIndex && name[i] != slash {
                        let (t, ok, bad) = matchChunk(chunk, name[(i + 1)...])
                        if ok {
                            if pat.isEmpty && !t.isEmpty { i += 1; continue }
                            name = t
                            advanced = true
                            break
                        }
                        if bad { return true }
                        i += 1
                    }
                    if advanced { continue }
                }
                return false
            }
            return false
        }
    }

    private static func scanChunk(_ pattern: Slice<UnsafeBufferPointer<UInt8>>)
        -> (star: Bool, chunk: Slice<UnsafeBufferPointer<UInt8>>, rest: Slice<UnsafeBufferPointer<UInt8>>) {
        var p = pattern
        var star = false
        while let f = p.first, f == UInt8(ascii: "*") { p = p.dropFirst(); star = true }
        var inrange = false
        var i = p.startIndex
        scan: while i < p.endIndex {
            switch p[i] {
            case UInt8(ascii: "\\"):
                if i + 1 < p.endIndex { i += 1 }
            case UInt8(ascii: "["): inrange = true
            case UInt8(ascii: "]"): inrange = false
            case UInt8(ascii: "*"): if !inrange { break scan }
            default: break
            }
            i += 1
        }
        return (star, p[p.startIndex..<i], p[i...])
    }

    /// `filepath.matchChunk` (the name is only ever "." or a part of it, so it is an array slice).
    private static func matchChunk(_ chunkIn: Slice<UnsafeBufferPointer<UInt8>>, _ sIn: ArraySlice<UInt8>)
        -> (rest: ArraySlice<UInt8>, ok: Bool, bad: Bool) {
        var chunk = chunkIn
        var s = sIn
        var failed = false
        while let c = chunk.first {
            if !failed && s.isEmpty { failed = true }
            switch c {
            case UInt8(ascii: "["):
                var r: UInt32 = 0
                if !failed {
                    let (rr, n) = Array(s).withUnsafeBufferPointer { decodeRune($0, 0) }
                    r = rr
                    s = s.dropFirst(n)
                }
                chunk = chunk.dropFirst()
                var negated = false
                if chunk.first == UInt8(ascii: "^") { negated = true; chunk = chunk.dropFirst() }
                var match = false
                var nrange = 0
                while true {
                    if chunk.first == UInt8(ascii: "]") && nrange > 0 { chunk = chunk.dropFirst(); break }
                    guard let (lo, rest1) = getEsc(chunk) else { return ([], false, true) }
                    chunk = rest1
                    var hi = lo
                    if chunk.first == UInt8(ascii: "-") {
                        guard let (h, rest2) = getEsc(chunk.dropFirst()) else { return ([], false, true) }
                        hi = h
                        chunk = rest2
                    }
                    if lo <= r && r <= hi { match = true }
                    nrange += 1
                }
                if match == negated { failed = true }
            case UInt8(ascii: "?"):
                if !failed {
                    if s.first == slash { failed = true }
                    let (_, n) = Array(s).withUnsafeBufferPointer { decodeRune($0, 0) }
                    s = s.dropFirst(n)
                }
                chunk = chunk.dropFirst()
            default:
                var lit = c
                if c == UInt8(ascii: "\\") {
                    chunk = chunk.dropFirst()
                    guard let e = chunk.first else { return ([], false, true) }
                    lit = e
                }
                if !failed {
                    if lit != s.first { failed = true }
                    s = s.dropFirst()
                }
                chunk = chunk.dropFirst()
            }
        }
        return failed ? ([], false, false) : (s, true, false)
    }

    /// `filepath.getEsc`: a possibly escaped character of a class; nil for ErrBadPattern.
    private static func getEsc(_ chunkIn: Slice<UnsafeBufferPointer<UInt8>>) -> (UInt32, Slice<UnsafeBufferPointer<UInt8>>)? {
        var chunk = chunkIn
        guard let f = chunk.first, f != UInt8(ascii: "-"), f != UInt8(ascii: "]") else { return nil }
        if f == UInt8(ascii: "\\") {
            chunk = chunk.dropFirst()
            if chunk.isEmpty { return nil }
        }
        let (r, n) = decodeRune(UnsafeBufferPointer(rebasing: chunk), 0)
        if r == runeError && n == 1 { return nil }
        let next = chunk.dropFirst(n)
        if next.isEmpty { return nil }
        return (r, next)
    }

    // MARK: bufio

    /// The longest line `bufio.Scanner` accepts with its default buffer (`bufio.MaxScanTokenSize` includes the
    /// newline).
    package static let maxLineLength = 64 * 1024 - 1

    /// `bufio.Scanner` with `ScanLines`: lines split at `\n`, one trailing `\r` dropped from each, no empty last line.
    /// - Returns: the lines, or the 1-based number of the first line that is too long.
    package static func scanLines(_ data: Bytes) -> Result<[Bytes], TooLong> {
        var lines: [Bytes] = []
        var start = 0
        var number = 0
        while start < data.count {
            number += 1
            let nl = data[start...].firstIndex(of: 0x0A)
            let end = nl ?? data.count
            if end - start > maxLineLength { return .failure(TooLong(line: number)) }
            var line = Array(data[start..<end])
            if line.last == 0x0D { line.removeLast() }
            lines.append(line)
            start = end + 1
        }
        return .success(lines)
    }

    package struct TooLong: Error { var line: Int }
}
