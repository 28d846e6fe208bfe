"""Runs a plan through the backends: lock, read, plan, refuse, apply, check, roll back.

The loop is nmstate's: read what the host has, diff it with the topology,
apply, then read again and check that nothing is left to do. Any failure
undoes what this run did, newest first, and says what was undone.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from ovsnet import desired as desired_mod
from ovsnet import plan as plan_mod
from ovsnet import statefile
from ovsnet.errors import BackendError, LockedError, OvsnetError, RefusedError, UsageError, VerificationError
from ovsnet.ops import DnsSetServers
from ovsnet.plan import Change, Phase, Plan
from ovsnet.state import HostState, OvsState
from ovsnet.target import Target
from ovsnet.topology import Checked
from ovsnet.topology.model import Host

Report = Callable[[str], None]
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


def _quiet(_: str) -> None:
    pass


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

    def __init__(self, failed: str, cause: BaseException, undone: list[str], undo_errors: list[str]):
        self.failed, self.cause, self.undone, self.undo_errors = failed, cause, undone, undo_errors
        lines = [f"failed at {failed}: {cause}"]
        if undone:
            lines.append(f"rolled back {len(undone)} changes: " + _some_of(undone))
        if undo_errors:
            # Every one of these matters: list them all.
            lines.append("COULD NOT UNDO (check by hand): " + "; ".join(undo_errors))
        if not undone and not undo_errors:
            lines.append("nothing had been changed")
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


@contextmanager
def host_lock(target: Target, topology: str, host: str, wait: float) -> Iterator[None]:
    """One apply at a time per host: an flock that dies with its process."""
    path = statefile.path_for(target.state_dir, topology, host).with_suffix(".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise BackendError(f"cannot create lock {path}: {exc.strerror} (run as root, or pass --state-dir)") from None
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
                    raise LockedError(f"another ovsnet run (pid {holder}) is applying to host {host}; wait for it, or pass --wait SECONDS") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


# --- reading -------------------------------------------------------------------


@dataclass
class Backends:
    """The open connections for one run; each opened only when needed."""

    target: Target
    _ovsdb: object | None = None
    _netlink: object | None = None
    _docker: object | None = None
    docker_error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ovsdb(self):
        if self._ovsdb is None:
            from ovsnet.backends.ovsdb import Ovsdb

            self._ovsdb = Ovsdb(self.target.ovsdb, timeout=self.target.ovs_timeout)
        return self._ovsdb

    @property
    def netlink(self):
        if self._netlink is None:
            from ovsnet.backends.netlink import Netlink

            self._netlink = Netlink(self.target.netns)
        return self._netlink

    def docker(self):
        """The Docker backend, or None when Docker is not reachable (reason kept)."""
        if self._docker is None and self.docker_error is None:
            try:
                from ovsnet.backends.docker import Docker
            except ImportError:
                self.docker_error = "Docker networks are not managed by this ovsnet build (no Docker backend)"
                return None
            try:
                self._docker = Docker(self.target.docker_host)
            except BackendError as exc:
                self.docker_error = str(exc)
        return self._docker

    def close(self) -> None:
        for b in (self._ovsdb, self._netlink, self._docker):
            if b is not None:
                b.close()

    def read(self, with_ovs: bool, with_docker: bool) -> HostState:
        from ovsnet.backends import dns

        ovs = self.ovsdb.read() if with_ovs else OvsState()
        linux = self.netlink.read()
        docker = None
        if with_docker:
            d = self.docker()
            docker = d.read() if d is not None else None
        return HostState(ovs, linux, dns.read(self.target.resolv_conf), docker)


def _read_and_plan(checked: Checked, host: Host, target: Target, b: Backends, adopt: bool) -> tuple[desired_mod.DesiredHost, HostState, Plan]:
    want = desired_mod.for_host(checked.topology, host, datapath=target.datapath)
    saved = statefile.read(target.state_dir, checked.topology.name, host.name)
    needs_docker = bool(want.docker_networks)
    actual = b.read(with_ovs=want.bridge is not None or host.layout.value == "vlan", with_docker=needs_docker)
    opts = plan_mod.Options(adopt=adopt, docker=not needs_docker or actual.docker is not None)
    p = plan_mod.diff(want, actual, saved, opts)
    if needs_docker and actual.docker is None and b.docker_error:
        p = replace(p, notes=p.notes + (b.docker_error,))
    return want, actual, p


def plan_live(checked: Checked, host_name: str, target: Target, adopt: bool = False) -> Plan:
    host = host_of(checked, host_name)
    b = Backends(target)
    try:
        return _read_and_plan(checked, host, target, b, adopt)[2]
    finally:
        b.close()


# --- applying --------------------------------------------------------------------


class _Executor:
    """Applies changes in order; OVSDB changes of one run go in one transaction."""

    def __init__(self, b: Backends, report: Report, after_change: Callable[[Change], None] | None):
        self.b = b
        self.report = report
        self.after_change = after_change
        self.done: list[Change] = []
        self.step = "reading the host"  # what runs now, for the failure report

    def run(self, changes: tuple[Change, ...], on_phase_end: Callable[[Phase], None] | None = None) -> None:
        i = 0
        while i < len(changes):
            phase = changes[i].phase
            j = i
            while j < len(changes) and changes[j].phase is phase:
                j += 1
            group = changes[i:j]
            if phase is Phase.OVSDB:
                self._ovsdb(group)
            elif phase in (Phase.LINUX, Phase.CLEANUP) and self.after_change is None:
                self._netlink_batch(group)
            else:
                for change in group:
                    self._one(change)
            if on_phase_end:
                on_phase_end(phase)
            i = j

    def _ovsdb(self, group: tuple[Change, ...]) -> None:
        self.step = f"the OVSDB transaction ({len(group)} changes: {group[0].resource} ...)"
        self.report(f"ovsdb: one transaction, {len(group)} changes")
        try:
            self.b.ovsdb.transact([op for c in group for op in c.ops])
        except VerificationError:
            # Committed but not (fully) applied by ovs-vswitchd: undo the rows too.
            self.done.extend(group)
            raise
        self.done.extend(group)
        for c in group:
            self._after(c)

    def _netlink_batch(self, group: tuple[Change, ...]) -> None:
        """Linux objects in bulk: the order of ops is kept, the round trips are not."""
        from ovsnet.backends.netlink import NetlinkBatchError

        self.step = f"the netlink batch ({len(group)} changes: {group[0].resource} ...)"
        self.report(f"{group[0].phase.value}: {len(group)} changes in one netlink batch")
        try:
            self.b.netlink.apply_batch([c.ops for c in group])
        except NetlinkBatchError as exc:
            # Anything the kernel accepted, even in part, is undone on rollback.
            self.done.extend(group[i] for i in exc.touched)
            raise
        self.done.extend(group)

    def _one(self, change: Change) -> None:
        from ovsnet.backends.netlink import NetlinkOpError

        self.step = change.resource
        self.report(f"{change.phase.value}: {change.line()}")
        try:
            self._execute(change.phase, change.ops)
        except NetlinkOpError as exc:
            if exc.done:
                # Some of its ops went through: the change's undo must run too.
                self.done.append(change)
            raise
        self.done.append(change)
        self._after(change)

    def _execute(self, phase: Phase, ops: tuple) -> None:
        """Ops of one change, by the backend of its phase (OVSDB goes by groups instead)."""
        if not ops:
            return
        if phase is Phase.DNS:
            from ovsnet.backends import dns

            for op in ops:
                assert isinstance(op, DnsSetServers)
                dns.write(self.b.target.resolv_conf, op.servers)
        elif phase is Phase.DOCKER:
            d = self.b.docker()
            if d is None:
                raise BackendError(self.b.docker_error or "Docker is not reachable")
            d.apply(ops)
        else:
            self.b.netlink.apply(ops)

    def _after(self, change: Change) -> None:
        if self.after_change is not None:
            self.after_change(change)

    def rollback(self) -> tuple[list[str], list[str]]:
        """Undo every applied change, newest first; OVSDB undos in one transaction."""
        undone, errors = [], []
        pending = list(reversed(self.done))
        i = 0
        while i < len(pending):
            c = pending[i]
            if c.phase is Phase.OVSDB:
                j = i
                while j < len(pending) and pending[j].phase is Phase.OVSDB:
                    j += 1
                group = pending[i:j]
                try:
                    # Newest change first; each change's undo ops in their own order
                    # (a moved port: delete it here, then add it back where it was).
                    self.b.ovsdb.transact([op for g in group for op in g.undo], wait=False)
                    undone += [g.resource for g in group]
                except Exception as exc:  # keep undoing the rest
                    errors += [f"{g.resource} ({exc})" for g in group]
                i = j
                continue
            try:
                self._execute(c.phase, c.undo)
                undone.append(c.resource)
            except Exception as exc:
                errors.append(f"{c.resource} ({exc})")
            i += 1
        return undone, errors


def up(checked: Checked, host_name: str, target: Target, options: UpOptions = UpOptions(), report: Report = _quiet) -> Result:
    host = host_of(checked, host_name)
    topo = checked.topology
    start = time.monotonic()
    with host_lock(target, topo.name, host.name, options.lock_wait):
        b = Backends(target)
        try:
            want, actual, p = _read_and_plan(checked, host, target, b, options.adopt)
            if host.docker_required and want.docker_networks and actual.docker is None:
                raise RefusedError(f"host {host.name} has docker_required = true and Docker is not reachable ({b.docker_error}); nothing was changed")
            if p.blockers:
                raise RefusedError("refusing to apply; nothing was changed:\n" + "\n".join(f"  {x.resource}: {x.message} ({x.hint})" for x in p.blockers))
            if p.empty:
                return Result(p, (), time.monotonic() - start)
            if p.moves_uplink:
                _check_uplink_move(b, p, target, options)
            saved = statefile.read(target.state_dir, topo.name, host.name)
            # Before the first change: what this plan is about to lose (the NIC's
            # addresses, routes, MTU) must survive a crash in the middle of it.
            before = saved or statefile.Saved(topo.name, host.name)
            keep = before.merged(p.uplink, p.nic_mtus)
            wrote_state = keep != before
            if wrote_state:
                statefile.write(target.state_dir, keep)
            ex = _Executor(b, report, options.after_change or _crash_hook())

            def on_phase_end(phase: Phase) -> None:
                if phase is Phase.OVSDB and want.uplink and not want.uplink.flat:
                    # OVS creates internal ports asynchronously to the commit.
                    if want.uplink.target not in actual.linux.links:
                        ex.step = f"waiting for ovs-vswitchd to create {want.uplink.target}"
                        b.netlink.wait_link(want.uplink.target, timeout=target.ovs_timeout)
                if phase is Phase.UPLINK and p.moves_uplink and want.uplink and want.uplink.gateway:
                    ex.step = f"the gateway check ({want.uplink.gateway} on {want.uplink.target})"
                    report(f"uplink: waiting for gateway {want.uplink.gateway} to answer on {want.uplink.target}")
                    if not b.netlink.arp_probe(want.uplink.target, want.uplink.gateway, timeout=target.gateway_timeout):
                        raise VerificationError(
                            f"gateway {want.uplink.gateway} did not answer on {want.uplink.target} within {target.gateway_timeout:g} s "
                            "(if it is right but slow, e.g. userspace OVS under load, pass a longer --gateway-timeout)"
                        )

            try:
                ex.run(p.changes, on_phase_end)
            except Exception as exc:
                failed = ex.step
                undone, errors = ex.rollback()
                if wrote_state and not errors:
                    if saved is None:
                        statefile.remove(target.state_dir, topo.name, host.name)
                    else:
                        statefile.write(target.state_dir, saved)
                if not isinstance(exc, OvsnetError):
                    exc = BackendError(f"{type(exc).__name__}: {exc}")
                raise ApplyFailed(failed, exc, undone, errors) from None
            _verify(checked, host, target, b, options.adopt)
            return Result(p, tuple(ex.done), time.monotonic() - start)
        finally:
            b.close()


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


def _check_uplink_move(b: Backends, p: Plan, target: Target, options: UpOptions) -> None:
    """Refuse to move the NIC the current SSH session runs over, unless told."""
    if options.allow_uplink_move or target.netns is not None or p.uplink is None:
        return
    ssh = os.environ.get("SSH_CONNECTION", "").split()
    if not ssh:
        return
    via = b.netlink.route_to(ssh[0])
    if via == p.uplink.nic:
        raise RefusedError(
            f"this SSH session (from {ssh[0]}) runs over {via}, the NIC this plan moves onto the bridge; "
            "a mistake would cut you off. Run from a console, or pass --allow-uplink-move (ovsnet rolls back if the gateway stops answering)"
        )


def _verify(checked: Checked, host: Host, target: Target, b: Backends, adopt: bool) -> None:
    """Read back until nothing is left to do: 'done' means the host really matches."""
    left: tuple[Change, ...] = ()
    for attempt in range(VERIFY_ATTEMPTS):
        _, _, again = _read_and_plan(checked, host, target, b, adopt)
        left = again.changes
        if not left:
            return
        time.sleep(0.1 * (attempt + 1))
    raise VerificationError("applied, but the host still differs:\n" + "\n".join(f"  {c.line()}" for c in left))


def down(checked: Checked, host_name: str, target: Target, lock_wait: float = 0.0, report: Report = _quiet) -> Result:
    """Remove what ovsnet owns on the host; put the uplink back as it was."""
    host = host_of(checked, host_name)
    topo = checked.topology
    start = time.monotonic()
    with host_lock(target, topo.name, host.name, lock_wait):
        b = Backends(target)
        try:
            saved = statefile.read(target.state_dir, topo.name, host.name)
            want = desired_mod.for_host(topo, host, datapath=target.datapath)
            actual = b.read(with_ovs=host.layout.value == "vlan", with_docker=bool(want.docker_networks))
            fallback = None
            if want.uplink:
                fallback = statefile.SavedUplink(want.uplink.nic, want.uplink.addresses,
                                                 _fallback_routes(want.uplink), None)
            p = plan_mod.teardown(topo.name, actual, saved or statefile.Saved(topo.name, host.name), fallback)
            if p.blockers:
                raise RefusedError("refusing to take the host down; nothing was changed:\n" + "\n".join(f"  {x.resource}: {x.message} ({x.hint})" for x in p.blockers))
            ex = _Executor(b, report, None)
            try:
                ex.run(p.changes)
            except Exception as exc:
                failed = next((c.resource for c in p.changes if c not in ex.done), "?")
                done = [c.resource for c in ex.done]
                # Not rolled back: putting removed objects back could fail the same
                # way, and every step of down is safe to repeat, so forward is the way out.
                raise BackendError(
                    f"down stopped at {failed}: {exc}\nalready done: {', '.join(done) or 'nothing'}; "
                    "that is not rolled back: run down again to finish (the state file is kept until down completes), or up to rebuild"
                ) from None
            statefile.remove(target.state_dir, topo.name, host.name)
            return Result(p, tuple(ex.done), time.monotonic() - start)
        finally:
            b.close()


def _fallback_routes(up: desired_mod.DesiredUplink):
    from ovsnet.state import Route

    return (Route("default", up.nic, up.gateway, 0, "static"),) if up.gateway else ()


def drift(checked: Checked, host_name: str, target: Target) -> Plan:
    """What `up` would change now; empty means in sync."""
    return plan_live(checked, host_name, target)

