"""`ovsnet graph`: the topology's picture, as a terminal tree, DOT/SVG/PNG or Mermaid."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ovsnet.cli.options import FileArg, Out, checked, command
from ovsnet.errors import UsageError

app = typer.Typer()
FORMATS = ("tree", "dot", "mermaid")


@command(app)
def graph(
    file: Path = FileArg,
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write a picture: .svg, .png, .pdf (Graphviz) or .dot."),
    fmt: str = typer.Option("tree", "--format", "-f", help="tree (terminal), dot, or mermaid (for Markdown)."),
    *, out: Out,
) -> None:
    """Draw the bridge graph: a tree in the terminal, DOT/SVG/PNG, or Mermaid; --json for the graph as data."""
    from ovsnet.render import dot, mermaid, tree

    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    c = checked(file)
    if output is not None:
        dot.render_file(c.graph, output)
        out.data({"wrote": str(output)})
        out.print(f"wrote {output}")
        return
    if out.json:
        import networkx as nx

        out.data(nx.node_link_data(c.graph, edges="edges"))
        return
    renderers = {"tree": tree.to_tree, "dot": dot.to_dot, "mermaid": mermaid.to_mermaid}
    out.print(renderers[fmt](c.graph))
