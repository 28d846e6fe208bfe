"""One read of a host (ovsnet.current.Current) as a networkx graph of what exists.

Pure: no I/O. The graph speaks the topology graph's language
(ovsnet.topology.graph): nodes `kind:host/name` with the same kinds, and
trunk/access/patch/member edges, so the same renderers draw it. What it adds:

- every node names the plan resources it is (`resources`: `port:br-ovs/eth1`
  and `link:eth1` are one node), so drift.py can put the plan's verdicts on it;
- `owner`: the ovsnet topology in the object's mark, or None;
- Docker networks are nodes of their own (`docker_network`), on their bridge;
- what the host has beyond the layout (Docker's docker0, containers' veths,
  NICs no bridge uses) is there too, so the picture is the whole host.

The loopback, OVS's datapath devices and each OVS bridge's own local port
are left out: they are part of the machinery, not of the layout.
"""

from __future__ import annotations

from typing import Any, Mapping

import networkx as nx

from ovsnet.current import Current, DockerNetwork, Link, OvsBridge, OvsPort
from ovsnet.marks import DOCKER_VLAN_LABEL, LAB_ALIAS_PREFIX, LAB_KEY, alias_role
from ovsnet.topology.graph import host_id, nid

MACHINERY = frozenset({"lo", "ovs-system", "ovs-netdev"})
TRUNK_MODES = frozenset({"trunk", "native-untagged", "native-tagged"})
# Docker names the bridge of a network created without a bridge name "br-" + its id's first 12 characters.
DOCKER_BRIDGE_PREFIX = "br-"


def is_trunk(p: OvsPort) -> bool:
    """OVS's own rule: a port with no tag (and not forced to access) carries its trunks, or every VLAN."""
    return p.vlan_mode in TRUNK_MODES or (p.tag is None and p.vlan_mode != "access")


def vlan_edge(p: OvsPort) -> dict[str, Any]:
    """The edge attributes of a port on its bridge, in the topology graph's words."""
    if is_trunk(p):
        native = p.tag if p.vlan_mode == "native-untagged" else None
        vlans = frozenset(p.trunks) | ({native} if native is not None else frozenset())
        out: dict[str, Any] = {"kind": "trunk", "vlans": vlans, "native": native, "vlan_mode": p.vlan_mode}
        if not p.trunks:
            out["all_vlans"] = True  # OVS: an empty trunks column carries every VLAN
        if p.vlan_mode == "native-tagged":
            out["native_tagged"] = p.tag
        return out
    return {"kind": "access", "tag": p.tag, "vlan_mode": p.vlan_mode}


def docker_bridge(net: DockerNetwork) -> str | None:
    """The Linux bridge a bridge-driver network uses: named in its options, or Docker's own name."""
    if net.driver != "bridge":
        return None
    return net.bridge or (DOCKER_BRIDGE_PREFIX + net.id[:12] if net.id else None)


def build(host: str, current: Current, topology: str | None = None) -> nx.Graph:
    """What exists on `host`, as a graph; `topology` only names the graph."""
    g = nx.Graph(name=topology or host, live=True, hosts=[host], dns={host: current.dns})
    g.add_node(host_id(host), kind="host", host=host, name=host)
    facts = _LinkFacts(current)
    ids: dict[str, str] = {}  # link or port name -> its node
    bridges = current.ovs.bridges
    for b in sorted(bridges.values(), key=lambda b: b.name):
        _add_ovs_bridge(g, host, b)
    for p in sorted(current.ovs.ports.values(), key=lambda p: (p.bridge, p.name)):
        if p.name == p.bridge or p.bridge not in bridges:
            continue  # the bridge's own local port is the bridge
        ids[p.name] = _add_port(g, host, p, facts)
        if p.is_bond:
            ids |= _add_members(g, host, p, facts)
    links = current.linux.links
    for link in sorted(links.values(), key=lambda lk: lk.name):
        if link.name in MACHINERY or link.name in bridges or link.name in ids:
            continue
        ids[link.name] = _add_link(g, host, link, facts)
    _add_link_edges(g, links, ids)
    for net in sorted((current.docker or {}).values(), key=lambda n: n.name):
        _add_network(g, host, net, ids)
    _tint(g, host)
    return g


