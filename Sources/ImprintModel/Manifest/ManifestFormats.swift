/// Other renderings of a tree: `sha256sum -c` input and an mtree specification.
package enum ManifestFormats {
    /// Lines `sha256sum -c` accepts, one per regular file, paths relative to the context root.
    /// Names with a backslash or newline use coreutils' escaped form (a leading `\`).
    package static func sha256sum(_ tree: Tree) -> [UInt8] {
        var out: [UInt8] = []
        tree.walk { path, node in
            guard node.type == .file else { return }
            let needsEscape = path.contains(0x5C) || path.contains(0x0A) || path.contains(0x0D)
            if needsEscape { out.append(0x5C) }
            out.append(contentsOf: node.digest.hex.utf8)
            out.append(contentsOf: [0x20, 0x20])
            if needsEscape {
                for b in path {
                    switch b {
                    case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
                    case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
                    case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
                    default: out.append(b)
                    }
                }
            } else {
                out.append(contentsOf: path)
            }
            out.append(0x0A)
        }
        return out
    }

    /// An mtree(5) specification (hierarchical form) with type, mode, size, sha256 and link keywords, which
    /// BSD/NetBSD `mtree -f SPEC -p DIR` checks against a directory.
    package static func mtree(_ tree: Tree) -> [UInt8] {
        var out: [UInt8] = Array("#mtree\n. type=dir mode=\(octalMode(tree.root.mode))\n".utf8)
        func emit(_ dir: TreeNode, depth: Int) {
            for (name, node) in dir.sortedChildren {
                out.append(contentsOf: [UInt8](repeating: 0x20, count: depth * 4))
                out.append(contentsOf: vis(name))
                switch node.type {
                case .file:
                    out.append(contentsOf: " type=file mode=\(octalMode(node.mode)) size=\(node.size) sha256=\(node.digest.hex)\n".utf8)
                case .directory:
                    out.append(contentsOf: " type=dir mode=\(octalMode(node.mode))\n".utf8)
                    emit(node, depth: depth + 1)
                    out.append(contentsOf: [UInt8](repeating: 0x20, count: (depth + 1) * 4))
                    out.append(contentsOf: "..\n".utf8)
                case .symlink:
                    out.append(contentsOf: " type=link link=".utf8)
                    out.append(contentsOf: vis(node.target ?? []))
                    out.append(0x0A)
                case .fifo:
                    out.append(contentsOf: " type=fifo mode=\(octalMode(node.mode))\n".utf8)
                case .charDevice, .blockDevice:
                    out.append(contentsOf: " type=\(node.type == .charDevice ? "char" : "block") mode=\(octalMode(node.mode)) device=\(node.devMajor),\(node.devMinor)\n".utf8)
                case .socket:
                    out.append(contentsOf: " type=socket\n".utf8)
                }
            }
        }
        emit(tree.root, depth: 0)
        return out
    }

    /// strsvis-style octal escaping of bytes mtree would misread (space, glob characters, non-ASCII...).
    package static func vis(_ name: Bytes) -> Bytes {
        var out: Bytes = []
        for b in name {
            if b <= 0x20 || b >= 0x7F || b == 0x5C || b == UInt8(ascii: "#") || b == UInt8(ascii: "*")
                || b == UInt8(ascii: "?") || b == UInt8(ascii: "[") || b == UInt8(ascii: "]") || b == UInt8(ascii: "=") {
                let o = String(b, radix: 8)
                out.append(0x5C)
                out.append(contentsOf: (String(repeating: "0", count: 3 - o.count) + o).utf8)
            } else {
                out.append(b)
            }
        }
        return out
    }
}
