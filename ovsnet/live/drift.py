"""Drift marks on a host's live graph, taken from the plan `ovsnet plan` makes.

Pure: the live graph (snapshot.py), the topology's own graph (what the file
declares) and the plan go in; the live graph comes out marked. The plan's
changes and blockers name resources in one form (`port:br-ovs/eth1`,
`link:br-web`, `veth:ovs-br-web/lnx-br-web`, `docker-network:web`,
`address:mgmt0/192.168.10.11/24`...), and each becomes a mark on the node (and
the edge) it names, so the picture and `ovsnet plan` cannot disagree:

- missing: the plan creates it (declared, absent); drawn from the file, dashed;
- extra: the plan deletes it (ovsnet's mark, no longer declared);
- different: the plan modifies or moves it (a tag, trunk VLANs, an MTU, a
  Docker network's subnet or range, an address still to move...);
- foreign: a blocker names it (not ovsnet's, in the way);
- different too: a health finding names it (a bond's member down, LACP not
  negotiated: as declared, but not working). The picture adds
  one rule the plan has no reason for: a port on an OVS bridge the file
  declares that is neither declared nor ovsnet's is foreign too, since it
  carries traffic on ovsnet's bridge, though `up` never touches it (such
  marks say `"from": "bridge"`, not `"plan"`).

Everything else that is neither declared nor ovsnet's is faded. What the plan
changes that is no node (routes, DNS) is listed per host.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx

from ovsnet.plan.model import Action, Change, Plan
from ovsnet.topology.graph import nid

HOST_KINDS = frozenset({"ovs_bridge", "nic", "bond", "internal", "veth", "iface", "linux_bridge"})


class Mark(str, enum.Enum):
    MISSING = "missing"
    FOREIGN = "foreign"
    EXTRA = "extra"
    DIFFERENT = "different"


# When one node gets several marks, the first of these wins.
PRIORITY = (Mark.MISSING, Mark.FOREIGN, Mark.EXTRA, Mark.DIFFERENT)
_ACTION_MARK = {
    Action.CREATE: Mark.MISSING,
    Action.DELETE: Mark.EXTRA,
    Action.MODIFY: Mark.DIFFERENT,
    Action.MOVE: Mark.DIFFERENT,
    Action.RESTORE: Mark.DIFFERENT,
    Action.ADOPT: Mark.FOREIGN,
}


@dataclass(frozen=True)
class Found:
    """One verdict: a resource, its mark, the nodes it is drawn on, and why."""

    host: str
    resource: str
    mark: Mark
    nodes: tuple[str, ...]
    text: str
    source: str  # "plan" (a change), "blocker", or "bridge" (the picture's own rule)

    def as_data(self) -> dict[str, Any]:
        return {"host": self.host, "resource": self.resource, "mark": self.mark.value, "nodes": list(self.nodes),
                "text": self.text, "from": self.source}


def change_text(c: Change) -> str:
    """What the plan says of a resource, in the picture's words."""
    action, before, after = c.action, c.before, c.after
    if c.resource.startswith("address:"):
        return f"address {after or before} to {'add' if action is Action.CREATE else action.value} ({c.reason})"
    if action is Action.CREATE:
        return f"the file wants: {after}" if after else "declared, absent"
    if action is Action.DELETE:
        return f"not in the file: {before}" if before else "not in the file"
    return f"now {before or '-'}; the file: {after or '-'}"


