// libFuzzer target "history-export": feeds each input to `FuzzEntryPoints` (see Sources/ImprintFuzz/FuzzEntryPoints.swift).
import FuzzDriver
import ImprintFuzz

runFuzzer(target: "history-export")
