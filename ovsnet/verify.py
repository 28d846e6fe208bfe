"""`ovsnet verify`, the pure half: what to probe, what the probes mean, the report.

Nothing here runs a command. The lab side (pings, tcpdump) is in
``ovsnet/lab/probe.py``; it hands this module what it saw:

- ``observed``: for each probed (source, destination) pair of station names,
  whether any echo reply came back;
- the frames tcpdump printed (``-e -nn``) on each capture point, with the MAC
  addresses of every station and router leg, so a frame can be told apart by
  who sent it, not only by its IP source (a routed frame keeps the IP source
  of another VLAN but carries the router leg's MAC).

Checks made on the captures:

- trunk (a switch port towards a host, or a host NIC on a direct cable):
  every frame of VLAN V carries tag V, or no tag when V is the native VLAN; no
  frame of a VLAN the trunk does not carry; and for every VLAN whose traffic
  had to cross it, at least one correctly tagged frame from a station behind it;
- endpoint port (the endpoint's host-side veth, in its Docker bridge, flat
  bridge, or on OVS): no tagged frame, and no frame from another VLAN's
  station or router leg, or with an IPv4/IPv6 source in another VLAN's subnet
  (except from this VLAN's router leg, which forwards routed traffic).
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ovsnet.topology.graph import Expect, Station

REACHABLE = frozenset({Expect.SAME_VLAN, Expect.ROUTED})

#: Above this many stations, verify probes a sample of the pairs (see choose_pairs).
MAX_FULL_STATIONS = 64
#: Above this many stations, render_matrix draws groups (or VLANs), not stations.
MAX_GRID = 40
MAX_GROUP_GRID = 24
MAX_MISMATCH_LINES = 200

MARK_SAME = "ok"
MARK_ROUTED = "R"
MARK_BLOCKED = "--"
MARK_MISSED = "FAIL(exp reach)"
MARK_LEAK = "FAIL(leak)"
MARK_UNPROBED = "."
MARK_SELF = "\\"
MARK_SKIPPED = ""
CORNER = "from \\ to"

LEGEND = (
    f"{MARK_SAME} = same VLAN, reached   {MARK_ROUTED} = routed, reached   {MARK_BLOCKED} = blocked, not reached\n"
    f"{MARK_MISSED} = should reach, did not   {MARK_LEAK} = should be blocked, reached   "
    f"{MARK_UNPROBED} = not probed (sampled)"
)


# --- stations and the pairs to probe ---------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A station as the report shows it."""

    name: str
    host: str
    vlan: int | None
    address: str  # "10.100.0.11/24"
    is_host_address: bool
    group: str  # stations of one group share their attachment (host, VLAN, Docker bridge)
    probe: str | None = None  # a probe container's Docker network (see ovsnet/probes.py)

    @property
    def kind(self) -> str:
        return "host" if self.is_host_address else "probe" if self.probe else "endpoint"

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

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


# --- the pairs' results ---------------------------------------------------------------


@dataclass(frozen=True)
class PairResult:
    src: str
    dst: str
    expect: Expect
    reached: bool | None  # None: not probed (sampled out)

    @property
    def probed(self) -> bool:
        return self.reached is not None

    @property
    def should_reach(self) -> bool:
        return self.expect in REACHABLE

    @property
    def ok(self) -> bool:
        return self.reached is None or self.reached == self.should_reach

    @property
    def mark(self) -> str:
        if self.reached is None:
            return MARK_UNPROBED
        if not self.ok:
            return MARK_MISSED if self.should_reach else MARK_LEAK
        return {Expect.SAME_VLAN: MARK_SAME, Expect.ROUTED: MARK_ROUTED, Expect.BLOCKED: MARK_BLOCKED}[self.expect]


# --- frames and captures --------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One line of `tcpdump -e -nn`."""

    src_mac: str
    dst_mac: str
    tags: tuple[int, ...]  # 802.1Q tags, outermost first
    ethertype: str  # of the payload: "IPv4", "ARP", "IPv6", ...
    sender_ip: str | None  # IP source, or ARP sender


