"""What the three pictures of the bridge graph share (render/tree.py, dot.py,
mermaid.py): VLAN colours, the words on nodes and edges, one group per host,
switch and router, and the top-to-bottom order.

Everything here is a pure function of the graph built by `ovsnet.topology.graph`.
The layout follows how a packet travels: containers at the top, then their
Linux bridges and veth pairs, the OVS bridge, the NIC, and the lab switch and
router at the bottom, so hosts sit side by side above the wire they share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import networkx as nx

from ovsnet.topology.graph import UPSTREAM

# Ordered so that the first VLANs of a picture get the hues that differ most;
# all dark enough for white text in the legend, and no grey, which is kept
# for untagged traffic and plain links.
PALETTE: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#d62728",  # red
    "#2ca02c",  # green
    "#e6730a",  # orange
    "#9467bd",  # purple
    "#138d90",  # teal
    "#8c564b",  # brown
    "#d4479e",  # pink
    "#8a8a17",  # olive
    "#393b79",  # indigo
    "#637939",  # moss
    "#843c39",  # maroon
)
UNTAGGED = "#555555"
PLAIN = "#444444"
# Past this many VLANs a trunk label becomes unreadable; the rest is counted.
MAX_LABEL_VLANS = 16
DEFAULT_MTU = 1500

# Rank of each kind, top to bottom; edges are written from the higher rank
# down so `dot` stacks them in this order.
LEVEL: dict[str, int] = {
    "host": 0,
    "endpoint": 0,
    "docker_network": 0,
    "linux_bridge": 1,
    "veth": 2,  # the bridge end; the OVS end is one lower (see level)
    "internal": 3,
    "iface": 3,
    "ovs_bridge": 4,
    "bond": 5,  # between the bridge and its NICs: the bundle fans out below it
    "nic": 6,
    "switch_port": 7,
    "switch": 8,
    "router_leg": 9,
    "router": 10,
}
# Which node starts a group's tree, and the order of siblings in it.
ORDER: dict[str, int] = {
    "ovs_bridge": 0,
    "switch": 1,
    "router": 2,
    "linux_bridge": 3,
    "bond": 4,
    "nic": 4,
    "internal": 5,
    "veth": 6,
    "iface": 7,
    "switch_port": 8,
    "router_leg": 9,
    "endpoint": 10,
    "docker_network": 11,
    "host": 12,
}

_KIND_TEXT: dict[str, str] = {
    "ovs_bridge": "OVS bridge",
    "linux_bridge": "Linux bridge",
    "nic": "NIC",
    "bond": "OVS bond",
    "veth": "veth",
    "internal": "internal port",
    "iface": "interface",
    "endpoint": "endpoint",
    "switch": "lab switch",
    "switch_port": "switch port",
    "router": "router",
    "router_leg": "router leg",
    "host": "host",
    "docker_network": "Docker network",
}


# VLAN id -> colour; None (untagged, or several VLANs) is never a key, but may be asked for.
Colours = dict[int | None, str]


def vlan_colours(g: nx.Graph) -> Colours:
    """One colour per VLAN: the palette in order of VLAN id.

    Ranking by id (rather than `id % len(PALETTE)`) keeps the VLANs of one
    picture distinct and gives them the most different hues first; colours
    repeat only past the palette's length.
    """
    return {vid: PALETTE[i % len(PALETTE)] for i, vid in enumerate(sorted(_all_vlans(g)))}


def _all_vlans(g: nx.Graph) -> set[int]:
    # Edges may carry VLANs the name table lacks (a hand-built graph).
    vlans = set(g.graph.get("vlans", {}))
    for _, _, d in g.edges(data=True):
        if d.get("kind") == "trunk":
            vlans |= set(d.get("vlans") or ())
        elif d.get("kind") == "access" and d.get("tag") is not None:
            vlans.add(d["tag"])
    return vlans


def vlan_list(vlans: Iterable[int]) -> str:
    """"10,100-199,200": runs of three or more collapse to a range, as OVS writes them."""
    ids = sorted(set(vlans))
    parts: list[str] = []
    i = 0
    while i < len(ids):
        j = i
        while j + 1 < len(ids) and ids[j + 1] == ids[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{ids[i]}-{ids[j]}")
            i = j + 1
        else:
            parts.append(str(ids[i]))
            i += 1
    if len(parts) > MAX_LABEL_VLANS:
        rest = len(parts) - MAX_LABEL_VLANS
        parts = parts[:MAX_LABEL_VLANS] + [f"… +{rest} more"]
    return ",".join(parts)


def tag_text(g: nx.Graph, tag: int | None) -> str:
    if tag is None:
        return "untagged"
    name = g.graph.get("vlans", {}).get(tag)
    return f"tag {tag} ({name})" if name else f"tag {tag}"


def trunk_text(vlans: Iterable[int], native: int | None, every: bool = False) -> str:
    # `every`: a live trunk with no VLAN list, which OVS takes as every VLAN.
    text = "trunk all VLANs" if every else f"trunk {vlan_list(vlans)}"
    return f"{text} (native {native})" if native is not None else text


def edge_text(g: nx.Graph, d: dict) -> str:
    """The words on an edge, the same in every picture."""
    kind = d.get("kind", "")
    if kind == "trunk":
        text = trunk_text(d.get("vlans") or (), d.get("native"), bool(d.get("all_vlans")))
        return text + (f" (native {d['native_tagged']} tagged)" if d.get("native_tagged") is not None else "")
    if kind == "access":
        return tag_text(g, d.get("tag"))
    return {"patch": "veth pair", "member": "attached", "cable": "cable", "routes": "routes", "bundle": "bond member"}.get(kind, kind)


def node_details(g: nx.Graph, n: str) -> list[str]:
    """What a node is, beyond its name: kind first, then the facts that matter."""
    d = g.nodes[n]
    kind = d.get("kind", "")
    what = _KIND_TEXT.get(kind, kind)
    # "router" named "router" needs saying once.
    if d.get("implicit") and kind in ("switch", "switch_port"):
        # Not in the file: drawn so the reader sees what verify expects of the real network.
        what = "assumed: trunks what each uplink carries" if kind == "switch" else "assumed " + what
    lines = [] if what == d.get("name") else [what]
    if kind == "ovs_bridge" and d.get("datapath"):
        lines.append(f"datapath {d['datapath']}")
    if kind == "linux_bridge":
        if d.get("flat"):
            lines.append("flat: NIC as a port")
        if d.get("network"):
            lines.append(f"Docker network {d['network']}")
        if d.get("subnets"):
            lines.append(" + ".join(d["subnets"]))
        if d.get("flat") and d.get("vlan") is not None:
            lines.append(f"VLAN {_vlan_name(g, d['vlan'])}")
    if kind == "nic" and d.get("native") is not None:
        lines.append(f"untagged VLAN {_vlan_name(g, d['native'])}")
    if kind == "bond":
        lines += bond_lines(d)
    if kind == "docker_network":
        lines += _network_details(d)
    lines += list(d.get("addresses") or ())
    lines += list(d.get("routes") or ())  # live graphs only, as are the lines below
    mtu = d.get("mtu")
    if mtu and mtu != DEFAULT_MTU:
        lines.append(f"mtu {mtu}")
    if d.get("up") is False:
        lines.append("down")
    if d.get("link_down"):
        lines.append("link down")  # a bond member without carrier (live graphs)
    if d.get("lacp_pending"):
        lines.append("LACP not negotiated")
    if d.get("iface_type"):
        lines.append(f"type {d['iface_type']}")
    if d.get("error"):
        lines.append(f"error: {d['error']}")
    if d.get("lab"):
        lines.append(f"lab: {d['lab']}")
    return lines


def bond_lines(d: dict) -> list[str]:
    """A bond's mode and LACP (file or live graph), and its members."""
    lacp = d.get("lacp") or "off"
    how = f"LACP {lacp}" + (f" ({d['lacp_time']})" if lacp != "off" and d.get("lacp_time") == "fast" else "")
    out = [f"{d.get('mode') or 'active-backup'}, {how}"]
    if d.get("members"):
        out.append("members " + ", ".join(d["members"]))
    return out


