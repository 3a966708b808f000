import Foundation

/// Renderings of a `DiffReport`: text (summary first), JSON (`schemas/diff-report.schema.json`) and one
/// self-contained HTML page.
package enum DiffReportFormat {
    /// "modified" for content changes, otherwise the change kind.
    package static func className(_ k: TreeChange.Kind) -> String {
        switch k {
        case .content: return "modified"
        default: return k.rawValue
        }
    }

    package static func layerText(_ side: DiffSide, _ node: TreeNode?) -> String? {
        guard let node, let l = node.layer else { return nil }
        guard l < side.layers.count else { return "layer \(l)" }
        let layer = side.layers[l]
        let d = layer.digest.hasPrefix("sha256:") ? String(layer.digest.dropFirst(7).prefix(12)) : layer.digest
        return "layer \(l) (\(d))"
    }

    package static func topLevel(_ path: Bytes) -> String { "/" + (path.pathComponents.first?.lossyString ?? "") }

    package static func text(_ r: DiffReport, limit: Int?, colour: Bool) -> String {
        func paint(_ s: String, _ code: String) -> String { colour ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
        var lines: [String] = []
        if r.identical {
            lines.append(paint("IDENTICAL: \(r.a.name) and \(r.b.name)", "32"))
            return lines.joined(separator: "\n") + "\n"
        }
        let added = r.changes.filter { $0.kind == .added }.count
        let removed = r.changes.filter { $0.kind == .removed }.count
        let modified = Set(r.changes.filter { $0.kind != .added && $0.kind != .removed }.map(\.path)).count
        lines.append(paint("DIFFERENT: \(r.a.name) → \(r.b.name): \(added) added, \(removed) removed, \(modified) modified" +
                           (r.config.isEmpty ? "" : ", \(r.config.count) config change\(r.config.count == 1 ? "" : "s")"), "31;1"))
        var byTop: [String: (Int, Int, Int)] = [:]
        for c in r.changes {
            var t = byTop[topLevel(c.path)] ?? (0, 0, 0)
            switch c.kind { case .added: t.0 += 1; case .removed: t.1 += 1; default: t.2 += 1 }
            byTop[topLevel(c.path)] = t
        }
        for k in byTop.keys.sorted() {
            let t = byTop[k]!
            lines.append("  \(k): +\(t.0) -\(t.1) ~\(t.2)")
        }
        if !r.a.layers.isEmpty || !r.b.layers.isEmpty {
            lines.append("  layers: \(r.sharedLayers) shared, \(r.a.layers.count - r.sharedLayers) only in A, \(r.b.layers.count - r.sharedLayers) only in B")
        }
        if r.a.manifest != nil || r.b.manifest != nil {
            lines.append("  imprint manifests: A \(r.a.manifest?.rootDigest.prefixed ?? "none"), B \(r.b.manifest?.rootDigest.prefixed ?? "none")")
        }
        let classes = ["added", "removed", "modified", "mode", "type", "symlink-target", "owner", "hardlink", "mtime", "xattrs", "device"]
        for cls in classes {
            let group = r.changes.filter { className($0.kind) == cls }
            guard !group.isEmpty else { continue }
            lines.append("")
            lines.append(paint("\(cls) (\(group.count)):", "1"))
            for (i, c) in group.enumerated() {
                if let limit, i >= limit { lines.append("  … \(group.count - limit) more (raise --limit)"); break }
                lines.append("  /\(c.path.lossyString)\(describe(c))")
                let la = layerText(r.a, c.left), lb = layerText(r.b, c.right)
                if la != nil || lb != nil { lines.append("      written by: A \(la ?? "-"), B \(lb ?? "-")") }
            }
        }
        if !r.bytecodeDifferences.isEmpty {
            lines.append("")
            lines.append(paint("bytecode (\(r.bytecodeDifferences.count)):", "1"))
            for (side, f) in r.bytecodeDifferences {
                lines.append("  [\(side.rawValue.uppercased())] /\(f.path.lossyString): \(f.kind.rawValue): \(f.detail)")
            }
        }
        if !r.config.isEmpty {
            lines.append("")
            lines.append(paint("config (\(r.config.count)):", "1"))
            for c in r.config { lines.append("  \(c.field): \(c.a ?? "(none)") → \(c.b ?? "(none)")") }
        }
        if r.layersDiffer {
            lines.append("")
            lines.append(paint("layers:", "1"))
            for i in 0..<max(r.a.layers.count, r.b.layers.count) {
                let la = i < r.a.layers.count ? r.a.layers[i] : nil, lb = i < r.b.layers.count ? r.b.layers[i] : nil
                let mark = i < r.sharedLayers ? "=" : "≠"
                lines.append("  \(mark) \(i): A \(la.map { short($0.diffID ?? $0.digest) + " " + formatBytes(UInt64(max(0, $0.size))) } ?? "-")  B \(lb.map { short($0.diffID ?? $0.digest) + " " + formatBytes(UInt64(max(0, $0.size))) } ?? "-")")
            }
        }
        if !r.manifestChanges.isEmpty {
            lines.append("")
            lines.append(paint("embedded manifests differ (\(r.manifestChanges.count) entries):", "1"))
            for c in r.manifestChanges.prefix(limit ?? Int.max) { lines.append("  \(className(c.kind)) \(c.path.lossyString)") }
        }
        lines += forensicsText(r, limit: limit, paint: paint)
        return lines.joined(separator: "\n") + "\n"
    }

    /// Packages, installed files that do not match their RECORD, and the content of modified files.
    static func forensicsText(_ r: DiffReport, limit: Int?, paint: (String, String) -> String) -> [String] {
        var lines: [String] = []
        if !r.packages.isEmpty {
            lines.append("")
            lines.append(paint("packages (\(r.packages.count)):", "1"))
            for (i, p) in r.packages.enumerated() {
                if let limit, i >= limit { lines.append("  … \(r.packages.count - limit) more (raise --limit)"); break }
                switch p.kind {
                case .added: lines.append("  + \(p.ecosystem.rawValue) \(p.name) \(p.b ?? "")  (\(p.location))")
                case .removed: lines.append("  - \(p.ecosystem.rawValue) \(p.name) \(p.a ?? "")  (\(p.location))")
                case .changed: lines.append("  ~ \(p.ecosystem.rawValue) \(p.name) \(p.a ?? "") → \(p.b ?? "")  (\(p.location))")
                }
            }
        }
        if !r.installedFiles.isEmpty {
            lines.append("")
            lines.append(paint("installed files that do not match their package's RECORD (\(r.installedFiles.count)):", "1"))
            for m in r.installedFiles.prefix(limit ?? Int.max) {
                lines.append("  [\(m.side.uppercased())] \(m.path) (\(m.package)): " + (m.actual.map { "sha256 \($0.prefix(12)), RECORD says \(m.expected.prefix(12))" } ?? "missing, RECORD lists it"))
            }
        }
        let shown = r.contents.filter { $0.unified != nil || $0.kind == .binary }
        if !shown.isEmpty {
            lines.append("")
            lines.append(paint("content (\(shown.count) modified file\(shown.count == 1 ? "" : "s")):", "1"))
            for (i, c) in shown.enumerated() {
                if let limit, i >= limit { lines.append("  … \(shown.count - limit) more (raise --limit)"); break }
                if let u = c.unified {
                    lines.append(paint("  \(c.path): +\(c.added) -\(c.removed)" + (c.note.map { " (\($0))" } ?? ""), "1"))
                    for l in u.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                        let code = l.hasPrefix("+++") || l.hasPrefix("---") ? "1" : l.hasPrefix("+") ? "32" : l.hasPrefix("-") ? "31" : l.hasPrefix("@@") ? "36" : ""
                        lines.append("    " + (code.isEmpty ? String(l) : paint(String(l), code)))
                    }
                } else {
                    lines.append("  \(c.path): binary, " + (c.firstDifference.map { "first difference at byte \($0)" } ?? (c.note ?? "")))
                }
            }
        }
        if let note = r.forensicsNote { lines.append(""); lines.append("note: \(note)") }
        return lines
    }

    package static func short(_ d: String) -> String { d.hasPrefix("sha256:") ? String(d.dropFirst(7).prefix(12)) : String(d.prefix(12)) }

    package static func describe(_ c: TreeChange) -> String {
        switch c.kind {
        case .content: return ": \(c.left!.size) → \(c.right!.size) bytes, \(c.left!.digest.short) → \(c.right!.digest.short)"
        case .mode: return ": \(octalMode(c.left!.mode)) → \(octalMode(c.right!.mode))"
        case .type: return ": \(c.left!.type.rawValue) → \(c.right!.type.rawValue)"
        case .symlinkTarget: return ": → \(c.left!.target?.lossyString ?? "") became → \(c.right!.target?.lossyString ?? "")"
        case .owner: return ": \(c.left!.uid):\(c.left!.gid) → \(c.right!.uid):\(c.right!.gid)"
        case .hardlink: return ": \(c.left!.hardlink?.lossyString ?? "-") → \(c.right!.hardlink?.lossyString ?? "-")"
        case .mtime: return ": \(c.left!.mtime ?? 0) → \(c.right!.mtime ?? 0)"
        case .added: return c.right!.type == .file ? " (\(formatBytes(c.right!.size)))" : " (\(c.right!.type.rawValue))"
        case .removed: return c.left!.type == .file ? " (\(formatBytes(c.left!.size)))" : " (\(c.left!.type.rawValue))"
        default: return ""
        }
    }

    package static func writeNode(_ o: inout JSONWriter, _ key: String, _ n: TreeNode?, _ side: DiffSide) {
        guard let n else { o.null(key); return }
        o.beginObject(key)
        o.string("type", n.type.rawValue)
        o.string("mode", octalMode(n.canonicalMode))
        if n.type == .file { o.int("size", n.size); o.hexDigest("sha256", n.digest) }
        if let t = n.target { o.string("target", t.lossyString) }
        if side.hasOwners { o.int("uid", n.uid); o.int("gid", n.gid) }
        if let h = n.hardlink { o.string("hardlink", h.lossyString) }
        if let m = n.mtime { o.int("mtime", m) }
        if let l = n.layer {
            o.int("layer", l)
            if l < side.layers.count { o.string("layerDigest", side.layers[l].digest) }
        }
        o.endObject()
    }

    package static func json(_ r: DiffReport) -> [UInt8] {
        var w = JSONWriter(pretty: true)
        w.beginObject()
        w.bool("identical", r.identical)
        for (key, side) in [("a", r.a), ("b", r.b)] {
            w.beginObject(key)
            w.string("name", side.name)
            w.string("kind", side.kind)
            if side.digestKnown { w.string("digest", side.tree.rootDigest.prefixed) } else { w.null("digest") }
            if let m = side.manifest { w.string("manifestDigest", m.rootDigest.prefixed) } else { w.null("manifestDigest") }
            w.beginArray("layers")
            for l in side.layers {
                w.compact(nil) { o in
                    o.beginObject(); o.string("digest", l.digest); o.string("diffID", l.diffID); o.int("size", l.size)
                    o.string("mediaType", l.mediaType); o.string("createdBy", l.createdBy); o.endObject()
                }
            }
            w.endArray()
            w.endObject()
        }
        w.beginObject("summary")
        w.int("added", r.changes.filter { $0.kind == .added }.count)
        w.int("removed", r.changes.filter { $0.kind == .removed }.count)
        w.int("modified", Set(r.changes.filter { $0.kind != .added && $0.kind != .removed }.map(\.path)).count)
        w.int("configChanges", r.config.count)
        w.int("sharedLayers", r.sharedLayers)
        w.int("bytecode", r.bytecodeDifferences.count)
        w.int("packages", r.packages.count)
        w.int("installedFiles", r.installedFiles.count)
        w.endObject()
        w.beginArray("changes")
        for c in r.changes {
            w.compact(nil) { o in
                o.beginObject()
                o.string("class", className(c.kind))
                o.string("path", "/" + c.path.lossyString)
                writeNode(&o, "a", c.left, r.a)
                writeNode(&o, "b", c.right, r.b)
                o.endObject()
            }
        }
        w.endArray()
        w.beginArray("config")
        for c in r.config {
            w.compact(nil) { o in
                o.beginObject(); o.string("field", c.field)
                if let a = c.a { o.string("a", a) } else { o.null("a") }
                if let b = c.b { o.string("b", b) } else { o.null("b") }
                o.endObject()
            }
        }
        w.endArray()
        w.beginArray("bytecode")
        for (side, f) in r.bytecodeDifferences {
            w.compact(nil) { o in
                o.beginObject(); o.string("side", side.rawValue); o.string("class", f.kind.rawValue); o.string("severity", f.severity.rawValue)
                o.string("path", "/" + f.path.lossyString); o.string("message", f.detail); o.endObject()
            }
        }
        w.endArray()
        w.beginArray("manifestChanges")
        for c in r.manifestChanges {
            w.compact(nil) { o in o.beginObject(); o.string("class", className(c.kind)); o.string("path", c.path.lossyString); o.endObject() }
        }
        w.endArray()
        w.beginArray("contents")
        for c in r.contents {
            w.compact(nil) { o in
                o.beginObject(); o.string("path", c.path); o.string("kind", c.kind.rawValue)
                if let u = c.unified { o.string("unified", u); o.int("added", c.added); o.int("removed", c.removed) }
                if let f = c.firstDifference { o.int("firstDifference", f) }
                if let n = c.note { o.string("note", n) }
                o.endObject()
            }
        }
        w.endArray()
        w.beginArray("packages")
        for p in r.packages {
            w.compact(nil) { o in
                o.beginObject(); o.string("change", p.kind.rawValue); o.string("ecosystem", p.ecosystem.rawValue); o.string("name", p.name)
                if let a = p.a { o.string("a", a) } else { o.null("a") }
                if let b = p.b { o.string("b", b) } else { o.null("b") }
                o.string("location", p.location); o.endObject()
            }
        }
        w.endArray()
        w.beginArray("installedFiles")
        for m in r.installedFiles {
            w.compact(nil) { o in
                o.beginObject(); o.string("side", m.side); o.string("package", m.package); o.string("path", m.path)
                o.string("recordSha256", m.expected)
                if let a = m.actual { o.string("sha256", a) } else { o.null("sha256") }
                o.endObject()
            }
        }
        w.endArray()
        if let n = r.forensicsNote { w.string("note", n) }
        w.endObject()
        w.end()
        return w.bytes
    }

    /// One HTML file with inline CSS and JavaScript (no network, no external assets): a collapsible tree of
    /// changes with filters by class, sizes, digests, layer attribution, and the config and layer diffs.
    package static func html(_ r: DiffReport) -> String {
        let data = String(decoding: json(r), as: UTF8.self)
            .replacingOccurrences(of: "</", with: "<\\/")  // keep the JSON inside <script> intact
        return htmlTemplate.replacingOccurrences(of: "%%DATA%%", with: data)
            .replacingOccurrences(of: "%%TITLE%%", with: VerifyReportFormat.xml("imprint diff: \(r.a.name) → \(r.b.name)"))
    }

    package static let htmlTemplate = #"""
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%%TITLE%%</title>
<style>
:root{--fg:#1d232a;--muted:#66707a;--bg:#fff;--line:#e3e7eb;--add:#1a7f37;--rem:#cf222e;--mod:#9a6700;--meta:#6639ba}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:var(--fg);background:var(--bg);margin:0}
header{padding:18px 24px;border-bottom:1px solid var(--line);background:#f6f8fa}h1{font-size:18px;margin:0 0 6px}
.verdict{font-weight:600}.same{color:var(--add)}.diff{color:var(--rem)}main{padding:16px 24px;max-width:1400px}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:8px 0}.side{border:1px solid var(--line);border-radius:6px;padding:8px 12px}
.side b{display:block}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.filters{margin:14px 0;display:flex;flex-wrap:wrap;gap:8px;align-items:center}.filters label{border:1px solid var(--line);border-radius:14px;padding:2px 10px;cursor:pointer;user-select:none}
.filters input[type=search]{padding:4px 8px;border:1px solid var(--line);border-radius:6px;min-width:220px}
details{margin-left:16px}summary{cursor:pointer;padding:1px 0}.dir>summary{font-weight:600}
.row{display:grid;grid-template-columns:minmax(240px,2fr) 110px 1fr 1fr;gap:8px;padding:2px 0 2px 16px;border-bottom:1px dashed var(--line)}
.cls{font-size:11px;font-weight:600;text-transform:uppercase;letter-spacing:.03em}.added{color:var(--add)}.removed{color:var(--rem)}.modified{color:var(--mod)}
.mode,.type,.owner,.symlink-target,.hardlink,.mtime,.xattrs,.device{color:var(--meta)}.count{color:var(--muted);font-weight:400}
table{border-collapse:collapse;width:100%;margin:8px 0 18px}th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}th{background:#f6f8fa}
h2{font-size:16px;margin:22px 0 6px}.empty{color:var(--muted)}
.udiff{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:8px;overflow-x:auto;white-space:pre}.udiff span{display:block}
.udiff .ins{background:#e6ffec;color:var(--add)}.udiff .del{background:#ffebe9;color:var(--rem)}.udiff .hunk{color:#0969da}.udiff .hdr{font-weight:600}
</style></head><body>
<header><h1>imprint diff</h1><div id="verdict" class="verdict"></div><div class="sides" id="sides"></div></header>
<main>
<h2>Files</h2>
<div class="filters" id="filters"><input type="search" id="q" placeholder="filter paths…" aria-label="filter paths"></div>
<div id="tree"></div>
<h2>Content</h2><div id="contents"></div>
<h2>Packages</h2><div id="packages"></div>
<h2>Bytecode</h2><div id="bytecode"></div>
<h2>Image config</h2><div id="config"></div>
<h2>Layers</h2><div id="layers"></div>
</main>
<script id="report" type="application/json">%%DATA%%</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("report").textContent);
const el = (t, a = {}, ...kids) => { const e = document.createElement(t); for (const [k, v] of Object.entries(a)) { if (k === "class") e.className = v; else e.setAttribute(k, v); } for (const c of kids) e.append(c); return e; };
const short = d => d ? d.replace("sha256:", "").slice(0, 12) : "";
const size = n => n == null ? "" : n < 1024 ? n + " B" : n < 1048576 ? (n / 1024).toFixed(1) + " KiB" : (n / 1048576).toFixed(1) + " MiB";
const S = R.summary;
const v = document.getElementById("verdict");
v.textContent = R.identical ? "IDENTICAL" : `DIFFERENT: ${S.added} added, ${S.removed} removed, ${S.modified} modified, ${S.configChanges} config changes, ${S.bytecode} bytecode findings`;
v.classList.add(R.identical ? "same" : "diff");
for (const [k, s] of [["A", R.a], ["B", R.b]]) {
  document.getElementById("sides").append(el("div", {class: "side"}, el("b", {}, `${k}: ${s.name}`),
    el("span", {class: "mono"}, `${s.kind} · tree ${s.digest ? short(s.digest) : "not computed"} · ${s.layers.length} layers · imprint manifest ${s.manifestDigest ? short(s.manifestDigest) : "none"}`)));
}
const classes = [...new Set(R.changes.map(c => c.class))];
const active = new Set(classes);
const filters = document.getElementById("filters");
for (const c of classes) {
  const box = el("input", {type: "checkbox", checked: "", "data-class": c});
  box.addEventListener("change", () => { box.checked ? active.add(c) : active.delete(c); render(); });
  filters.append(el("label", {class: c}, box, ` ${c} (${R.changes.filter(x => x.class === c).length})`));
}
document.getElementById("q").addEventListener("input", render);
const side = n => !n ? "—" : n.type === "file" ? `${size(n.size)} ${short(n.sha256)} ${n.mode}` : n.type === "symlink" ? `→ ${n.target}` : `${n.type} ${n.mode}`;
const layer = (n, s) => n && n.layer != null ? ` [layer ${n.layer}${n.layerDigest ? " " + short(n.layerDigest) : ""}]` : "";
function render() {
  const q = document.getElementById("q").value.toLowerCase();
  const root = {dirs: new Map(), rows: []};
  for (const c of R.changes) {
    if (!active.has(c.class) || (q && !c.path.toLowerCase().includes(q))) continue;
    const parts = c.path.split("/").filter(Boolean);
    let node = root;
    for (const p of parts.slice(0, -1)) { if (!node.dirs.has(p)) node.dirs.set(p, {dirs: new Map(), rows: []}); node = node.dirs.get(p); }
    node.rows.push(c);
  }
  const count = n => n.rows.length + [...n.dirs.values()].reduce((a, d) => a + count(d), 0);
  const build = (n, name, depth) => {
    const d = el("details", {class: "dir"});
    if (depth < 3) d.open = true;
    d.append(el("summary", {}, name + " ", el("span", {class: "count"}, `(${count(n)})`)));
    for (const [k, sub] of [...n.dirs.entries()].sort()) d.append(build(sub, k + "/", depth + 1));
    for (const c of n.rows) {
      d.append(el("div", {class: "row", "data-path": c.path},
        el("span", {class: "mono"}, c.path.split("/").pop() || c.path),
        el("span", {class: "cls " + c.class}, c.class),
        el("span", {class: "mono"}, "A: " + side(c.a) + layer(c.a)),
        el("span", {class: "mono"}, "B: " + side(c.b) + layer(c.b))));
    }
    return d;
  };
  const t = document.getElementById("tree");
  t.replaceChildren(count(root) ? build(root, "/", 0) : el("p", {class: "empty"}, "No file differences."));
}
render();
const table = (head, rows) => rows.length ? el("table", {}, el("tr", {}, ...head.map(h => el("th", {}, h))), ...rows.map(r => el("tr", {}, ...r.map(c => el("td", {class: "mono"}, c ?? "—"))))) : el("p", {class: "empty"}, "No differences.");
document.getElementById("config").append(table(["field", "A", "B"], R.config.map(c => [c.field, c.a, c.b])));
const contents = document.getElementById("contents");
if (!R.contents.length) contents.append(el("p", {class: "empty"}, "No content compared."));
for (const c of R.contents) {
  const d = el("details", {class: "content", "data-path": c.path});
  d.append(el("summary", {class: "mono"}, `${c.path} — ${c.kind === "text" && c.unified ? `+${c.added} −${c.removed}` : c.kind}${c.note ? " (" + c.note + ")" : ""}`));
  if (c.unified) {
    const pre = el("pre", {class: "udiff mono"});
    for (const line of c.unified.split("\n")) {
      const cls = line.startsWith("+++") || line.startsWith("---") ? "hdr" : line.startsWith("+") ? "ins" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "ctx";
      pre.append(el("span", {class: cls}, line || " "));
    }
    d.append(pre);
  } else if (c.firstDifference != null) {
    d.append(el("p", {class: "mono"}, `binary: first difference at byte ${c.firstDifference}`));
  }
  contents.append(d);
}
document.getElementById("packages").append(table(["change", "ecosystem", "package", "A", "B", "where"], R.packages.map(p => [p.change, p.ecosystem, p.name, p.a, p.b, p.location])));
if (R.installedFiles.length) document.getElementById("packages").append(table(["side", "package", "installed file not matching RECORD", "sha256", "RECORD"], R.installedFiles.map(m => [m.side.toUpperCase(), m.package, m.path, m.sha256 ? short(m.sha256) : "missing", short(m.recordSha256)])));
document.getElementById("bytecode").append(table(["side", "class", "path", "finding"], R.bytecode.map(b => [b.side.toUpperCase(), b.class, b.path, b.message])));
const n = Math.max(R.a.layers.length, R.b.layers.length);
const lrows = [];
for (let i = 0; i < n; i++) {
  const a = R.a.layers[i], b = R.b.layers[i];
  lrows.push([String(i), i < S.sharedLayers ? "shared" : "differs", a ? `${short(a.diffID || a.digest)} ${size(a.size)}` : null, b ? `${short(b.diffID || b.digest)} ${size(b.size)}` : null]);
}
document.getElementById("layers").append(table(["#", "", "A", "B"], lrows));
</script></body></html>
"""#
}
