"""verify's Report for people (the expected-vs-seen matrix) and as JSON."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Callable, Mapping

from ovsnet.verify.frames import describe_tag, describe_vlan
from ovsnet.verify.matrix import Peer
from ovsnet.verify.report import (
    MARK_BLOCKED,
    MARK_LEAK,
    MARK_MISSED,
    MARK_ROUTED,
    MARK_SAME,
    MARK_UNPROBED,
    PairResult,
    Report,
)

#: Above this many stations, render_matrix draws groups (or VLANs), not stations.
MAX_GRID = 40
MAX_GROUP_GRID = 24
MAX_MISMATCH_LINES = 200

MARK_SELF = "\\"
MARK_SKIPPED = ""
CORNER = "from \\ to"

LEGEND = (
    f"{MARK_SAME} = same VLAN, reached   {MARK_ROUTED} = routed, reached   {MARK_BLOCKED} = blocked, not reached\n"
    f"{MARK_MISSED} = should reach, did not   {MARK_LEAK} = should be blocked, reached   "
    f"{MARK_UNPROBED} = not probed (sampled)"
)


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


def _family(report: Report) -> str:
    return f"IPv{report.family}"


def _grid_lines(report: Report, max_grid: int) -> list[str]:
    """One family's grid: per station, per group, or per VLAN, by size."""
    groups = {s.group for s in report.stations}
    vlans = {_vlan_key(s) for s in report.stations}
    lines: list[str] = []
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
    return lines


def render_matrix(report: Report, max_grid: int = MAX_GRID, max_lines: int = MAX_MISMATCH_LINES) -> str:
    """Expected vs seen as a grid (rows: sources, columns: destinations), then what failed.

    Up to `max_grid` stations, one row and column per station; above, one per
    host/VLAN group (up to MAX_GROUP_GRID groups), else one per VLAN. A
    dual-stack run draws one grid per IP family, headed IPv4 and IPv6.
    """
    halves = [h for h in report.halves if h.stations] or [report]
    titled = len(halves) > 1 or report.family != 4
    lines = [f"verify {report.topology} ({'lab' if report.mode == 'lab' else 'from this host'}): expected vs seen"]
    for half in halves:
        if titled:
            lines.append(f"{_family(half)}:")
        lines += _grid_lines(half, max_grid)
    lines.append(LEGEND)
    probes: dict[str, list[str]] = {}
    for half in report.halves:
        for rec in half.probes:
            if rec.address:
                probes.setdefault(rec.name, []).append(rec.address)
    if probes:
        lines.append("NETWORK@HOST = a probe container on that host's Docker network: "
                     + ", ".join(f"{name} {' '.join(addrs)}" for name, addrs in probes.items()))
    for half in halves:
        if half.sampled:
            lines.append(
                f"sampled{f' ({_family(half)})' if titled else ''}: {half.probed} of {len(half.pairs)} pairs probed (every pair between one "
                f"representative per host/VLAN group and each host address; every station to each representative of its VLAN and "
                f"to the other groups on its host)"
            )
    shown = 0
    mismatches = [(half, p) for half in halves for p in half.mismatches]
    for half, p in mismatches[:max_lines]:
        dst = next((s for s in half.stations if s.name == p.dst), None)
        fam = f" ({_family(half)})" if titled else ""
        lines.append(
            f"MISMATCH{fam} {p.src} -> {p.dst}{f' ({dst.ip})' if dst else ''}: expected {p.expect.value} "
            f"({'reachable' if p.should_reach else 'unreachable'}), {'reached' if p.reached else 'not reached'}"
        )
        shown += 1
    if len(mismatches) > max_lines:
        lines.append(f"... and {len(mismatches) - max_lines} more mismatches (--json lists them all)")
    if report.captures:
        frames = sum(c.frames for c in report.captures)
        trunks = sum(1 for c in report.captures if c.role != "endpoint")
        lines.append(
            f"captures: {len(report.captures)} interfaces ({trunks} uplink, {len(report.captures) - trunks} endpoint ports), "
            f"{frames} frames: " + ("tags and VLAN isolation as expected" if not report.findings else f"{len(report.findings)} finding(s)")
        )
        for c in report.captures:
            if c.role != "endpoint":
                vl = ", ".join(f"VLAN {describe_vlan(v)} {describe_tag(t)}: {n}" for v, t, n in c.seen) or "no frames of known senders"
                lines.append(f"  {c.role} {c.node}:{c.interface}: {vl}")
    for f in report.findings[:max_lines]:
        lines.append(f"CAPTURE {f.text()}")
    if len(report.findings) > max_lines:
        lines.append(f"... and {len(report.findings) - max_lines} more capture findings (--json lists them all)")
    problems = [x for half in report.halves for x in half.problems]
    for problem in problems:
        lines.append(f"PROBLEM {problem}")
    for note in report.notes:
        lines.append(f"note: {note}")
    n_bad = len(mismatches)
    probed = sum(h.probed for h in halves)
    by_family = f" ({', '.join(f'{h.probed} {_family(h)}' for h in halves)})" if titled else ""
    lines.append(
        f"{'OK' if report.ok else 'FAILED'}: {probed} pairs probed{by_family}, {n_bad} mismatch{'es' if n_bad != 1 else ''}, "
        f"{len(report.findings)} capture finding{'s' if len(report.findings) != 1 else ''}"
        + (f", {len(problems)} probe problem{'s' if len(problems) != 1 else ''}" if problems else "")
        + (f" ({report.seconds:.1f} s)" if report.seconds else "")
    )
    return "\n".join(lines)


def _half_json(report: Report) -> dict[str, Any]:
    return {
        "family": report.family,
        "ok": report.ok,
        "sampled": report.sampled,
        "probed": report.probed,
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
        "pairs": [
            {"src": p.src, "dst": p.dst, "expect": p.expect.value, "reached": p.reached, "ok": p.ok, "mark": p.mark}
            for p in report.pairs
        ],
    }


def to_json(report: Report) -> dict[str, Any]:
    """The first family's matrix at the top (as for a single-family run), the IPv6 one under "ipv6";
    "mismatches" and "problems" list those of both families."""
    body = {
        "topology": report.topology,
        "mode": report.mode,
        "seconds": round(report.seconds, 3),
        "timings": {k: round(v, 3) for k, v in report.timings},
        **_half_json(report),
        "ok": report.ok,
        "problems": [x for half in report.halves for x in half.problems],
        "mismatches": [{"src": p.src, "dst": p.dst, "expect": p.expect.value, "reached": p.reached, "family": half.family}
                       for half in report.halves for p in half.mismatches],
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
    if report.ipv6 is not None:
        body["ipv6"] = _half_json(report.ipv6)
    return body
