"""What verify probes: the stations, the pairs to ping, and what each pair should do.

A station is a test endpoint, a host's own address, or a probe container;
what each pair should do (same VLAN, routed, blocked) comes from the
topology's graph (topology/graph.py: `expected`). Above MAX_FULL_STATIONS
stations the pairs are sampled (`choose_pairs`). Nothing here runs a command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ovsnet.topology import Checked, graph
from ovsnet.topology.graph import Expect, Station
from ovsnet.topology.model import Attach, Layout, Topology
from ovsnet.verify import containers

REACHABLE = frozenset({Expect.SAME_VLAN, Expect.ROUTED})

#: Above this many stations, verify probes a sample of the pairs (see choose_pairs).
MAX_FULL_STATIONS = 64


@dataclass(frozen=True)
class Peer:
    """A station as the report shows it."""

    name: str
    host: str
    vlan: int | None
    address: str  # "10.100.0.11/24"
    is_host_address: bool
    group: str  # stations of one group share their attachment (host, VLAN, Docker bridge)
    probe: str | None = None  # a probe container's Docker network (see verify/containers.py)

    @property
    def kind(self) -> str:
        return "host" if self.is_host_address else "probe" if self.probe else "endpoint"

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def family(self) -> int:
        """4 or 6: a dual-stack station is a Peer of each family, under one name."""
        return 6 if ":" in self.address else 4

    @property
    def label(self) -> str:
        return f"{self.name} (v{self.vlan})" if self.vlan is not None else self.name


def group_of(station: Station, attach: str = "") -> str:
    """Stations sharing a group reach the network through the same configured ports.

    A host's own address is a group of its own; endpoints group by host, VLAN
    and how they attach ("docker", "flat" or "ovs"), since a Docker bridge's
    VLAN tag sits on one OVS port that all its containers share.
    """
    if station.is_host_address:
        return f"{station.host}/host"
    return f"{station.host}/v{station.vlan}" + (f"/{attach}" if attach and attach != "docker" else "")


def peers(
    stations: Sequence[Station],
    attach: Mapping[str, str] | None = None,
    probes: Mapping[str, str] | None = None,
) -> tuple[Peer, ...]:
    """Peers of the stations; `probes` maps a probe container's station name to its Docker network."""
    attach, probes = attach or {}, probes or {}
    return tuple(
        Peer(s.name, s.host, s.vlan, s.address, s.is_host_address, group_of(s, attach.get(s.name, "")), probes.get(s.name))
        for s in stations
    )


def representatives(stations: Sequence[Peer]) -> list[Peer]:
    """The first station of each group, in station order."""
    reps: dict[str, Peer] = {}
    for s in stations:
        reps.setdefault(s.group, s)
    return list(reps.values())


def choose_pairs(
    stations: Sequence[Peer],
    expected: Mapping[tuple[str, str], Expect],
    all_pairs: bool = False,
    max_full: int = MAX_FULL_STATIONS,
) -> tuple[list[tuple[str, str]], bool]:
    """The (source, destination) pairs to ping, and whether that is a sample.

    Up to `max_full` stations (or with all_pairs) every pair of the expected
    matrix is pinged. Above it, the sample is:

    1. one representative per group (the first station of each host/VLAN/
       attachment, and each host address): every pair between representatives,
       so every VLAN x VLAN and host x host combination is still probed both ways;
    2. every other station pings every representative of its own VLAN (its own
       group's and each other host's: the trunk path of every single station);
    3. every other station pings the representative of each other group on its
       own host (its host's address and the other VLANs there: isolation on the
       bridge it shares).
    """
    if all_pairs or len(stations) <= max_full:
        return list(expected), False
    reps = {s.group: s for s in representatives(stations)}
    rep_list = list(reps.values())
    chosen: dict[tuple[str, str], None] = {}

    def add(a: Peer, b: Peer) -> None:
        if (a.name, b.name) in expected:
            chosen[(a.name, b.name)] = None

    for a in rep_list:
        for b in rep_list:
            add(a, b)
    for s in stations:
        if reps[s.group] is s:
            continue
        for r in rep_list:
            if r.vlan == s.vlan and not r.is_host_address and not s.is_host_address:
                add(s, r)
            elif r.host == s.host and r.group != s.group:
                add(s, r)
    return list(chosen), True


# --- one run's plan ----------------------------------------------------------------


@dataclass(frozen=True)
class ProbePlan:
    """One verify run's stations, expected matrix and the pairs it pings (ovsnet.plan.Plan is apply's), in one IP family."""

    stations: tuple[Peer, ...]
    expected: dict[tuple[str, str], Expect]
    pairs: list[tuple[str, str]]
    sampled: bool
    family: int = 4


def probe_plan(
    checked: Checked,
    all_pairs: bool = False,
    max_full: int = MAX_FULL_STATIONS,
    probes: Sequence[containers.Probe] = (),
    family: int = 4,
) -> ProbePlan:
    """Stations, expected matrix and pairs of one IP family; probes are stations too, expected of as endpoints."""
    topo, g = checked.topology, checked.graph
    if probes:
        topo = containers.with_probes(topo, probes)
        g = graph.build(topo)
    sts = graph.stations(topo, g, family)
    expected = graph.expected(topo, g, family=family)
    stations = peers(sts, _attach(topo), {p.name: p.spec.network for p in probes})
    pairs, sampled = choose_pairs(stations, expected, all_pairs, max_full)
    return ProbePlan(stations, expected, pairs, sampled, family)


def probe_plans(
    checked: Checked,
    all_pairs: bool = False,
    max_full: int = MAX_FULL_STATIONS,
    probes: Sequence[containers.Probe] = (),
) -> list[ProbePlan]:
    """One ProbePlan per IP family the topology's stations have (IPv4 first): a dual-stack lab is probed in both."""
    return [probe_plan(checked, all_pairs, max_full, probes, f) for f in graph.families(checked.topology)]


def _attach(topo: Topology) -> dict[str, str]:
    out = {}
    for ep in topo.endpoints:
        host = topo.hosts.get(ep.host)
        if host is not None and host.layout is Layout.FLAT:
            out[ep.name] = "flat"
        else:
            out[ep.name] = "ovs" if ep.attach is Attach.OVS else "docker"
    return out


def vlan_ids(topo: Topology) -> dict[str, int]:
    return {v.name: v.id for v in topo.vlans.values()}
