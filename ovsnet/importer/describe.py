"""One snapshot of a host as the topology's own model: the Host, and the VLANs it uses.

Pure: a Current (and, with --into, the VLANs the file already has) goes in,
an Imported comes out. What the host shows that a topology cannot say goes
to `left_out` (the CLI prints it on stderr); what had to be guessed (a VLAN's
name, its router) goes to `guesses`, each a comment at its place in the file.
Names the host cannot tell are taken from ovsnet's marks when it carries them:
the topology's name (OVSDB external_ids, ifalias, Docker labels), the VLANs'
names (the `org.ovsnet.vlan` label of ovsnet's Docker networks).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Mapping

from ovsnet.current import Current, DockerNetwork, Link, OvsBridge, OvsPort
from ovsnet.importer import flat as flat_mod
from ovsnet.importer.facts import Facts, Note
from ovsnet.kinds.bond import bond_settings
from ovsnet.live.snapshot import docker_bridge, is_trunk
from ovsnet.marks import DOCKER_VLAN_LABEL, LAB_KEY
from ovsnet.topology.addressing import slice_prefix
from ovsnet.topology.model import (
    DEFAULT_MTU,
    AccessPort,
    Bond,
    BondMode,
    Datapath,
    DockerBridge,
    Host,
    IPAddress,
    IPNetwork,
    Lacp,
    LacpTime,
    Layout,
    Management,
    OvsBridgeSpec,
    Uplink,
    Vlan,
)

DOCKER_BUILTIN = frozenset({"host", "none"})


@dataclass(frozen=True)
class Imported:
    topology: str | None  # the name in ovsnet's marks, when the host carries them
    host: Host
    vlans: Mapping[int, Vlan]  # every VLAN the host uses, by id (those the file has, as it has them)
    new_vlans: frozenset[int]  # the ids the file does not have yet: written out
    ranges: Mapping[str, str]  # Docker bridge (or flat bridge) -> the ip_range Docker hands out from
    guesses: tuple[Note, ...] = ()
    left_out: tuple[str, ...] = ()
    ranges6: Mapping[str, str] = field(default_factory=dict)  # Docker bridge -> its IPv6 network's ip_range


@dataclass
class _Docker:
    bridge: str
    vid: int
    patch_ovs: str
    patch_bridge: str
    mtu: int
    network: DockerNetwork | None


@dataclass
class _State:
    facts: Facts
    vlans_known: Mapping[int, Vlan]
    networks: Mapping[str, list[DockerNetwork]] = field(default_factory=dict)  # Linux bridge -> Docker networks on it
    uplinks: list[tuple[OvsPort, Link]] = field(default_factory=list)
    docker: list[_Docker] = field(default_factory=list)
    access: list[tuple[OvsPort, int]] = field(default_factory=list)
    mgmt: OvsPort | None = None
    covered: set[str] = field(default_factory=set)  # link names the file accounts for


def describe(host: str, current: Current, known: Mapping[int, Vlan] | None = None) -> Imported:
    """The host as a topology's Host; `known`: the VLANs of the file it goes into, by id."""
    facts = Facts(current)
    topology = _topology_name(current, facts)
    bridge = _pick_bridge(current, topology, facts)
    if bridge is None:
        found = flat_mod.describe(host, facts, known or {})
        return Imported(topology, found.host, found.vlans, found.new_vlans, found.ranges, tuple(facts.guesses), tuple(facts.left_out))
    nets: dict[str, list[DockerNetwork]] = {}
    for n in (current.docker or {}).values():
        nets.setdefault(docker_bridge(n) or "", []).append(n)
    st = _State(facts, known or {}, nets)
    st.covered |= {bridge.name, *facts.machinery}
    _sort_ports(st, bridge, current)
    mgmt = _management(st)
    used = {d.vid for d in st.docker} | {vid for _, vid in st.access} | ({st.mgmt.tag} if st.mgmt and st.mgmt.tag else set())
    uplinks = _uplinks(st, used)
    vids = {vid for up in uplinks for vid in up[1]} | used | {up[2] for up in uplinks if up[2] is not None}
    vlans, new = _vlans(st, sorted(vids), mgmt)
    name = {vid: v.name for vid, v in vlans.items()}
    datapath = _datapath(bridge, facts)
    h = Host(
        name=host,
        layout=Layout.VLAN,
        bridge=OvsBridgeSpec(bridge.name, datapath),
        uplinks=tuple(_uplink(p, tuple(name[v] for v in sorted(vl)), name[nat] if nat is not None else None, mtu, facts) for p, vl, nat, mtu in uplinks),
        management=_with_vlan(mgmt, st.mgmt, name, uplinks),
        docker=tuple(
            DockerBridge(d.bridge, name[d.vid], d.patch_ovs, d.patch_bridge, d.network.name if d.network else None, None,
                         d.mtu if d.mtu != vlans[d.vid].mtu else None)
            for d in sorted(st.docker, key=lambda d: (d.vid, d.bridge))
        ),
        access_ports=tuple(AccessPort(p.name, name[vid]) for p, vid in st.access),
    )
    ranges = {d.bridge: d.network.ip_range for d in st.docker if d.network and d.network.ip_range}
    ranges6 = {d.bridge: d.network.ip_range6 for d in st.docker if d.network and d.network.ip_range6}
    _left_over(st, current)
    return Imported(topology, h, vlans, frozenset(new), ranges, tuple(facts.guesses), tuple(facts.left_out), ranges6)


