"""Who manages a NIC: systemd-networkd, NetworkManager, ifupdown, or a DHCP client run by hand.

Each manager is asked through what it keeps for that purpose (its state files
under /run, its configuration), never guessed from process names: one module
per manager, each with `detect(root, link) -> Managed | None`. The first that
claims a link wins, in the order below (ifupdown's own DHCP client is
ifupdown's, not a stray dhclient).

`root` is the host's filesystem root ("/" on a real host); a test or the lab
points it at a directory standing for a simulated host's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ovsnet.current import Link

NETWORKD, NETWORKMANAGER, IFUPDOWN, DHCLIENT = "networkd", "networkmanager", "ifupdown", "dhclient"
LABELS = {NETWORKD: "systemd-networkd", NETWORKMANAGER: "NetworkManager", IFUPDOWN: "ifupdown", DHCLIENT: "dhclient"}


@dataclass(frozen=True)
class Managed:
    """A link some manager configures: which, how ovsnet knows, and whether its address is a lease."""

    link: str
    manager: str  # NETWORKD, NETWORKMANAGER, IFUPDOWN or DHCLIENT
    evidence: str  # what says so: a state file, a configuration file
    dhcp: bool = False
    config: str | None = None  # the manager's file for this link, when there is one
    detail: str = ""  # e.g. "via netplan"

    def describe(self) -> str:
        how = " (DHCP)" if self.dhcp else ""
        extra = f", {self.detail}" if self.detail else ""
        return f"{self.link} is managed by {LABELS[self.manager]}{how}{extra}: {self.evidence}"


def detect(root: str | Path, links: Mapping[str, Link], netns: str | None = None, shared: bool = False) -> dict[str, Managed]:
    """The managed links, among those that are not ovsnet's own (its bridges and patch links never are).

    netns: the links are that namespace's (a DHCP client counts only if it
    runs there). shared: the namespace has no files of its own outside /etc
    (see ovsnet.apply.target): the machine's networkd, NetworkManager and
    ifupdown state describes the machine's links, never the namespace's, and
    is not read; only a DHCP client inside the namespace is found.
    """
    from ovsnet.managers import dhclient, ifupdown, networkd, networkmanager

    base = Path(root)
    out: dict[str, Managed] = {}
    for link in links.values():
        if link.owner is not None or link.kind == "bridge" or link.name == "lo":
            continue
        if shared:
            found = dhclient.detect(base, link, netns)
            if found is not None:
                out[link.name] = found
            continue
        for module in (networkd, networkmanager, ifupdown):
            found = module.detect(base, link)
            if found is not None:
                out[link.name] = found
                break
        else:
            found = dhclient.detect(base, link, netns)
            if found is not None:
                out[link.name] = found
    return out


def stopped(root: Path, unit: str) -> bool:
    """systemd says the manager's service is not running now.

    A daemon's state files under /run outlive it when it is stopped during a
    boot (NetworkManager's devices/<ifindex> still said managed=true: found on
    the VMs, where it then hid ifupdown's NIC). A running unit has its
    invocation link in /run/systemd/units and its cgroup; a host without
    systemd (no /run/systemd/system) tells nothing, and the state files count.
    """
    if not under(root, "/run/systemd/system").is_dir():
        return False
    if under(root, f"/run/systemd/units/invocation:{unit}").is_symlink():
        return False
    return not under(root, f"/sys/fs/cgroup/system.slice/{unit}").is_dir()


def under(root: Path, path: str) -> Path:
    """An absolute path of the host, under `root`."""
    return root / path.lstrip("/")
