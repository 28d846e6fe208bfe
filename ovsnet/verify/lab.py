"""`ovsnet verify --lab`: real traffic through a lab, judged against the topology.

Every station (a test endpoint in its own namespace, a host's own address in
the host's namespace, a probe container) pings the others' addresses, many
at once (verify/pings.py), while tcpdump listens on every trunk and endpoint
port (verify/capture.py); what it printed is checked afterwards
(verify/frames.py). Above matrix.MAX_FULL_STATIONS stations the pairs are
sampled (matrix.choose_pairs).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Sequence

from ovsnet.errors import UsageError
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import netns
from ovsnet.lab.names import Lab
from ovsnet.topology import Checked
from ovsnet.verify import containers
from ovsnet.verify.capture import (
    CAPTURE_SETTLE,
    Captures,
    capture_points,
    mac_owners,
    probe_ports,
    station_subnets,
)
from ovsnet.verify.containers import Progress
from ovsnet.verify.frames import (
    CaptureFinding,
    CapturePoint,
    CaptureResult,
    MacOwner,
    analyze,
    bundle_findings,
    parse_frames,
)
from ovsnet.verify.matrix import (
    MAX_FULL_STATIONS,
    REACHABLE,
    Peer,
    probe_plan,
    probe_plans,
    representatives,
    vlan_ids,
)
from ovsnet.verify.pings import (
    DEFAULT_CONCURRENCY,
    RETRIES,
    Pacer,
    arp_table_fulls,
    flush_neighbours,
    neigh_budget,
    ping_pairs,
)
from ovsnet.verify.probing import probe_records, run_with_probes
from ovsnet.verify.report import Report, build_report, dual


def _station_namespaces(lab: Lab, stations: Sequence[Peer], probes: Sequence[containers.Probe] = ()) -> dict[str, str]:
    names = lab.names
    by_probe = {p.name: p.netns for p in probes}
    return {
        s.name: by_probe[s.name] if s.name in by_probe else names.host_ns(s.host) if s.is_host_address else names.endpoint_ns(s.name)
        for s in stations
    }


def _lab_engines(lab: Lab) -> dict[str, str | None]:
    return {host: run.docker_host for host, run in lab_docker.runs(lab).items()}


def verify_lab(
    checked: Checked,
    lab: Lab,
    *,
    all_pairs: bool = False,
    capture: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    max_full: int = MAX_FULL_STATIONS,
    probes: bool | None = False,
    report: Progress = lambda _m: None,
) -> Report:
    """Ping every (or a sample of) station pair in the lab while capturing; the Report.

    probes: True starts a probe container per Docker network (error if the lab
    has no Docker or the image is missing), None does when the topology names
    a probe image and the lab runs Docker, False never.
    """
    started = time.monotonic()
    missing = [ns for ns in sorted(set(lab.namespaces.values())) if not netns.exists(ns)]
    if missing:
        raise UsageError(f"lab {lab.prefix} is not running (no namespace {', '.join(missing[:3])}); run `ovsnet lab up` first")
    no_engine = "the lab runs no Docker engine there (`ovsnet lab down FILE`, then `ovsnet lab up FILE --docker`)"
    return run_with_probes(
        checked, _lab_engines(lab), probes, None, no_engine,
        lambda found, notes: _verify_lab(checked, lab, found, notes, all_pairs=all_pairs, capture=capture,
                                         concurrency=concurrency, max_full=max_full, report=report, started=started),
        report, started,
    )


def _verify_lab(
    checked: Checked,
    lab: Lab,
    probes: Sequence[containers.Probe],
    notes: list[str],
    *,
    all_pairs: bool,
    capture: bool,
    concurrency: int,
    max_full: int,
    report: Progress,
    started: float,
) -> Report:
    # One matrix per IP family (IPv4 first); a dual-stack station is in both, under one name.
    plans = [pl for pl in probe_plans(checked, all_pairs, max_full, probes) if pl.stations] or [probe_plan(checked, all_pairs, max_full, probes)]
    by_family = {pl.family: pl for pl in plans}
    everyone = {s.name: s for pl in reversed(plans) for s in pl.stations}  # each name once, its IPv4 self if it has one
    at = _station_namespaces(lab, list(everyone.values()), probes)
    # The pings of both families in one run, keyed (name, family).
    where = {(s.name, pl.family): at[s.name] for pl in plans for s in pl.stations}
    address = {(s.name, pl.family): s.ip for pl in plans for s in pl.stations}
    pairs = [((a, pl.family), (b, pl.family)) for pl in plans for a, b in pl.pairs]
    expected = {((a, pl.family), (b, pl.family)): e for pl in plans for (a, b), e in pl.expected.items()}
    ids = vlan_ids(checked.topology)
    timings: list[tuple[str, float]] = []
    notes = list(notes)
    captures: list[CaptureResult] = []
    findings: list[CaptureFinding] = []
    t = time.monotonic()
    probe_names = {pr.name for pr in probes}
    macs = mac_owners(lab, [s for s in everyone.values() if s.name not in probe_names], at, concurrency) if capture else {}
    sampled = any(pl.sampled for pl in plans)
    # Sampled: the endpoint ports of the representatives only (each group's shared bridge and tag).
    ports = {s.name for pl in plans for s in representatives(pl.stations)} if sampled else None
    p4, p6 = by_family.get(4), by_family.get(6)
    points = capture_points(lab, p4.stations if p4 else (), p4.pairs if p4 else (), p4.expected if p4 else {}, ports,
                            ipv6=(p6.stations, p6.pairs, p6.expected) if p6 else None) if capture else []
    if capture and probes:
        for pr in probes:
            if pr.mac:
                macs[pr.mac.lower()] = MacOwner(pr.name, ids[pr.spec.vlan], pr.host)
        found = probe_ports(lab, [pr for pr in probes if ports is None or pr.name in ports])
        for pr in probes:
            if pr.name in found:
                points.append(CapturePoint(
                    node=pr.host, namespace=lab.names.host_ns(pr.host), interface=found[pr.name], role="endpoint",
                    vlans=frozenset({ids[pr.spec.vlan]}), native=ids[pr.spec.vlan], owner=pr.name,
                ))
            elif ports is None or pr.name in ports:
                notes.append(f"probe {pr.name}: its host-side port was not found; not captured")
    timings.append(("read lab", time.monotonic() - t))
    families = f" ({' and '.join(f'IPv{pl.family}' for pl in plans)})" if len(plans) > 1 else ""
    report(f"verify {checked.topology.name}: {len(pairs)} pairs of {len(everyone)} stations{families}"
           + (f" ({len(probes)} probe containers)" if probes else "")
           + (" (sampled)" if sampled else "") + (f", capturing on {len(points)} interfaces" if points else ""))
    # Probe containers' namespaces are paths, not lab namespaces: nothing to flush there.
    lab_ns = sorted({ns for ns in at.values() if not ns.startswith("/")} | ({lab.names.router_ns} if lab.names.router else set()))
    fulls = arp_table_fulls()
    flush_neighbours(lab_ns, concurrency)
    with tempfile.TemporaryDirectory(prefix=f"ovsnet-verify-{lab.prefix}-") as tmp:
        t = time.monotonic()
        cap = Captures(points, Path(tmp))
        with cap:
            timings.append(("start captures", time.monotonic() - t))
            t = time.monotonic()
            # The targets' tables fill up with an entry per source: flushed when the machine's is near full.
            targets = sorted({where[b] for _a, b in pairs} | ({lab.names.router_ns} if lab.names.router else set()))
            pacer = Pacer(*neigh_budget(), relieve=lambda: flush_neighbours(targets, concurrency))
            observed, rounds = ping_pairs(pairs, where, address, expected, concurrency,
                                          pacer=pacer, between=lambda: flush_neighbours(lab_ns, concurrency))
            timings.append(("pings", time.monotonic() - t))
            if rounds:
                notes.append(f"pinged again (up to {RETRIES} more times, longer) {rounds[0]} pairs that should reach "
                             f"and did not at first; {sum(1 for q in pairs if not observed[q] and expected[q] in REACHABLE)} never did")
            time.sleep(CAPTURE_SETTLE if points else 0)
        t = time.monotonic()
        subnets = station_subnets(checked.topology, [s for pl in plans for s in pl.stations])
        parsed = [(point, parse_frames(cap.text.get(point, ""))) for point in points]
        for point, frames in parsed:
            res, found_here = analyze(point, frames, macs, subnets)
            captures.append(res)
            findings += found_here
            if cap.dropped.get(point):
                notes.append(f"tcpdump on {point.where} dropped {cap.dropped[point]} frames")
        findings += bundle_findings(parsed, macs)
        timings.append(("analyse captures", time.monotonic() - t))
    t = time.monotonic()
    flush_neighbours(lab_ns, concurrency)
    timings.append(("flush ARP", time.monotonic() - t))
    if pacer.relieved:
        notes.append(f"the machine's ARP table (shared by all namespaces) neared its limit: the targets' entries "
                     f"were flushed {pacer.relieved} times")
    after = arp_table_fulls()
    if fulls is not None and after is not None and after > fulls:
        notes.append(f"the machine's ARP table was full {after - fulls} times during verify (all namespaces share it: "
                     "net.ipv4.neigh.default.gc_thresh3); pings that should reach may have failed for that")
    if not capture:
        notes.append("captures skipped")
    seconds = time.monotonic() - started
    reports = []
    for i, pl in enumerate(plans):
        seen = {(a, b): observed[((a, pl.family), (b, pl.family))] for a, b in pl.pairs}
        first = i == 0
        reports.append(build_report(
            checked.topology.name, pl.stations, pl.expected, seen,
            mode="lab", captures=captures if first else (), findings=findings if first else (), sampled=pl.sampled,
            notes=notes if first else (), seconds=seconds, timings=timings if first else (),
            probes=probe_records(checked.topology, probes, pl.family), family=pl.family,
        ))
    return dual(reports)
