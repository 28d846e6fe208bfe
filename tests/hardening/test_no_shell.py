"""No user-supplied string ever reaches a shell.

Statically: the product code (ovsnet/) never asks for a shell - no
`shell=True`, `os.system`, `os.popen`, `os.exec*`/`os.spawn*`,
`subprocess.getoutput`, `asyncio.create_subprocess_shell`, `pty.spawn` - and
every subprocess call passes an argument list (resolved through the AST:
list literals, concatenations and slices of lists, parameters annotated as
lists, functions returning lists), whose program is never a shell.

At run time: apply/down spawn no process at all (netlink and OVSDB are spoken
in-process), and names full of shell metacharacters - which validation
accepts as interface names, see test_bad_input.py - travel to the kernel and
OVSDB verbatim: a shell would have created marker files; none appears.
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest
from hardening_kit import (
    OVSNET,
    ROOT,
    assert_nothing_of_ours,
    assert_same,
    host_snapshot,
)

PKG = ROOT / "ovsnet"
SOURCES = sorted(PKG.rglob("*.py"))
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output"}
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash", "busybox"}
FORBIDDEN_ATTRS = {
    ("os", "system"), ("os", "popen"), ("os", "execl"), ("os", "execlp"), ("os", "execle"), ("os", "execlpe"),
    ("os", "execv"), ("os", "execvp"), ("os", "execve"), ("os", "execvpe"), ("os", "spawnl"), ("os", "spawnlp"),
    ("os", "spawnv"), ("os", "spawnvp"), ("os", "posix_spawn"), ("os", "posix_spawnp"),
    ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"), ("asyncio", "create_subprocess_shell"),
    ("pty", "spawn"),
}


def _trees():
    return [(p, ast.parse(p.read_text(), str(p))) for p in SOURCES]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def _functions(trees) -> dict[str, list[ast.FunctionDef]]:
    out: dict[str, list] = {}
    for _, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, []).append(node)
    return out


def _enclosing(tree: ast.AST, target: ast.AST):
    best = None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.lineno <= target.lineno <= (node.end_lineno or node.lineno):
                if best is None or node.lineno >= best.lineno:
                    best = node
    return best


def _is_list(node: ast.AST, func, funcs, depth: int = 0, resolving: frozenset = frozenset()) -> bool:
    """True when `node` is certainly a list/tuple of arguments (never one string).

    A name assigned from itself (argv = argv[:4] + [...]) is a list when its
    other assignments are: `resolving` holds the names being resolved.
    """
    if depth > 8:
        return False
    if isinstance(node, (ast.List, ast.Tuple, ast.ListComp)):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_list(node.left, func, funcs, depth + 1, resolving) and _is_list(node.right, func, funcs, depth + 1, resolving)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        return _is_list(node.value, func, funcs, depth + 1, resolving)
    if isinstance(node, ast.Call):
        name = _dotted(node.func).split(".")[-1]
        if name in ("list", "tuple"):
            return True
        defs = funcs.get(name, [])
        return bool(defs) and all(d.returns is not None and ast.unparse(d.returns).lower().startswith(("list", "tuple", "sequence")) for d in defs)
    if isinstance(node, ast.Name) and func is not None:
        if node.id in resolving:
            return True
        for a in func.args.args + func.args.kwonlyargs:
            if a.arg == node.id:
                return a.annotation is not None and ast.unparse(a.annotation).lower().startswith(("list", "tuple", "sequence"))
        values = []
        for n in ast.walk(func):
            if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in n.targets):
                values.append(n.value)
            elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == node.id and n.value is not None:
                values.append(n.value)
        return bool(values) and all(_is_list(v, func, funcs, depth + 1, resolving | {node.id}) for v in values)
    return False


def _program(node: ast.AST) -> str | None:
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts and isinstance(node.elts[0], ast.Constant):
        return str(node.elts[0].value)
    if isinstance(node, ast.BinOp):
        return _program(node.left)
    return None


def test_no_shell_anywhere_in_the_product_code():
    trees = _trees()
    assert len(trees) > 30
    problems = []
    imported_from_subprocess = set()
    for path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("subprocess", "os", "pty", "commands"):
                for alias in node.names:
                    if (node.module, alias.name) in FORBIDDEN_ATTRS or node.module == "commands":
                        problems.append(f"{path}:{node.lineno}: imports {node.module}.{alias.name}")
                    if node.module == "subprocess":
                        imported_from_subprocess.add(alias.asname or alias.name)
            if isinstance(node, ast.Import) and any(a.name == "commands" for a in node.names):
                problems.append(f"{path}:{node.lineno}: imports commands")
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            parts = tuple(name.split(".")[-2:])
            if parts in FORBIDDEN_ATTRS:
                problems.append(f"{path}:{node.lineno}: calls {name}")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    problems.append(f"{path}:{node.lineno}: shell={ast.unparse(kw.value)}")
                if kw.arg == "executable":
                    problems.append(f"{path}:{node.lineno}: executable= overrides the program")
    # The plain text too: a string built for a shell would show here.
    for path in SOURCES:
        text = path.read_text()
        for needle in ("shell=True", "os.system(", "os.popen(", "/bin/sh", "bash -c", "sh -c"):
            if needle in text:
                problems.append(f"{path}: contains {needle!r}")
    assert problems == [], "\n".join(problems)


def scan_calls(trees) -> tuple[list[str], list[str]]:
    funcs = _functions(trees)
    sites = []
    problems = []
    for path, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _dotted(node.func)
            if not (name.startswith("subprocess.") and name.split(".")[-1] in SUBPROCESS_CALLS):
                continue
            rel = f"{path.relative_to(ROOT) if path.is_absolute() else path}:{node.lineno}"
            sites.append(rel)
            arg = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "args"), None)
            func = _enclosing(tree, node)
            if arg is None or not _is_list(arg, func, funcs):
                problems.append(f"{rel}: {name}({ast.unparse(arg) if arg is not None else ''}) - not certainly an argument list")
                continue
            prog = _program(arg)
            if prog in SHELLS:
                problems.append(f"{rel}: runs a shell ({prog})")
    return sites, problems


def test_every_subprocess_call_passes_an_argument_list():
    sites, problems = scan_calls(_trees())
    assert problems == [], "\n".join(problems)
    assert len(sites) >= 6, sites  # the lab, lab exec, probes, graphviz: if this drops, re-check the scan
    print(f"\nsubprocess call sites checked: {len(sites)}: {', '.join(sites)}")


def test_the_scanner_catches_what_it_is_for():
    """The scan above would see a shell: a string command, a shell program, an f-string."""
    bad = {
        "a.py": "import subprocess\ndef f(x):\n    subprocess.run('ip link del ' + x)\n",
        "b.py": "import subprocess\ndef f(x):\n    subprocess.run(f'ip link del {x}')\n",
        "c.py": "import subprocess\ndef f(x):\n    subprocess.Popen(['sh', '-c', x])\n",
        "d.py": "import subprocess\ndef f(x):\n    cmd = 'ip ' + x\n    subprocess.check_output(cmd)\n",
        "e.py": "import subprocess\ndef f(x: str):\n    subprocess.call(x)\n",
    }
    trees = [(Path(name), ast.parse(src)) for name, src in bad.items()]
    _, problems = scan_calls(trees)
    assert len(problems) == len(bad), problems
    good = "import subprocess\ndef f(x: list[str]):\n    argv = ['ip', 'netns', 'exec', 'n', *x]\n    argv = argv[:4] + ['env'] + argv[4:]\n    subprocess.run(argv)\n"
    sites, problems = scan_calls([(Path("g.py"), ast.parse(good))])
    assert sites == ["g.py:5"] and problems == [], problems


@pytest.mark.root
def test_hostile_strings_never_reach_a_shell(host, tmp_path):
    """Names like `br;id>pw1` are refused before anything runs; hostile text where
    text is allowed (a description) goes through up/status/down and no shell runs it."""
    h = host
    before = host_snapshot(h)
    names = ["br;id>pw1", "$(id>pw2)", "`id>pw3`", "b|tee>pw4"]
    hostile_names = h.text()
    for n in names:
        hostile_names += f'[[hosts.node1.docker]]\nbridge = "{n}"\nvlan = "db"\npatch_ovs = "o{len(n)}"\npatch_bridge = "l{len(n)}"\n'
    hostile_text = h.text().replace('name = "h', 'description = "$(id>pw5) `id>pw6`; id>pw7"\nname = "h', 1)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    f = tmp_path / "hostile-names.toml"
    f.write_text(hostile_names)
    v = _cli_in(workdir, "validate", str(f))
    assert v.returncode == 2 and all(repr(c) in v.stderr for c in ";$`|"), v.stderr
    assert _cli_in(workdir, "up", str(f), *h.where).returncode == 2
    g = tmp_path / "hostile-text.toml"
    g.write_text(hostile_text)
    assert _cli_in(workdir, "up", str(g), *h.where).returncode == 0
    assert _cli_in(workdir, "status", str(g), *h.where).returncode == 0
    assert _cli_in(workdir, "down", str(g), *h.where).returncode == 0
    markers = ["pw1", "pw2", "pw3", "pw4", "pw5", "pw6", "pw7"]
    made = [m for m in markers if (workdir / m).exists() or (ROOT / m).exists() or Path("/" + m).exists()]
    assert made == [], made
    assert_same(before, host_snapshot(h), "hostile strings up/down")
    assert_nothing_of_ours(h)


def _cli_in(cwd: Path, *args: str):
    env = {k: v for k, v in os.environ.items() if k not in ("OVSNET_TEST_CRASH_AFTER", "OVSNET_STATE_DIR")}
    out = subprocess.run([OVSNET, *args], capture_output=True, text=True, timeout=180, cwd=cwd, env=env)
    assert "Traceback" not in out.stderr, out.stderr
    return out
