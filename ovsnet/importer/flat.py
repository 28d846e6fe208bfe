"""The seed's simple layout read back: the NIC in a Linux bridge that holds the host's address, Docker on `-b`.

Which member of the bridge is the NIC: the seed's order is `brctl addbr`,
then `brctl addif br0 eth0`, and containers (or the lab's test endpoints)
join later, so the NIC is the member older than the bridge (a smaller
ifindex); without one, the oldest member, said as a guess.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping

from ovsnet.current import DockerNetwork, Link
from ovsnet.importer.facts import Facts
from ovsnet.live.snapshot import docker_bridge
from ovsnet.marks import LAB_ALIAS_PREFIX
from ovsnet.topology.addressing import slice_prefix
from ovsnet.topology.model import DEFAULT_MTU, FlatBridge, Host, Layout, Management, Vlan

FLAT_VLAN_NAME = "lan"


@dataclass(frozen=True)
class FlatFound:
    host: Host
    vlans: Mapping[int, Vlan]
    new_vlans: frozenset[int]
    ranges: Mapping[str, str]


def describe(host: str, facts: Facts, known: Mapping[int, Vlan]) -> FlatFound:
    from ovsnet.errors import UsageError

    bridge = _pick_bridge(facts)
    if bridge is None:
        raise UsageError(
            f"host {host}: no OVS bridge, and no Linux bridge holding the host's address with a NIC in it: "
            "nothing of ovsnet's layouts to import (is this the right host, --netns, --db?)"
        )
    nic = _pick_nic(facts, bridge)
    facts.holder = bridge.name
    addresses = tuple(ipaddress.ip_interface(a) for a in facts.addresses.get(bridge.name, []))
    gateways = [ipaddress.ip_address(g) for g in facts.defaults.get(bridge.name, [])]
    gateway = ([g for g in gateways if g.version == 4] or gateways or [None])[0]
    # Beside an IPv4 one, the IPv6 default route's gateway is gateway6.
    gateway6 = next((g for g in gateways if g.version == 6), None) if gateway is not None and gateway.version == 4 else None
    management = Management(addresses, gateway, facts.dns(), None, "mgmt0", gateway6=gateway6) if addresses else None
    net = next((n for n in sorted((facts.current.docker or {}).values(), key=lambda n: n.name) if docker_bridge(n) == bridge.name), None)
    vlan, new = _vlan(facts, known, bridge, management, net)
    covered = {bridge.name, nic.name} | set(facts.members.get(bridge.name, []))
    others = sorted(n for n in facts.members.get(bridge.name, []) if n != nic.name)
    if others:
        facts.leave(f"{bridge.name} also holds {', '.join(others)} (containers' or test endpoints' interfaces): not part of the layout")
    if net is not None:
        facts.guess(f"hosts.{host}.flat", f"Docker's network {net.name} is on {bridge.name} (dockerd -b {bridge.name}), "
                    f"handing out {net.ip_range or net.subnet or 'addresses of its own choice'}")
    facts.leave_links(covered | facts.machinery)
    h = Host(name=host, layout=Layout.FLAT, management=management, flat=FlatBridge(bridge.name, nic.name, vlan.name if vlan else None, None))
    vlans = {vlan.id: vlan} if vlan else {}
    ranges = {bridge.name: net.ip_range} if net is not None and net.ip_range else {}
    return FlatFound(h, vlans, frozenset({vlan.id} if vlan and new else ()), ranges)


def _pick_bridge(facts: Facts) -> Link | None:
    """A Linux bridge with a member that holds the host's address (or default route)."""
    bridges = [lk for lk in facts.links.values() if lk.kind == "bridge" and any(m.master == lk.name for m in facts.links.values())]
    bridges.sort(key=lambda b: (not facts.defaults.get(b.name), not facts.addresses.get(b.name), b.index))
    found = [b for b in bridges if facts.defaults.get(b.name) or facts.addresses.get(b.name)]
    return found[0] if found else None


def _pick_nic(facts: Facts, bridge: Link) -> Link:
    """The member that is a NIC: not a veth with its peer here, not the lab's; a real NIC (no link kind)
    before a veth (the lab's NICs are veths); then the one older than the bridge; then the oldest."""
    inside = [m for m in facts.links.values() if m.master == bridge.name]
    members = [m for m in inside if not (m.kind == "veth" and m.peer in facts.links) and not (m.alias or "").startswith(LAB_ALIAS_PREFIX)] or inside
    members.sort(key=lambda m: (m.kind != "", m.index >= bridge.index, m.index))
    nic = members[0]
    if nic.kind != "" and nic.index >= bridge.index and len(members) > 1:
        facts.guess("", f"{bridge.name}'s NIC guessed: {nic.name}, its oldest member (no member is older than the bridge)")
    return nic


def _vlan(facts: Facts, known: Mapping[int, Vlan], bridge: Link, m: Management | None, net: DockerNetwork | None) -> tuple[Vlan | None, bool]:
    """The segment's VLAN: the file's one whose subnet holds the host's address, or a new one, guessed."""
    if m is None or not m.addresses:
        return None, False
    addr = m.addresses[0]
    for v in known.values():
        if v.subnet is not None and addr.ip in v.subnet:
            return v, False
    taken_ids = set(known)
    vid = next(i for i in range(1, 4095) if i not in taken_ids)
    taken = {v.name for v in known.values()}
    name = FLAT_VLAN_NAME if FLAT_VLAN_NAME not in taken else f"{FLAT_VLAN_NAME}{vid}"
    subnet = addr.network
    router = m.gateway if m.gateway is not None and m.gateway in subnet else None
    # A dual-stack segment: the first IPv6 address beside an IPv4 one gives subnet6 (and router6).
    six = next((a for a in m.addresses if a.version == 6), None) if addr.version == 4 else None
    subnet6 = six.network if six is not None else None
    router6 = m.gateway6 if m.gateway6 is not None and subnet6 is not None and m.gateway6 in subnet6 else None
    host_slice = None
    if net is not None and net.ip_range:
        size = ipaddress.ip_network(net.ip_range).prefixlen
        host_slice = size if size != slice_prefix(subnet, None) else None
    facts.guess(f"vlans.{name}", f"guessed: a flat segment carries no tag, so id {vid} and the name only name it in the file")
    if router is not None:
        facts.guess(f"vlans.{name}.router", "guessed: the host's default gateway")
    if router6 is not None:
        facts.guess(f"vlans.{name}.router6", "guessed: the host's IPv6 default gateway")
    mtu = bridge.mtu if bridge.mtu != DEFAULT_MTU else DEFAULT_MTU
    return Vlan(name, vid, subnet, router, mtu, host_slice, subnet6, router6), True
