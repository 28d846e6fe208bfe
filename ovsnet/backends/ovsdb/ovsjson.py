"""A faster JSON parser for python-ovs's JSON-RPC connection.

python-ovs parses OVSDB traffic character by character in pure Python
unless its optional C extension was built, which PyPI's `ovs` wheel does
not ship. On a host with a thousand ports that parser took seconds per
transaction. This one finds where a message ends with a regular expression
over the structural characters only, then hands the text to the standard
library's C-accelerated `json`. It keeps ovs.json.Parser's interface
(feed / is_done / finish), and is installed only when the C parser is absent.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Quotes, backslashes and brackets are all that decides where a value ends.
_STRUCTURAL = re.compile(r'["\\{}\[\]]')


class FastParser:
    def __init__(self, check_trailer: bool = False) -> None:
        self._parts: list[str] = []
        self._depth = 0
        self._in_string = False
        self._skip_to = 0  # an escaped character to step over, relative to the next chunk
        self._done = False
        self._started = False

    def feed(self, s: str) -> int:
        """Take text until the end of one JSON value; return how much was taken."""
        if self._done:
            return 0
        for m in _STRUCTURAL.finditer(s):
            i = m.start()
            if i < self._skip_to:
                continue
            c = m.group()
            if self._in_string:
                if c == "\\":
                    self._skip_to = i + 2
                elif c == '"':
                    self._in_string = False
                continue
            if c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
                self._started = True
            else:
                self._depth -= 1
                if self._depth == 0 and self._started:
                    self._parts.append(s[: i + 1])
                    self._done = True
                    return i + 1
        self._parts.append(s)
        self._skip_to = max(0, self._skip_to - len(s))
        return len(s)

    def is_done(self) -> bool:
        return self._done

    def finish(self) -> Any:
        """The value, or an error string (as ovs.json.Parser returns errors)."""
        text = "".join(self._parts)
        try:
            return json.loads(text)
        except ValueError as exc:
            return f"syntax error: {exc}"


def install() -> None:
    """Make python-ovs use FastParser, unless its own C parser is there."""
    import ovs.json

    if ovs.json.PARSER == ovs.json.PARSER_PY and ovs.json.Parser is not FastParser:
        ovs.json.Parser = FastParser
