"""What an edit opened and closed: this verify's pairs against a saved one's (`verify --baseline FILE`).

The baseline is the JSON of an earlier `ovsnet verify --json`: every pair
with what its topology expected and what was seen. A pair *flipped* when it
was reached then and is not now, or the other way round. A flip is
*expected* when the two topologies' expectations for that pair differ the
same way (the edit opened or closed it); any other flip is something the
edit does not explain (a change by hand, a fault). A pair whose expectation
changed but whose traffic did not is listed too: the edit did not take.
A dual-stack run is compared family by family (the JSON's top-level matrix
and its "ipv6" one): a pair flips in IPv4, in IPv6, or in both.
Pure: nothing here runs a command.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ovsnet.errors import UsageError
from ovsnet.topology.graph import Expect
from ovsnet.verify.matrix import REACHABLE
from ovsnet.verify.report import Report

BASELINE_FORMAT = 1


@dataclass(frozen=True)
class Seen:
    """One pair of a verify run: what its topology expected, what was seen (None: not probed)."""

    expect: Expect
    reached: bool | None


@dataclass(frozen=True)
class Baseline:
    source: str  # the file it was read from
    topology: str
    mode: str
    stations: tuple[str, ...]
    pairs: Mapping[tuple[str, str], Seen]  # of the first family (`family`)
    family: int = 4
    ipv6: Mapping[tuple[str, str], Seen] | None = None  # a dual-stack run's IPv6 pairs

    def of(self, family: int) -> Mapping[tuple[str, str], Seen] | None:
        """The pairs of one IP family, or None when the baseline has no matrix of it."""
        if family == self.family:
            return self.pairs
        return self.ipv6 if family == 6 else None


@dataclass(frozen=True)
class Flip:
    src: str
    dst: str
    before: Seen
    now: Seen
    family: int = 4

    @property
    def opened(self) -> bool:
        """Newly reachable (else newly blocked)."""
        return bool(self.now.reached)

    @property
    def expected(self) -> bool:
        """The edit explains it: the expectation changed, and the traffic followed it."""
        return _reach(self.before.expect) != _reach(self.now.expect) and self.now.reached == _reach(self.now.expect)


@dataclass(frozen=True)
class Comparison:
    baseline: Baseline
    flips: tuple[Flip, ...]
    missed: tuple[Flip, ...]  # the expectation changed, the traffic did not
    added: tuple[str, ...]  # stations new since the baseline
    removed: tuple[str, ...]  # stations gone since
    compared: int  # pairs probed in both runs

    @property
    def unexpected(self) -> tuple[Flip, ...]:
        return tuple(f for f in self.flips if not f.expected)

    @property
    def ok(self) -> bool:
        return not self.unexpected and not self.missed


def _reach(e: Expect) -> bool:
    return e in REACHABLE


def load(path: str | Path) -> Baseline:
    """A saved `ovsnet verify --json`; UsageError saying what is wrong with it."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except OSError as exc:
        raise UsageError(f"--baseline {p}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:
        raise UsageError(f"--baseline {p}: not JSON ({exc}); give the output of `ovsnet verify ... --json`") from None
    try:
        return parse(raw, str(p))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--baseline {p}: not the output of `ovsnet verify --json` ({type(exc).__name__}: {exc})") from None


def parse(raw: Any, source: str = "<baseline>") -> Baseline:
    if not isinstance(raw, dict) or not isinstance(raw.get("pairs"), list):
        raise ValueError("no list of pairs")
    if int(raw.get("format", BASELINE_FORMAT)) > BASELINE_FORMAT:
        raise ValueError(f"format {raw['format']} is newer than this ovsnet reads ({BASELINE_FORMAT})")
    six = raw.get("ipv6")
    if six is not None and (not isinstance(six, dict) or not isinstance(six.get("pairs"), list)):
        raise ValueError("no list of IPv6 pairs under ipv6")
    stations = tuple(str(s["name"]) for s in raw.get("stations", []))
    return Baseline(source, str(raw["topology"]), str(raw.get("mode", "lab")), stations, _pairs(raw["pairs"]),
                    int(raw.get("family", 4)), _pairs(six["pairs"]) if six is not None else None)


def _pairs(raw: list[Any]) -> dict[tuple[str, str], Seen]:
    pairs: dict[tuple[str, str], Seen] = {}
    for p in raw:
        reached = p["reached"]
        if reached is not None and not isinstance(reached, bool):
            raise ValueError(f"pair {p['src']} -> {p['dst']}: reached is {reached!r}")
        pairs[(str(p["src"]), str(p["dst"]))] = Seen(Expect(p["expect"]), reached)
    return pairs


def compare(base: Baseline, report: Report) -> Comparison:
    """The flips between the baseline and this run, in this run's pair order."""
    if base.topology != report.topology:
        raise UsageError(f"--baseline {base.source} is a verify of topology {base.topology!r}, not {report.topology!r}")
    if base.mode != report.mode:
        raise UsageError(f"--baseline {base.source} is a verify {'--lab' if base.mode == 'lab' else 'from a host'}; "
                         f"this one is {'--lab' if report.mode == 'lab' else 'from a host'}: compare like with like")
    flips, missed = [], []
    compared = 0
    for half in report.halves:
        # A family the baseline has no matrix of (IPv6 added by the edit) has nothing to flip against.
        before = base.of(half.family) or {}
        for p in half.pairs:
            old = before.get((p.src, p.dst))
            if old is None or old.reached is None or p.reached is None:
                continue
            compared += 1
            f = Flip(p.src, p.dst, old, Seen(p.expect, p.reached), half.family)
            if old.reached != p.reached:
                flips.append(f)
            elif _reach(old.expect) != _reach(p.expect):
                missed.append(f)
    now = [s.name for s in report.stations]
    return Comparison(
        base, tuple(flips), tuple(missed),
        added=tuple(s for s in now if s not in base.stations),
        removed=tuple(s for s in base.stations if s not in now),
        compared=compared,
    )


def to_json(c: Comparison) -> dict[str, Any]:
    def flip(f: Flip) -> dict[str, Any]:
        return {"src": f.src, "dst": f.dst, "family": f.family, "was": f.before.reached, "now": f.now.reached,
                "expect_before": f.before.expect.value, "expect_now": f.now.expect.value, "expected": f.expected}

    return {
        "file": c.baseline.source,
        "ok": c.ok,
        "compared": c.compared,
        "flips": [flip(f) for f in c.flips],
        "missed": [flip(f) for f in c.missed],
        "stations_added": list(c.added),
        "stations_removed": list(c.removed),
    }
