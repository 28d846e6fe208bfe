"""The host before ovsnet, made up from the topology: what `plan --offline` diffs against."""

from __future__ import annotations

from ovsnet.current import Address, Current, Link, LinuxState, OvsState, Route
from ovsnet.kinds import KINDS, Desired, Presumed


def from_nothing(desired: Desired) -> Current:
    """The host before ovsnet: its NICs up, the uplink NIC holding the host's address and default route."""
    before = Presumed()
    for k in KINDS:
        k.presume(desired.of(k.name), before)
    links = {name: Link(name, i + 2, up=True) for i, name in enumerate(dict.fromkeys(before.links))}
    addresses = tuple(Address(nic, cidr) for nic, cidr in before.addresses)
    routes = tuple(Route(dst, ifname, gateway, 0, proto) for dst, ifname, gateway, proto in before.routes)
    return Current(OvsState(), LinuxState(links, addresses, routes), dns=(), docker=None)
