"""Pictures of the bridge graph: Graphviz DOT, Mermaid, and a terminal tree.

Everything here is a pure function of the graph built by `ovsnet.topology.graph`,
except `render_file`, which writes a file and may run Graphviz's `dot`.

The layout follows how a packet travels: containers at the top, then their
Linux bridges and veth pairs, the OVS bridge, the NIC, and the lab switch and
router at the bottom, so hosts sit side by side above the wire they share.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import networkx as nx

from ovsnet.errors import BackendError, UsageError
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
# A trunk drawn as more parallel lines than this is just a smear.
MAX_TRUNK_LINES = 8
# Past this many VLANs a trunk label becomes unreadable; the rest is counted.
MAX_LABEL_VLANS = 16
DEFAULT_MTU = 1500
# Prefix of the invisible nodes that order the hosts; no graph id has this form.
_SPINE = "picture:/host-order"

# Rank of each kind, top to bottom; edges are written from the higher rank
# down so `dot` stacks them in this order.
_LEVEL: dict[str, int] = {
    "host": 0,
    "endpoint": 0,
    "linux_bridge": 1,
    "veth": 2,  # the bridge end; the OVS end is one lower (see _level)
    "internal": 3,
    "iface": 3,
    "ovs_bridge": 4,
    "nic": 5,
    "switch_port": 6,
    "switch": 7,
    "router_leg": 8,
    "router": 9,
}
# Which node starts a group's tree, and the order of siblings in it.
_ORDER: dict[str, int] = {
    "ovs_bridge": 0,
    "switch": 1,
    "router": 2,
    "linux_bridge": 3,
    "nic": 4,
    "internal": 5,
    "veth": 6,
    "iface": 7,
    "switch_port": 8,
    "router_leg": 9,
    "endpoint": 10,
    "host": 11,
}

_KIND_TEXT: dict[str, str] = {
    "ovs_bridge": "OVS bridge",
    "linux_bridge": "Linux bridge",
    "nic": "NIC",
    "veth": "veth",
    "internal": "internal port",
    "iface": "interface",
    "endpoint": "endpoint",
    "switch": "lab switch",
    "switch_port": "switch port",
    "router": "router",
    "router_leg": "router leg",
    "host": "host",
}


# --- shared: VLANs, labels, groups ----------------------------------------------


def vlan_colours(g: nx.Graph) -> dict[int, str]:
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


def trunk_text(vlans: Iterable[int], native: int | None) -> str:
    text = f"trunk {vlan_list(vlans)}"
    return f"{text} (native {native})" if native is not None else text


def edge_text(g: nx.Graph, d: dict) -> str:
    """The words on an edge, the same in every picture."""
    kind = d.get("kind", "")
    if kind == "trunk":
        return trunk_text(d.get("vlans") or (), d.get("native"))
    if kind == "access":
        return tag_text(g, d.get("tag"))
    return {"patch": "veth pair", "member": "attached", "cable": "cable", "routes": "routes"}.get(kind, kind)


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
        if d.get("flat") and d.get("vlan") is not None:
            lines.append(f"VLAN {_vlan_name(g, d['vlan'])}")
    if kind == "nic" and d.get("native") is not None:
        lines.append(f"untagged VLAN {_vlan_name(g, d['native'])}")
    lines += list(d.get("addresses") or ())
    mtu = d.get("mtu")
    if mtu and mtu != DEFAULT_MTU:
        lines.append(f"mtu {mtu}")
    return lines


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
    return (_ORDER.get(g.nodes[n].get("kind", ""), 99), n)


def _level(g: nx.Graph, n: str) -> int:
    kind = g.nodes[n].get("kind", "")
    if kind == "veth" and any(g.nodes[m].get("kind") == "ovs_bridge" for m in g.neighbors(n)):
        return _LEVEL["internal"]  # the veth end that is an OVS port sits with the other ports
    return _LEVEL.get(kind, 0)


def drawn_edges(g: nx.Graph) -> list[tuple[str, str, dict]]:
    """Every edge but `contains`, oriented top to bottom, in a stable order."""
    out = []
    for u, v, d in g.edges(data=True):
        if d.get("kind") == "contains":
            continue
        if (_level(g, u), u) > (_level(g, v), v):
            u, v = v, u
        out.append((u, v, d))
    return sorted(out, key=lambda e: (_level(g, e[0]), e[0], e[1]))


def _drawn_nodes(g: nx.Graph, grp: Group) -> list[str]:
    # A host node only holds `contains` edges: its box is the cluster itself.
    return [n for n in grp.nodes if g.nodes[n].get("kind") != "host" or _has_drawn_edge(g, n)]


def _has_drawn_edge(g: nx.Graph, n: str) -> bool:
    return any(d.get("kind") != "contains" for _, _, d in g.edges(n, data=True))


def _lighten(colour: str, keep: float = 0.2) -> str:
    """A pale fill of a palette colour, so black text on it stays readable."""
    r, gr, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    mix = (round(255 - (255 - c) * keep) for c in (r, gr, b))
    return "#" + "".join(f"{c:02x}" for c in mix)


# --- Graphviz DOT -----------------------------------------------------------------

# Shapes chosen to read at a glance: boxes for bridges, arrow-tipped tags for
# ports, rounded boxes for what holds an address, a circle for the router.
_DOT_NODE: dict[str, dict[str, str]] = {
    "ovs_bridge": {"shape": "box3d", "fillcolor": "#d6e6f5", "style": "filled", "penwidth": "1.5"},
    "linux_bridge": {"shape": "box", "fillcolor": "#eeeeee", "style": "filled"},
    "nic": {"shape": "box", "fillcolor": "#cccccc", "style": "filled", "peripheries": "2"},
    # Ports are arrow-tipped; the wider margin keeps text clear of the tip.
    "veth": {"shape": "cds", "fillcolor": "#ffffff", "style": "filled", "fontsize": "10", "margin": "0.2,0.08"},
    "internal": {"shape": "cds", "fillcolor": "#fff7d6", "style": "filled", "fontsize": "10", "margin": "0.2,0.08"},
    "iface": {"shape": "cds", "fillcolor": "#ffffff", "style": "filled", "fontsize": "10", "margin": "0.2,0.08"},
    "endpoint": {"shape": "box", "fillcolor": "#ffffff", "style": "rounded,filled"},
    "switch": {"shape": "box", "fillcolor": "#d9d9d9", "style": "filled", "penwidth": "2", "width": "2.5"},
    "switch_port": {"shape": "box", "fillcolor": "#f2f2f2", "style": "filled", "fontsize": "10"},
    "router": {"shape": "circle", "fillcolor": "#d9d9d9", "style": "filled", "penwidth": "2"},
    "router_leg": {"shape": "box", "fillcolor": "#ffffff", "style": "rounded,filled"},
    "host": {"shape": "box", "style": "dashed"},
}


def _dq(text: str) -> str:
    """A DOT double-quoted string: backslashes and quotes escaped, so no
    `\\N`-style escape or stray quote in a name can change the picture."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", " ").replace("\n", " ") + '"'