def _network_details(d: dict) -> list[str]:
    out = [f"{k} {d[k]}" for k in ("subnet", "gateway", "ip_range", "subnet6", "gateway6", "ip_range6") if d.get(k)]
    if d.get("network_mtu") and d["network_mtu"] != DEFAULT_MTU:
        out.append(f"mtu {d['network_mtu']}")
    containers = d.get("containers") or ()
    if containers:
        shown = ", ".join(containers[:3]) + (f" +{len(containers) - 3}" if len(containers) > 3 else "")
        out.append(f"containers: {shown}")
    return out


def _vlan_name(g: nx.Graph, vid: int) -> str:
    name = g.graph.get("vlans", {}).get(vid)
    return f"{vid} ({name})" if name else str(vid)


def node_vlan(g: nx.Graph, n: str) -> int | None:
    """The one VLAN a node lives in, when it has exactly one (for tinting)."""
    d = g.nodes[n]
    if d.get("vlan") is not None:
        return d["vlan"]
    if d.get("kind") == "router_leg":
        by_name = {name: vid for vid, name in g.graph.get("vlans", {}).items()}
        return by_name.get(d.get("name"))
    tags = {e["tag"] for _, _, e in g.edges(n, data=True) if e.get("kind") == "access"}
    return tags.pop() if len(tags) == 1 and d.get("kind") not in ("ovs_bridge", "switch") else None


