"""The desired layout as a networkx graph, and the questions asked of it.

Nodes are named with one identifier form used everywhere (plans, errors,
pictures): ``kind:host/name``. Edges carry what crosses them:

- ``trunk``: an OVS port carrying a set of VLAN ids (``vlans``), one of them
  possibly untagged (``native``);
- ``access``: an OVS port in one VLAN (``tag``; None for untagged);
- ``member``, ``patch``, ``cable``: plain L2 links that pass whatever they get
  (an ``implicit`` cable is one the file did not declare: see UPSTREAM);
- ``bundle``: a NIC's membership of an OVS bond (node kind ``bond``). A bond's
  member links and the cables from its members carry ``bundle`` (the bond's
  node): together they are one logical link, never a loop (a bond does not
  forward from one member to another);
- ``contains``, ``routes``: structure and L3, never part of a broadcast domain.

Broadcast domains are computed by union-find over "clusters" (nodes joined by
plain L2 links) so that thousands of VLANs cost the sum of their trunk
memberships, not VLANs x edges.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

import networkx as nx

from ovsnet.topology.model import Attach, Host, Layout, Topology, Uplink

L2_PLAIN = frozenset({"member", "patch", "cable", "bundle"})
L2_FILTERED = frozenset({"trunk", "access"})


def nid(kind: str, *parts: str) -> str:
    return f"{kind}:{'/'.join(parts)}"


def host_id(host: str) -> str:
    return nid("host", host)


def ovs_id(host: Host) -> str:
    return nid("ovs", host.name, host.bridge.name)


def switch_id(name: str) -> str:
    return nid("switch", name)


def uplink_id(host: Host, up: Uplink) -> str:
    """The node an uplink's trunk ends on: its bond, or its NIC."""
    return nid("bond", host.name, up.bond.name) if up.bond else nid("nic", host.name, up.nic)


def _bundle(host: Host, nic: str) -> dict[str, str]:
    """Edge attributes of a link from this NIC: {"bundle": bond node} for a bond's member, else none."""
    up = host.uplink_of(nic)
    return {"bundle": uplink_id(host, up)} if up is not None and up.bond else {}


def _switch_side(host: Host, nic: str) -> str:
    """The switch port's name facing a host NIC: one port per bond (a LAG), else one per NIC."""
    up = host.uplink_of(nic)
    return f"{host.name}-{up.bond.name}" if up is not None and up.bond else f"{host.name}-{nic}"


#: Without a [lab] section the hosts are real, and the file says nothing about
#: the network between them. The docs' rule is that the switch port facing an
#: uplink trunks the same VLANs, so the graph assumes one upstream switch doing
#: exactly that for every uplink: then "web1 on node1 reaches web2 on node2"
#: follows from the graph as it does in the lab. The group name starts with
#: "(", which no host or lab switch name can.
UPSTREAM = "(upstream)"
UPSTREAM_ID = switch_id("upstream")


def build(topo: Topology) -> nx.Graph:
    g = nx.Graph(name=topo.name)
    vid = {v.name: v.id for v in topo.vlans.values()}
    for v in topo.vlans.values():
        g.graph.setdefault("vlans", {})[v.id] = v.name
    for host in topo.hosts.values():
        if host.layout is Layout.FLAT:
            _add_flat_host(g, host, vid)
        else:
            _add_vlan_host(g, host, vid, topo)
    if topo.lab is None:
        _add_upstream(g, topo, vid)
    else:
        _add_lab(g, topo, vid)
    _add_endpoints(g, topo, vid)
    return g


