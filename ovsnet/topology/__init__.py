"""The topology file: model, loading, validation and the address plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from ovsnet.errors import ConfigError, Finding
from ovsnet.topology.model import Topology


@dataclass(frozen=True)
class Checked:
    """A topology that loaded and validated, with what was derived from it."""

    topology: Topology
    graph: nx.Graph
    warnings: tuple[Finding, ...]


def check(topo: Topology) -> Checked:
    """Build the graph and validate; raise ConfigError with every error found."""
    from ovsnet.gcpause import paused_gc
    from ovsnet.topology import graph as graph_mod
    from ovsnet.topology.positions import locate
    from ovsnet.topology.validate import validate

    with paused_gc():
        g = graph_mod.build(topo)
        findings = validate(topo, g)
    errs = [f for f in findings if f.severity == "error"]
    if errs:
        # Located only now: the scan of the text costs nothing while a file is valid.
        raise ConfigError(topo.source, locate(topo, findings))
    return Checked(topo, g, tuple(findings))


def load_checked(path: str | Path) -> Checked:
    from ovsnet.topology.load import load

    return check(load(path))