def _dot_label(lines: Iterable[str]) -> str:
    # Escape each line first, then join with DOT's own centred-newline escape.
    return '"' + "\\n".join(_dq(line)[1:-1] for line in lines) + '"'


def _dot_attrs(attrs: dict[str, str]) -> str:
    # Labels arrive already quoted by _dot_label; everything else is quoted here.
    return "[" + ", ".join(f"{k}={v if k == 'label' else _dq(v)}" for k, v in attrs.items()) + "]"


def _dot_node(g: nx.Graph, n: str, colours: dict[int, str]) -> str:
    d = g.nodes[n]
    kind = d.get("kind", "")
    attrs = dict(_DOT_NODE.get(kind, {"shape": "box"}))
    vid = node_vlan(g, n)
    if kind in ("endpoint", "linux_bridge", "router_leg") and vid in colours:
        attrs["fillcolor"] = _lighten(colours[vid])
        attrs["color"] = colours[vid]
    attrs["label"] = _dot_label([str(d.get("name", n)), *node_details(g, n)])
    attrs["tooltip"] = n
    return f"{_dq(n)} {_dot_attrs(attrs)};"


def _dot_edge(g: nx.Graph, u: str, v: str, d: dict, colours: dict[int, str]) -> str:
    kind = d.get("kind", "")
    attrs: dict[str, str] = {"tooltip": f"{u} -- {v} ({kind})"}
    label = _dot_label([edge_text(g, d)])
    if kind == "trunk":
        colour = _trunk_colour(sorted(d.get("vlans") or ()), colours)
        attrs |= {"color": colour, "penwidth": "3", "style": "bold", "label": label, "fontsize": "10"}
    elif kind == "access":
        colour = colours.get(d.get("tag"), UNTAGGED)
        attrs |= {"color": colour, "fontcolor": colour, "penwidth": "2", "label": label, "fontsize": "10"}
    elif kind == "cable":
        attrs |= {"style": "dashed", "color": PLAIN, "penwidth": "2", "label": label, "fontsize": "9"}
    elif kind == "patch":
        colour = colours.get(link_vlan(g, u, v, d), PLAIN)
        attrs |= {"style": "dotted", "color": colour, "penwidth": "2"}
    elif kind == "member":
        attrs |= {"color": colours.get(link_vlan(g, u, v, d), PLAIN), "penwidth": "1.5"}
    elif kind == "routes":
        attrs |= {"color": "#888888", "penwidth": "0.8"}
    else:
        attrs["label"] = label
    return f"{_dq(u)} -- {_dq(v)} {_dot_attrs(attrs)};"


