"""Host snapshots (ovsnet.current.Current) made up from a topology, for tests of pure code.

`applied` is the host as `ovsnet up` leaves it: every desired object of every
kind present, marked as ovsnet's, the addresses on the bridge side. The
planner itself checks it: the plan of the same topology against it is empty
(tests/unit/test_live_graph.py asserts that), so tests of the live picture and
of import can break it by hand and know what the plan must say.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace
from typing import Any

from ovsnet.current import Address, Current, DockerNetwork, Link, LinuxState, OvsBridge, OvsInterface, OvsPort, OvsState, Route
from ovsnet.kinds import Settings
from ovsnet.kinds.bond import other_config
from ovsnet.marks import DOCKER_OWNER_LABEL, DOCKER_VLAN_LABEL, alias_for, ovs_marks
from ovsnet.plan import planner
from ovsnet.topology.model import Topology


def applied(topo: Topology, host: str, settings: Settings = Settings(), docker: bool = True) -> Current:
    want = planner.desire(topo, topo.hosts[host], settings)
    name = topo.name
    links: dict[str, Link] = {}
    index = iter(range(2, 100000))

    def link(n: str, **kw: Any) -> None:
        old = links.get(n)
        links[n] = replace(old, **kw) if old else Link(n, next(index), up=True, **kw)

    # The NICs were there first (the flat import tells the NIC from later members by age).
    for up in want.of("uplink"):
        link(up.nic)
    for p in want.of("ovs-port"):
        if p.role in ("uplink", "access"):
            link(p.name)
    bridges: dict[str, OvsBridge] = {}
    ports: dict[str, OvsPort] = {}
    for b in want.of("ovs-bridge"):
        ports[b.name] = OvsPort(b.name, b.name, interfaces=(OvsInterface(b.name, "internal"),))
        bridges[b.name] = OvsBridge(b.name, b.datapath, (), ovs_marks(name, "bridge"))
        link(b.name, kind="tun")
    for p in want.of("ovs-port"):
        ports[p.name] = OvsPort(p.name, p.bridge, p.tag, p.trunks, p.vlan_mode, (OvsInterface(p.name, p.iface_type),), ovs_marks(name, p.role))
        link(p.name, kind="tun" if p.iface_type == "internal" else "")
    for bd in want.of("bond"):
        for m in bd.members:
            link(m)
        lacp = None if bd.lacp == "off" else True
        members = tuple(OvsInterface(m, "", link_state="up", lacp_current=lacp) for m in sorted(bd.members))
        ports[bd.name] = OvsPort(bd.name, bd.bridge, bd.tag, bd.trunks, bd.vlan_mode, members, ovs_marks(name, "bond"),
                                 bd.mode, bd.lacp, other_config({}, bd.lacp_time))
    for b in list(bridges.values()):
        bridges[b.name] = replace(b, ports=tuple(sorted(p.name for p in ports.values() if p.bridge == b.name)))
    for br in want.of("linux-bridge"):
        link(br.name, kind="bridge", mtu=br.mtu, alias=alias_for(name, br.role))
    for v in want.of("veth"):
        alias = alias_for(name, "patch")
        link(v.name, kind="veth", peer=v.peer, mtu=v.mtu, alias=alias)
        link(v.peer, kind="veth", peer=v.name, mtu=v.mtu, master=v.master, alias=alias)
    for n in want.of("nic"):
        if n.mtu is not None:
            link(n.name, mtu=n.mtu)
    addresses: list[Address] = []
    routes: list[Route] = []
    for up in want.of("uplink"):
        link(up.nic, **({"master": up.target} if up.flat else {}))
        for a in up.addresses:
            addresses.append(Address(up.target, a))
            routes.append(Route(str(ipaddress.ip_interface(a).network), up.target, None, 0, "kernel"))
        for gw in up.gateways:
            routes.append(Route("default", up.target, gw, 0, "static"))
    dns = next((tuple(d.servers) for d in want.of("dns")), ())
    nets = None
    if docker:
        nets = {
            n.name: DockerNetwork(n.name, f"{i:064x}", "bridge", n.bridge, n.subnet, n.gateway, n.ip_range, n.mtu,
                                  {DOCKER_OWNER_LABEL: name, DOCKER_VLAN_LABEL: n.vlan},
                                  subnet6=n.subnet6, gateway6=n.gateway6, ip_range6=n.ip_range6)
            for i, n in enumerate(want.of("docker-network"), 1)
        }
    ovs = OvsState(bridges, ports)
    return Current(ovs, LinuxState(links, tuple(sorted(addresses)), tuple(sorted(routes))), dns, nets)
