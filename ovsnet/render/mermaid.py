"""The bridge graph as a Mermaid flowchart, for Markdown."""

from __future__ import annotations

import re
from typing import Iterable

import networkx as nx

from ovsnet.render import drift
from ovsnet.render.drawing import (
    PLAIN,
    UNTAGGED,
    Colours,
    drawn_edges,
    drawn_nodes,
    edge_text,
    groups,
    lighten,
    link_vlan,
    node_details,
    node_vlan,
    vlan_colours,
)

_MERMAID_SHAPE: dict[str, tuple[str, str]] = {
    "ovs_bridge": ("[[", "]]"),
    "linux_bridge": ("[", "]"),
    "nic": ("[/", "/]"),
    "bond": ("[/", "\\]"),
    "veth": ("(", ")"),
    "internal": ("{{", "}}"),
    "iface": ("(", ")"),
    "endpoint": ("([", "])"),
    "switch": ("[[", "]]"),
    "switch_port": ("[", "]"),
    "router": ("((", "))"),
    "router_leg": ("([", "])"),
    "docker_network": ("([", "])"),
}
_MERMAID_CLASS: dict[str, str] = {
    "ovs_bridge": "fill:#d6e6f5,stroke:#1f77b4,stroke-width:2px",
    "linux_bridge": "fill:#eeeeee,stroke:#444444",
    "nic": "fill:#cccccc,stroke:#444444",
    "bond": "fill:#cccccc,stroke:#444444,stroke-width:2px",
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
    "bundle": "===",
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
        nodes = drawn_nodes(g, grp)
        if not nodes:
            continue
        indent = "  "
        if grp.role != "other":
            title = [grp.title] + (drift.host_lines(g, grp.name) if grp.role == "host" else [])
            out.append(f"  subgraph {_mermaid_id('g_' + grp.key, used)}[{_mm_text(title)}]")
            indent = "    "
        for n in nodes:
            d = g.nodes[n]
            left, right = _MERMAID_SHAPE.get(d.get("kind", ""), ("[", "]"))
            word, notes = drift.mark_lines(g, n)
            lines = ([word] if word else []) + [str(d.get("name", n)), *node_details(g, n), *notes]
            out.append(f"{indent}{ids[n]}{left}{_mm_text(lines)}{right}")
            drawn.append(n)
        if grp.role != "other":
            out.append("  end")
    styles: dict[str, list[int]] = {}
    for i, (u, v, d) in enumerate(drawn_edges(g)):
        kind = d.get("kind", "")
        link = _MERMAID_LINK.get(kind, "---")
        label = edge_text(g, d) if kind in ("trunk", "access", "cable") else ""
        mark = drift.edge_mark(d)
        if mark in drift.STYLES:
            label = f"{drift.STYLES[mark].word}: {label}" if label else drift.STYLES[mark].word
        text = f"|{_mm_text([label])}|" if label else ""
        out.append(f"  {ids[u]} {link}{text} {ids[v]}")
        styles.setdefault(_mermaid_link_style(g, u, v, d, colours), []).append(i)
    for style, idx in sorted(styles.items(), key=lambda kv: kv[1][0]):
        out.append(f"  linkStyle {','.join(map(str, idx))} {style}")
    out += _mermaid_classes(g, drawn, ids, colours)
    if drift.is_live(g):
        out += _mermaid_drift_legend(g, used)
    return "\n".join(out) + "\n"


def _mermaid_drift_legend(g: nx.Graph, used: set[str]) -> list[str]:
    """A legend box: one node per mark, styled as the marked nodes are."""
    counts = drift.counts(g)
    out = [f"  subgraph {_mermaid_id('legend', used)}[{_mm_text(['drift against the file'])}]"]
    for m, s in drift.STYLES.items():
        out.append(f"    {_mermaid_id('legend_' + m, used)}[{_mm_text([f'{s.word} ({counts[m]})', s.meaning])}]:::drift_{m}")
    out.append(f"    {_mermaid_id('legend_faded', used)}[{_mm_text([drift.FADED_MEANING])}]:::faded")
    out.append("  end")
    return out


def _mermaid_link_style(g: nx.Graph, u: str, v: str, d: dict, colours: Colours) -> str:
    kind = d.get("kind")
    mark = drift.edge_mark(d)
    if mark in drift.STYLES:
        dash = ",stroke-dasharray:6 4" if mark == "missing" else ""
        return f"stroke:{drift.STYLES[mark].colour},stroke-width:4px{dash}"
    if d.get("faded"):
        return f"stroke:{drift.FADED},stroke-width:1px"
    if kind == "trunk":
        vlans = sorted(d.get("vlans") or ())
        # One stroke colour only: a single-VLAN trunk keeps it, others go dark.
        colour = colours.get(vlans[0], PLAIN) if len(vlans) == 1 else PLAIN
        return f"stroke:{colour},stroke-width:4px"
    if kind == "cable":
        return f"stroke:{PLAIN},stroke-width:2px,stroke-dasharray:8 4"
    if kind == "bundle":
        return f"stroke:{PLAIN},stroke-width:4px"
    if kind == "routes":
        return "stroke:#888888,stroke-width:1px"
    colour = colours.get(link_vlan(g, u, v, d), UNTAGGED if kind == "access" else PLAIN)
    dash = ",stroke-dasharray:2 3" if kind == "patch" else ""
    return f"stroke:{colour},stroke-width:2px{dash}"


def _mermaid_classes(g: nx.Graph, nodes: list[str], ids: dict[str, str], colours: Colours) -> list[str]:
    by_class: dict[str, list[str]] = {}
    defs: dict[str, str] = {}
    if drift.is_live(g):
        for m, st in drift.STYLES.items():
            dash = ",stroke-dasharray:6 4" if m == "missing" else ""
            defs[f"drift_{m}"] = f"stroke:{st.colour},stroke-width:3px{dash}"
        defs["faded"] = f"fill:{drift.FADED_FILL},stroke:{drift.FADED},color:{drift.FADED}"
    for n in nodes:
        kind = g.nodes[n].get("kind", "")
        vid = node_vlan(g, n)
        mark = drift.node_mark(g, n)
        if mark in drift.STYLES or drift.faded(g, n):
            cls = f"drift_{mark}" if mark in drift.STYLES else "faded"
        elif kind in ("endpoint", "linux_bridge", "router_leg", "docker_network") and vid in colours:
            cls = f"vlan{vid}"
            defs[cls] = f"fill:{lighten(colours[vid])},stroke:{colours[vid]},stroke-width:2px"
        elif kind in _MERMAID_CLASS:
            cls = f"k_{kind}"
            defs[cls] = _MERMAID_CLASS[kind]
        else:
            continue
        by_class.setdefault(cls, []).append(ids[n])
    out = [f"  classDef {cls} {defs[cls]}" for cls in sorted(defs)]
    out += [f"  class {','.join(members)} {cls}" for cls, members in sorted(by_class.items())]
    return out