class _LinkFacts:
    """What netlink says of a link by name: addresses, default routes, MTU, state, its mark."""

    def __init__(self, current: Current):
        self.links = current.linux.links
        self.addresses: dict[str, list[str]] = {}
        for a in current.linux.addresses:
            self.addresses.setdefault(a.ifname, []).append(a.cidr)
        self.routes: dict[str, list[str]] = {}
        for r in current.linux.routes:
            if r.dst == "default" and r.gateway:
                self.routes.setdefault(r.ifname, []).append(f"default via {r.gateway}")

    def of(self, name: str) -> dict[str, Any]:
        link = self.links.get(name)
        if link is None:
            return {}
        out: dict[str, Any] = {"mtu": link.mtu, "up": link.up, "index": link.index}
        if self.addresses.get(name):
            out["addresses"] = tuple(self.addresses[name])
        if self.routes.get(name):
            out["routes"] = tuple(self.routes[name])
        if link.alias:
            out["alias"] = link.alias
        return out


def _add_ovs_bridge(g: nx.Graph, host: str, b: OvsBridge) -> None:
    node = nid("ovs", host, b.name)
    g.add_node(node, kind="ovs_bridge", host=host, name=b.name, datapath=b.datapath_type or "system",
               resources=(f"bridge:{b.name}",), owner=b.owner, lab=b.external_ids.get(LAB_KEY))
    g.add_edge(host_id(host), node, kind="contains")


def _port_kind(p: OvsPort, links: Mapping[str, Link]) -> str:
    if len(p.interfaces) != 1:
        return "bond" if p.interfaces else "iface"  # a bond: several interfaces on one port
    itype = p.interfaces[0].type
    if itype == "internal":
        return "internal"
    if itype:
        return "iface"  # patch, tunnel, tap... ports
    link = links.get(p.name)
    if link is not None and link.kind == "veth" and link.peer in links:
        return "veth"
    return "nic" if is_trunk(p) else "iface"


def _add_port(g: nx.Graph, host: str, p: OvsPort, facts: _LinkFacts) -> str:
    kind = _port_kind(p, facts.links)
    node = nid(kind, host, p.name)
    link = facts.links.get(p.name)
    resources = (f"port:{p.bridge}/{p.name}",) + ((f"link:{p.name}",) if link else ())
    attrs = facts.of(p.name)
    errors = [i.error for i in p.interfaces if i.error]
    if errors:
        attrs["error"] = errors[0]
    if p.is_bond:
        attrs |= {"mode": p.bond_mode or "active-backup", "lacp": p.lacp or "off", "members": tuple(i.name for i in p.interfaces)}
        attrs |= {"lacp_time": p.other_config["lacp-time"]} if "lacp-time" in p.other_config else {}
    elif p.interfaces and p.interfaces[0].type and p.interfaces[0].type != "internal":
        attrs["iface_type"] = p.interfaces[0].type
    g.add_node(node, kind=kind, host=host, name=p.name, resources=resources, bridge=p.bridge,
               owner=p.owner or (link and link.owner), role=p.role, lab=p.external_ids.get(LAB_KEY), **attrs)
    g.add_edge(host_id(host), node, kind="contains")
    g.add_edge(nid("ovs", host, p.bridge), node, **vlan_edge(p))
    return node