def _trunk_colour(vlans: list[int], colours: dict[int, str]) -> str:
    """Parallel bands, one per VLAN, split by thin white gaps so hues do not blur
    together; a plain dark line once the bands would be too many to count."""
    if not 0 < len(vlans) <= MAX_TRUNK_LINES:
        return PLAIN
    bands = [colours.get(x, PLAIN) for x in vlans]
    return ":white:".join(bands) if len(bands) > 1 else f"{bands[0]}:white:{bands[0]}"


def _dot_legend(g: nx.Graph, colours: dict[int, str]) -> str:
    """Title and a VLAN colour key, as an HTML-like label so it needs no fake nodes."""
    names = g.graph.get("vlans", {})
    cells = "".join(
        f'<td bgcolor="{colours[vid]}"><font color="white">'
        f'<b>{vid}</b> {html.escape(str(names.get(vid, "")))}</font></td>'
        for vid in sorted(colours)
    )
    title = html.escape(str(g.graph.get("name") or "topology"))
    keys = f"<tr>{cells}</tr>" if cells else ""
    span = max(1, len(colours))
    return (
        '<<table border="0" cellborder="0" cellspacing="4" cellpadding="4">'
        f'<tr><td colspan="{span}"><font point-size="18"><b>{title}</b></font></td></tr>{keys}</table>>'
    )


