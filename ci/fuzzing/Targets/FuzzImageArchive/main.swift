// libFuzzer target "image-archive": feeds each input to `FuzzEntryPoints` (see Sources/ImprintCore/Support/FuzzEntryPoints.swift).
import FuzzDriver
import ImprintCore

runFuzzer(target: "image-archive")
