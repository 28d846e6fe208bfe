"""The bridge graph as Graphviz DOT, and as a file (DOT, or SVG/PNG/PDF through `dot`).

`render_file` is the one function here that writes a file and may run Graphviz.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from pathlib import Path
from typing import Iterable

import networkx as nx

from ovsnet.errors import BackendError, UsageError
from ovsnet.render import drift
from ovsnet.render.drawing import (
    LEVEL,
    PLAIN,
    UNTAGGED,
    Colours,
    drawn_edges,
    drawn_nodes,
    edge_text,
    groups,
    level,
    lighten,
    link_vlan,
    node_details,
    node_vlan,
    vlan_colours,
)

# A trunk drawn as more parallel lines than this is just a smear.
MAX_TRUNK_LINES = 8
# Prefix of the invisible nodes that order the hosts; no graph id has this form.
_SPINE = "picture:/host-order"

# Shapes chosen to read at a glance: boxes for bridges, arrow-tipped tags for
# ports, rounded boxes for what holds an address, a circle for the router.
_DOT_NODE: dict[str, dict[str, str]] = {
    "ovs_bridge": {"shape": "box3d", "fillcolor": "#d6e6f5", "style": "filled", "penwidth": "1.5"},
    "linux_bridge": {"shape": "box", "fillcolor": "#eeeeee", "style": "filled"},
    "nic": {"shape": "box", "fillcolor": "#cccccc", "style": "filled", "peripheries": "2"},
    # One trapezium over its NICs: the bundle reads as one link.
    "bond": {"shape": "trapezium", "fillcolor": "#cccccc", "style": "filled", "penwidth": "2"},
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
    "docker_network": {"shape": "box", "fillcolor": "#ffffff", "style": "rounded,filled"},
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


def _dot_node(g: nx.Graph, n: str, colours: Colours) -> str:
    d = g.nodes[n]
    kind = d.get("kind", "")
    attrs = dict(_DOT_NODE.get(kind, {"shape": "box"}))
    vid = node_vlan(g, n)
    if kind in ("endpoint", "linux_bridge", "router_leg", "docker_network") and vid in colours:
        attrs["fillcolor"] = lighten(colours[vid])
        attrs["color"] = colours[vid]
    word, notes = drift.mark_lines(g, n)
    lines = ([word] if word else []) + [str(d.get("name", n)), *node_details(g, n), *notes]
    mark = drift.node_mark(g, n)
    if mark in drift.STYLES:
        colour = drift.STYLES[mark].colour
        attrs |= {"color": colour, "penwidth": "3", "fontcolor": colour if mark == "missing" else "#000000"}
        if mark == "missing":
            attrs |= {"style": "dashed,filled", "fillcolor": "#ffffff"}
    elif drift.faded(g, n):
        attrs |= {"color": drift.FADED, "fontcolor": drift.FADED, "fillcolor": drift.FADED_FILL}
    attrs["label"] = _dot_label(lines)
    attrs["tooltip"] = n
    return f"{_dq(n)} {_dot_attrs(attrs)};"


def _dot_edge(g: nx.Graph, u: str, v: str, d: dict, colours: Colours) -> str:
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
    elif kind == "bundle":
        attrs |= {"color": PLAIN, "penwidth": "4", "arrowhead": "none", "label": label, "fontsize": "9"}
    elif kind == "routes":
        attrs |= {"color": "#888888", "penwidth": "0.8"}
    else:
        attrs["label"] = label
    mark = drift.edge_mark(d)
    if mark in drift.STYLES:
        colour = drift.STYLES[mark].colour
        attrs |= {"color": colour, "fontcolor": colour, "penwidth": "3", "label": _dot_label([f"{drift.STYLES[mark].word}: {edge_text(g, d)}"])}
        if mark == "missing":
            attrs["style"] = "dashed"
    elif d.get("faded"):
        attrs |= {"color": drift.FADED, "fontcolor": drift.FADED}
    return f"{_dq(u)} -- {_dq(v)} {_dot_attrs(attrs)};"


def _trunk_colour(vlans: list[int], colours: Colours) -> str:
    """Parallel bands, one per VLAN, split by thin white gaps so hues do not blur
    together; a plain dark line once the bands would be too many to count."""
    if not 0 < len(vlans) <= MAX_TRUNK_LINES:
        return PLAIN
    bands = [colours.get(x, PLAIN) for x in vlans]
    return ":white:".join(bands) if len(bands) > 1 else f"{bands[0]}:white:{bands[0]}"


def _dot_legend(g: nx.Graph, colours: Colours) -> str:
    """Title and a VLAN colour key, as an HTML-like label so it needs no fake nodes."""
    names = g.graph.get("vlans", {})
    cells = "".join(
        f'<td bgcolor="{colours[vid]}"><font color="white">'
        f'<b>{vid}</b> {html.escape(str(names.get(vid, "")))}</font></td>'
        for vid in sorted(v for v in colours if v is not None)
    )
    title = html.escape(str(g.graph.get("name") or "topology"))
    keys = f"<tr>{cells}</tr>" if cells else ""
    span = max(1, len(colours))
    if drift.is_live(g):
        title += " (live: what the hosts have, drift against the file marked)"
        keys += _drift_legend(g, span)
    return (
        '<<table border="0" cellborder="0" cellspacing="4" cellpadding="4">'
        f'<tr><td colspan="{span}"><font point-size="18"><b>{title}</b></font></td></tr>{keys}</table>>'
    )


def _drift_legend(g: nx.Graph, span: int) -> str:
    """One row per mark: its word in its colour, how many, what it means."""
    counts = drift.counts(g)
    rows = [
        f'<tr><td colspan="{span}" align="left" border="2" color="{s.colour}"><font color="{s.colour}"><b>{s.word}</b></font>'
        f" ({counts[m]}): {html.escape(s.meaning)}</td></tr>"
        for m, s in drift.STYLES.items()
    ]
    rows.append(f'<tr><td colspan="{span}" align="left"><font color="{drift.FADED}">{html.escape(drift.FADED_MEANING)}</font></td></tr>')
    return "".join(rows)


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
        nodes = drawn_nodes(g, grp)
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
            title = [grp.title] + (drift.host_lines(g, grp.name) if grp.role == "host" else [])
            out.append(
                f"    graph [label={_dot_label(title)}, style={_dq(style)}, fillcolor={_dq(fill)}, "
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
    ports = [n for n in nodes if level(g, n) == LEVEL["internal"]]
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
        nodes = drawn_nodes(g, grp)
        if grp.role == "host" and nodes:
            tops.append(min(nodes, key=lambda n: (level(g, n), n)))
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
