/// One of imprint's own small files (`.imprint/manifest.json`, `.imprint/manifest.sig`) read from a stream: its
/// bytes, kept on its node (`TreeNode.facts`) so the embedded manifest can be read without the stream.
package final class CapturedFile: EntryFacts {
    package let content: [UInt8]

    package init(content: [UInt8]) { self.content = content }
}

extension TreeNode {
    /// The bytes of one of imprint's own files, when a streaming source captured them (`CapturedFile`).
    package var capturedContent: [UInt8]? {
        get { (facts as? CapturedFile)?.content }
        set { facts = newValue.map(CapturedFile.init(content:)) }
    }
}