def to_dot(g: nx.Graph) -> str:
    """The graph as Graphviz DOT: one cluster per host, switch and router; VLANs in colour."""
    colours = vlan_colours(g)
    out = [
        f"graph {_dq(str(g.graph.get('name') or 'topology'))} {{",
        '  graph [rankdir="TB", newrank="true", nodesep="0.35", ranksep="0.55", fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize="11", margin="0.12,0.05"];',
        '  edge [fontname="Helvetica", fontsize="10"];',
    ]
    # Before the clusters, so `dot` meets the row of pegs first.
    out += _dot_host_order(g)
    for grp in groups(g):
        nodes = _drawn_nodes(g, grp)
        if not nodes:
            continue
        indent = "  "
        if grp.role != "other":
            style = "rounded,filled" if grp.role == "host" else "rounded,dashed"
            fill = "#fbfbfb" if grp.role == "host" else "#ffffff"
            # Cables drop into the switch's box from the hosts above and cross a
            # title at its top; its bottom-right corner is where no line goes.
            loc, just = ("t", "l") if grp.role == "host" else ("b", "r")
            out.append(f"  subgraph {_dq(grp.cluster_id)} {{")
            out.append(
                f"    graph [label={_dot_label([grp.title])}, style={_dq(style)}, fillcolor={_dq(fill)}, "
                f'color="#999999", fontsize="16", labelloc={_dq(loc)}, labeljust={_dq(just)}];'
            )
            indent = "    "
        out += [indent + _dot_node(g, n, colours) for n in nodes]
        out += [indent + line for line in _dot_same_rank(g, nodes)]
        if grp.role != "other":
            out.append("  }")
    out += ["  " + _dot_edge(g, u, v, d, colours) for u, v, d in drawn_edges(g)]
    # Last, so the clusters do not inherit it as their own label.
    out.append(f'  graph [label={_dot_legend(g, colours)}, labelloc="t", labeljust="c"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _dot_same_rank(g: nx.Graph, nodes: list[str]) -> list[str]:
    # A host's ports share one row, so its veths, internal ports and
    # interfaces line up above the OVS bridge instead of wandering.
    ports = [n for n in nodes if _level(g, n) == _LEVEL["internal"]]
    return [f"{{ rank=same; {' '.join(_dq(n) + ';' for n in ports)} }}"] if len(ports) > 1 else []


def _dot_host_order(g: nx.Graph) -> list[str]:
    """Hosts left to right in name order, their NICs on one row.

    `dot` places clusters wherever crossings are fewest, which often flips
    them, and it ignores flat edges between clusters. A row of invisible
    nodes outside every cluster does keep its order, and each host hangs
    from its own one: putting the hosts out of order would cross those
    invisible edges, which `dot` avoids.
    """
    tops = []
    for grp in groups(g):
        nodes = _drawn_nodes(g, grp)
        if grp.role == "host" and nodes:
            tops.append(min(nodes, key=lambda n: (_level(g, n), n)))
    if len(tops) < 2:
        return []
    # Every host's NICs on one row, just above the switch, however short the
    # host's own chain (a flat host has no OVS layer to push them down).
    nics = sorted(n for n, d in g.nodes(data=True) if d.get("kind") == "nic")
    out = [f"  {{ rank=same; {' '.join(_dq(n) + ';' for n in nics)} }}"] if len(nics) > 1 else []
    pegs = [_dq(f"{_SPINE}/{i}") for i in range(len(tops))]
    out += [f'  {peg} [shape="point", style="invis", width="0"];' for peg in pegs]
    out.append(f"  {{ rank=same; {' -- '.join(pegs)} [style=\"invis\"]; }}")
    out += [f'  {peg} -- {_dq(top)} [style="invis"];' for peg, top in zip(pegs, tops)]
    return out


# --- Mermaid --------------------------------------------------------------------

_MERMAID_SHAPE: dict[str, tuple[str, str]] = {
    "ovs_bridge": ("[[", "]]"),
    "linux_bridge": ("[", "]"),
    "nic": ("[/", "/]"),
    "veth": ("(", ")"),
    "internal": ("{{", "}}"),
    "iface": ("(", ")"),
    "endpoint": ("([", "])"),
    "switch": ("[[", "]]"),
    "switch_port": ("[", "]"),
    "router": ("((", "))"),
    "router_leg": ("([", "])"),
}
_MERMAID_CLASS: dict[str, str] = {
    "ovs_bridge": "fill:#d6e6f5,stroke:#1f77b4,stroke-width:2px",
    "linux_bridge": "fill:#eeeeee,stroke:#444444",
    "nic": "fill:#cccccc,stroke:#444444",
    "veth": "fill:#ffffff,stroke:#444444",
    "internal": "fill:#fff7d6,stroke:#444444",
    "iface": "fill:#ffffff,stroke:#444444",
    "endpoint": "fill:#ffffff,stroke:#444444",
    "switch": "fill:#d9d9d9,stroke:#444444,stroke-width:2px",
    "switch_port": "fill:#f2f2f2,stroke:#444444",
    "router": "fill:#d9d9d9,stroke:#444444,stroke-width:2px",
    "router_leg": "fill:#ffffff,stroke:#444444",
}
_MERMAID_LINK: dict[str, str] = {
    "trunk": "===",
    "access": "---",
    "member": "---",
    "routes": "---",
    "patch": "-.-",
    "cable": "-.-",
}


def _mermaid_id(raw: str, used: set[str]) -> str:
    # The "n_" prefix keeps ids off Mermaid's keywords ("end") and off its
    # "o"/"x" edge heads ("A---oB" is a circle-headed edge to "B").
    base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", raw)
    out, i = base, 2
    while out in used:
        out, i = f"{base}_{i}", i + 1
    used.add(out)
    return out


def _mm_text(lines: Iterable[str]) -> str:
    """A quoted Mermaid label; characters its parser reads are written as entities."""
    esc = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "#": "#35;", "&": "#amp;", "|": "#124;"}
    joined = "<br/>".join("".join(esc.get(c, c) for c in line.replace("\n", " ")) for line in lines)
    return f'"{joined}"'


