"""No import circles among ovsnet's modules, read from the source with `ast`.

An edge A -> B is an import of B written in A: `import ovsnet.x.y` and
`from ovsnet.x import y` name the module ovsnet.x.y, `from ovsnet.x import Name`
names the package ovsnet.x. The first test counts only module-level imports
(those that run when A is imported; `if TYPE_CHECKING:` blocks do not run);
the second also counts imports inside functions, for the packages whose lazy
imports used to hide a circle (lab/build.py <-> lab/docker.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Circle-free even through imports inside functions. backends/ is not listed:
# netlink.py <-> nlbatch.py import each other lazily (issue 16, item 2).
STRICT_PACKAGES = ("ovsnet.lab", "ovsnet.verify", "ovsnet.render", "ovsnet.topology", "ovsnet.backends", "ovsnet.kinds", "ovsnet.plan",
                   "ovsnet.live", "ovsnet.importer")


def modules(root: Path, package: str = "ovsnet") -> dict[str, Path]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, everywhere: bool) -> list[ast.Import | ast.ImportFrom]:
    if everywhere:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            todo += node.body + node.orelse
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
        elif isinstance(node, ast.With):
            todo += node.body
    return found


def import_graph(mods: dict[str, Path], everywhere: bool = False) -> dict[str, set[str]]:
    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in _import_nodes(ast.parse(path.read_text(), str(path)), everywhere):
            if isinstance(node, ast.Import):
                targets = [known(a.name) for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else known(base) for a in node.names]
            edges[mod] |= {t for t in targets if t is not None and t != mod}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_circle_among_module_level_imports():
    assert cycles(import_graph(modules(ROOT))) == []


def test_no_import_circle_even_through_lazy_imports_in_the_strict_packages():
    found = cycles(import_graph(modules(ROOT), everywhere=True))
    strict = [c for c in found if any(m == p or m.startswith(p + ".") for m in c for p in STRICT_PACKAGES)]
    assert strict == []


def test_the_checker_finds_a_circle(tmp_path):
    """The checks above would pass on a checker that finds nothing: this one shows it finds circles."""
    pkg = tmp_path / "ovsnet"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from ovsnet.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ovsnet.sub.c import NAME\n")
    (pkg / "sub" / "c.py").write_text("from .. import a\nNAME = 1\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ovsnet import e\n")
    (pkg / "e.py").write_text("import ovsnet.d\n\ndef f():\n    from ovsnet import a\n")
    mods = modules(tmp_path)
    assert cycles(import_graph(mods)) == [["ovsnet.a", "ovsnet.sub.b", "ovsnet.sub.c"]]
    assert import_graph(mods)["ovsnet.d"] == set()  # a TYPE_CHECKING import never runs
    assert import_graph(mods, everywhere=True)["ovsnet.e"] == {"ovsnet.d", "ovsnet.a"}
    assert cycles(import_graph(mods, everywhere=True)) == [
        ["ovsnet.a", "ovsnet.sub.b", "ovsnet.sub.c"],
        ["ovsnet.d", "ovsnet.e"],
    ]
