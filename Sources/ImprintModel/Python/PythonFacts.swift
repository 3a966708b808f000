/// What the bytecode checks need of a Python file that came from a stream (a tar, an image layer) and cannot be read
/// again: kept on its node (`TreeNode.facts`) by the source that streamed it.
package final class PythonFacts: EntryFacts {
    /// For a `.pyc`: its first 16 bytes (the PEP 552 header).
    package let pycHeader: [UInt8]?
    /// For a `.py`: `importlib.util.source_hash` per released magic number (see `PycSourceHasher`), so hash-based
    /// pycs can be judged without reading the file again.
    package let sourceHashes: [UInt32: UInt64]?

    package init(pycHeader: [UInt8]?, sourceHashes: [UInt32: UInt64]?) {
        self.pycHeader = pycHeader
        self.sourceHashes = sourceHashes
    }
}

extension TreeNode {
    /// For a `.pyc` file: its first 16 bytes (the PEP 552 header), captured by sources that cannot read the file
    /// again later (tar streams, images).
    package var pycHeader: [UInt8]? {
        get { (facts as? PythonFacts)?.pycHeader }
        set { setPythonFacts(pycHeader: newValue, sourceHashes: pySourceHashes) }
    }

    /// For a `.py` file read from a stream: its CPython source hashes (`PythonFacts.sourceHashes`).
    package var pySourceHashes: [UInt32: UInt64]? {
        get { (facts as? PythonFacts)?.sourceHashes }
        set { setPythonFacts(pycHeader: pycHeader, sourceHashes: newValue) }
    }

    private func setPythonFacts(pycHeader: [UInt8]?, sourceHashes: [UInt32: UInt64]?) {
        facts = pycHeader == nil && sourceHashes == nil ? nil : PythonFacts(pycHeader: pycHeader, sourceHashes: sourceHashes)
    }
}
