"""What ovsnet remembers about a host: what it had before ovsnet changed it, one part per kind.

The kernel forgets nothing ovsnet needs except what the host had before
ovsnet: the NIC's addresses and routes before the first `up`, the MTU of a
NIC ovsnet changed, the nameservers it replaced... Each kind keeps its own
part (Kind.record_to_json / record_from_json / merge_record), written before
the first change that loses it. Two copies: a JSON file under the state
directory (ovsnet.apply.record) and the host's OVS bridge's external_ids
(`ovsnet-record`), so that losing the file does not lose the original
settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ovsnet.kinds import BY_NAME

FORMAT = 2


@dataclass(frozen=True)
class Record:
    topology: str
    host: str
    parts: Mapping[str, Any] = field(default_factory=dict)  # kind name -> that kind's typed record

    def merged(self, keep: Mapping[str, Any]) -> Record:
        """This record plus what a new plan is about to change; what is known already wins (it is older)."""
        parts = dict(self.parts)
        for kind, part in keep.items():
            parts[kind] = BY_NAME[kind].merge_record(parts.get(kind), part)
        return Record(self.topology, self.host, parts)

    @property
    def empty(self) -> bool:
        return not self.parts


def to_text(record: Record, indent: int | None = 2) -> str:
    parts = {kind: BY_NAME[kind].record_to_json(part) for kind, part in sorted(record.parts.items())}
    return json.dumps({"format": FORMAT, "topology": record.topology, "host": record.host, "parts": parts}, indent=indent, sort_keys=True)


def from_text(text: str) -> Record:
    """A record from its JSON; ValueError (and friends) when it is not one."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, found {type(raw).__name__}")
    if raw.get("format") == 1:
        raw = _from_format_1(raw)
    elif raw.get("format") != FORMAT:
        raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
    parts_raw = raw.get("parts") or {}
    if not isinstance(parts_raw, dict):
        raise ValueError("parts is not an object")
    parts = {}
    for kind, part in parts_raw.items():
        if kind not in BY_NAME:
            raise ValueError(f"a part for kind {kind!r}, which this ovsnet does not know")
        parts[kind] = BY_NAME[kind].record_from_json(part)
    return Record(str(raw["topology"]), str(raw["host"]), parts)


def _from_format_1(raw: dict[str, Any]) -> dict[str, Any]:
    """Files written before the kinds kept their own parts: one uplink section, nic_mtus beside it."""
    parts: dict[str, Any] = {}
    up = raw.get("uplink")
    if up is not None:
        parts["uplink"] = {k: v for k, v in up.items() if k != "dns"}
        if up.get("dns") is not None:
            parts["dns"] = up["dns"]
    if raw.get("nic_mtus"):
        parts["nic"] = raw["nic_mtus"]
    return {"format": FORMAT, "topology": raw["topology"], "host": raw["host"], "parts": parts}
