"""Where each key path of a TOML text is: the one position scanner.

tomllib keeps no positions, so the text is scanned again for what each
statement defines: table headers ``[a.b]``, arrays of tables ``[[a]]`` with
the index of each element, dotted and quoted keys, inline tables, the items of
arrays (inline or spread over lines, ``cables = [{ ends = [...] }, ...]``) and
multi-line strings. The scan knows just enough TOML for that and only ever
reads text that tomllib has parsed without error (up to the failing line, for
the duplicate-key messages of duplicates.py).

A finding names a key path (``hosts.node1.docker[1].vlan``, ``endpoints[3]``,
``hosts.node1.uplinks[0].vlans[2]``); `Positions.find` turns it into the line
and column where that key, item or table header starts. A path the file does
not spell out (a missing required key, a default) falls back to the table it
belongs in; a table made only by deeper headers or dotted keys to the first
place that makes it. Building the index costs one pass over the text, so it
is built only when a finding asks, once per text.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import weakref
from dataclasses import dataclass, replace
from typing import Iterable, NamedTuple

from ovsnet.errors import Finding

_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_KEY_RE = re.compile(rf"[ \t]*({_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*)[ \t]*")
_PART_RE = re.compile(_KEY_PART)
_BLANK_RE = re.compile(r"[ \t\r]*")
_VALUE_TOKEN_RE = re.compile(r'"""|' + r"'''" + r"""|"|'|[\[\]{},#\n]""")
_BASIC_REST_RE = re.compile(r'(?:[^"\\\n]|\\.)*"')
_BARE_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_LAST_QUOTED_RE = re.compile(r'(?:^|\.)("(?:[^"\\]|\\.)*")$')
# Deeper than any topology goes (hosts.h.uplinks[0].vlans[2] is 4): a path
# beyond this many segments, or a value nested deeper, is not recorded, so a
# hostile file of 20,000-segment headers costs one linear pass, not a square.
MAX_DEPTH = 32


class Definition(NamedTuple):
    """What one header, key or array item defines, as a key path.

    A NamedTuple, not a frozen dataclass: a large file has 100,000 of them and
    a frozen dataclass costs four times as much to make (0.7 s against 0.17 s).
    """

    line: int
    column: int
    kind: str  # "table", "array" (a [[...]] element), "key" or "item" (an element of an array value)
    path: tuple[str, ...]  # segments as messages show them: "uplinks[0]", '"odd key"'
    base: int  # how many leading segments name the table a key sits in
    group: int  # one per statement; an inline table's keys and items share their key's


@functools.lru_cache(maxsize=4096)  # the same few keys repeat thousands of times in a big file
def key_parts(raw: str, limit: int = MAX_DEPTH) -> tuple[str, ...]:
    """The segments of a written key (`a."b c".d`), each bare or in double quotes; at most limit + 1 of them."""
    if _BARE_RE.match(raw):
        return (raw,)
    parts: list[str] = []
    for m in _PART_RE.finditer(raw):
        if len(parts) > limit:
            break
        part = m.group(0)
        if part.startswith('"'):
            try:
                part = json.loads(part)
            except ValueError:  # a TOML-only escape (\e, \U...): the raw text names it well enough
                part = part[1:-1]
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part if _BARE_RE.match(part) else json.dumps(part))
    return tuple(parts)


def _resolve(parts: tuple[str, ...], arrays: dict[tuple[str, ...], int]) -> tuple[str, ...]:
    """A header's path, with the index of the current element of each array of tables in it."""
    out: list[str] = []
    for part in parts:
        out.append(part)
        index = arrays.get(tuple(out))
        if index is not None:
            out[-1] = f"{part}[{index}]"
    return tuple(out)


