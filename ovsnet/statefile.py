"""What ovsnet remembers about a host between runs: the uplink as it was.

The kernel forgets nothing ovsnet needs except what it had before ovsnet:
the NIC's addresses and routes before the first `up`, and the MTU of each
NIC whose MTU ovsnet changed, which `down` must put back exactly. Each is
written once, before the first change that loses it, and removed by `down`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping

from ovsnet.errors import BackendError
from ovsnet.state import Route

DEFAULT_STATE_DIR = "/var/lib/ovsnet"
FORMAT = 1


@dataclass(frozen=True)
class SavedUplink:
    nic: str
    addresses: tuple[str, ...]
    routes: tuple[Route, ...]
    dns: tuple[str, ...] | None
    nic_master: str | None = None  # flat layout: the NIC's bridge before `up`, if any


@dataclass(frozen=True)
class Saved:
    topology: str
    host: str
    uplink: SavedUplink | None = None
    # NIC -> its MTU before ovsnet first changed it. Files written before
    # this existed have no such key: nothing to restore.
    nic_mtus: Mapping[str, int] = field(default_factory=dict)

    def merged(self, uplink: SavedUplink | None, nic_mtus: Mapping[str, int]) -> Saved:
        """This record plus what a new plan is about to change; what is known already wins (it is older)."""
        return Saved(self.topology, self.host, self.uplink or uplink, {**nic_mtus, **self.nic_mtus})

    @property
    def empty(self) -> bool:
        return self.uplink is None and not self.nic_mtus


def path_for(state_dir: str | Path, topology: str, host: str) -> Path:
    return Path(state_dir) / topology / f"{host}.json"


def read(state_dir: str | Path, topology: str, host: str) -> Saved | None:
    p = path_for(state_dir, topology, host)
    try:
        raw = json.loads(p.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, found {type(raw).__name__}")
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT}")
        up = raw.get("uplink")
        uplink = None
        if up is not None:
            uplink = SavedUplink(
                nic=str(up["nic"]),
                addresses=tuple(str(a) for a in up["addresses"]),
                routes=tuple(Route(**r) for r in up["routes"]),
                dns=tuple(up["dns"]) if up.get("dns") is not None else None,
                nic_master=up.get("nic_master"),
            )
        mtus = raw.get("nic_mtus") or {}
        if not isinstance(mtus, dict) or not all(isinstance(k, str) and type(v) is int for k, v in mtus.items()):
            raise ValueError("nic_mtus is not an object of NIC names to integer MTUs")
        return Saved(str(raw["topology"]), str(raw["host"]), uplink, dict(mtus))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise BackendError(
            f"state file {p} is corrupt ({exc}); move it aside to continue: ovsnet then takes the NIC's "
            "addresses from the topology's management section when it has to restore them"
        ) from None


def write(state_dir: str | Path, saved: Saved) -> None:
    p = path_for(state_dir, saved.topology, saved.host)
    p.parent.mkdir(parents=True, exist_ok=True)
    body = {"format": FORMAT, "topology": saved.topology, "host": saved.host, "uplink": None}
    if saved.uplink is not None:
        up = asdict(saved.uplink)
        up["routes"] = [asdict(r) for r in saved.uplink.routes]
        body["uplink"] = up
    if saved.nic_mtus:
        body["nic_mtus"] = dict(saved.nic_mtus)
    tmp = p.with_suffix(".tmp")
    # Write then rename: a crash leaves the old file or the new, never half of one.
    with open(tmp, "w") as f:
        json.dump(body, f, indent=2, sort_keys=True)
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