def link_vlan(g: nx.Graph, u: str, v: str, d: dict) -> int | None:
    """The VLAN an edge carries when it carries exactly one (None: several or unknown)."""
    kind = d.get("kind")
    if kind == "access":
        return d.get("tag")
    if kind in ("patch", "member"):
        for n in (u, v):
            vid = node_vlan(g, n)
            if vid is not None:
                return vid
    return None


@dataclass(frozen=True)
class Group:
    """One box of the picture: a host, the lab switch, or the router."""

    key: str  # "role:name", unique among groups
    role: str  # "host", "switch", "router" or "other" (nodes naming no known host)
    name: str
    nodes: tuple[str, ...]

    @property
    def title(self) -> str:
        if self.role == "switch":
            if self.name == UPSTREAM:
                return "upstream network (assumed)"
            return "lab switch" if self.name == "switch" else f"lab switch {self.name}"
        if self.role == "router":
            return "router" if self.name == "router" else f"router {self.name}"
        return self.name or "(no host)"

    @property
    def cluster_id(self) -> str:
        # Host names cannot contain ':', so "cluster_switch:x" never meets a host.
        return f"cluster_{self.name}" if self.role == "host" else f"cluster_{self.role}:{self.name}"


def groups(g: nx.Graph) -> list[Group]:
    """Nodes by the `host` attribute; hosts first (sorted), then switch, router, rest."""
    by_host: dict[str, list[str]] = {}
    for n, d in g.nodes(data=True):
        by_host.setdefault(str(d.get("host") or ""), []).append(n)
    out = []
    for name, nodes in by_host.items():
        kinds = {g.nodes[n].get("kind") for n in nodes}
        role = next((r for r in ("host", "switch", "router") if r in kinds), "other")
        out.append(Group(f"{role}:{name}", role, name, tuple(sorted(nodes, key=lambda n: _sort_key(g, n)))))
    rank = {"host": 0, "switch": 1, "router": 2, "other": 3}
    return sorted(out, key=lambda grp: (rank[grp.role], grp.name))


def _sort_key(g: nx.Graph, n: str) -> tuple[int, str]:
    return (ORDER.get(g.nodes[n].get("kind", ""), 99), n)


def level(g: nx.Graph, n: str) -> int:
    kind = g.nodes[n].get("kind", "")
    if kind == "veth" and any(g.nodes[m].get("kind") == "ovs_bridge" for m in g.neighbors(n)):
        return LEVEL["internal"]  # the veth end that is an OVS port sits with the other ports
    return LEVEL.get(kind, 0)


def drawn_edges(g: nx.Graph) -> list[tuple[str, str, dict]]:
    """Every edge but `contains`, oriented top to bottom, in a stable order."""
    out = []
    for u, v, d in g.edges(data=True):
        if d.get("kind") == "contains":
            continue
        if (level(g, u), u) > (level(g, v), v):
            u, v = v, u
        out.append((u, v, d))
    return sorted(out, key=lambda e: (level(g, e[0]), e[0], e[1]))


def drawn_nodes(g: nx.Graph, grp: Group) -> list[str]:
    # A host node only holds `contains` edges: its box is the cluster itself.
    return [n for n in grp.nodes if g.nodes[n].get("kind") != "host" or _has_drawn_edge(g, n)]


def _has_drawn_edge(g: nx.Graph, n: str) -> bool:
    return any(d.get("kind") != "contains" for _, _, d in g.edges(n, data=True))


def lighten(colour: str, keep: float = 0.2) -> str:
    """A pale fill of a palette colour, so black text on it stays readable."""
    r, gr, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = (round(255 - (255 - c) * keep) for c in (r, gr, b))
    return "#" + "".join(f"{c:02x}" for c in mix)