def definitions(text: str, stop_line: int | None = None) -> list[Definition]:
    """What the statements starting on lines 1..stop_line (all, by default) define, in order."""
    stop = sys.maxsize if stop_line is None else stop_line
    defs: list[Definition] = []
    arrays: dict[tuple[str, ...], int] = {}  # an array of tables -> index of its current element
    table: tuple[str, ...] = ()
    i, line, line_start, group, n = 0, 1, 0, 0, len(text)
    while i < n and line <= stop:
        i = _BLANK_RE.match(text, i).end()  # type: ignore[union-attr]
        if i >= n:
            break
        c = text[i]
        if c == "\n":
            line, i = line + 1, i + 1
            line_start = i
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        group += 1
        if c == "[":
            array = text.startswith("[[", i)
            k = _KEY_RE.match(text, i + (2 if array else 1))
            if k is None:
                break
            parts = key_parts(k.group(1))
            if len(parts) > MAX_DEPTH:
                # Its first segments still locate a finding about them (an
                # unknown top-level key, say); what follows is not scanned.
                defs.append(Definition(line, i - line_start + 1, "table", parts[:MAX_DEPTH], MAX_DEPTH, group))
                break
            if array:
                parent = _resolve(parts[:-1], arrays)
                key = parent + (parts[-1],)
                arrays[key] = arrays.get(key, -1) + 1
                table = parent + (f"{parts[-1]}[{arrays[key]}]",)
            else:
                table = _resolve(parts, arrays)
            defs.append(Definition(line, i - line_start + 1, "array" if array else "table", table, len(table), group))
            end = text.find("\n", k.end())  # the rest of a header line is a comment at most
            i = n if end < 0 else end
            continue
        k = _KEY_RE.match(text, i)
        if k is None or not text.startswith("=", k.end()):
            break
        path = table + key_parts(k.group(1))
        if len(path) > MAX_DEPTH:
            defs.append(Definition(line, k.start(1) - line_start + 1, "key", path[:MAX_DEPTH], len(table), group))
            break
        defs.append(Definition(line, k.start(1) - line_start + 1, "key", path, len(table), group))
        i, line, line_start = _skip_value(text, k.end() + 1, line, line_start, path, defs, group)
    return defs


@dataclass
class _Open:
    """An array or inline table the value scan is inside of."""

    array: bool
    path: tuple[str, ...]
    index: int = 0  # arrays: the element being read

    def element(self) -> tuple[str, ...]:
        if not self.path:
            return self.path
        return self.path[:-1] + (f"{self.path[-1]}[{self.index}]",)


def _skip_value(text: str, i: int, line: int, line_start: int, path: tuple[str, ...],
                defs: list[Definition], group: int) -> tuple[int, int, int]:
    """Past one value and its line; the keys of its inline tables and the items of its arrays are recorded too."""
    n = len(text)
    stack: list[_Open] = []  # the brackets open at this point
    last_key = path
    expect_key = expect_item = False
    while i < n:
        if expect_item:
            # An array's next element starts at the next character that is not
            # blank, a line break or a comment (arrays may spread over lines).
            expect_item = False
            i, line, line_start = _skip_blank_lines(text, i, line, line_start)
            if i < n and text[i] != "]" and len(stack) <= MAX_DEPTH:
                where = stack[-1].element()
                defs.append(Definition(line, i - line_start + 1, "item", where, len(where), group))
        if expect_key:
            expect_key = False
            k = _KEY_RE.match(text, i)
            if k is not None and text.startswith("=", k.end()) and stack and not stack[-1].array:
                last_key = stack[-1].path + key_parts(k.group(1))
                if len(last_key) <= MAX_DEPTH and len(stack) <= MAX_DEPTH:
                    defs.append(Definition(line, k.start(1) - line_start + 1, "key", last_key, len(stack[-1].path), group))
                i = k.end() + 1
                continue
        t = _VALUE_TOKEN_RE.search(text, i)
        if t is None:
            return n, line, line_start
        tok, i = t.group(), t.end()
        if tok == "\n":
            line += 1
            line_start = i
            if not stack:
                return i, line, line_start
        elif len(tok) == 3:  # a multi-line string
            end = text.find(tok, i)
            while tok == '"""' and end > 0 and _escaped(text, end, i):
                end = text.find(tok, end + 1)
            if end < 0:
                return n, line, line_start
            extra = 0
            while extra < 2 and text.startswith(tok[0], end + 3 + extra):
                extra += 1  # up to two quotes before the closing three are content
            end += 3 + extra
            last_break = text.rfind("\n", i, end)
            if last_break >= 0:
                line += text.count("\n", i, end)
                line_start = last_break + 1
            i = end
        elif tok == '"':
            m = _BASIC_REST_RE.match(text, i)
            i = m.end() if m else i
        elif tok == "'":
            end = text.find("'", i)
            i = n if end < 0 else end + 1
        elif tok == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif tok in "[{":
            # A value inside an array is named by its element: x[0], x[1].a
            where = stack[-1].element() if stack and stack[-1].array else last_key
            stack.append(_Open(tok == "[", where))
            expect_key = tok == "{"
            expect_item = tok == "["
        elif tok in "]}":
            if stack:
                stack.pop()
        elif tok == "," and stack:
            if stack[-1].array:
                stack[-1].index += 1
                expect_item = True
            else:
                expect_key = True
    return n, line, line_start