def _add_vlan_host(g: nx.Graph, host: Host, vid: dict[str, int], topo: Topology) -> None:
    h = host_id(host.name)
    g.add_node(h, kind="host", host=host.name, name=host.name)
    br = ovs_id(host)
    g.add_node(br, kind="ovs_bridge", host=host.name, name=host.bridge.name, datapath=host.bridge.datapath.value)
    g.add_edge(h, br, kind="contains")
    for up in host.uplinks:
        end = uplink_id(host, up)
        if up.bond:
            b = up.bond
            g.add_node(end, kind="bond", host=host.name, name=b.name, mode=b.mode.value, lacp=b.lacp.value,
                       lacp_time=b.lacp_time.value, members=b.nics, mtu=up.assumed_mtu)
            g.add_edge(h, end, kind="contains")
        for member in up.members:
            nic = nid("nic", host.name, member)
            g.add_node(nic, kind="nic", host=host.name, name=member, mtu=up.assumed_mtu)
            g.add_edge(h, nic, kind="contains")
            if up.bond:
                g.add_edge(end, nic, kind="bundle", bundle=end)
        native = vid[up.native_vlan] if up.native_vlan else None
        vlans = frozenset(vid[v] for v in up.vlans) | ({native} if native else frozenset())
        g.add_edge(br, end, kind="trunk", vlans=vlans, native=native)
    m = host.management
    if m:
        port = nid("internal", host.name, m.port)
        mvlan = host.management_vlan
        tag = vid[mvlan] if mvlan else None
        g.add_node(port, kind="internal", host=host.name, name=m.port, addresses=tuple(str(a) for a in m.addresses))
        g.add_edge(h, port, kind="contains")
        g.add_edge(br, port, kind="access", tag=tag)
    for d in host.docker:
        mtu = d.mtu or topo.vlans[d.vlan].mtu
        ovs_end = nid("veth", host.name, d.patch_ovs)
        br_end = nid("veth", host.name, d.patch_bridge)
        lbr = nid("linux_bridge", host.name, d.bridge)
        g.add_node(ovs_end, kind="veth", host=host.name, name=d.patch_ovs, mtu=mtu)
        g.add_node(br_end, kind="veth", host=host.name, name=d.patch_bridge, mtu=mtu)
        extra = {}
        vlan = topo.vlans[d.vlan]
        if d.network and vlan.subnet6 is not None:
            # A dual-stack network: the picture says both families (an IPv4-only one reads as before).
            extra["subnets"] = tuple(str(n) for n in vlan.subnets)
        g.add_node(lbr, kind="linux_bridge", host=host.name, name=d.bridge, mtu=mtu, network=d.network, vlan=vid[d.vlan], **extra)
        g.add_edge(h, lbr, kind="contains")
        g.add_edge(br, ovs_end, kind="access", tag=vid[d.vlan])
        g.add_edge(ovs_end, br_end, kind="patch")
        g.add_edge(br_end, lbr, kind="member")
    for ap in host.access_ports:
        iface = nid("iface", host.name, ap.interface)
        g.add_node(iface, kind="iface", host=host.name, name=ap.interface)
        g.add_edge(h, iface, kind="contains")
        g.add_edge(br, iface, kind="access", tag=vid[ap.vlan])


def _add_flat_host(g: nx.Graph, host: Host, vid: dict[str, int]) -> None:
    assert host.flat is not None
    h = host_id(host.name)
    g.add_node(h, kind="host", host=host.name, name=host.name)
    lbr = nid("linux_bridge", host.name, host.flat.bridge)
    nic = nid("nic", host.name, host.flat.nic)
    addresses = tuple(str(a) for a in host.management.addresses) if host.management else ()
    seg = vid[host.flat.vlan] if host.flat.vlan else None
    g.add_node(lbr, kind="linux_bridge", host=host.name, name=host.flat.bridge, addresses=addresses, vlan=seg, flat=True)
    g.add_node(nic, kind="nic", host=host.name, name=host.flat.nic, native=seg)
    g.add_edge(h, lbr, kind="contains")
    g.add_edge(h, nic, kind="contains")
    g.add_edge(lbr, nic, kind="member")