def _uplink(p: OvsPort, vlans: tuple[str, ...], native: str | None, mtu: int | None, facts: Facts) -> Uplink:
    bond = _bond_of(p, facts)
    return Uplink(bond.nics[0] if bond else p.name, vlans, native, mtu, bond)


# --- whose, and which bridge ----------------------------------------------------------------


def _topology_name(current: Current, facts: Facts) -> str | None:
    owners: Counter[str] = Counter()
    owners.update(o for o in (b.owner for b in current.ovs.bridges.values()) if o)
    owners.update(o for o in (p.owner for p in current.ovs.ports.values()) if o)
    owners.update(o for o in (lk.owner for lk in current.linux.links.values()) if o)
    owners.update(o for o in (n.owner for n in (current.docker or {}).values()) if o)
    if not owners:
        return None
    (name, _), *others = owners.most_common()
    if others:
        facts.leave(f"objects of several ovsnet topologies ({', '.join(f'{n}: {c}' for n, c in owners.most_common())}): the file is named {name}")
    return name


def _pick_bridge(current: Current, topology: str | None, facts: Facts) -> OvsBridge | None:
    """The OVS bridge of the layout: ovsnet's, else the one that trunks a NIC, else the biggest."""
    ovs = current.ovs
    bridges = [b for b in ovs.bridges.values() if LAB_KEY not in b.external_ids]
    if not bridges:
        return None

    def trunks_a_nic(b: OvsBridge) -> bool:
        return any(p.bridge == b.name and p.name != b.name and is_trunk(p) and p.iface_type == "" for p in ovs.ports.values())

    bridges.sort(key=lambda b: (b.owner != topology or topology is None, not trunks_a_nic(b), -len(b.ports), b.name))
    chosen = bridges[0]
    for b in bridges[1:]:
        facts.leave(f"OVS bridge {b.name} ({len(b.ports)} ports): a host has one OVS bridge in a topology, {chosen.name}; left out")
    return chosen


def _datapath(bridge: OvsBridge, facts: Facts) -> Datapath:
    value = bridge.datapath_type or "system"
    try:
        return Datapath(value)
    except ValueError:
        facts.leave(f"OVS bridge {bridge.name} has datapath_type {value!r}: a topology says system or netdev; written as system")
        return Datapath.SYSTEM


# --- the ports ----------------------------------------------------------------------------


def _sort_ports(st: _State, bridge: OvsBridge, current: Current) -> None:
    """Each port of the bridge: an uplink, the management port, a Docker patch, an access port, or left out."""
    facts, links = st.facts, current.linux.links
    internal: list[OvsPort] = []
    for p in sorted((p for p in current.ovs.ports.values() if p.bridge == bridge.name and p.name != bridge.name), key=lambda p: p.name):
        st.covered.add(p.name)
        if LAB_KEY in p.external_ids:
            facts.leave(f"port {p.name}: a test endpoint of ovsnet's lab ({p.external_ids[LAB_KEY]}); endpoints are [[endpoints]] entries, left out")
            continue
        if len(p.interfaces) != 1:
            _bond(st, p, links)
            continue
        itype = p.interfaces[0].type
        if itype == "internal":
            internal.append(p)
            continue
        if itype:
            facts.leave(f"port {p.name} of type {itype}: a topology has no such ports; left out")
            continue
        link = links.get(p.name)
        peer = links.get(link.peer or "") if link is not None and link.kind == "veth" else None
        master = links.get(peer.master or "") if peer is not None else None
        if link is None:
            facts.leave(f"port {p.name}: the host has no interface of that name (ovs-vswitchd cannot open it); left out")
        elif peer is not None and master is not None and master.kind == "bridge":
            _docker(st, p, peer, master, current)
        elif is_trunk(p):
            st.uplinks.append((p, link))
        else:
            st.access.append((p, p.tag or 0))
    _pick_management(st, internal)


