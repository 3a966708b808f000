/// A result that knows the exit status it means, so the command line only passes it on: 0 when all is well, 1 when
/// a difference was found (not verified, not identical, not complete, not clean). Errors are 2 (`ImprintError`), and
/// `imprint run` passes its child's status through.
package protocol ExitStatusReporting {
    var exitStatus: Int32 { get }
}

extension ExitStatusReporting {
    /// 0 when `ok`, else 1.
    package static func status(ok: Bool) -> Int32 { ok ? 0 : 1 }
}