def _add_lab(g: nx.Graph, topo: Topology, vid: dict[str, int]) -> None:
    lab = topo.lab
    if lab is None:
        return
    if lab.switch:
        g.add_node(switch_id(lab.switch), kind="switch", host=lab.switch, name=lab.switch)
    for cable in lab.cables:
        a, b = (_cable_node(g, topo, lab.switch, end, other, vid) for end, other in ((cable.a, cable.b), (cable.b, cable.a)))
        if a and b:
            bundles = [_bundle(topo.hosts[e.node], e.nic) for e in (cable.a, cable.b) if e.node in topo.hosts and e.nic]
            g.add_edge(a, b, kind="cable", **next((x for x in bundles if x), {}))
    if topo.router and lab.switch:
        r = nid("router", topo.router.name)
        g.add_node(r, kind="router", host=topo.router.name, name=topo.router.name)
        for vname in topo.router.vlans:
            v = topo.vlans[vname]
            leg = nid("router_leg", topo.router.name, vname)
            g.add_node(leg, kind="router_leg", host=topo.router.name, name=vname,
                       addresses=tuple(f"{st.router}/{st.subnet.prefixlen}" for st in v.stacks if st.router))
            g.add_edge(r, leg, kind="routes")
            g.add_edge(switch_id(lab.switch), leg, kind="access", tag=v.id)


def _add_upstream(g: nx.Graph, topo: Topology, vid: dict[str, int]) -> None:
    nics: list[tuple[Host, str]] = []
    for host in topo.hosts.values():
        if host.layout is Layout.FLAT:
            if host.flat:
                nics.append((host, host.flat.nic))
        else:
            nics += [(host, nic) for up in host.uplinks for nic in up.members]
    if not nics:
        return
    g.add_node(UPSTREAM_ID, kind="switch", host=UPSTREAM, name="upstream", implicit=True)
    for host, nic in nics:
        # A bond's members reach one port of the upstream switch: its side of the LAG.
        side = _switch_side(host, nic)
        port = nid("switch_port", "upstream", side)
        g.add_node(port, kind="switch_port", host=UPSTREAM, name=side, implicit=True)
        _mirror(g, UPSTREAM_ID, port, host, nic, vid, implicit=True)
        if nid("nic", host.name, nic) in g:  # else the file is invalid, and validation says why
            g.add_edge(nid("nic", host.name, nic), port, kind="cable", implicit=True, **_bundle(host, nic))


def _mirror(g: nx.Graph, switch: str, port: str, host: Host, nic: str, vid: dict[str, int], implicit: bool = False) -> None:
    """The switch side of a host's NIC: the same VLANs, the same untagged one."""
    extra = {"implicit": True} if implicit else {}
    up = host.uplink_of(nic)
    if up is not None:
        native = vid[up.native_vlan] if up.native_vlan else None
        vlans = frozenset(vid[v] for v in up.vlans) | ({native} if native else frozenset())
        g.add_edge(switch, port, kind="trunk", vlans=vlans, native=native, **extra)
    elif host.flat is not None and host.flat.nic == nic:
        tag = vid[host.flat.vlan] if host.flat.vlan else None
        g.add_edge(switch, port, kind="access", tag=tag, **extra)


def _cable_node(g, topo, switch, end, other, vid) -> str | None:
    """The node a cable end plugs into; a switch end gets a port mirroring the host's trunk."""
    if switch and end.node == switch:
        if other.node not in topo.hosts or other.nic is None:
            return None
        host = topo.hosts[other.node]
        side = _switch_side(host, other.nic)
        port = nid("switch_port", switch, side)
        g.add_node(port, kind="switch_port", host=switch, name=side)
        _mirror(g, switch_id(switch), port, host, other.nic, vid)
        return port
    node = nid("nic", end.node, end.nic or "")
    return node if node in g else None


