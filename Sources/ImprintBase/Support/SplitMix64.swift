/// A small deterministic random number generator (SplitMix64): the same seed gives the same numbers on every machine,
/// for the benchmarks' generated trees and the tests that randomise (which print their seed when they fail).
package struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    /// Seeded from the system's generator; `seed` says which, to replay a failure.
    package static func random() -> (generator: SplitMix64, seed: UInt64) {
        var system = SystemRandomNumberGenerator()
        let seed = system.next()
        return (SplitMix64(seed: seed), seed)
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