def _add_members(g: nx.Graph, host: str, p: OvsPort, facts: _LinkFacts) -> dict[str, str]:
    """A bond's NICs, each joined to the bond by a `bundle` link: the bond's members drawn as one bundle."""
    bond = nid("bond", host, p.name)
    out = {}
    for i in p.interfaces:
        node = nid("nic", host, i.name)
        link = facts.links.get(i.name)
        attrs = facts.of(i.name)
        if i.link_state == "down":
            attrs["link_down"] = True
        if i.lacp_current is False:
            attrs["lacp_pending"] = True
        g.add_node(node, kind="nic", host=host, name=i.name, resources=(f"link:{i.name}",),
                   owner=link.owner if link else None, role=None, **attrs)
        g.add_edge(host_id(host), node, kind="contains")
        g.add_edge(bond, node, kind="bundle", bundle=bond)
        out[i.name] = node
    return out


def _add_link(g: nx.Graph, host: str, link: Link, facts: _LinkFacts) -> str:
    if link.kind == "bridge":
        kind = "linux_bridge"
    elif link.kind == "veth" and link.peer in facts.links:
        kind = "veth"
    elif link.master is not None:
        kind = "iface"  # in a bridge with its peer elsewhere: a container's or a test endpoint's
    else:
        kind = "nic"
    node = nid(kind, host, link.name)
    extra = {"link_kind": link.kind} if link.kind and kind in ("nic", "iface") else {}
    lab = link.alias[len(LAB_ALIAS_PREFIX):] if link.alias and link.alias.startswith(LAB_ALIAS_PREFIX) else None
    g.add_node(node, kind=kind, host=host, name=link.name, resources=(f"link:{link.name}",),
               owner=link.owner, role=alias_role(link.alias), lab=lab, **facts.of(link.name), **extra)
    if kind == "linux_bridge":
        g.add_edge(host_id(host), node, kind="contains")
    return node


def _add_link_edges(g: nx.Graph, links: Mapping[str, Link], ids: Mapping[str, str]) -> None:
    for link in links.values():
        node = ids.get(link.name)
        if node is None:
            continue
        master = ids.get(link.master or "")
        # OVS ports on the kernel datapath have ovs-system for master: not a Linux bridge.
        if master is not None and g.nodes[master]["kind"] == "linux_bridge":
            g.add_edge(node, master, kind="member")
        peer = ids.get(link.peer or "")
        if peer is not None and link.kind == "veth" and not g.has_edge(node, peer):
            g.add_edge(node, peer, kind="patch")


def _add_network(g: nx.Graph, host: str, net: DockerNetwork, ids: Mapping[str, str]) -> None:
    bridge = docker_bridge(net)
    if bridge is None:
        return  # host, none, macvlan...: no bridge of the host's to hang it on
    node = nid("docker_network", host, net.name)
    g.add_node(node, kind="docker_network", host=host, name=net.name, resources=(f"docker-network:{net.name}",),
               owner=net.owner, on_bridge=bridge, subnet=net.subnet, gateway=net.gateway, ip_range=net.ip_range,
               subnet6=net.subnet6, gateway6=net.gateway6, ip_range6=net.ip_range6,
               network_mtu=net.mtu, containers=net.containers, vlan_label=net.labels.get(DOCKER_VLAN_LABEL))
    on = ids.get(bridge)
    if on is not None:
        g.add_edge(node, on, kind="member")
    else:
        g.add_edge(host_id(host), node, kind="contains")


def _tint(g: nx.Graph, host: str) -> None:
    """A Linux bridge patched into OVS on one VLAN lives in that VLAN (and so do its Docker networks)."""

    def along(n: str, kind: str) -> list[str]:
        return [m for m in g.neighbors(n) if g.edges[n, m].get("kind") == kind]

    for n, d in list(g.nodes(data=True)):
        if d.get("kind") != "linux_bridge" or d.get("host") != host:
            continue
        tags = {g.edges[peer, b]["tag"] for member in along(n, "member") for peer in along(member, "patch")
                for b in along(peer, "access") if g.edges[peer, b].get("tag") is not None}
        if len(tags) == 1:
            vid = tags.pop()
            d["vlan"] = vid
            for m in along(n, "member"):
                if g.nodes[m].get("kind") == "docker_network":
                    g.nodes[m]["vlan"] = vid