def _add_endpoints(g: nx.Graph, topo: Topology, vid: dict[str, int]) -> None:
    for ep in topo.endpoints:
        e = nid("endpoint", ep.name)
        g.add_node(e, kind="endpoint", host=ep.host, name=ep.name, addresses=tuple(str(a) for a in ep.addresses), vlan=vid[ep.vlan])
        host = topo.hosts.get(ep.host)
        if host is None:
            continue
        if host.layout is Layout.FLAT and host.flat:
            g.add_edge(nid("linux_bridge", host.name, host.flat.bridge), e, kind="member")
        elif ep.attach is Attach.DOCKER:
            d = next((d for d in host.docker if d.vlan == ep.vlan), None)
            if d is not None:
                g.add_edge(nid("linux_bridge", host.name, d.bridge), e, kind="member")
        else:
            g.add_edge(ovs_id(host), e, kind="access", tag=vid[ep.vlan])


# --- broadcast domains --------------------------------------------------------


def carries(data: dict, vlan: int) -> bool:
    kind = data["kind"]
    if kind in L2_PLAIN:
        return True
    if kind == "trunk":
        return vlan in data["vlans"]
    if kind == "access":
        return data["tag"] == vlan
    return False


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent.get(x, x)
        return root

    def union(self, a: str, b: str) -> bool:
        """Join; False when a and b were already joined (the edge closes a loop)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[ra] = rb
        return True


@dataclass(frozen=True)
class Loop:
    vlan: int | None  # None: a loop of plain links, in every VLAN
    edge: tuple[str, str]
    assumed: bool = False  # closed by an edge of the assumed upstream switch


class Domains:
    """Broadcast domains of every VLAN, computed once per graph."""

    def __init__(self, g: nx.Graph):
        self.g = g
        self.loops: list[Loop] = []
        # Clusters: nodes joined by plain L2 links (veth pairs, bridge members,
        # cables). A plain edge joining an already joined pair is a loop in
        # every VLAN.
        plain = _UnionFind()
        filtered: list[tuple[str, str, dict]] = []
        # Assumed edges last: a loop they close exists only if the real network
        # is as assumed, which validation words differently (see UPSTREAM).
        edges = g.edges(data=True)
        declared = [e for e in edges if not e[2].get("implicit")]
        for u, v, d in declared + [e for e in edges if e[2].get("implicit")]:
            kind = d["kind"]
            if kind in L2_PLAIN:
                # Within a bond's bundle (its members, their cables, the switch's
                # side of the LAG) a second path is the bond itself, not a loop.
                if not plain.union(u, v) and not d.get("bundle"):
                    self.loops.append(Loop(None, (u, v), bool(d.get("implicit"))))
            elif kind in L2_FILTERED:
                filtered.append((u, v, d))
        self.cluster: dict[str, str] = {n: plain.find(n) for n in g.nodes}
        # Filtered edges per VLAN: the only per-VLAN work there is.
        by_vlan: dict[int | None, list[tuple[str, str]]] = {}
        for u, v, d in filtered:
            if d["kind"] == "trunk":
                for vlan in d["vlans"]:
                    by_vlan.setdefault(vlan, []).append((u, v))
            elif d["kind"] == "access":
                by_vlan.setdefault(d["tag"], []).append((u, v))
        self._uf: dict[int | None, _UnionFind] = {}
        for vlan, vedges in by_vlan.items():
            uf = _UnionFind()
            for u, v in vedges:
                if not uf.union(self.cluster[u], self.cluster[v]):
                    self.loops.append(Loop(vlan, (u, v), bool(g.edges[u, v].get("implicit"))))
            self._uf[vlan] = uf

    def same(self, vlan: int | None, a: str, b: str) -> bool:
        """Whether a and b are in one broadcast domain of this VLAN."""
        ca, cb = self.cluster[a], self.cluster[b]
        if ca == cb:
            return True
        uf = self._uf.get(vlan)
        return uf is not None and uf.find(ca) == uf.find(cb)

    def members(self, vlan: int | None, node: str) -> set[str]:
        """Every node in node's broadcast domain of this VLAN (for small queries)."""
        uf = self._uf.get(vlan)
        root = uf.find(self.cluster[node]) if uf else self.cluster[node]
        clusters = {c for c in set(self.cluster.values()) if (uf.find(c) if uf else c) == root}
        return {n for n, c in self.cluster.items() if c in clusters}

    def vlan_edges(self, vlan: int) -> Iterable[tuple[str, str]]:
        return ((u, v) for u, v, d in self.g.edges(data=True) if d["kind"] in L2_FILTERED and carries(d, vlan))


