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
from ovsnet.kinds.ovs_bridge import OvsSetBridgeKey
from ovsnet.kinds.record import Record, from_text, to_text
from ovsnet.marks import RECORD_KEY
from ovsnet.plan.model import Action, Phase, Plan
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
            ctx.kind = k.name
            k.plan(desired.of(k.name), ctx)
        ctx.kind = ""
        _copy_record(desired, current, saved or {}, ctx)
    return _plan(ctx, tuple(Phase))


def _copy_record(desired: Desired, current: Current, saved: Mapping[str, Any], ctx: Context) -> None:
    """The record's second copy, in the external_ids of the host's OVS bridge (one transaction with the rest)."""
    bridges = desired.of("ovs-bridge")
    if not bridges or ctx.blockers:
        return
    merged = Record(desired.topology, desired.host, saved).merged(ctx.keep)
    if merged.empty:
        return
    name = bridges[0].name
    text = to_text(merged, indent=None)
    cur = current.ovs.bridges.get(name)
    now = cur.external_ids.get(RECORD_KEY) if cur else None
    if now == text:
        return
    ctx.add(Action.MODIFY if now else Action.CREATE, f"record:{name}", Phase.OVSDB,
            "a second copy of what the host had before ovsnet, for down if the state file is lost",
            before="an older copy" if now else None, after=f"copy of the record ({', '.join(sorted(merged.parts))})",
            ops=(OvsSetBridgeKey(name, RECORD_KEY, text),), undo=(OvsSetBridgeKey(name, RECORD_KEY, now),))


def copied_record(current: Current, topology: str) -> Record | None:
    """The copy of the record kept on ovsnet's own OVS bridge, or None (a corrupt copy counts as none)."""
    for b in current.ovs.bridges.values():
        text = b.external_ids.get(RECORD_KEY)
        if b.owner == topology and text:
            try:
                return from_text(text)
            except (ValueError, KeyError, TypeError, AttributeError):
                return None
    return None


def teardown(desired: Desired, current: Current, saved: Mapping[str, Any] | None = None, settings: Settings = Settings()) -> Plan:
    """Remove everything ovsnet owns on the host and put the NIC back as it was."""
    ctx = Context(desired.topology, desired.host, current, saved or {}, settings)
    # In reverse: what was built last goes first (a veth before the bridge it
    # is in), so that undoing a failed down rebuilds in the build's order.
    for k in reversed(KINDS):
        ctx.kind = k.name
        k.teardown(desired.of(k.name), ctx)
    ctx.kind = ""
    return _plan(ctx, TEARDOWN_ORDER)


def _plan(ctx: Context, order: tuple[Phase, ...]) -> Plan:
    changes = tuple(c for ph in order for c in ctx.changes if c.phase is ph)
    # With blockers the plan still lists everything; apply refuses to start.
    return Plan(ctx.topology, ctx.host, changes, tuple(ctx.blockers), tuple(ctx.notes), tuple(ctx.checks),
                dict(ctx.keep), tuple(ctx.moves_from), tuple(ctx.facts), order, tuple(ctx.health))
