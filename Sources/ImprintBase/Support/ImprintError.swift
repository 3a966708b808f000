#if canImport(Glibc)
import Glibc
#endif

/// The one error type of imprint: an operation, the thing it was applied to, and why it failed.
///
/// `description` is a single line meant for a person reading a CI log.
package struct ImprintError: Error, CustomStringConvertible, Sendable {
    package enum Code: String, Sendable {
        /// The input is malformed or inconsistent (corrupt archive, bad JSON, digest mismatch).
        case badInput
        /// An operating-system call failed (open, read, rename...).
        case io
        /// The input uses a feature imprint does not handle (zstd layers, unknown media types).
        case unsupported
        /// A named thing does not exist (a file, a blob, a history record).
        case notFound
        /// A failure that is neither of the above (a child process, a network peer).
        case failure
    }

    package var code: Code
    package var message: String
    /// The error this one explains, kept for callers that need it (the message already says what happened).
    package var underlying: (any Error & Sendable)?

    package init(_ code: Code, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    package var description: String { message }

    /// An error for a failed system call; reads `errno` itself, so call it right after the failure.
    package static func posix(_ operation: String, _ path: String, errno code: Int32 = errno) -> ImprintError {
        let reason = String(cString: strerror(code))
        let kind: Code = (code == ENOENT || code == ENOTDIR) ? .notFound : .io
        return ImprintError(kind, "cannot \(operation) \(path): \(reason)")
    }

    package static func badInput(_ message: String) -> ImprintError { ImprintError(.badInput, message) }
}