def _skip_blank_lines(text: str, i: int, line: int, line_start: int) -> tuple[int, int, int]:
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            i += 1
        elif c == "\n":
            line, i = line + 1, i + 1
            line_start = i
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            break
    return i, line, line_start


def _escaped(text: str, at: int, start: int) -> bool:
    k = at
    while k > start and text[k - 1] == "\\":
        k -= 1
    return (at - k) % 2 == 1


# --- key path -> position ----------------------------------------------------------


def _unquoted(segment: str) -> str:
    """A segment as the loader spells it: `"a b"[0]` -> `a b[0]`."""
    index = ""
    if segment.endswith("]"):
        cut = segment.rfind("[")
        segment, index = segment[:cut], segment[cut:]
    if segment.startswith('"'):
        try:
            segment = json.loads(segment)
        except ValueError:
            segment = segment[1:-1]
    return segment + index


def parent(path: str) -> str:
    """The key path one level up: `a.b[2]` -> `a.b`, `a.b` -> `a`, `a` -> ""."""
    if path.endswith("]"):
        return path[: path.rfind("[")]
    if path.endswith('"'):
        m = _LAST_QUOTED_RE.search(path)
        if m:
            return path[: max(m.start(1) - 1, 0)]
    cut = path.rfind(".")
    return path[:cut] if cut >= 0 else ""


class Positions:
    """Line and column of every key path in one text; the scan runs on the first question."""

    def __init__(self, text: str):
        self.text = text
        self._exact: dict[str, tuple[int, int]] | None = None
        self._within: dict[str, tuple[int, int]] = {}

    def _build(self) -> dict[str, tuple[int, int]]:
        exact: dict[str, tuple[int, int]] = {}
        within = self._within  # a table no statement names itself -> the first statement inside it
        seen: set[tuple[str, ...]] = set()
        for d in definitions(self.text):
            pos = (d.line, d.column)
            spelled = ".".join(d.path)
            # As the scanner spells the path, and as the loader does when a key needs quotes.
            for path in (d.path, tuple(_unquoted(s) for s in d.path)) if '"' in spelled else (d.path,):
                exact.setdefault(spelled if path is d.path else ".".join(path), pos)
                # Longest prefix first; one already seen had all of its own
                # prefixes recorded with it, so each statement costs its depth.
                # A key or item is in `exact` itself: only its tables are new.
                top = len(path) - 1 if d.kind in ("key", "item") else len(path)
                for j in range(top, 0, -1):
                    prefix = path[:j]
                    if prefix in seen:
                        break
                    seen.add(prefix)
                    within.setdefault(".".join(prefix), pos)
                    last = prefix[-1]
                    if last.endswith("]"):  # uplinks[0] is inside uplinks, the array
                        within.setdefault(".".join(prefix[:-1] + (last[: last.rfind("[")],)), pos)
        self._exact = exact
        return exact

    def find(self, path: str) -> tuple[int, int] | None:
        """(line, column) of the key, item or header that path names, or of the table it belongs in."""
        if not path:
            return None
        exact = self._exact if self._exact is not None else self._build()
        while path:
            pos = exact.get(path) or self._within.get(path)
            if pos is not None:
                return pos
            path = parent(path)
        return None

    def locate(self, findings: Iterable[Finding]) -> list[Finding]:
        """The findings, each with the line and column of its path (those that have a line keep it)."""
        out = []
        for f in findings:
            if f.line is None and f.path:
                pos = self.find(f.path)
                if pos is not None:
                    f = replace(f, line=pos[0], column=pos[1])
            out.append(f)
        return out


# --- the text each loaded topology came from ------------------------------------------
#
# The model has no place for its text, and it should not: a Topology is intent
# only. The loader leaves the text here, keyed by the object, for as long as the
# object lives, so validation findings can be located after the fact.

_by_owner: dict[int, Positions] = {}


def remember(owner: object, text: str) -> None:
    """Keep text as the source of owner (a Topology) until owner is gone."""
    key = id(owner)
    _by_owner[key] = Positions(text)
    weakref.finalize(owner, _by_owner.pop, key, None).atexit = False


def locate(owner: object, findings: Iterable[Finding]) -> list[Finding]:
    """The findings located in owner's text; unchanged when owner was not loaded from text."""
    positions = _by_owner.get(id(owner))
    return positions.locate(findings) if positions is not None else list(findings)