_LINE = re.compile(r"^\S+\s+(?P<src>[0-9a-f]{2}(?::[0-9a-f]{2}){5}) > (?P<dst>[0-9a-f]{2}(?::[0-9a-f]{2}){5}), (?P<rest>.*)$")
_ETHER = re.compile(r"^ethertype (?P<type>\S+) \(0x[0-9a-f]+\), length \d+: (?P<body>.*)$")
_VLAN = re.compile(r"^vlan (?P<id>\d+), p \d+, (?:DEI, )?(?:ethertype (?P<type>\S+) \(0x[0-9a-f]+\), )?(?P<body>.*)$")
_IPV4 = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\.\d+)? > ")
_IPV6 = re.compile(r"^([0-9a-f:]*:[0-9a-f:]*?)(?:\.\d+)? > ")
_ARP_REQ = re.compile(r"Request who-has \S+ (?:\(\S+\) )?tell (\S+?),")
_ARP_REP = re.compile(r"Reply (\S+) is-at ")


def parse_frame(line: str) -> Frame | None:
    """A Frame from a `tcpdump -e -nn` line; None for lines that are not frames."""
    m = _LINE.match(line.strip())
    if not m:
        return None
    e = _ETHER.match(m["rest"])
    if not e:
        return Frame(m["src"], m["dst"], (), "", None)
    etype, body = e["type"], e["body"]
    tags: list[int] = []
    while etype.startswith("802.1Q") or etype == "802.1ad":
        v = _VLAN.match(body)
        if not v:
            break
        tags.append(int(v["id"]))
        etype, body = v["type"] or "", v["body"]
    sender: str | None = None
    if etype == "IPv4":
        ip = _IPV4.match(body)
        sender = ip.group(1) if ip else None
    elif etype == "IPv6":
        ip = _IPV6.match(body)
        sender = ip.group(1) if ip else None
    elif etype == "ARP":
        arp = _ARP_REQ.search(body) or _ARP_REP.search(body)
        sender = arp.group(1) if arp else None
    return Frame(m["src"], m["dst"], tuple(tags), etype, sender)


def parse_frames(text: str) -> list[Frame]:
    return [f for f in map(parse_frame, text.splitlines()) if f is not None]


@dataclass(frozen=True)
class MacOwner:
    """Who sends frames from a MAC: a station, or the router's leg on a VLAN."""

    name: str
    vlan: int | None
    host: str  # the station's host; the router's name for a router leg
    router: bool = False


