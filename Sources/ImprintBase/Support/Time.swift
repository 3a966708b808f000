import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 UTC timestamps (`2026-11-29T23:19:49Z`, with 3 or 9 fraction digits when asked), computed from the
/// epoch with integer arithmetic only: no locale, no time zone, no C formatting, the same bytes on any machine.
package enum RFC3339 {
    /// Formats `seconds` since the epoch and a fraction of `fractionDigits` digits (0: none).
    package static func format(seconds: Int64, fraction: Int64 = 0, fractionDigits: Int = 0) -> String {
        // Days since the epoch and the second of the day, flooring for times before 1970.
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (y, m, d) = civil(days: days)
        var out: [UInt8] = []
        out.reserveCapacity(31)
        // At least n digits (zero-padded); more when the value needs them (years past 9999).
        func digits(_ v: Int64, _ n: Int) {
            var x = v.magnitude
            var buf: [UInt8] = []
            repeat { buf.append(UInt8(48 + x % 10)); x /= 10 } while x > 0
            while buf.count < n { buf.append(48) }
            out.append(contentsOf: buf.reversed())
        }
        if y < 0 { out.append(UInt8(ascii: "-")) }
        digits(y, 4); out.append(UInt8(ascii: "-"))
        digits(m, 2); out.append(UInt8(ascii: "-"))
        digits(d, 2); out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay / 60 % 60, 2); out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, 2)
        if fractionDigits > 0 {
            out.append(UInt8(ascii: "."))
            digits(fraction, fractionDigits)
        }
        out.append(UInt8(ascii: "Z"))
        return String(decoding: out, as: UTF8.self)
    }

    /// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
    package static func civil(days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// Wall-clock timestamps for records and a monotonic clock for durations.
package enum Clock {
    /// Now, as RFC 3339 UTC with milliseconds: `2025-01-31T12:34:56.789Z`.
    package static func rfc3339Now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return rfc3339(seconds: Int(ts.tv_sec), millis: Int(ts.tv_nsec / 1_000_000))
    }

    package static func rfc3339(seconds: Int, millis: Int) -> String {
        RFC3339.format(seconds: Int64(seconds), fraction: Int64(millis), fractionDigits: 3)
    }

    /// Milliseconds on the monotonic clock.
    package static func monotonicMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// `30s`, `5m`, `1h30m` for messages.
package func formatSeconds(_ s: Double) -> String {
    let total = Int(s.rounded())
    if Double(total) != s { return "\(s)s" }
    if total >= 3600, total % 60 == 0 { return total % 3600 == 0 ? "\(total / 3600)h" : "\(total / 3600)h\(total % 3600 / 60)m" }
    if total >= 60, total % 60 == 0 { return "\(total / 60)m" }
    return "\(total)s"
}