class _Marker:
    def __init__(self, g: nx.Graph, want: nx.Graph, host: str, topology: str):
        self.g, self.want, self.host, self.topology = g, want, host, topology
        self.live = _index(g, host)
        self.declared = _index(want, host)
        # The file declares a Docker network as an attribute of its bridge.
        self.declared_networks = {d["network"] for _, d in want.nodes(data=True) if d.get("host") == host and d.get("kind") == "linux_bridge" and d.get("network")}
        self.found: list[Found] = []
        self.host_lines: list[str] = []
        self.missing_ports: list[tuple[str, str]] = []  # (bridge, node) of interfaces that exist but are no port
        self.missing_networks: list[tuple[str, str]] = []  # (node, bridge name) of Docker networks drawn from the file

    # --- names -> nodes ---------------------------------------------------------------

    def names(self, resource: str) -> tuple[str, list[str]]:
        """(namespace, names) a resource is about: OVS bridges, links/ports, and Docker networks are apart."""
        kind, _, rest = resource.partition(":")
        if kind in ("bridge", "record"):  # the record's copy lives in the bridge's external_ids
            return "bridge", [rest]
        if kind == "port":
            return "link", [rest.partition("/")[2] or rest]
        if kind == "veth":
            return "link", [n for n in rest.split("/") if n]
        if kind == "docker-network":
            return "network", [rest]
        if kind in ("link", "address"):
            return "link", [rest.partition("/")[0]]
        return "", []

    def node(self, space: str, name: str, ghost: bool) -> str | None:
        n = self.live.get((space, name))
        if n is not None or not ghost:
            return n
        wanted = self.declared.get((space, name))
        if wanted is None:
            return None
        if wanted not in self.g:
            self.g.add_node(wanted, **dict(self.want.nodes[wanted]), ghost=True)
            self.live[(space, name)] = wanted
        return wanted

    # --- verdicts -------------------------------------------------------------------------

    def add(self, resource: str, mark: Mark, text: str, source: str, ghost: bool = False) -> None:
        kind, _, rest = resource.partition(":")
        space, names = self.names(resource)
        nodes = [n for n in (self.node(space, name, ghost) for name in names) if n is not None]
        self.found.append(Found(self.host, resource, mark if kind != "address" else Mark.DIFFERENT, tuple(nodes), text, source))
        if not nodes or kind in ("route", "dns"):
            self.host_lines.append(f"{mark.value}: {resource}: {text}")
            return
        if kind == "address":
            mark = Mark.DIFFERENT  # an address is a fact about its interface: the interface differs
        for n in nodes:
            d = self.g.nodes[n]
            if d.get("ghost") and mark is Mark.DIFFERENT and kind != "address":
                continue  # what the plan does to an object it creates (bring it up...) adds nothing
            if kind == "port" and mark is Mark.MISSING and not d.get("ghost"):
                # The interface exists; what is missing is its port on the bridge: that edge.
                bridge = rest.partition("/")[0]
                self.missing_ports.append((bridge, n))
                d.setdefault("notes", []).append((mark.value, f"no port on {bridge}; {text}"))
                continue
            d.setdefault("marks", []).append(mark.value)
            d.setdefault("notes", []).append((mark.value, text))
        self._mark_edges(kind, nodes, mark)

    def _mark_edges(self, kind: str, nodes: list[str], mark: Mark) -> None:
        # The link that carries the verdict: a port's VLANs are on its edge to
        # the bridge, a veth pair is its patch, a Docker network sits on its bridge.
        carrier = {"port": ("trunk", "access"), "veth": ("patch",), "docker-network": ("member",)}.get(kind, ())
        for n in nodes:
            for m in self.g.neighbors(n):
                e = self.g.edges[n, m]
                if e.get("kind") in carrier:
                    e.setdefault("marks", []).append(mark.value)

    def ghost_edges(self) -> None:
        """What is drawn from the file gets its declared links to what exists, or is drawn, too."""
        for n, d in list(self.g.nodes(data=True)):
            if not d.get("ghost") or n not in self.want:
                continue
            for m in self.want.neighbors(n):
                other = self._live_twin(m)
                if other is not None and not self.g.has_edge(n, other):
                    self.g.add_edge(n, other, **dict(self.want.edges[n, m]), marks=[Mark.MISSING.value])
        for bridge, n in self.missing_ports:
            b = self.live.get(("bridge", bridge))
            wb, wp = self.declared.get(("bridge", bridge)), self.declared.get(("link", self.g.nodes[n]["name"]))
            if b is not None and wb is not None and wp is not None and self.want.has_edge(wb, wp) and not self.g.has_edge(b, n):
                self.g.add_edge(b, n, **dict(self.want.edges[wb, wp]), marks=[Mark.MISSING.value])
        for node, bridge in self.missing_networks:
            on = self.live.get(("link", bridge))
            if on is not None:
                self.g.add_edge(node, on, kind="member", marks=[Mark.MISSING.value])

    def _live_twin(self, want_node: str) -> str | None:
        """The node of the live graph that is this node of the file's graph, by name."""
        md = self.want.nodes[want_node]
        if md.get("kind") not in HOST_KINDS or md.get("host") != self.host:
            return None
        return self.live.get(("bridge" if md["kind"] == "ovs_bridge" else "link", md["name"]))

    def networks(self, plan: Plan) -> None:
        """Declared Docker networks the plan creates are drawn from its change, on their bridge."""
        for c in plan.changes:
            if c.resource.startswith("docker-network:") and c.action is Action.CREATE:
                name = c.resource.partition(":")[2]
                if ("network", name) in self.live:
                    continue
                node = nid("docker_network", self.host, name)
                bridge = _network_bridge(self.want, self.host, name)
                self.g.add_node(node, kind="docker_network", host=self.host, name=name, resources=(c.resource,), ghost=True,
                                wanted=c.after, vlan=self.want.nodes[bridge].get("vlan") if bridge else None)
                self.live[("network", name)] = node
                if bridge is not None:
                    self.missing_networks.append((node, self.want.nodes[bridge]["name"]))

    def strangers_on_our_bridges(self) -> None:
        for _, d in list(self.g.nodes(data=True)):
            br = d.get("bridge")
            if d.get("host") != self.host or br is None or d.get("marks") or d.get("lab"):
                continue
            if ("bridge", br) not in self.declared or ("link", d["name"]) in self.declared or d.get("owner") == self.topology:
                continue
            whose = f"topology {d['owner']}" if d.get("owner") else "not ovsnet's"
            self.add(f"port:{br}/{d['name']}", Mark.FOREIGN, f"on ovsnet's bridge {br} but not in the file ({whose}); up never touches it", "bridge")

    def is_declared(self, d: dict) -> bool:
        kind, name = d.get("kind"), d.get("name", "")
        if kind == "docker_network":
            return name in self.declared_networks
        return ("bridge" if kind == "ovs_bridge" else "link", name) in self.declared

    def finish(self) -> None:
        for _, d in self.g.nodes(data=True):
            if d.get("host") != self.host or d.get("kind") == "host":
                continue
            marks = d.pop("marks", [])
            d["drift"] = next((m.value for m in PRIORITY if m.value in marks), None)
            # A reason under another mark than the node's own says which.
            d["drift_notes"] = [text if m == d["drift"] else f"{m}: {text}" for m, text in d.pop("notes", [])]
            d["declared"] = self.is_declared(d)
            d["faded"] = not d["drift"] and not d["declared"] and d.get("owner") != self.topology
        for u, v, e in self.g.edges(data=True):
            if self.g.nodes[u].get("host") != self.host:
                continue
            marks = e.pop("marks", [])
            e["drift"] = next((m.value for m in PRIORITY if m.value in marks), None)
            if not e["drift"] and (self.g.nodes[u].get("faded") or self.g.nodes[v].get("faded")):
                e["faded"] = True