def _bond(st: _State, p: OvsPort, links: Mapping[str, Link]) -> None:
    """A port of several NICs: a bonded uplink (`nics = [...]`), when it trunks."""
    facts = st.facts
    odd = [i.name for i in p.interfaces if i.type or i.name not in links]
    if odd or not p.interfaces:
        facts.leave(f"port {p.name} has {len(p.interfaces)} interfaces, {', '.join(odd) or 'none'} not a NIC of the host: "
                    "a topology's bond is of NICs; left out")
        return
    if not is_trunk(p):
        facts.leave(f"port {p.name} is a bond on one VLAN (tag {p.tag}): a topology's bonds are uplink trunks; left out")
        return
    st.covered |= {i.name for i in p.interfaces}
    st.uplinks.append((p, links[sorted(i.name for i in p.interfaces)[0]]))


def _bond_of(p: OvsPort, facts: Facts) -> Bond | None:
    """The Bond of a bond port (None for a port of one interface), in the file's terms."""
    if not p.is_bond:
        return None
    members, mode, lacp, time = bond_settings(p)
    if mode == BondMode.BALANCE_TCP.value and lacp == Lacp.OFF.value:
        facts.leave(f"bond {p.name} is balance-tcp without LACP, which OVS runs as active-backup: written as active-backup")
        mode = BondMode.ACTIVE_BACKUP.value
    return Bond(p.name, members, BondMode(mode), Lacp(lacp), LacpTime(time))


def _docker(st: _State, p: OvsPort, peer: Link, master: Link, current: Current) -> None:
    facts = st.facts
    if p.tag is None or is_trunk(p):
        facts.leave(f"port {p.name} (veth to Linux bridge {master.name}) is a trunk: a Docker bridge sits on one VLAN; left out")
        return
    if master.name in st.covered:
        facts.leave(f"port {p.name} is a second veth into Linux bridge {master.name}: one patch per Docker bridge; left out")
        return
    nets = sorted(st.networks.get(master.name, []), key=lambda n: (n.owner is None, n.name))
    for extra in nets[1:]:
        facts.leave(f"Docker network {extra.name} is a second network on {master.name}: one per Docker bridge; left out")
    st.docker.append(_Docker(master.name, p.tag, p.name, peer.name, master.mtu, nets[0] if nets else None))
    st.covered |= {peer.name, master.name}
    st.covered |= set(facts.members.get(master.name, []))
    if nets:
        _check_network(st, nets[0], master)


def _check_network(st: _State, net: DockerNetwork, bridge: Link) -> None:
    facts = st.facts
    on_bridge = facts.addresses.get(bridge.name, [])
    if net.gateway and any(a.split("/")[0] == net.gateway for a in on_bridge):
        facts.leave(f"Docker network {net.name} has its gateway {net.gateway} on {bridge.name} (created without inhibit_ipv4): "
                    f"ovsnet's Docker networks leave the bridge without an address, and up --adopt recreates it so")
    if net.gateway6 and any(a.split("/")[0] == net.gateway6 for a in on_bridge):
        facts.leave(f"Docker network {net.name} has its IPv6 gateway {net.gateway6} on {bridge.name} (Docker puts it there): "
                    f"ovsnet turns IPv6 off on the bridges of its IPv6 networks, so up --adopt takes it away")
    if net.subnet6 and not net.ip_range6:
        facts.leave(f"Docker network {net.name} hands out its whole IPv6 subnet {net.subnet6} (no ip_range): "
                    "ovsnet gives each host its own slice, so up --adopt recreates it with one")
    if net.subnet and not net.ip_range:
        facts.leave(f"Docker network {net.name} hands out its whole subnet {net.subnet} (no ip_range): "
                    "ovsnet gives each host its own slice, so up --adopt recreates it with one")
    if not net.subnet:
        facts.leave(f"Docker network {net.name} has a subnet Docker chose itself: the file gives its VLAN no subnet")