@dataclass(frozen=True)
class CapturePoint:
    """Where tcpdump listens, and what it should see there."""

    node: str  # lab node owning the interface: the switch, a host
    namespace: str
    interface: str
    role: str  # "trunk", "access" (a flat host's NIC: one VLAN, untagged) or "endpoint"
    vlans: frozenset[int | None]  # VLANs allowed on it (an endpoint port: its one VLAN)
    native: int | None = None  # the VLAN that crosses untagged
    near: frozenset[str] = frozenset()  # hosts behind a trunk (their stations' frames come from there)
    required: frozenset[int | None] = frozenset()  # VLANs whose near-side frames must be seen
    owner: str | None = None  # the endpoint, for an endpoint port

    @property
    def where(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class CaptureFinding:
    node: str
    interface: str
    role: str
    kind: str  # wrong-tag | vlan-not-allowed | tag-not-allowed | missing | foreign-frame | tagged-on-access
    vlan: int | None  # the VLAN the frames belong to (for tag-not-allowed: the tag seen)
    seen_tag: int | None
    frames: int
    detail: str

    def text(self) -> str:
        return f"{self.node}:{self.interface} ({self.role}): {self.kind}: {self.detail}"


@dataclass(frozen=True)
class CaptureResult:
    node: str
    interface: str
    role: str
    frames: int
    # (VLAN, tag seen, frames) of the frames told apart by sender; tag None = untagged
    seen: tuple[tuple[int | None, int | None, int], ...] = ()
    owner: str | None = None


def _v(vlan: int | None) -> str:
    return "untagged" if vlan is None else str(vlan)


def _tag(tag: int | None) -> str:
    return "untagged" if tag is None else f"tagged {tag}"


class Subnets:
    """IP address -> VLAN, for frames whose sender MAC is unknown."""

    def __init__(self, nets: Iterable[tuple[str, int | None]]):
        by_net: dict[Any, set[int | None]] = defaultdict(set)
        for net, vlan in nets:
            by_net[ipaddress.ip_network(net, strict=False)].add(vlan)
        # A subnet claimed by two VLANs tells nothing.
        self._nets = [(n, next(iter(v))) for n, v in by_net.items() if len(v) == 1]

    def vlan(self, ip: str | None) -> tuple[bool, int | None]:
        if not ip:
            return False, None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False, None
        found = {v for n, v in self._nets if addr.version == n.version and addr in n}
        return (True, found.pop()) if len(found) == 1 else (False, None)


def analyze(
    point: CapturePoint,
    frames: Sequence[Frame],
    macs: Mapping[str, MacOwner],
    subnets: Subnets,
) -> tuple[CaptureResult, list[CaptureFinding]]:
    """Check one capture point's frames; findings are aggregated per (kind, VLAN, tag)."""
    seen: Counter[tuple[int | None, int | None]] = Counter()
    bad: dict[tuple[str, int | None, int | None], list[str]] = defaultdict(list)
    near_seen: Counter[int | None] = Counter()
    for f in frames:
        owner = macs.get(f.src_mac)
        outer = f.tags[0] if f.tags else None
        if owner is not None:
            known, vlan, who = True, owner.vlan, owner.name
        else:
            known, vlan = subnets.vlan(f.sender_ip)
            who = f"{f.src_mac} ({f.sender_ip})"
        if point.role != "endpoint":
            if not known:
                if outer is not None and outer not in point.vlans:
                    bad[("tag-not-allowed", outer, outer)].append(who)
                continue
            seen[(vlan, outer)] += 1
            if vlan not in point.vlans:
                bad[("vlan-not-allowed", vlan, outer)].append(who)
                continue
            want = None if vlan == point.native or vlan is None else vlan
            if outer != want or len(f.tags) > 1:
                bad[("wrong-tag", vlan, outer)].append(who)
                continue
            if owner is not None and not owner.router and owner.host in point.near:
                near_seen[vlan] += 1
        else:
            (own_vlan,) = point.vlans
            if known:
                seen[(vlan, outer)] += 1
            if outer is not None:
                bad[("tagged-on-access", vlan if known else None, outer)].append(who)
                continue
            if not known or vlan == own_vlan:
                continue
            bad[("foreign-frame", vlan, outer)].append(who)
    findings = [
        CaptureFinding(point.node, point.interface, point.role, kind, vlan, tag, len(who),
                       _detail(point, kind, vlan, tag, who))
        for (kind, vlan, tag), who in sorted(bad.items(), key=lambda kv: (kv[0][0], _key(kv[0][1]), _key(kv[0][2])))
    ]
    if point.role != "endpoint":
        for vlan in sorted(point.required, key=_key):
            if near_seen[vlan] == 0:
                hosts = ", ".join(sorted(point.near))
                findings.append(CaptureFinding(
                    point.node, point.interface, point.role, "missing", vlan, None, 0,
                    f"no frame of VLAN {_v(vlan)} from {hosts} ({_tag(None if vlan == point.native else vlan)}) "
                    f"although probes of that VLAN had to cross this trunk",
                ))
    result = CaptureResult(
        point.node, point.interface, point.role, len(frames),
        tuple(sorted(((v, t, n) for (v, t), n in seen.items()), key=lambda x: (_key(x[0]), _key(x[1])))),
        point.owner,
    )
    return result, findings


def _key(v: int | None) -> int:
    return -1 if v is None else v


def _detail(point: CapturePoint, kind: str, vlan: int | None, tag: int | None, who: list[str]) -> str:
    senders = ", ".join(sorted(set(who))[:4]) + (", ..." if len(set(who)) > 4 else "")
    n = len(who)
    frames = f"{n} frame{'s' if n != 1 else ''}"
    if kind == "wrong-tag":
        want = None if vlan == point.native or vlan is None else vlan
        return f"{frames} of VLAN {_v(vlan)} {_tag(tag)}, expected {_tag(want)} (from {senders})"
    if kind == "vlan-not-allowed":
        return f"{frames} of VLAN {_v(vlan)} ({_tag(tag)}), which this trunk must not carry (from {senders})"
    if kind == "tag-not-allowed":
        return f"{frames} tagged {tag}, a VLAN this trunk must not carry (from {senders})"
    if kind == "tagged-on-access":
        return f"{frames} {_tag(tag)} on an access port (from {senders})"
    if kind == "foreign-frame":
        return (f"{frames} of VLAN {_v(vlan)} on the port of {point.owner or point.interface} "
                f"(VLAN {_v(next(iter(point.vlans)))}) (from {senders})")
    return f"{frames} (from {senders})"


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeRecord:
    """A probe container that took part, as the report lists it."""

    name: str  # its station's name, NETWORK@HOST
    host: str
    network: str
    vlan: int | None
    address: str  # from Docker's IPAM
    slice: str | None  # the host's slice of the VLAN
    in_slice: bool
    container: str  # the container's name
    image: str

    @property
    def problem(self) -> str | None:
        if self.in_slice:
            return None
        return (f"probe {self.name}: Docker gave it {self.address}, outside {self.host}'s slice {self.slice} of VLAN "
                f"{self.vlan}: addresses may collide across hosts (is network {self.network}'s ip_range as ovsnet set it? "
                f"`ovsnet status FILE --host {self.host}`)")


@dataclass(frozen=True)
class Report:
    topology: str
    mode: str  # "lab", or "host" (pings from this machine only)
    stations: tuple[Peer, ...]
    pairs: tuple[PairResult, ...]
    captures: tuple[CaptureResult, ...] = ()
    findings: tuple[CaptureFinding, ...] = ()
    sampled: bool = False
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    timings: tuple[tuple[str, float], ...] = field(default=())
    probes: tuple[ProbeRecord, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """Failures that are not a pair or a capture (a probe's address outside its slice)."""
        return tuple(p.problem for p in self.probes if p.problem)

    @property
    def mismatches(self) -> tuple[PairResult, ...]:
        return tuple(p for p in self.pairs if not p.ok)

    @property
    def probed(self) -> int:
        return sum(1 for p in self.pairs if p.probed)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.findings and not self.problems

    def broken_pairs(self) -> set[tuple[str, str]]:
        return {(p.src, p.dst) for p in self.mismatches}


def build_report(
    topology: str,
    stations: Sequence[Peer],
    expected: Mapping[tuple[str, str], Expect],
    observed: Mapping[tuple[str, str], bool],
    *,
    mode: str = "lab",
    captures: Sequence[CaptureResult] = (),
    findings: Sequence[CaptureFinding] = (),
    sampled: bool = False,
    notes: Sequence[str] = (),
    seconds: float = 0.0,
    timings: Sequence[tuple[str, float]] = (),
    probes: Sequence[ProbeRecord] = (),
) -> Report:
    """One PairResult per expected pair, in station order; observed pairs must be expected ones."""
    unknown = set(observed) - set(expected)
    if unknown:
        raise ValueError(f"observed pairs that are not in the expected matrix: {sorted(unknown)[:5]}")
    order = {s.name: i for i, s in enumerate(stations)}
    pairs = sorted(expected, key=lambda p: (order.get(p[0], len(order)), order.get(p[1], len(order))))
    return Report(
        topology=topology,
        mode=mode,
        stations=tuple(stations),
        pairs=tuple(PairResult(a, b, expected[(a, b)], observed.get((a, b))) for a, b in pairs),
        captures=tuple(captures),
        findings=tuple(findings),
        sampled=sampled,
        notes=tuple(notes),
        seconds=seconds,
        timings=tuple(timings),
        probes=tuple(probes),
    )


# --- rendering ---------------------------------------------------------------------------------


def _grid(rows: list[str], cols: list[str], cell: Mapping[tuple[str, str], str]) -> list[str]:
    width = [max([len(c), *(len(cell.get((r, c), "")) for r in rows)]) for c in cols]
    left = max([len(CORNER), *map(len, rows)])
    out = ["  ".join([CORNER.ljust(left), *(c.ljust(w) for c, w in zip(cols, width))]).rstrip()]
    for r in rows:
        out.append("  ".join([r.ljust(left), *(cell.get((r, c), "").ljust(w) for c, w in zip(cols, width))]).rstrip())
    return out


def _cells_by_station(report: Report) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    by_name = {s.name: s for s in report.stations}
    srcs = {p.src for p in report.pairs}
    dsts = {p.dst for p in report.pairs}
    rows = [s for s in report.stations if s.name in srcs]
    cols = [s for s in report.stations if s.name in dsts]
    cell: dict[tuple[str, str], str] = {}
    for r in rows:
        for c in cols:
            cell[(r.label, c.name)] = MARK_SELF if r.name == c.name else MARK_SKIPPED
    for p in report.pairs:
        cell[(by_name[p.src].label, p.dst)] = p.mark
    return [r.label for r in rows], [c.name for c in cols], cell


def _cells_by(report: Report, key: Callable[[Peer], str]) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
    """A grid of aggregates: a cell shows the marks of all its stations' pairs ("FAIL(..)xN" first)."""
    of = {s.name: key(s) for s in report.stations}
    size = Counter(of.values())
    order = list(dict.fromkeys(of[s.name] for s in report.stations))
    labels = {g: f"{g} x{size[g]}" if size[g] > 1 else g for g in order}
    marks: dict[tuple[str, str], list[PairResult]] = defaultdict(list)
    for p in report.pairs:
        marks[(of[p.src], of[p.dst])].append(p)
    cell: dict[tuple[str, str], str] = {}
    for (a, b), ps in marks.items():
        fails = [p for p in ps if not p.ok]
        probed = [p for p in ps if p.probed]
        if fails:
            kinds = sorted({p.mark for p in fails})
            cell[(labels[a], b)] = "/".join(kinds) + (f"x{len(fails)}" if len(fails) > 1 else "")
        elif probed:
            cell[(labels[a], b)] = "/".join(sorted({p.mark for p in probed}))
        else:
            cell[(labels[a], b)] = MARK_UNPROBED
    rows = [g for g in order if any(k[0] == g for k in marks)]
    cols = [g for g in order if any(k[1] == g for k in marks)]
    return [labels[g] for g in rows], cols, cell


def _vlan_key(s: Peer) -> str:
    return f"v{s.vlan if s.vlan is not None else '-'}" + (" hosts" if s.is_host_address else "")


def render_matrix(report: Report, max_grid: int = MAX_GRID, max_lines: int = MAX_MISMATCH_LINES) -> str:
    """Expected vs seen as a grid (rows: sources, columns: destinations), then what failed.

    Up to `max_grid` stations, one row and column per station; above, one per
    host/VLAN group (up to MAX_GROUP_GRID groups), else one per VLAN.
    """
    groups = {s.group for s in report.stations}
    vlans = {_vlan_key(s) for s in report.stations}
    lines = [f"verify {report.topology} ({'lab' if report.mode == 'lab' else 'from this host'}): expected vs seen"]
    if len(report.stations) <= max_grid:
        lines += _grid(*_cells_by_station(report))
    elif len(groups) <= MAX_GROUP_GRID:
        lines.append(f"{len(report.stations)} stations, drawn by group (host/VLAN); a cell sums its stations' pairs")
        lines += _grid(*_cells_by(report, lambda s: s.group))
    elif len(vlans) <= max_grid:
        lines.append(f"{len(report.stations)} stations in {len(groups)} groups, drawn by VLAN; a cell sums its stations' pairs")
        lines += _grid(*_cells_by(report, _vlan_key))
    else:
        lines.append(f"{len(report.stations)} stations in {len(groups)} groups: too many to draw; mismatches below")
    lines.append(LEGEND)
    if report.probes:
        lines.append("NETWORK@HOST = a probe container on that host's Docker network: "
                     + ", ".join(f"{p.name} {p.address}" for p in report.probes))
    total = len(report.pairs)
    if report.sampled:
        lines.append(
            f"sampled: {report.probed} of {total} pairs probed (every pair between one representative per "
            f"host/VLAN group and each host address; every station to each representative of its VLAN and "
            f"to the other groups on its host)"
        )
    by_name = {s.name: s for s in report.stations}
    for p in report.mismatches[:max_lines]:
        dst = by_name.get(p.dst)
        lines.append(
            f"MISMATCH {p.src} -> {p.dst}{f' ({dst.ip})' if dst else ''}: expected {p.expect.value} "
            f"({'reachable' if p.should_reach else 'unreachable'}), {'reached' if p.reached else 'not reached'}"
        )
    if len(report.mismatches) > max_lines:
        lines.append(f"... and {len(report.mismatches) - max_lines} more mismatches (--json lists them all)")
    if report.captures:
        frames = sum(c.frames for c in report.captures)
        trunks = sum(1 for c in report.captures if c.role != "endpoint")
        lines.append(
            f"captures: {len(report.captures)} interfaces ({trunks} uplink, {len(report.captures) - trunks} endpoint ports), "
            f"{frames} frames: " + ("tags and VLAN isolation as expected" if not report.findings else f"{len(report.findings)} finding(s)")
        )
        for c in report.captures:
            if c.role != "endpoint":
                vl = ", ".join(f"VLAN {_v(v)} {_tag(t)}: {n}" for v, t, n in c.seen) or "no frames of known senders"
                lines.append(f"  {c.role} {c.node}:{c.interface}: {vl}")
    for f in report.findings[:max_lines]:
        lines.append(f"CAPTURE {f.text()}")
    if len(report.findings) > max_lines:
        lines.append(f"... and {len(report.findings) - max_lines} more capture findings (--json lists them all)")
    for problem in report.problems:
        lines.append(f"PROBLEM {problem}")
    for note in report.notes:
        lines.append(f"note: {note}")
    n_bad = len(report.mismatches)
    lines.append(
        f"{'OK' if report.ok else 'FAILED'}: {report.probed} pairs probed, {n_bad} mismatch{'es' if n_bad != 1 else ''}, "
        f"{len(report.findings)} capture finding{'s' if len(report.findings) != 1 else ''}"
        + (f", {len(report.problems)} probe problem{'s' if len(report.problems) != 1 else ''}" if report.problems else "")
        + (f" ({report.seconds:.1f} s)" if report.seconds else "")
    )
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    return {
        "topology": report.topology,
        "mode": report.mode,
        "ok": report.ok,
        "sampled": report.sampled,
        "probed": report.probed,
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings},
        "stations": [
            {"name": s.name, "host": s.host, "vlan": s.vlan, "address": s.address,
             "host_address": s.is_host_address, "group": s.group, "kind": s.kind, "network": s.probe}
            for s in report.stations
        ],
        "probes": [
            {"name": p.name, "host": p.host, "network": p.network, "vlan": p.vlan, "address": p.address,
             "slice": p.slice, "in_slice": p.in_slice, "container": p.container, "image": p.image}
            for p in report.probes
        ],
        "problems": list(report.problems),
        "pairs": [
            {"src": p.src, "dst": p.dst, "expect": p.expect.value, "reached": p.reached, "ok": p.ok, "mark": p.mark}
            for p in report.pairs
        ],
        "mismatches": [{"src": p.src, "dst": p.dst, "expect": p.expect.value, "reached": p.reached} for p in report.mismatches],
        "captures": [
            {"node": c.node, "interface": c.interface, "role": c.role, "frames": c.frames, "endpoint": c.owner,
             "seen": [{"vlan": v, "tag": t, "frames": n} for v, t, n in c.seen]}
            for c in report.captures
        ],
        "findings": [
            {"node": f.node, "interface": f.interface, "role": f.role, "kind": f.kind, "vlan": f.vlan,
             "seen_tag": f.seen_tag, "frames": f.frames, "detail": f.detail}
            for f in report.findings
        ],
        "notes": list(report.notes),
    }