# --- reachability ----------------------------------------------------------------


class Expect(str, enum.Enum):
    SAME_VLAN = "same-vlan"  # one broadcast domain
    ROUTED = "routed"  # different VLANs, both routed by the router
    BLOCKED = "blocked"


@dataclass(frozen=True)
class Station:
    """Something with an address that verify pings from or to."""

    node: str  # graph node id
    name: str
    host: str
    vlan: int | None
    address: str  # "10.100.0.5/24"
    is_host_address: bool = False


def families(topo: Topology) -> tuple[int, ...]:
    """The IP versions verify probes in, IPv4 first: those of the endpoints' and hosts'
    addresses, and IPv6 where a Docker network has it (its probe containers do)."""
    seen = {a.version for ep in topo.endpoints for a in ep.addresses}
    seen |= {a.version for h in topo.hosts.values() if h.management for a in h.management.addresses}
    if any(d.network and topo.vlans[d.vlan].stack(6) for h in topo.hosts.values() for d in h.docker):
        seen.add(6)
    return tuple(f for f in (4, 6) if f in seen) or (4,)


def stations(topo: Topology, g: nx.Graph, family: int = 4) -> list[Station]:
    """Endpoints plus each host's own addresses (which containers must not reach directly), in one IP family.

    A dual-stack endpoint or host is a station of each family, under the same name.
    """
    out = []
    vid = {v.name: v.id for v in topo.vlans.values()}
    for ep in topo.endpoints:
        addr = ep.address_of(family)
        if addr is not None:
            out.append(Station(nid("endpoint", ep.name), ep.name, ep.host, vid[ep.vlan], str(addr)))
    for host in topo.hosts.values():
        m = host.management
        if not m:
            continue
        if host.layout is Layout.FLAT and host.flat:
            node = nid("linux_bridge", host.name, host.flat.bridge)
        else:
            node = nid("internal", host.name, m.port)
        mvlan = host.management_vlan
        vlan = vid[mvlan] if mvlan else None
        for i, addr in enumerate(a for a in m.addresses if a.version == family):
            out.append(Station(node, f"{host.name}" + (f"#{i}" if i else ""), host.name, vlan, str(addr), True))
    return out


def expected(topo: Topology, g: nx.Graph, doms: Domains | None = None, family: int = 4) -> dict[tuple[str, str], Expect]:
    """Who should reach whom, from the graph alone, in one IP family: the router routes
    a VLAN in the families it has an address in (router, router6)."""
    doms = doms or Domains(g)
    sts = stations(topo, g, family)
    router_legs: dict[int, str] = {}
    if topo.router and topo.lab and topo.lab.switch:
        for vname in topo.router.vlans:
            router_legs[topo.vlans[vname].id] = nid("router_leg", topo.router.name, vname)
    routed_ids = set()
    for vname in topo.router.vlans if topo.router else ():
        st = topo.vlans[vname].stack(family)
        if st is not None and st.router is not None:
            routed_ids.add(topo.vlans[vname].id)

    def on_router(s: Station) -> bool:
        if s.vlan not in routed_ids:
            return False
        leg = router_legs.get(s.vlan)
        # Without a modelled switch (real hosts) the router is assumed on the trunk.
        return leg is None or doms.same(s.vlan, s.node, leg)

    out = {}
    for a in sts:
        for b in sts:
            if a is b or a.host == b.host and a.is_host_address and b.is_host_address:
                continue
            if a.vlan == b.vlan and doms.same(a.vlan, a.node, b.node):
                out[(a.name, b.name)] = Expect.SAME_VLAN
            elif a.vlan != b.vlan and on_router(a) and on_router(b):
                out[(a.name, b.name)] = Expect.ROUTED
            else:
                out[(a.name, b.name)] = Expect.BLOCKED
    return out
