"""diff(desired, current) -> an ordered plan; teardown(current) -> the plan that undoes ovsnet.

Pure: the planner reads snapshots and returns data. It only walks the
registry of kinds (ovsnet.kinds.KINDS): each kind plans its own objects, and
the planner orders the changes by phase, then by kind.
"""

from __future__ import annotations

from typing import Any, Mapping

from ovsnet.current import Current
from ovsnet.gcpause import paused_gc
from ovsnet.kinds import KINDS, Context, Desired, Settings
from ovsnet.plan.model import Phase, Plan
from ovsnet.topology.model import Host, Topology

# Down runs in another order: Docker networks go first (they hold the
# bridges), the NIC gets its addresses back before the OVS transaction takes
# the bridge side away, and the Linux links go last.
TEARDOWN_ORDER = (Phase.DOCKER, Phase.UPLINK, Phase.DNS, Phase.HANDOVER, Phase.LINUX, Phase.OVSDB, Phase.CLEANUP)


def desire(topo: Topology, host: Host, settings: Settings = Settings()) -> Desired:
    with paused_gc():
        return Desired(topo.name, host.name, {k.name: k.desire(topo, host, settings) for k in KINDS})


def reads(desired: Desired) -> frozenset[str]:
    """The backends a snapshot must include for these desired objects."""
    out: set[str] = set()
    for k in KINDS:
        if desired.of(k.name):
            out |= k.reads
    return frozenset(out)


def diff(desired: Desired, current: Current, saved: Mapping[str, Any] | None = None, settings: Settings = Settings()) -> Plan:
    ctx = Context(desired.topology, desired.host, current, saved or {}, settings)
    with paused_gc():
        for k in KINDS:
            k.plan(desired.of(k.name), ctx)
    return _plan(ctx, tuple(Phase))


def teardown(desired: Desired, current: Current, saved: Mapping[str, Any] | None = None, settings: Settings = Settings()) -> Plan:
    """Remove everything ovsnet owns on the host and put the NIC back as it was."""
    ctx = Context(desired.topology, desired.host, current, saved or {}, settings)
    for k in KINDS:
        k.teardown(desired.of(k.name), ctx)
    return _plan(ctx, TEARDOWN_ORDER)


def _plan(ctx: Context, order: tuple[Phase, ...]) -> Plan:
    changes = tuple(c for ph in order for c in ctx.changes if c.phase is ph)
    # With blockers the plan still lists everything; apply refuses to start.
    return Plan(ctx.topology, ctx.host, changes, tuple(ctx.blockers), tuple(ctx.notes), tuple(ctx.checks),
                dict(ctx.keep), tuple(ctx.moves_from), tuple(ctx.facts))
