"""`ovsnet verify` on a real host: this machine pings every station.

Without a lab this machine pings every station from its own network
namespace, and the row compared is that of the station(s) whose address it
holds. No captures there. With probes, a probe container per Docker network
of this host pings every station too.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable, Mapping, Sequence

from ovsnet.errors import BackendError, UsageError
from ovsnet.topology import Checked
from ovsnet.topology.graph import Expect
from ovsnet.verify import containers
from ovsnet.verify.containers import Progress
from ovsnet.verify.matrix import REACHABLE, Peer, ProbePlan, probe_plans
from ovsnet.verify.pings import DEFAULT_CONCURRENCY, run_pings
from ovsnet.verify.probing import probe_records, run_with_probes
from ovsnet.verify.report import Report, build_report, dual


def local_addresses() -> set[str]:
    """The IP addresses this process's network namespace holds (read over netlink, as `up` reads them)."""
    from ovsnet.backends.netlink import Netlink

    with Netlink() as nl:
        return {a.cidr.split("/", 1)[0] for a in nl.read().addresses}


def host_row(
    stations: Sequence[Peer],
    expected: Mapping[tuple[str, str], Expect],
    mine: Sequence[Peer],
) -> dict[tuple[str, str], Expect]:
    """The expected row of this host, named after its first station: reachable if any of its stations reaches."""
    own = {s.name for s in mine}
    row = {}
    for b in stations:
        if b.name in own:
            continue
        exps = [expected[(a.name, b.name)] for a in mine if (a.name, b.name) in expected]
        if not exps:
            continue
        best = Expect.SAME_VLAN if Expect.SAME_VLAN in exps else Expect.ROUTED if Expect.ROUTED in exps else Expect.BLOCKED
        row[(mine[0].name, b.name)] = best
    return row


def verify_host(
    checked: Checked,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    addresses: set[str] | None = None,
    pinger: Callable[[Mapping[Hashable, tuple[str | None, str]], int], Mapping[Hashable, bool]] | None = None,
    probes: bool | None = False,
    docker_host: str | None = None,
    report: Progress = lambda _m: None,
) -> Report:
    """Ping every station from this machine's own namespace; compare with its station(s)' row.

    With probes, a probe container per Docker network of this host (the host
    whose own addresses this machine holds; its Docker engine: `docker_host`,
    else the host's docker_host setting, else $DOCKER_HOST) pings every
    station too, and is pinged from here.
    """
    started = time.monotonic()
    topo = checked.topology
    stations = [s for p in probe_plans(checked, all_pairs=True) for s in p.stations]
    held = local_addresses() if addresses is None else addresses
    mine = [s for s in stations if s.ip in held]
    if not mine:
        raise UsageError(
            f"this machine holds none of the addresses of {topo.name}'s stations "
            f"({', '.join(s.ip for s in stations[:6])}{', ...' if len(stations) > 6 else ''}); "
            "run verify on one of its hosts, or use --lab"
        )
    # Which host this is: the one whose own addresses it holds.
    hosts = list(dict.fromkeys(s.host for s in mine if s.is_host_address)) or list(dict.fromkeys(s.host for s in mine))
    engines: dict[str, str | None] = {}
    no_engine = ""
    if len(hosts) > 1:
        no_engine = f"this machine holds the addresses of several hosts ({', '.join(hosts)}): whose Docker engine is unclear"
    elif probes is not False and topo.verify.probe_image and containers.specs(topo, hosts):
        from ovsnet.backends.docker import Docker

        url = docker_host or topo.hosts[hosts[0]].docker_host
        try:
            Docker(url).close()
            engines[hosts[0]] = url
        except BackendError as exc:
            if probes:
                raise  # asked for: an engine that does not answer is a backend error (exit 3)
            no_engine = str(exc)
    return run_with_probes(
        checked, engines, probes, hosts, no_engine,
        lambda found, notes: _verify_host(checked, found, notes, held, concurrency, pinger, report, started),
        report, started,
    )


def _verify_host(
    checked: Checked,
    probes: Sequence[containers.Probe],
    notes: list[str],
    held: set[str],
    concurrency: int,
    pinger: Callable[[Mapping[Hashable, tuple[str | None, str]], int], Mapping[Hashable, bool]] | None,
    report: Progress,
    started: float,
) -> Report:
    netns_of = {pr.name: pr.netns for pr in probes}
    # One row (and the probes' rows) per IP family; the pings of both run at once, keyed (family, pair).
    rows: list[tuple[ProbePlan, list[Peer], dict[tuple[str, str], Expect]]] = []
    jobs: dict[Hashable, tuple[str | None, str]] = {}
    plans = probe_plans(checked, all_pairs=True, probes=probes)
    for p in plans:
        mine = [s for s in p.stations if s.ip in held and s.probe is None]
        row = host_row(p.stations, p.expected, mine) if mine else {}
        # A probe's row: it pings every other station (this host's other probes included).
        probe_rows = {(a, b): e for (a, b), e in p.expected.items() if a in netns_of}
        expected = {**row, **probe_rows}
        if not expected:
            continue
        address = {s.name: s.ip for s in p.stations}
        jobs.update({(p.family, pair): (None, address[pair[1]]) for pair in row})
        jobs.update({(p.family, pair): (netns_of[pair[0]], address[pair[1]]) for pair in probe_rows})
        rows.append((p, mine, expected))
    if not rows:  # nothing to ping (a host alone in its topology): an empty report of the first family
        rows.append((plans[0], [s for s in plans[0].stations if s.ip in held], {}))
    mine_all = list({s.name: s for _p, mine, _e in rows for s in mine}.values())
    n_probe = sum(1 for k, job in jobs.items() if job[0] is not None)
    report(f"verify {checked.topology.name} from this host as {', '.join(s.name for s in mine_all)}: {len(jobs)} pings"
           + (f" ({n_probe} from {len(probes)} probe containers)" if probes else ""))
    run = pinger or (lambda j, c: run_pings(j, c))
    seen = dict(run(jobs, concurrency))
    reachable = {(p.family, pair) for p, _m, expected in rows for pair, e in expected.items() if e in REACHABLE}
    again = {k: jobs[k] for k in jobs if not seen[k] and k in reachable}
    if again and pinger is None:
        seen.update(run_pings(again, concurrency, again=True))
    plural = "es" if len(mine_all) > 1 else ""
    if probes:
        notes = [
            f"from this host only: the row of this host's own address{plural} ({', '.join(s.name for s in mine_all)}) and "
            f"those of its probe containers ({', '.join(pr.name for pr in probes)}); other hosts' probes do not exist "
            "during this run, so no pair joins two hosts' probes: run verify on each host, or use --lab; no captures",
            *notes,
        ]
    else:
        notes = [
            f"from this host only: one row (this host's own address{plural}: {', '.join(s.name for s in mine_all)}); "
            "containers' rows and captures need --lab",
            *notes,
        ]
    seconds = time.monotonic() - started
    return dual([
        build_report(
            checked.topology.name, p.stations, expected, {pair: bool(seen[(p.family, pair)]) for pair in expected},
            mode="host", notes=notes if i == 0 else (), seconds=seconds,
            probes=probe_records(checked.topology, probes, p.family), family=p.family,
        )
        for i, (p, _mine, expected) in enumerate(rows)
    ])
