"""up and down: lock, read, plan, refuse, remember, apply, check, roll back, verify.

The loop is nmstate's: read what the host has, diff it with the topology,
apply, then read again and check that nothing is left to do. Any failure
undoes what this run did, newest first, and says what was undone; `down`
is rolled back the same way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Callable

from ovsnet.apply import record
from ovsnet.apply.executor import AfterChange, Executor
from ovsnet.apply.guard import check_uplink_move
from ovsnet.apply.live import Live, Report, quiet
from ovsnet.apply.lock import host_lock
from ovsnet.apply.target import Target
from ovsnet.current import Current
from ovsnet.errors import (
    BackendError,
    OvsnetError,
    RefusedError,
    UsageError,
    VerificationError,
)
from ovsnet.kinds import Desired, Settings
from ovsnet.plan import planner
from ovsnet.plan.model import Change, Plan
from ovsnet.topology import Checked
from ovsnet.topology.model import Host

VERIFY_ATTEMPTS = 5
# A silent gateway leaves the host cut off for this long before the move is
# rolled back; beyond a few minutes that is an outage, not a wait.
GATEWAY_TIMEOUT_MAX = 300.0


def check_gateway_timeout(seconds: float) -> float:
    """A gateway-check timeout from the command line, or a UsageError saying what is allowed."""
    if not 0 < seconds <= GATEWAY_TIMEOUT_MAX:  # NaN fails this too
        raise UsageError(
            f"--gateway-timeout {seconds:g}: give the seconds the gateway may take to answer after the move, "
            f"more than 0 and at most {GATEWAY_TIMEOUT_MAX:g} (the host has no working route that long if it stays silent)"
        )
    return float(seconds)


@dataclass(frozen=True)
class UpOptions:
    adopt: bool = False
    allow_uplink_move: bool = False
    lock_wait: float = 0.0
    # Test-only: called after each change is applied (fault injection).
    after_change: Callable[[Change], None] | None = None


@dataclass(frozen=True)
class Result:
    plan: Plan
    applied: tuple[Change, ...]
    seconds: float


class ApplyFailed(BackendError):
    """A step failed and the run was rolled back (as far as it could be)."""

    def __init__(self, failed: str, cause: BaseException, undone: list[str], undo_errors: list[str], verb: str = "up"):
        self.failed, self.cause, self.undone, self.undo_errors = failed, cause, undone, undo_errors
        lines = [f"failed at {failed}: {cause}"]
        if undone:
            lines.append(f"rolled back {len(undone)} changes: " + _some_of(undone))
        if undo_errors:
            # Every one of these matters: list them all.
            lines.append("COULD NOT UNDO (check by hand): " + "; ".join(undo_errors))
        if not undone and not undo_errors:
            lines.append("nothing had been changed")
        if verb == "down" and not undo_errors:
            lines.append("the host is as it was before this down; fix the cause and run down again")
        super().__init__("\n".join(lines))
        if isinstance(cause, OvsnetError):
            self.exit_code = cause.exit_code


def _some_of(items: list[str], shown: int = 8) -> str:
    text = "; ".join(items[:shown])
    return text + (f"; and {len(items) - shown} more" if len(items) > shown else "")


def host_of(checked: Checked, name: str) -> Host:
    hosts = checked.topology.hosts
    if name not in hosts:
        raise UsageError(f"no host named '{name}' in {checked.topology.source}; hosts: {', '.join(hosts)}")
    return hosts[name]


def _settings(target: Target, adopt: bool, docker: bool = True) -> Settings:
    return Settings(datapath=target.datapath, adopt=adopt, docker=docker)


def _saved(target: Target, topology: str, host: str, saved: record.Record | None, current: Current) -> tuple[record.Record | None, str | None]:
    """What the host had before ovsnet: the state file, or else its copy in OVSDB; and a note when the copy was used."""
    if saved is not None:
        return saved, None
    copy = planner.copied_record(current, topology)
    if copy is not None and copy.host == host:
        return copy, f"no state file at {record.path_for(target.state_dir, topology, host)}: using the copy of the record kept in OVSDB"
    return None, None


def _read_and_plan(checked: Checked, host: Host, live: Live, adopt: bool) -> tuple[Desired, Current, Plan]:
    target = live.target
    want = planner.desire(checked.topology, host, _settings(target, adopt))
    reads = planner.reads(want)
    from_file = record.read(target.state_dir, checked.topology.name, host.name)
    current = live.read(reads)
    saved, note = _saved(target, checked.topology.name, host.name, from_file, current)
    docker_ok = "docker" not in reads or current.docker is not None
    p = planner.diff(want, current, saved.parts if saved else None, _settings(target, adopt, docker_ok))
    notes = ((note,) if note else ()) + ((live.docker_error,) if not docker_ok and live.docker_error else ())
    if notes:
        p = replace(p, notes=p.notes + notes)
    return want, current, p


def plan_live(checked: Checked, host_name: str, target: Target, adopt: bool = False) -> Plan:
    host = host_of(checked, host_name)
    live = Live(target)
    try:
        return _read_and_plan(checked, host, live, adopt)[2]
    finally:
        live.close()


def drift(checked: Checked, host_name: str, target: Target) -> Plan:
    """What `up` would change now; empty means in sync."""
    return plan_live(checked, host_name, target)


def up(checked: Checked, host_name: str, target: Target, options: UpOptions = UpOptions(), report: Report = quiet) -> Result:
    """Make the host match its part of the topology."""
    host = host_of(checked, host_name)
    topo = checked.topology
    start = time.monotonic()
    with host_lock(target, topo.name, host.name, options.lock_wait):
        live = Live(target, report)
        try:
            want, current, p = _read_and_plan(checked, host, live, options.adopt)
            if host.docker_required and want.of("docker-network") and current.docker is None:
                raise RefusedError(f"host {host.name} has docker_required = true and Docker is not reachable ({live.docker_error}); nothing was changed")
            _refuse_blocked(p, "refusing to apply; nothing was changed:")
            if p.empty:
                return Result(p, (), time.monotonic() - start)
            check_uplink_move(live.netlink, p, options.allow_uplink_move, target.netns is not None, _sessions(target))
            done = _apply(p, live, target, topo.name, host.name, options.after_change or _crash_hook(), "up")
            _verify(checked, host, live, options.adopt)
            return Result(p, tuple(done), time.monotonic() - start)
        finally:
            live.close()


def down(checked: Checked, host_name: str, target: Target, lock_wait: float = 0.0, report: Report = quiet,
         after_change: AfterChange | None = None, gateway_check: bool = True) -> Result:
    """Remove what ovsnet owns on the host; put the uplink back as it was. A failure midway is rolled back.

    gateway_check=False: the NIC's gateway is not asked to answer afterwards; for a
    host its operator reaches out of band, whose NIC had no in-band path before
    ovsnet either (its management VLAN tagged on a port with no native VLAN).
    """
    host = host_of(checked, host_name)
    topo = checked.topology
    start = time.monotonic()
    with host_lock(target, topo.name, host.name, lock_wait):
        live = Live(target, report)
        try:
            want = planner.desire(topo, host, _settings(target, False))
            from_file = record.read(target.state_dir, topo.name, host.name)
            current = live.read(planner.reads(want))
            saved, note = _saved(target, topo.name, host.name, from_file, current)
            p = planner.teardown(want, current, saved.parts if saved else None)
            if note:
                p = replace(p, notes=(note,) + p.notes)
            if not gateway_check:
                p = _without_gateway_checks(p)
            _refuse_blocked(p, "refusing to take the host down; nothing was changed:")
            done = _apply(p, live, target, topo.name, host.name, after_change or _crash_hook(), "down")
            record.remove(target.state_dir, topo.name, host.name)
            return Result(p, tuple(done), time.monotonic() - start)
        finally:
            live.close()


def _without_gateway_checks(p: Plan) -> Plan:
    from ovsnet.kinds.uplink import GatewayAnswers

    skipped = [c for c in p.checks if isinstance(c, GatewayAnswers)]
    if not skipped:
        return p
    said = "; ".join(f"{c.gateway} on {c.iface}" for c in skipped)
    return replace(p, checks=tuple(c for c in p.checks if not isinstance(c, GatewayAnswers)),
                   notes=p.notes + (f"gateway check skipped as told ({said}): nothing proves the host answers on its NIC afterwards",))


def _sessions(target: Target) -> Callable[[], list]:
    def read() -> list:
        from ovsnet.backends.sessions import ssh_sessions

        return ssh_sessions(target.netns)

    return read


def _refuse_blocked(p: Plan, head: str) -> None:
    if p.blockers:
        raise RefusedError(head + "\n" + "\n".join(f"  {x.resource}: {x.message} ({x.hint})" for x in p.blockers))


def _apply(p: Plan, live: Live, target: Target, topology: str, host: str, after_change: AfterChange | None, verb: str) -> list[Change]:
    """Remember, run, and on any failure roll back (and put the record back as it was)."""
    saved = record.read(target.state_dir, topology, host)
    # Before the first change: what this plan is about to lose (the NIC's
    # addresses, routes, MTU...) must survive a crash in the middle of it.
    before = saved or record.Record(topology, host)
    keep = before.merged(p.keep)
    wrote = keep != before
    if wrote:
        record.write(target.state_dir, keep)
    ex = Executor(live, live.report, after_change)
    try:
        ex.run(p.changes, p.checks, p.order)
    except BaseException as exc:
        failed = ex.step
        undone, errors = ex.rollback()
        if wrote:
            _record_after_rollback(target, before, p, ex.undo_failed, saved is None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        if not isinstance(exc, OvsnetError):
            exc = BackendError(f"{type(exc).__name__}: {exc}")
        raise ApplyFailed(failed, exc, undone, errors, verb) from None
    return ex.done


def _record_after_rollback(target: Target, before: record.Record, p: Plan, stuck: list[Change], had_none: bool) -> None:
    """The record as before the run, plus the parts of the kinds whose changes could not all be undone.

    A part this run added describes the host before *this* run; once its kind's
    changes are undone it is stale, and a later run must not take it for the
    host's original state (a later `down` putting back a lease or a manager's
    files that are no longer the host's). A kind with a change left in place
    keeps its part: `down` needs it to put that back.
    """
    kinds = {c.kind for c in stuck}
    left = before.merged({k: v for k, v in p.keep.items() if k in kinds})
    if left.empty and had_none:
        record.remove(target.state_dir, before.topology, before.host)
    else:
        record.write(target.state_dir, left)


def _crash_hook() -> Callable[[Change], None] | None:
    """Test-only: OVSNET_TEST_CRASH_AFTER=N kills this process (SIGKILL) after N changes.

    The fault tests use it to stop an apply at every step in turn and check
    that a plain `up` afterwards converges; nothing else sets it.
    """
    raw = os.environ.get("OVSNET_TEST_CRASH_AFTER")
    if not raw:
        return None
    import signal

    limit, seen = int(raw), [0]

    def hook(_change: Change) -> None:
        seen[0] += 1
        if seen[0] >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def _verify(checked: Checked, host: Host, live: Live, adopt: bool) -> None:
    """Read back until nothing is left to do: 'done' means the host really matches."""
    left: tuple[Change, ...] = ()
    for attempt in range(VERIFY_ATTEMPTS):
        _, _, again = _read_and_plan(checked, host, live, adopt)
        left = again.changes
        if not left:
            return
        time.sleep(0.1 * (attempt + 1))
    raise VerificationError("applied, but the host still differs:\n" + "\n".join(f"  {c.line()}" for c in left))