def to_mermaid(g: nx.Graph) -> str:
    """The graph as a Mermaid flowchart for Markdown: one subgraph per host."""
    colours = vlan_colours(g)
    used: set[str] = set()
    ids = {n: _mermaid_id(n, used) for n in sorted(g.nodes)}
    out = ["flowchart LR"]
    drawn: list[str] = []
    for grp in groups(g):
        nodes = _drawn_nodes(g, grp)
        if not nodes:
            continue
        indent = "  "
        if grp.role != "other":
            out.append(f"  subgraph {_mermaid_id('g_' + grp.key, used)}[{_mm_text([grp.title])}]")
            indent = "    "
        for n in nodes:
            d = g.nodes[n]
            left, right = _MERMAID_SHAPE.get(d.get("kind", ""), ("[", "]"))
            out.append(f"{indent}{ids[n]}{left}{_mm_text([str(d.get('name', n)), *node_details(g, n)])}{right}")
            drawn.append(n)
        if grp.role != "other":
            out.append("  end")
    styles: dict[str, list[int]] = {}
    for i, (u, v, d) in enumerate(drawn_edges(g)):
        kind = d.get("kind", "")
        link = _MERMAID_LINK.get(kind, "---")
        label = edge_text(g, d) if kind in ("trunk", "access", "cable") else ""
        text = f"|{_mm_text([label])}|" if label else ""
        out.append(f"  {ids[u]} {link}{text} {ids[v]}")
        styles.setdefault(_mermaid_link_style(g, u, v, d, colours), []).append(i)
    for style, idx in sorted(styles.items(), key=lambda kv: kv[1][0]):
        out.append(f"  linkStyle {','.join(map(str, idx))} {style}")
    out += _mermaid_classes(g, drawn, ids, colours)
    return "\n".join(out) + "\n"


def _mermaid_link_style(g: nx.Graph, u: str, v: str, d: dict, colours: dict[int, str]) -> str:
    kind = d.get("kind")
    if kind == "trunk":
        vlans = sorted(d.get("vlans") or ())
        # One stroke colour only: a single-VLAN trunk keeps it, others go dark.
        colour = colours.get(vlans[0], PLAIN) if len(vlans) == 1 else PLAIN
        return f"stroke:{colour},stroke-width:4px"
    if kind == "cable":
        return f"stroke:{PLAIN},stroke-width:2px,stroke-dasharray:8 4"
    if kind == "routes":
        return "stroke:#888888,stroke-width:1px"
    colour = colours.get(link_vlan(g, u, v, d), UNTAGGED if kind == "access" else PLAIN)
    dash = ",stroke-dasharray:2 3" if kind == "patch" else ""
    return f"stroke:{colour},stroke-width:2px{dash}"


def _mermaid_classes(g: nx.Graph, nodes: list[str], ids: dict[str, str], colours: dict[int, str]) -> list[str]:
    by_class: dict[str, list[str]] = {}
    defs: dict[str, str] = {}
    for n in nodes:
        kind = g.nodes[n].get("kind", "")
        vid = node_vlan(g, n)
        if kind in ("endpoint", "linux_bridge", "router_leg") and vid in colours:
            cls = f"vlan{vid}"
            defs[cls] = f"fill:{_lighten(colours[vid])},stroke:{colours[vid]},stroke-width:2px"
        elif kind in _MERMAID_CLASS:
            cls = f"k_{kind}"
            defs[cls] = _MERMAID_CLASS[kind]
        else:
            continue
        by_class.setdefault(cls, []).append(ids[n])
    out = [f"  classDef {cls} {defs[cls]}" for cls in sorted(defs)]
    out += [f"  class {','.join(members)} {cls}" for cls, members in sorted(by_class.items())]
    return out


# --- terminal tree ----------------------------------------------------------------


def to_tree(g: nx.Graph) -> str:
    """A plain-text tree per host: bridge, ports and what hangs off each port."""
    where = {n: grp for grp in groups(g) for n in grp.nodes}
    out = [str(g.graph.get("name") or "topology")]
    names = g.graph.get("vlans", {})
    if names:
        out.append("VLANs: " + ", ".join(f"{vid} {names[vid]}" for vid in sorted(names)))
    seen: set[str] = set()
    for grp in groups(g):
        roots: list[str] = []
        for n in grp.nodes:  # already in root-priority order
            if n not in seen and g.nodes[n].get("kind") != "host":
                roots.append(n)
                seen |= _reach(g, n, grp, seen)
        if not roots:
            continue
        out += ["", grp.title]
        tree_seen: set[str] = set()
        for i, root in enumerate(roots):
            last = i == len(roots) - 1
            out += _tree_lines(g, root, None, grp, where, tree_seen, "", last)
    return "\n".join(out) + "\n"