def _pick_management(st: _State, internal: list[OvsPort]) -> None:
    facts = st.facts
    with_addr = [p for p in internal if facts.addresses.get(p.name)]
    with_route = [p for p in with_addr if facts.defaults.get(p.name)]
    st.mgmt = (with_route or with_addr)[0] if with_addr else None
    for p in internal:
        if p is st.mgmt:
            continue
        addrs = facts.addresses.get(p.name)
        what = f"holds {', '.join(addrs)}" if addrs else "has no address"
        facts.leave(f"internal port {p.name} {what}: a host has one management port{f', {st.mgmt.name}' if st.mgmt else ''}; left out")


def _management(st: _State) -> Management | None:
    p, facts = st.mgmt, st.facts
    if p is None:
        return None
    facts.holder = p.name
    addresses = tuple(ipaddress.ip_interface(a) for a in facts.addresses[p.name])
    routes = facts.defaults.get(p.name, [])
    gateway, gateway6 = (_first_gateway(routes, facts, version) for version in (4, 6))
    if p.tag is None:
        facts.leave(f"internal port {p.name} has no tag (OVS makes it a trunk of every VLAN): the file puts it on the uplink's native VLAN")
    if gateway is None and gateway6 is not None and not any(a.version == 4 for a in addresses):
        gateway, gateway6 = gateway6, None  # an IPv6-only host: its one gateway is written as gateway
    return Management(addresses, gateway, facts.dns(), None, p.name, gateway6=gateway6)


def _first_gateway(routes: list[str], facts: Facts, version: int) -> IPAddress | None:
    """The default route's next hop in one family (a topology has one per family)."""
    gateways = [g for g in map(ipaddress.ip_address, routes) if g.version == version]
    if len(gateways) > 1:
        facts.leave(f"IPv{version} default routes via {', '.join(map(str, gateways))}: a topology has one gateway per family, {gateways[0]}")
    return gateways[0] if gateways else None


def _with_vlan(m: Management | None, port: OvsPort | None, name: Mapping[int, str], uplinks: list) -> Management | None:
    """The management VLAN, written only where the first uplink's native VLAN would not say it."""
    if m is None or port is None:
        return m
    native = uplinks[0][2] if uplinks else None
    if port.tag is None or port.tag == native:
        return m
    return replace(m, vlan=name[port.tag])


def _uplinks(st: _State, used: set[int]) -> list[tuple[OvsPort, frozenset[int], int | None, int | None]]:
    """(port, VLANs, native VLAN, MTU) of each trunked NIC."""
    facts, out = st.facts, []
    for p, link in st.uplinks:
        native = p.tag if p.vlan_mode in ("native-untagged", "native-tagged") else None
        if p.vlan_mode == "native-tagged":
            facts.leave(f"port {p.name} carries its native VLAN {p.tag} tagged (vlan_mode native-tagged): the file says native_vlan, which ovsnet carries untagged")
        if p.vlan_mode == "trunk" and p.tag is not None:
            facts.leave(f"port {p.name} has tag {p.tag} in vlan_mode trunk, which OVS ignores; left out")
        vlans = frozenset(p.trunks) | ({native} if native is not None else frozenset())
        if not p.trunks:
            vlans = frozenset(used) | vlans
            facts.leave(f"port {p.name} trunks every VLAN (no trunks listed): the file lists the VLANs this host uses, "
                        f"{','.join(map(str, sorted(vlans))) or 'none'}, and up would restrict the trunk to them")
        out.append((p, vlans, native, link.mtu if link.mtu != DEFAULT_MTU else None))
    return out


# --- the VLANs ----------------------------------------------------------------------------


