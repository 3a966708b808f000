import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Digests of files already hashed, by what identifies a file's content without reading it: device, inode, size,
/// and the modification and change times in nanoseconds. The change time (ctime) moves on every write and every
/// metadata change and cannot be set from user space, so `touch -r`, `cp -p` or a restored mtime cannot make a
/// changed file look unchanged. Files of containers started from one image share inodes on overlay filesystems,
/// so a node hashes each file of a shared layer once.
///
/// `imprint watch` keeps one cache across rounds (and clears it every N rounds for a full re-hash).
package final class DigestCache: Sendable {
    package struct Key: Hashable {
        package var device: UInt64
        package var inode: UInt64
        package var size: Int64
        package var mtime: Int64
        package var ctime: Int64
    }

    private let entries = Mutex<[Key: Digest]>([:])

    package init() {}

    package static func key(_ st: stat) -> Key {
        Key(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
            mtime: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            ctime: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec))
    }

    package func digest(_ st: stat) -> Digest? { entries.withLock { $0[Self.key(st)] } }

    package func store(_ st: stat, _ digest: Digest) { entries.withLock { $0[Self.key(st)] = digest } }

    /// The number of files remembered.
    package var count: Int { entries.withLock { $0.count } }

    /// Forgets everything (the next round hashes every file again).
    package func removeAll() { entries.withLock { $0.removeAll(keepingCapacity: true) } }
}
