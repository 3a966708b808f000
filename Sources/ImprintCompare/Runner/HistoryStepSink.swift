/// Adds step records of `imprint run` and `imprint pipeline` to the history store, so a pipeline's chain of
/// custody can be read back with `imprint history list --tag step` and `history show`.
///
/// Each step becomes a build record of its own, tagged `step` and `step:<name>`, carrying the step record; its
/// tree is empty (the step's materials and products are listed, with digests, in the step record).
package struct HistoryStepSink: StepRecordSink {
    package let store: HistoryStore

    package init(store: HistoryStore) { self.store = store }

    package func add(_ record: StepRecord) throws {
        let tree = Tree()
        tree.computeDigests()
        var build = BuildRecord(manifest: Manifest(tree: tree))
        build.tags = ["step", "step:\(record.name)"]
        try build.addStepRecord(record.jsonBytes())
        _ = try store.add(build, tree: tree)
    }
}
