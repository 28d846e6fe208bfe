"""What the three pictures show of a live graph's drift marks (see ovsnet.live.drift).

Each mark has a colour that is not one of the VLAN palette's, a word drawn
on the node, and a line in the legend. Objects that are neither ovsnet's nor
in the way are faded: grey text, a pale outline. A graph without marks (the
topology's own) is drawn exactly as before: every function here then
returns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx


@dataclass(frozen=True)
class Style:
    word: str  # on the node, in capitals
    colour: str
    meaning: str  # the legend's words


STYLES: dict[str, Style] = {
    "missing": Style("MISSING", "#e8000b", "declared in the file, absent on the host (drawn from the file, dashed)"),
    "foreign": Style("FOREIGN", "#7a1fa2", "not ovsnet's, in the way (up refuses, or it sits on ovsnet's bridge)"),
    "extra": Style("EXTRA", "#ff6f00", "ovsnet's mark, no longer in the file (up deletes it)"),
    "different": Style("DIFFERENT", "#c51162", "differs from the file (up changes it)"),
}
FADED = "#b0b0b0"
FADED_FILL = "#f6f6f6"
FADED_MEANING = "faded: not ovsnet's and not in the way"


def is_live(g: nx.Graph) -> bool:
    return bool(g.graph.get("live"))


def node_mark(g: nx.Graph, n: str) -> str | None:
    return g.nodes[n].get("drift")


def edge_mark(d: dict) -> str | None:
    return d.get("drift")


def badge(g: nx.Graph, n: str) -> str | None:
    m = node_mark(g, n)
    return STYLES[m].word if m in STYLES else None


def mark_lines(g: nx.Graph, n: str) -> tuple[str | None, list[str]]:
    """The node's mark word (None: unmarked) and the plan's reasons about it, one per line."""
    return badge(g, n), list(g.nodes[n].get("drift_notes") or ())


def faded(g: nx.Graph, n: str) -> bool:
    return bool(g.nodes[n].get("faded"))


def host_lines(g: nx.Graph, host: str) -> list[str]:
    """What the plan changes on a host that is no node (routes, DNS), and why some of it was not read."""
    out = list(g.graph.get("host_drift", {}).get(host) or ())
    out += [f"note: {n}" for n in g.graph.get("notes", {}).get(host) or ()]
    return out


def counts(g: nx.Graph) -> dict[str, int]:
    out = {m: 0 for m in STYLES}
    for f in g.graph.get("marks", ()):
        out[f["mark"]] = out.get(f["mark"], 0) + 1
    return out


def legend_lines(g: nx.Graph) -> list[str]:
    """The legend as text: one line per mark with how many there are."""
    c = counts(g)
    lines = [f"{s.word:9} {c[m]:3}  {s.meaning}" for m, s in STYLES.items()]
    return lines + [f"{'faded':9} {sum(1 for _, d in g.nodes(data=True) if d.get('faded')):3}  {FADED_MEANING[7:]}"]
