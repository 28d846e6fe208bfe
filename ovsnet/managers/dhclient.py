"""An ISC dhclient on the link with no manager above it: its pid file and its lease file say so.

The files are where Debian's dhclient keeps them per interface
(/run/dhclient.<iface>.pid, /var/lib/dhcp/dhclient.<iface>.leases), and the pid
must be a live dhclient (its /proc/PID/exe), so a stale file is not a client.
"""

from __future__ import annotations

import os
from pathlib import Path

from ovsnet.backends.netns import path_of
from ovsnet.current import Link
from ovsnet.managers import DHCLIENT, Managed, under

PIDFILE = "/run/dhclient.{name}.pid"
LEASES = "/var/lib/dhcp/dhclient.{name}.leases"


def pid_of(root: Path, name: str, netns: str | None = None) -> int | None:
    """The live dhclient of this interface, from its pid file; with netns, only one running in that namespace.

    A namespace's link may have the name of one of the machine's (eth0), and
    the pid file the same path: the client's own namespace tells them apart.
    """
    try:
        pid = int(under(root, PIDFILE.format(name=name)).read_text().split()[0])
        exe = os.readlink(f"/proc/{pid}/exe")
        if netns is not None and not _same(f"/proc/{pid}/ns/net", path_of(netns)):
            return None
    except (OSError, ValueError, IndexError):
        return None
    return pid if os.path.basename(exe).startswith("dhclient") else None


def _same(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def detect(root: Path, link: Link, netns: str | None = None) -> Managed | None:
    pid = pid_of(root, link.name, netns)
    if pid is None:
        return None
    return Managed(link.name, DHCLIENT, f"{PIDFILE.format(name=link.name)} (pid {pid}), leases in {LEASES.format(name=link.name)}",
                   True, LEASES.format(name=link.name))
