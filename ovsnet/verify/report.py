"""verify's result: every pair, expected vs seen, with the captures' findings and the probes.

The lab and host runs both end in `build_report`; render/verify.py shows a
Report as the matrix or as JSON.

A dual-stack run is two matrices, one per IP family, with the same station
names: the Report is the first family's (IPv4) and carries the IPv6 one in
`ipv6` (its own stations, pairs and probe addresses; the captures, which see
both families, and the notes stay on the first). A single-family run is
exactly the Report it always was.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

from ovsnet.topology.graph import Expect
from ovsnet.verify.frames import CaptureFinding, CaptureResult
from ovsnet.verify.matrix import REACHABLE, Peer

MARK_SAME = "ok"
MARK_ROUTED = "R"
MARK_BLOCKED = "--"
MARK_MISSED = "FAIL(exp reach)"
MARK_LEAK = "FAIL(leak)"
MARK_UNPROBED = "."


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
    family: int = 4

    @property
    def problem(self) -> str | None:
        if self.in_slice:
            return None
        key = "ip_range6" if self.family == 6 else "ip_range"
        return (f"probe {self.name}: Docker gave it {self.address or f'no IPv{self.family} address'}, outside {self.host}'s "
                f"{'IPv6 ' if self.family == 6 else ''}slice {self.slice} of VLAN {self.vlan}: addresses may collide across hosts "
                f"(is network {self.network}'s {key} as ovsnet set it? `ovsnet status FILE --host {self.host}`)")


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
    family: int = 4  # the IP family of stations and pairs
    ipv6: Report | None = None  # a dual-stack run's IPv6 matrix

    @property
    def halves(self) -> tuple[Report, ...]:
        """This family's report, then the IPv6 one of a dual-stack run."""
        return (self,) if self.ipv6 is None else (self, self.ipv6)

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
        return not self.mismatches and not self.findings and not self.problems and (self.ipv6 is None or self.ipv6.ok)

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
    family: int = 4,
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
        family=family,
    )


def dual(reports: Sequence[Report]) -> Report:
    """One Report of a run's per-family reports (IPv4 first): the IPv6 one rides in `ipv6`."""
    first, *rest = reports
    return first if not rest else replace(first, ipv6=rest[0])
