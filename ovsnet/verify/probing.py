"""Probe containers around one verify run, in a lab or on a host.

With probes (verify/containers.py), a container per Docker network joins the
stations; its pings are the host's ping entering the container's namespace by
path (`nsenter --net=/proc/PID/ns/net`), through the same runner. In a lab its
host-side veth is captured like an endpoint's port.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Mapping, Sequence

from ovsnet.topology import Checked
from ovsnet.topology.model import Topology
from ovsnet.verify import containers
from ovsnet.verify.containers import Progress
from ovsnet.verify.matrix import vlan_ids
from ovsnet.verify.report import ProbeRecord, Report


def run_with_probes(
    checked: Checked,
    engines: Mapping[str, str | None],
    probes: bool | None,
    hosts: Sequence[str] | None,
    no_engine: str,
    run: Callable[[Sequence[containers.Probe], list[str]], Report],
    report: Progress,
    started: float,
) -> Report:
    """run(probes, notes) inside a ProbeSet when probes are chosen: every probe removed after, whatever happens.

    The report's seconds then count from `started` to the last probe removed."""
    topo = checked.topology
    chosen, notes = containers.choose(probes, topo.verify.probe_image, containers.specs(topo, hosts), set(engines), no_engine)
    if not chosen:
        return run((), notes)
    assert topo.verify.probe_image is not None
    probe_set = containers.ProbeSet(topo.name, topo.verify.probe_image, chosen, engines, report)
    with probe_set:
        result = run(tuple(probe_set.probes), notes)
    if probe_set.stale_removed:
        notes_more = [f"removed {len(probe_set.stale_removed)} probe containers left by an earlier verify"]
    else:
        notes_more = []
    return replace(
        result,
        notes=result.notes + tuple(notes_more),
        seconds=time.monotonic() - started,
        timings=(("start probes", probe_set.seconds_start), *result.timings, ("remove probes", probe_set.seconds_remove)),
    )


def probe_records(topo: Topology, probes: Sequence[containers.Probe], family: int = 4) -> list[ProbeRecord]:
    """The probes as one family's report lists them: that family's address and slice (IPv6: those with IPv6)."""
    ids = vlan_ids(topo)
    return [
        ProbeRecord(p.name, p.host, p.spec.network, ids[p.spec.vlan], p.address_of(family) or "", p.slice_of(family),
                    p.in_slice_of(family), p.container_name, p.image, family)
        for p in probes
        if family == 4 or p.spec.ipv6
    ]
