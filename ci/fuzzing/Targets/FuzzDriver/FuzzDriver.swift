// The libFuzzer driver shared by every target: LLVMFuzzerTestOneInput hands the input to one FuzzEntryPoints
// target, and the executable's entry point runs libFuzzer's driver with it.
import ImprintFuzz
#if canImport(Glibc)
import Glibc
#endif

// why nonisolated(unsafe): set once before libFuzzer starts, then only read by its (single) fuzzing thread.
nonisolated(unsafe) private var selectedTarget = ""

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzEntryPoints.run(selectedTarget, bytes)
    return 0
}

// swift-format-ignore: AlwaysUseLowerCamelCase
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// Runs libFuzzer (its usual flags: corpus directories, -max_total_time, -runs, …) on `target`.
public func runFuzzer(target: String) -> Never {
    selectedTarget = target
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
}
