"""Which entry of the topology file made a node or edge of the graph, as a key path.

Whole-topology findings (an L2 loop) are about graph edges; a person fixes
them in the file, so each is given the key path of the entry that made the
edge: a cable (`lab.cables[2]`), an uplink (`hosts.node1.uplinks[1]`), a
Docker bridge, an endpoint. The position scanner then gives that its line.
"""

from __future__ import annotations

import networkx as nx

from ovsnet.topology.model import Topology

# The more specific end of an edge names it: an endpoint's access port is the
# endpoint's entry, not the bridge's. Bridges and switches name nothing.
_NAMING_ORDER = ("endpoint", "iface", "internal", "router_leg", "veth", "nic", "bond", "switch_port", "linux_bridge")


def edge_path(topo: Topology, g: nx.Graph, u: str, v: str) -> str:
    """The key path of the entry in the file that made the graph edge u - v ("" if none)."""

    def rank(node: str) -> int:
        kind = g.nodes[node].get("kind")
        return _NAMING_ORDER.index(kind) if kind in _NAMING_ORDER else len(_NAMING_ORDER)

    for node in sorted((u, v), key=rank):
        path = _node_path(topo, g, node)
        if path:
            return path
    return ""


def _node_path(topo: Topology, g: nx.Graph, node: str) -> str:
    data = g.nodes[node]
    kind, name = data.get("kind"), data.get("name")
    host = topo.hosts.get(data.get("host", ""))
    if kind == "endpoint":
        return next((f"endpoints[{i}]" for i, ep in enumerate(topo.endpoints) if ep.name == name), "")
    if kind == "router_leg" and topo.router:
        return next((f"router.vlans[{i}]" for i, vname in enumerate(topo.router.vlans) if vname == name), "")
    if kind == "switch_port":
        # A switch port exists for the NIC cabled to it: that cable (or uplink) is its entry.
        nic = next((n for n in g.neighbors(node) if g.nodes[n].get("kind") == "nic"), None)
        return _node_path(topo, g, nic) if nic else ""
    if host is None:
        return ""
    p = f"hosts.{host.name}"
    if kind == "nic":
        if topo.lab:
            for i, c in enumerate(topo.lab.cables):
                if any(end.node == host.name and end.nic == name for end in (c.a, c.b)):
                    return f"lab.cables[{i}]"
        if host.flat and host.flat.nic == name:
            return f"{p}.flat"
        return next((f"{p}.uplinks[{i}]" for i, up in enumerate(host.uplinks) if name in up.members), "")
    if kind == "bond":
        return next((f"{p}.uplinks[{i}]" for i, up in enumerate(host.uplinks) if up.bond and up.bond.name == name), "")
    if kind in ("veth", "linux_bridge"):
        if host.flat and host.flat.bridge == name:
            return f"{p}.flat"
        return next((f"{p}.docker[{i}]" for i, d in enumerate(host.docker) if name in (d.bridge, d.patch_ovs, d.patch_bridge)), "")
    if kind == "internal":
        return f"{p}.management"
    if kind == "iface":
        return next((f"{p}.access_ports[{i}]" for i, ap in enumerate(host.access_ports) if ap.interface == name), "")
    return ""
