"""The bridge graph as a plain-text tree per host, for the terminal."""

from __future__ import annotations

import networkx as nx

from ovsnet.render import drift
from ovsnet.render.drawing import ORDER, Group, edge_text, groups, node_details


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
        out += [f"  {line}" for line in drift.host_lines(g, grp.name)] if grp.role == "host" else []
        tree_seen: set[str] = set()
        members = set(grp.nodes)
        for i, root in enumerate(roots):
            last = i == len(roots) - 1
            out += _tree_lines(g, root, None, grp, members, where, tree_seen, "", last)
    if drift.is_live(g):
        out += ["", "Drift against the file (the marks of `ovsnet plan`):"] + [f"  {line}" for line in drift.legend_lines(g)]
    return "\n".join(out) + "\n"


def _reach(g: nx.Graph, start: str, grp: Group, seen: set[str]) -> set[str]:
    """What a root's subtree will cover, so later roots skip it."""
    members = set(grp.nodes)
    found = {start}
    visited = seen | found  # one set to test against: a union per step costs the whole picture each time
    stack = [start]
    while stack:
        n = stack.pop()
        for m in _children(g, n, members, visited):
            found.add(m)
            visited.add(m)
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
    return (role, -1 if tag is None else tag, ORDER.get(g.nodes[m].get("kind", ""), 99), m)


def _describe(g: nx.Graph, n: str) -> str:
    details = node_details(g, n)
    name = str(g.nodes[n].get("name", n))
    text = f"{name} ({', '.join(details)})" if details else name
    word, notes = drift.mark_lines(g, n)
    # Without colour, the mark is a word in brackets, first thing on the line.
    text = (f"[{word}] " if word else "") + text + (f"  <- {'; '.join(notes)}" if notes else "")
    if not word and not notes and drift.faded(g, n):
        text += "  · not ovsnet's"
    return text


def _tree_link(g: nx.Graph, d: dict) -> str:
    # Without a picture's colours, the word "access" says what kind of port it is.
    text = edge_text(g, d)
    return f"access {text}" if d.get("kind") == "access" else text


def _tree_lines(
    g: nx.Graph, n: str, via: dict | None, grp: Group, members: set[str], where: dict[str, Group], seen: set[str], prefix: str, last: bool
) -> list[str]:
    seen.add(n)
    link = f"{_tree_link(g, via)} → " if via is not None else ""
    lines = [f"{prefix}{'└── ' if last else '├── '}{link}{_describe(g, n)}"]
    inner = prefix + ("    " if last else "│   ")
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
            lines += _tree_lines(g, m, g.edges[n, m], grp, members, where, seen, inner, is_last)
        else:
            there = where[m].title if m in where else "?"
            branch = "└── " if is_last else "├── "
            lines.append(f"{inner}{branch}{_tree_link(g, g.edges[n, m])} → {_describe(g, m)} on {there}")
    return lines
