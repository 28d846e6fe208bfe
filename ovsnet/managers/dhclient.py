"""An ISC dhclient on the link with no manager above it: its pid file and its lease file say so.

The files are where Debian's dhclient keeps them per interface
(/run/dhclient.<iface>.pid, /var/lib/dhcp/dhclient.<iface>.leases), and the pid
must be a live dhclient (its /proc/PID/exe), so a stale file is not a client.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovsnet.current import Link
from ovsnet.managers import DHCLIENT, Managed, under

PIDFILE = "/run/dhclient.{name}.pid"
LEASES = "/var/lib/dhcp/dhclient.{name}.leases"


def pid_of(root: Path, name: str) -> int | None:
    """The live dhclient of this interface, from its pid file."""
    try:
        pid = int(under(root, PIDFILE.format(name=name)).read_text().split()[0])
        exe = os.readlink(f"/proc/{pid}/exe")
    except (OSError, ValueError, IndexError):
        return None
    return pid if os.path.basename(exe).startswith("dhclient") else None


def detect(root: Path, link: Link) -> Managed | None:
    pid = pid_of(root, link.name)
    if pid is None:
        return None
    return Managed(link.name, DHCLIENT, f"{PIDFILE.format(name=link.name)} (pid {pid}), leases in {LEASES.format(name=link.name)}",
                   True, LEASES.format(name=link.name))