def _vlans(st: _State, vids: list[int], mgmt: Management | None) -> tuple[dict[int, Vlan], set[int]]:
    facts = st.facts
    taken = {v.name for v in st.vlans_known.values()}
    out: dict[int, Vlan] = {}
    new: set[int] = set()
    by_vid: dict[int, list[_Docker]] = {}
    for d in st.docker:
        by_vid.setdefault(d.vid, []).append(d)
    for vid in vids:
        nets = by_vid.get(vid, [])
        net = nets[0].network if nets else None
        if vid in st.vlans_known:
            out[vid] = st.vlans_known[vid]
            _agree(facts, out[vid], net)
            continue
        label = net.labels.get(DOCKER_VLAN_LABEL) if net else None
        name = label if label and label not in taken and re.match(r"^[A-Za-z][A-Za-z0-9_.-]{0,62}$", label) else unique(f"vlan{vid}", taken)
        taken.add(name)
        path = f"vlans.{name}"
        if not label:
            facts.guess(path, f"name guessed: nothing on the host names VLAN {vid}")
        subnet, router = _subnet_router(st, vid, net, mgmt, path, 4)
        subnet6, router6 = _subnet_router(st, vid, net, mgmt, path, 6)
        if subnet is None and subnet6 is not None:
            # An IPv6-only VLAN: its one subnet is written as subnet.
            subnet, router, subnet6, router6 = subnet6, router6, None, None
            _moved_guess(facts, f"{path}.router6", f"{path}.router")
        mtu = max([d.mtu for d in nets] or [DEFAULT_MTU])
        host_slice = _host_slice(subnet, net.ip_range6 if net and subnet and subnet.version == 6 else net.ip_range if net else None)
        host_slice6 = _host_slice(subnet6, net.ip_range6 if net else None)
        out[vid] = Vlan(name, vid, subnet, router, mtu, host_slice, subnet6, router6, host_slice6)
        new.add(vid)
    return out, new


def _host_slice(subnet: IPNetwork | None, ip_range: str | None) -> int | None:
    """The slice size to write: only where Docker's range is not the default size."""
    if subnet is None or not ip_range:
        return None
    size = ipaddress.ip_network(ip_range).prefixlen
    return size if size != slice_prefix(subnet, None) else None


def _moved_guess(facts: Facts, old: str, new: str) -> None:
    facts.guesses[:] = [Note(new, n.text) if n.path == old else n for n in facts.guesses]


def _subnet_router(st: _State, vid: int, net: DockerNetwork | None, mgmt: Management | None, path: str,
                   version: int) -> tuple[IPNetwork | None, IPAddress | None]:
    """A VLAN's subnet and router in one family: its Docker network's pool, else the host's own address there."""
    facts = st.facts
    suffix = "6" if version == 6 else ""
    if net is not None:
        subnet, gateway = (net.subnet6, net.gateway6) if version == 6 else (net.subnet, net.gateway)
        if subnet:
            return ipaddress.ip_network(subnet), ipaddress.ip_address(gateway) if gateway else None
    if mgmt is not None and st.mgmt is not None and (st.mgmt.tag == vid or st.mgmt.tag is None and _native(st) == vid):
        mine = next((a for a in mgmt.addresses if a.version == version), None)
        if mine is None:
            return None, None
        gw = next((g for g in mgmt.gateways if g.version == version), None)
        if gw is not None and gw in mine.network:
            facts.guess(f"{path}.router{suffix}", f"guessed: the host's {'IPv6 ' if version == 6 else ''}default gateway")
            return mine.network, gw
        return mine.network, None
    return None, None


def _native(st: _State) -> int | None:
    return next((p.tag for p, _ in st.uplinks if p.vlan_mode in ("native-untagged", "native-tagged")), None)


def _agree(facts: Facts, v: Vlan, net: DockerNetwork | None) -> None:
    if net is None:
        return
    for version, subnet in ((4, net.subnet), (6, net.subnet6)):
        st = v.stack(version)
        if subnet and st is not None and ipaddress.ip_network(subnet) != st.subnet:
            facts.leave(f"Docker network {net.name} has subnet {subnet}, but VLAN {v.name} in the file has {st.subnet}: the file's is kept")


def unique(name: str, taken: set[str]) -> str:
    out, i = name, 2
    while out in taken:
        out, i = f"{name}-{i}", i + 1
    return out


# --- the rest of the host ------------------------------------------------------------------


def _left_over(st: _State, current: Current) -> None:
    """Everything of the host the file does not account for, said once."""
    facts = st.facts
    docker_bridges = {d.bridge for d in st.docker}
    for net in sorted((current.docker or {}).values(), key=lambda n: n.name):
        bridge = docker_bridge(net)
        if net.name in DOCKER_BUILTIN or bridge in docker_bridges:
            continue
        facts.leave(f"Docker network {net.name} ({net.driver}{f' on {bridge}' if bridge else ''}): not on a Docker bridge of the layout; left out")
    facts.leave_links(st.covered)
