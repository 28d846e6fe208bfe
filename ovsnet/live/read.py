"""Reading a host (or every host of a lab) for its live picture: the one part of ovsnet.live that does I/O.

The host is read by the readers `plan` and `status` use (apply.live.Live),
and planned exactly as `ovsnet plan` plans it: the same desired objects, the
same saved record, the same settings, the same backends. Docker is read even
when the file gives the host no Docker network, so the picture shows the
host's networks all the same; the plan is then made from the snapshot
without them, as `plan` (which does not read Docker for such a host) makes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable

import networkx as nx

from ovsnet.apply import record
from ovsnet.apply.live import Live
from ovsnet.apply.run import host_of
from ovsnet.apply.target import Target
from ovsnet.current import Current
from ovsnet.kinds import Settings
from ovsnet.live import drift, snapshot
from ovsnet.plan import planner
from ovsnet.plan.model import Plan
from ovsnet.topology import Checked


def read_host(checked: Checked, host_name: str, target: Target) -> tuple[Current, Plan, str | None]:
    """One read of the host and the plan `ovsnet plan` makes from it; the reason Docker was not read, if so."""
    host = host_of(checked, host_name)
    want = planner.desire(checked.topology, host, Settings(datapath=target.datapath))
    saved = record.read(target.state_dir, checked.topology.name, host.name)
    reads = planner.reads(want)
    live = Live(target)
    try:
        current = live.read(reads | {"docker"})
    finally:
        live.close()
    docker_ok = "docker" not in reads or current.docker is not None
    seen = current if "docker" in reads else replace(current, docker=None)
    plan = planner.diff(want, seen, saved.parts if saved else None, Settings(datapath=target.datapath, docker=docker_ok))
    return current, plan, None if current.docker is not None else live.docker_error


def picture(checked: Checked, host: str, current: Current, plan: Plan, docker_error: str | None = None) -> nx.Graph:
    """The marked live graph of one host (pure)."""
    g = snapshot.build(host, current, checked.topology.name)
    g.graph["vlans"] = dict(checked.graph.graph.get("vlans", {}))
    drift.mark(g, checked.graph, plan, host, checked.topology.name)
    notes = list(plan.notes)
    if docker_error and not any(docker_error in n for n in notes):
        notes.append(f"Docker was not read: {docker_error}")
    g.graph["notes"] = {host: notes}
    return g


def host_picture(checked: Checked, host: str, target: Target) -> nx.Graph:
    return picture(checked, host, *read_host(checked, host, target))


def combine(name: str, graphs: Iterable[nx.Graph]) -> nx.Graph:
    """Several hosts' pictures as one: their nodes never meet (each id names its host)."""
    out = nx.Graph(name=name, live=True, hosts=[], dns={}, host_drift={}, notes={}, marks=[])
    for g in graphs:
        out.add_nodes_from(g.nodes(data=True))
        out.add_edges_from(g.edges(data=True))
        out.graph["vlans"] = g.graph.get("vlans", {})
        out.graph["hosts"] += g.graph.get("hosts", [])
        out.graph["marks"] += g.graph.get("marks", [])
        for key in ("dns", "host_drift", "notes"):
            out.graph[key].update(g.graph.get(key, {}))
    return out


def lab_picture(checked: Checked, targets: dict[str, Target]) -> nx.Graph:
    """Every simulated host of a lab, side by side (targets: ovsnet.lab.names.targets)."""
    return combine(checked.topology.name, (host_picture(checked, h, t) for h, t in targets.items()))
