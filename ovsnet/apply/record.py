"""What ovsnet remembers about a host between runs: what it had before ovsnet changed it.

The kernel forgets nothing ovsnet needs except what the host had before
ovsnet: the NIC's addresses and routes before the first `up`, the MTU of a
NIC ovsnet changed, the nameservers it replaced... Each kind keeps its own
part (see Kind.record_to_json), written once, before the first change that
loses it, and removed by `down`. The record is a JSON file under the state
directory; a copy rides in the OVS bridge's external_ids, so that losing the
file does not lose the host's original settings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ovsnet.errors import BackendError

FORMAT = 2


@dataclass(frozen=True)
class Record:
    topology: str
    host: str
    parts: Mapping[str, Any] = field(default_factory=dict)  # kind name -> that kind's typed record

    def merged(self, keep: Mapping[str, Any]) -> Record:
        """This record plus what a new plan is about to change; what is known already wins (it is older)."""
        from ovsnet.kinds import BY_NAME

        parts = dict(self.parts)
        for kind, part in keep.items():
            parts[kind] = BY_NAME[kind].merge_record(parts.get(kind), part)
        return Record(self.topology, self.host, parts)

    @property
    def empty(self) -> bool:
        return not self.parts


def path_for(state_dir: str | Path, topology: str, host: str) -> Path:
    return Path(state_dir) / topology / f"{host}.json"


def to_text(record: Record) -> str:
    from ovsnet.kinds import BY_NAME

    parts = {kind: BY_NAME[kind].record_to_json(part) for kind, part in sorted(record.parts.items())}
    return json.dumps({"format": FORMAT, "topology": record.topology, "host": record.host, "parts": parts}, indent=2, sort_keys=True)


def from_text(text: str) -> Record:
    """A record from its JSON; ValueError (and friends) when it is not one."""
    from ovsnet.kinds import BY_NAME

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


def read(state_dir: str | Path, topology: str, host: str) -> Record | None:
    p = path_for(state_dir, topology, host)
    try:
        return from_text(p.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise BackendError(
            f"state file {p} is corrupt ({exc}); move it aside to continue: ovsnet then takes the NIC's "
            "addresses from the topology's management section when it has to restore them"
        ) from None


def write(state_dir: str | Path, record: Record) -> None:
    p = path_for(state_dir, record.topology, record.host)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    # Write then rename: a crash leaves the old file or the new, never half of one.
    with open(tmp, "w") as f:
        f.write(to_text(record))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def remove(state_dir: str | Path, topology: str, host: str) -> None:
    p = path_for(state_dir, topology, host)
    p.unlink(missing_ok=True)
    try:
        p.parent.rmdir()
    except OSError:
        pass
