// libFuzzer target "history-object": feeds each input to `FuzzEntryPoints` (see Sources/ImprintCore/Support/FuzzEntryPoints.swift).
import FuzzDriver
import ImprintCore

runFuzzer(target: "history-object")
