"""`ovsnet graph`: the topology's picture, or what a host really has (--live), as a terminal tree, DOT/SVG/PNG or Mermaid."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ovsnet.cli.options import FileArg, Out, PrefixOpt, Where, checked, command
from ovsnet.errors import UsageError

app = typer.Typer()
FORMATS = ("tree", "dot", "mermaid")


@command(app, target=True)
def graph(
    file: Path = FileArg,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write a picture: .svg, .png, .pdf (Graphviz) or .dot."),
    fmt: str = typer.Option("tree", "--format", "-f", help="tree (terminal), dot, or mermaid (for Markdown)."),
    live: bool = typer.Option(False, "--live", help="Draw what the host has now (read as `plan` reads it), drift against the file marked."),
    host: Optional[str] = typer.Option(None, "--host", "-H", help="With --live: which host of the topology this is (the target options say where it lives)."),
    lab: bool = typer.Option(False, "--lab", help="With --live: every simulated host of the lab built by `ovsnet lab up FILE`."),
    prefix: Optional[str] = PrefixOpt,
    *, where: Where, out: Out,
) -> None:
    """Draw the bridge graph: a tree in the terminal, DOT/SVG/PNG, or Mermaid; --json for the graph as data.

    With --live (and --host NAME, or --lab) the picture is what the host has
    now: OVS bridges and ports with their tags and trunks, internal ports with
    their addresses, Linux bridges and their members, veth pairs and Docker
    networks, marked against the file as `ovsnet plan` sees them: MISSING
    (declared, absent), EXTRA (ovsnet's, no longer declared), DIFFERENT (a
    tag, trunk VLANs, an MTU, a Docker subnet or range...), FOREIGN (not
    ovsnet's, in the way); the rest of the host is drawn faded. --json gives
    the same graph as data, with the list of marks.
    """
    from ovsnet.render import dot, mermaid, tree

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    c = checked(file)
    g = _live_graph(c, host, lab, prefix, where) if live else _file_graph(c, host, lab, prefix, where)
    if output is not None:
        dot.render_file(g, output)
        out.data({"wrote": str(output)})
        out.print(f"wrote {output}")
        return
    if out.json:
        import networkx as nx

        out.data(nx.node_link_data(g, edges="edges"))
        return
    renderers = {"tree": tree.to_tree, "dot": dot.to_dot, "mermaid": mermaid.to_mermaid}
    out.print(renderers[fmt](g))


def _file_graph(c: Any, host: str | None, lab: bool, prefix: str | None, where: Where) -> Any:
    given = where.given + (["--host"] if host else []) + (["--lab"] if lab else []) + (["--prefix"] if prefix else [])
    if given:
        raise UsageError(f"{', '.join(given)} name a host to read: add --live to draw what it has, or drop them to draw the file")
    return c.graph


def _live_graph(c: Any, host: str | None, lab: bool, prefix: str | None, where: Where) -> Any:
    from ovsnet.live import read

    if lab:
        extra = (["--host"] if host else []) + where.given
        if extra:
            raise UsageError(f"--lab reads every host of the lab: {', '.join(extra)} would be ignored; drop them, or drop --lab")
        from ovsnet.lab.ledger import load_lab
        from ovsnet.lab.names import targets

        return read.lab_picture(c, targets(load_lab(c.topology, prefix)))
    if prefix:
        raise UsageError("--prefix names a lab: use it with --lab")
    if not host:
        raise UsageError("--live reads a host: give --host NAME (with --netns/--db for a host elsewhere), or --lab for every host of the lab")
    return read.host_picture(c, host, where.target(c, host))
