#!/usr/bin/env python3
"""Prints imprint's layer graph: which folder of which library target names a type, protocol or function that
another folder declares at file scope, and checks that the graph has no cycle and no edge from a lower layer to a
higher one (the targets' order in Package.swift; the compiler enforces it between targets, this check within them).

  ci/layers.py            the graph, one line per edge, then OK or the cycles found (exit 1)
  ci/layers.py --dot      the graph in Graphviz form

A heuristic over the source text (top-level declarations only, comments and string literals removed): it may miss
an edge, never invent one from a nested type's name.
"""
import collections, os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources")
# The library targets, bottom to top (Package.swift).
LAYERS = ["ImprintBase", "ImprintFormats", "ImprintModel", "ImprintSources", "ImprintCompare", "ImprintCore", "ImprintFuzz"]
DECL = re.compile(r"^(?:@[\w.]+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|final|indirect)\s+)*"
                  r"(?:struct|class|enum|protocol|typealias|actor|func|let|var)\s+([A-Za-z_]\w*)", re.M)
EXT = re.compile(r"^(?:(?:public|package|internal)\s+)?extension\s+([A-Za-z_][\w.]*)", re.M)

def strip(text):
    text = re.sub(r'"""[\s\S]*?"""', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)
    text = re.sub(r"/\*[\s\S]*?\*/", "", text)
    return re.sub(r"//[^\n]*", "", text)

def nodes():
    out = collections.defaultdict(list)
    for target in LAYERS:
        base = os.path.join(ROOT, target)
        for dp, _, fs in os.walk(base):
            for f in fs:
                if f.endswith(".swift"):
                    rel = os.path.relpath(dp, base)
                    node = target if rel == "." else target + "/" + rel.split(os.sep)[0]
                    out[node].append(os.path.join(dp, f))
    return out

def graph():
    files = nodes()
    owner, texts = {}, {}
    for node, paths in files.items():
        for p in paths:
            t = strip(open(p, encoding="utf-8").read())
            texts[p] = t
            for m in DECL.finditer(t):
                owner.setdefault(m.group(1), node)
    edges = collections.defaultdict(dict)
    ident = re.compile(r"\b([A-Za-z_]\w*)\b")
    for node, paths in files.items():
        for p in paths:
            # A member reached through `.name` is not a reference to a top-level declaration of that name.
            t = re.sub(r"\.\s*[A-Za-z_]\w*", ".", texts[p])
            for name in set(ident.findall(t)):
                o = owner.get(name)
                if o and o != node:
                    edges[node].setdefault(o, set()).add(name)
    return files, edges

def cycles(nodes_, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(nodes_):
        if v not in index: visit(v)
    return out

def main():
    files, edges = graph()
    layer = lambda n: LAYERS.index(n.split("/")[0])
    if "--dot" in sys.argv:
        print("digraph imprint {")
        for a in sorted(edges):
            for b in sorted(edges[a]): print(f'  "{a}" -> "{b}";')
        print("}")
        return 0
    upward = []
    for a in sorted(edges):
        for b in sorted(edges[a]):
            names = sorted(edges[a][b])
            print(f"{a} -> {b}  ({', '.join(names[:5])}{', …' if len(names) > 5 else ''})")
            if layer(b) > layer(a): upward.append((a, b, names))
    found = cycles(files.keys(), edges)
    print(f"{len(files)} folders, {sum(len(v) for v in edges.values())} edges")
    for a, b, names in upward: print(f"UPWARD: {a} -> {b} ({', '.join(names)})")
    for c in found: print("CYCLE: " + " <-> ".join(c))
    if upward or found: return 1
    print("OK: no cycle, no edge to a higher layer")
    return 0

if __name__ == "__main__":
    sys.exit(main())
