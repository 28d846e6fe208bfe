"""What describe.py asks of a snapshot, and what it keeps saying: guesses and what it leaves out."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ovsnet.current import Current
from ovsnet.topology.model import IPAddress

# The loopback and OVS's datapath devices: machinery, never part of a layout.
MACHINERY = frozenset({"lo", "ovs-system", "ovs-netdev"})


@dataclass(frozen=True)
class Note:
    """A comment the written file carries at a key path (`vlans.vlan10`, `vlans.vlan10.router`)."""

    path: str
    text: str


class Facts:
    def __init__(self, current: Current):
        self.current = current
        self.links = current.linux.links
        self.addresses: dict[str, list[str]] = {}
        for a in current.linux.addresses:
            self.addresses.setdefault(a.ifname, []).append(a.cidr)
        self.defaults: dict[str, list[str]] = {}  # link -> gateways of its default routes
        for r in current.linux.routes:
            if r.dst == "default" and r.gateway:
                self.defaults.setdefault(r.ifname, []).append(r.gateway)
        self.members: dict[str, list[str]] = {}  # bridge -> the links in it
        for lk in self.links.values():
            if lk.master:
                self.members.setdefault(lk.master, []).append(lk.name)
        self.machinery = set(MACHINERY) | set(current.ovs.bridges)  # an OVS bridge's own local port is the bridge
        self.holder: str | None = None  # the link whose addresses the management section describes
        self.guesses: list[Note] = []
        self.left_out: list[str] = []

    def guess(self, path: str, text: str) -> None:
        self.guesses.append(Note(path, text))

    def leave(self, text: str) -> None:
        self.left_out.append(text)

    def dns(self) -> tuple[IPAddress, ...]:
        out = []
        for server in self.current.dns or ():
            try:
                out.append(ipaddress.ip_address(server))
            except ValueError:
                self.leave(f"nameserver {server} in resolv.conf is not an IP address a topology can hold; left out")
        return tuple(out)

    def leave_links(self, covered: set[str]) -> None:
        """Links, addresses and routes outside the layout, each said once."""
        links = self.links
        rest = sorted(n for n in links if n not in covered and n not in self.machinery)
        seen: set[str] = set()
        for name in rest:
            link = links[name]
            if link.kind != "bridge":
                continue
            members = sorted(self.members.get(name, []))
            seen |= {name, *members}
            held = f", holding {', '.join(self.addresses[name])}" if self.addresses.get(name) else ""
            inside = f", with {', '.join(members)}" if members else ""
            self.leave(f"Linux bridge {name}{held}{inside}: not part of the layout; left out")
        plain = []
        for name in rest:
            if name in seen:
                continue
            if self.addresses.get(name):
                self.leave(f"{name} holds {', '.join(self.addresses[name])}: not part of the layout; left out")
            else:
                plain.append(name)
        if plain:
            self.leave(f"interfaces the layout does not use: {', '.join(plain)}; left out")
        for name in sorted(covered & set(self.addresses)):
            if name != self.holder and name not in self.machinery:
                self.leave(f"{name} holds {', '.join(self.addresses[name])}, which the layout gives no address; left out")
        for r in self.current.linux.routes:
            if r.proto == "kernel":
                continue
            if r.dst == "default" and r.ifname == self.holder:
                continue
            via = f" via {r.gateway}" if r.gateway else ""
            self.leave(f"route {r.dst}{via} dev {r.ifname}: ovsnet manages only the management section's default route; left out")