def _reach(g: nx.Graph, start: str, grp: Group, seen: set[str]) -> set[str]:
    """What a root's subtree will cover, so later roots skip it."""
    members = set(grp.nodes)
    found = {start}
    stack = [start]
    while stack:
        n = stack.pop()
        for m in _children(g, n, members, found | seen):
            found.add(m)
            stack.append(m)
    return found


def _children(g: nx.Graph, n: str, members: set[str], seen: set[str]) -> list[str]:
    return sorted(
        (m for m in g.neighbors(n) if m in members and m not in seen and g.edges[n, m].get("kind") != "contains"),
        key=lambda m: _port_key(g, n, m),
    )


def _port_key(g: nx.Graph, n: str, m: str) -> tuple[int, int, int, str]:
    # As a switch's configuration reads: trunks first, then access ports by tag.
    d = g.edges[n, m]
    role = {"trunk": 0, "access": 1}.get(d.get("kind", ""), 2)
    tag = d.get("tag")
    return (role, -1 if tag is None else tag, _ORDER.get(g.nodes[m].get("kind", ""), 99), m)


def _describe(g: nx.Graph, n: str) -> str:
    details = node_details(g, n)
    name = str(g.nodes[n].get("name", n))
    return f"{name} ({', '.join(details)})" if details else name


def _tree_link(g: nx.Graph, d: dict) -> str:
    # Without a picture's colours, the word "access" says what kind of port it is.
    text = edge_text(g, d)
    return f"access {text}" if d.get("kind") == "access" else text


def _tree_lines(
    g: nx.Graph, n: str, via: dict | None, grp: Group, where: dict[str, Group], seen: set[str], prefix: str, last: bool
) -> list[str]:
    seen.add(n)
    link = f"{_tree_link(g, via)} → " if via is not None else ""
    lines = [f"{prefix}{'└── ' if last else '├── '}{link}{_describe(g, n)}"]
    inner = prefix + ("    " if last else "│   ")
    members = set(grp.nodes)
    kids = _children(g, n, members, seen)
    seen |= set(kids)  # claimed now, so a sibling's subtree cannot draw them twice
    # Links that leave the group (cables, the switch's router legs) end as a pointer.
    away = sorted(
        (m for m in g.neighbors(n) if m not in members and g.edges[n, m].get("kind") != "contains"),
        key=lambda m: _port_key(g, n, m),
    )
    entries: list[tuple[str, str]] = [("kid", m) for m in kids] + [("away", m) for m in away]
    for i, (what, m) in enumerate(entries):
        is_last = i == len(entries) - 1
        if what == "kid":
            lines += _tree_lines(g, m, g.edges[n, m], grp, where, seen, inner, is_last)
        else:
            there = where[m].title if m in where else "?"
            branch = "└── " if is_last else "├── "
            lines.append(f"{inner}{branch}{_tree_link(g, g.edges[n, m])} → {_describe(g, m)} on {there}")
    return lines


# --- files ------------------------------------------------------------------------

_GRAPHVIZ_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
SUPPORTED_SUFFIXES = (".dot", *_GRAPHVIZ_FORMATS)
DOT_TIMEOUT_S = 120


def render_file(g: nx.Graph, path: Path) -> None:
    """Write the picture to `path`, in the format its suffix names."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".dot":
        _write(path, to_dot(g).encode())
        return
    if suffix not in _GRAPHVIZ_FORMATS:
        raise UsageError(
            f"cannot draw to '{path.name}': unknown suffix '{suffix or '(none)'}'; "
            f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    _write(path, run_dot(to_dot(g), _GRAPHVIZ_FORMATS[suffix]))


def run_dot(text: str, fmt: str) -> bytes:
    """Lay out DOT text with Graphviz; the output bytes of `dot -T<fmt>`."""
    dot = shutil.which("dot")
    if dot is None:
        raise UsageError(
            "Graphviz 'dot' is not installed: apt-get install graphviz, or use -o file.dot / --format mermaid"
        )
    try:
        proc = subprocess.run(
            [dot, f"-T{fmt}"], input=text.encode(), capture_output=True, check=False, timeout=DOT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise BackendError(f"Graphviz 'dot' took longer than {DOT_TIMEOUT_S}s; try -o file.dot") from None
    except OSError as exc:
        raise BackendError(f"cannot run {dot}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise BackendError(f"Graphviz 'dot -T{fmt}' failed (exit {proc.returncode}): {err or 'no message'}")
    return proc.stdout


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
