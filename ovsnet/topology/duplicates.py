"""TOML syntax errors as findings, and the messages for a key or table defined twice.

tomllib says only "Cannot declare ('hosts', 'node1') twice" or "Cannot
overwrite a value", at the second place. To name the key and both lines, the
text up to that line is scanned (positions.definitions) for what each
statement defines, and the two statements that clash are found.
"""

from __future__ import annotations

import re
import tomllib

from ovsnet.errors import Finding
from ovsnet.topology.positions import Definition, definitions

_DUPLICATE_MESSAGES = ("Cannot declare", "Cannot overwrite", "Cannot mutate", "Cannot redefine", "Duplicate inline table key")


def syntax_finding(exc: tomllib.TOMLDecodeError, text: str = "") -> Finding:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line = col = None
    if match:
        line, col = int(match.group(1)), int(match.group(2))
        message = message[: match.start()].strip()
    if line is not None and message.startswith(_DUPLICATE_MESSAGES):
        try:
            found = duplicate_finding(text, line, col)
        except Exception:  # best effort: a slip of the scanner must not hide the error itself
            found = None
        if found is not None:
            return found
        return Finding("", f"TOML syntax: {message}", "a key or table is defined twice; find its earlier definition and keep one", line=line, column=col)
    return Finding("", f"TOML syntax: {message}", "fix the TOML syntax at that place", line=line, column=col)



def _clash(old: Definition, new: Definition) -> bool:
    """Whether `new`, a later statement, defines again something `old` defined."""
    o, w = old.path, new.path
    if old.group == new.group:
        return o == w  # a key twice in one inline table
    if old.kind != "key" and new.kind != "key":
        if old.kind != new.kind:  # [a] and [[a]]: one name, two kinds of table
            return _plain(o) == _plain(w)
        return o == w
    if new.kind != "key":  # a header over a value, or over a table a dotted key made
        return len(w) > old.base and o[: len(w)] == w
    if old.kind != "key":  # a key over a declared table, or a dotted key reaching into one
        return (len(o) > new.base and w[: len(o)] == o) or (len(o) > len(w) and o[: len(w)] == w)
    return o[: len(w)] == w or w[: len(o)] == o


def _plain(path: tuple[str, ...]) -> tuple[str, ...]:
    """The path without the element index of its last segment: uplinks[1] -> uplinks."""
    if path and path[-1].endswith("]"):
        return path[:-1] + (re.sub(r"\[\d+\]$", "", path[-1]),)
    return path


def _shown(path: tuple[str, ...], limit: int = 120) -> str:
    text = ".".join(path)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def duplicate_finding(text: str, line: int, column: int | None) -> Finding | None:
    # Array items are positions for findings, not definitions that can clash.
    defs = [d for d in definitions(text, line) if d.kind != "item"]
    first_new = next((i for i, d in enumerate(defs) if d.line == line), None)
    if first_new is None:
        return None
    pair = None
    # An exact repeat is the usual mistake, so it wins over a table/value overlap.
    for exact in (True, False):
        for j in range(first_new, len(defs)):
            new = defs[j]
            old = next((o for o in reversed(defs[:j]) if (o.path == new.path) == exact and _clash(o, new)), None)
            if old is not None:
                pair = (old, new)
                break
        if pair:
            break
    if pair is None:
        name = _shown(defs[first_new].path)
        return Finding(name, f"TOML syntax: {name} is defined twice (the second time at line {line})",
                       f"find the earlier definition of {name} and keep one", line=line, column=column)
    old, new = pair
    lines = f"both at line {new.line}" if old.line == new.line else f"lines {old.line} and {new.line}"
    name = _shown(new.path)
    if old.kind != "key" and new.kind != "key" and old.kind != new.kind:
        name = _shown(_plain(new.path))
        return Finding(name, f"TOML syntax: {name} is declared both as a table [{name}] and as an array of tables [[{name}]] ({lines})",
                       f"write every [{name}] as [[{name}]] for a list of tables, or use [{name}] once", line=line, column=column)
    if old.path == new.path and old.kind != "key" and new.kind != "key":
        return Finding(name, f"TOML syntax: table [{name}] is declared twice ({lines})",
                       f"merge the two [{name}] tables into one, keeping each key once", line=line, column=column)
    if old.path == new.path and old.kind == new.kind == "key":
        fix = f"keep {new.path[-1]} once in that inline table" if old.group == new.group else "delete one of the two lines"
        return Finding(name, f"TOML syntax: key {name} is set twice ({lines})", fix, line=line, column=column)
    common = old.path if len(old.path) <= len(new.path) else new.path
    name = _shown(common)

    def as_what(d: Definition) -> str:
        if d.kind != "key":
            return f"the table [{_shown(d.path)}] at line {d.line}"
        if d.path == common:
            return f"a value ({_shown(d.path[d.base:])} = ...) at line {d.line}"
        return f"a table, by the dotted key {_shown(d.path[d.base:])} at line {d.line}"

    return Finding(name, f"TOML syntax: {name} is defined twice: as {as_what(old)}, and as {as_what(new)}",
                   "a name is either a value or one table: merge the two into one, or rename one", line=line, column=column)
