"""What a handover to a network manager is made of, whichever the manager.

Each manager module (networkd, networkmanager, ifupdown) turns a `PortSpec`
(the NIC, the management port, the host's addresses or DHCP) and the host's
files as they were before ovsnet (`HostFiles`) into a `Handoff`: the files
it must hold (text, or None for absent) and the steps that make the manager
read them, to take the port (`take`) and to take the NIC back (`give`).
Everything here is data computed from a snapshot; ovsnet.kinds.handover
turns it into changes with their undo, and ovsnet.backends.manager runs them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ovsnet.current import HostFiles


@dataclass(frozen=True)
class PortSpec:
    topology: str
    host: str
    nic: str
    port: str
    addresses: tuple[str, ...] = ()  # with their prefix; empty for DHCP
    gateways: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dhcp: bool = False
    nic_index: int | None = None  # for the manager's per-link state and lease files
    # The DHCP client identity chosen at the first handover (read from the NIC's
    # lease then), kept in the record: later runs write the same file.
    client_id: str | None = None


@dataclass(frozen=True)
class FileEdit:
    path: str
    text: str | None  # None: the file must not exist
    why: str
    mode: int | None = None  # None: as the file is (0644 when new)


@dataclass(frozen=True)
class Program:
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Dhclient:
    """Stop (keeping the lease) or start the ISC dhclient of an interface, as ifupdown runs it."""

    iface: str
    start: bool


Step = Program | Dhclient


@dataclass(frozen=True)
class Handoff:
    files: tuple[FileEdit, ...]
    take: tuple[Step, ...]  # after the files are written: the manager runs the port, not the NIC
    give: tuple[Step, ...]  # after the files are put back: the manager runs the NIC again
    client_id: str | None = None
    notes: tuple[str, ...] = ()
    # What the manager itself keeps about the port and `down` removes with it
    # (ifupdown's state file): not the user's, so not in the record.
    port_state: tuple[str, ...] = ()
    # After the files are written and before `take`: the manager lets go of the
    # NIC. A manager that takes a NIC down as it lets it go (NetworkManager) has
    # these apart: ovsnet brings the trunk up again between the two, so that the
    # port's first DHCP request crosses it.
    release: tuple[Step, ...] = ()


def marker(spec: PortSpec, what: str) -> str:
    """The comment that opens every file (or block) ovsnet writes for a handover."""
    return f"# ovsnet:{spec.topology}:{spec.host}: {what}. Written by `ovsnet up`; `ovsnet down` puts things back."


def safe(name: str) -> str:
    """A name usable in every manager's file names (ifupdown's source-directory takes [A-Za-z0-9_-] only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)


def lease_client_id(files: HostFiles, path: str) -> str | None:
    """CLIENTID=<hex> of a systemd-style lease file (networkd's, NetworkManager's internal client)."""
    text = files.text(path)
    for line in (text or "").splitlines():
        if line.startswith("CLIENTID="):
            value = line.split("=", 1)[1].strip().lower()
            if re.fullmatch(r"([0-9a-f]{2})+", value):
                return value
    return None


def v6(cidr: str) -> bool:
    return ":" in cidr
