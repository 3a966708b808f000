// libFuzzer target "image-json": feeds each input to `FuzzEntryPoints` (see Sources/ImprintFuzz/FuzzEntryPoints.swift).
import FuzzDriver
import ImprintFuzz

runFuzzer(target: "image-json")
