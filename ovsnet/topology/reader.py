"""The reader of sections: converts the keys of one table and records each problem.

A problem becomes a Finding at its key path and reading goes on, so a person
fixes the whole file in one pass. Findings carry no line here: tomllib keeps
no positions, and the loader locates every finding at once from the position
scanner (positions.py) when it raises.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from ovsnet.errors import Finding
from ovsnet.topology.convert import Invalid, as_str, quoted, suggest, type_name

T = TypeVar("T")
MISSING = object()


class Reader:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.vlan_names: dict[str, str] = {}  # accepted spellings -> VLAN name
        self.vlan_ids: dict[int, str] = {}
        # VLANs declared but refused (a bad name or id): their own finding says
        # why, so a reference to one is not reported again as "no VLAN named".
        self.broken_vlans: set[str] = set()

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.findings.append(Finding(path, message, hint))

    def table(self, value: Any, path: str, known: tuple[str, ...]) -> dict | None:
        if not isinstance(value, dict):
            self.error(path, f"expected a table, got {type_name(value)}", f"write it as [{path}]")
            return None
        for key in value:
            if key not in known:
                self.error(join(path, key), f"unknown key '{key}'", suggest(key, list(known)))
        return value

    def get(self, tbl: dict, path: str, key: str, conv: Callable[[Any], T], default: Any = MISSING) -> T:
        """Convert tbl[key]; on a problem record it and return the default (or None)."""
        full = join(path, key)
        if key not in tbl:
            if default is MISSING:
                self.error(full, f"missing required key '{key}'")
                return None  # type: ignore[return-value]
            return default
        try:
            value = conv(tbl[key])
        except Invalid as exc:
            self.error(full, exc.message, exc.hint)
            return None if default is MISSING else default  # type: ignore[return-value]
        item = getattr(conv, "item", None)
        if item is not None:
            out: list[Any] = []
            items: list[Any] = value  # type: ignore[assignment]  # as_list's converter returned the list
            for i, raw in enumerate(items):
                try:
                    out.append(item(raw))
                except Invalid as exc:
                    self.error(f"{full}[{i}]", exc.message, exc.hint)
            return out  # type: ignore[return-value]
        return value

    def as_vlan(self, value: Any) -> str:
        """A VLAN reference: its name, or its numeric id."""
        if isinstance(value, bool):
            raise Invalid("expected a VLAN name or id, got true/false")
        if isinstance(value, int):
            if value in self.vlan_ids:
                return self.vlan_ids[value]
            raise Invalid(f"no VLAN with id {value}", f"declare it under [vlans.NAME] with id = {value}")
        text = as_str(value)
        if text in self.vlan_names:
            return self.vlan_names[text]
        if text in self.broken_vlans:
            return text  # never reaches a model: the VLAN's own finding makes parse() raise
        raise Invalid(f"no VLAN named {quoted(text)}", suggest(text, list(self.vlan_names)) or "declare it under [vlans.NAME]")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
