// Small conversions shared across folders: sizes for people, device numbers for tar headers.

/// `1.5 MiB`, `312 B`: sizes for people.
package func formatBytes(_ n: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    if u == 0 { return "\(n) B" }
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[u])"
}

/// glibc's gnu_dev_major/minor are macros Swift cannot see; the same bit layout.
package func devMajor(_ dev: UInt64) -> UInt32 { UInt32(((dev >> 32) & 0xFFFF_F000) | ((dev >> 8) & 0x0000_0FFF)) }
package func devMinor(_ dev: UInt64) -> UInt32 { UInt32(((dev >> 12) & 0xFFFF_FF00) | (dev & 0x0000_00FF)) }

/// Sizes no input may claim, whatever its format says.
package enum Limits {
    /// The largest size an entry, a blob or a JSON integer size may claim (2^56 bytes): far above any real file,
    /// far below the sums that would overflow.
    package static let maxEntrySize: UInt64 = 1 << 56
}
