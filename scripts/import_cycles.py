"""Print the import cycles inside cnn_core (modules and packages, TYPE_CHECKING imports included); exit 1 if any.

CI runs it beside import-linter, whose layer contract cannot see a cycle between two modules of one package.
"""

from __future__ import annotations

import sys

import grimp


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    graph = grimp.build_graph("cnn_core")
    modules = {m for m in graph.modules if m.startswith("cnn_core.")}
    edges = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    # packages: cnn_core.x.y -> cnn_core.x (top-level modules stand for themselves)
    top = {m: ".".join(m.split(".")[:2]) for m in modules}
    pkg_edges: dict[str, set[str]] = {}
    for m, targets in edges.items():
        pkg_edges.setdefault(top[m], set()).update(top[t] for t in targets if top[t] != top[m])
    problems = [("modules", c) for c in cycles(edges)] + [("packages", c) for c in cycles(pkg_edges)]
    for kind, cycle in problems:
        print(f"import cycle among {kind}: {' <-> '.join(cycle)}")
    print(f"{len(modules)} modules in {len(pkg_edges)} top-level parts: {len(problems)} import cycle(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