def _index(g: nx.Graph, host: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for n, d in g.nodes(data=True):
        if d.get("host") != host:
            continue
        kind = d.get("kind")
        if kind == "ovs_bridge":
            out[("bridge", d["name"])] = n
        elif kind == "docker_network":
            out[("network", d["name"])] = n
        elif kind in HOST_KINDS:
            out.setdefault(("link", d["name"]), n)
        if kind == "linux_bridge" and d.get("network") and g.graph.get("live") is None:
            out[("network", d["network"])] = n  # the file declares its Docker network on the bridge
    return out


def _network_bridge(want: nx.Graph, host: str, network: str) -> str | None:
    return next((n for n, d in want.nodes(data=True) if d.get("host") == host and d.get("kind") == "linux_bridge" and d.get("network") == network), None)


def mark(g: nx.Graph, want: nx.Graph, plan: Plan, host: str, topology: str) -> list[Found]:
    """Put the plan's verdicts on the live graph of `host`; return them, in plan order."""
    m = _Marker(g, want, host, topology)
    m.networks(plan)
    for c in plan.changes:
        m.add(c.resource, _ACTION_MARK[c.action], change_text(c), "plan", ghost=c.action is Action.CREATE)
    for b in plan.blockers:
        present = any(m.node(space, name, False) for space, names in [m.names(b.resource)] for name in names)
        m.add(b.resource, Mark.FOREIGN if present else Mark.MISSING, b.message, "blocker", ghost=not present)
    for h in plan.health:
        # As declared, but not working (a bond's member down): drift that up cannot fix.
        m.add(h.resource, Mark.DIFFERENT, h.message, "health")
    m.ghost_edges()
    m.strangers_on_our_bridges()
    m.finish()
    g.graph.setdefault("host_drift", {})[host] = m.host_lines
    g.graph.setdefault("marks", []).extend(f.as_data() for f in m.found)
    return m.found


def counts(found: Iterable[Found]) -> dict[str, int]:
    out = {m.value: 0 for m in PRIORITY}
    for f in found:
        out[f.mark.value] += 1
    return out
