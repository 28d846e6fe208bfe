"""Network namespaces, made and removed through netlink."""

from __future__ import annotations

import os
import uuid

NETNS_DIR = "/var/run/netns"


def unique_prefix(stem: str = "ovn") -> str:
    """A short per-run prefix; interface and namespace names stay under 15 bytes."""
    return f"{stem}{uuid.uuid4().hex[:5]}"


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def create(name: str) -> None:
    from pyroute2 import netns

    netns.create(name)
    # Loopback up: ping to a namespace's own addresses needs it.
    from pyroute2 import IPRoute

    with IPRoute(netns=name) as ipr:
        (lo,) = ipr.link_lookup(ifname="lo")
        ipr.link("set", index=lo, state="up")


def remove(name: str) -> None:
    """Remove a namespace; its links go with it. Missing is not an error."""
    from pyroute2 import netns

    if exists(name):
        netns.remove(name)


def listed(prefix: str) -> list[str]:
    from pyroute2 import netns

    return sorted(n for n in netns.listnetns() if n.startswith(prefix))
