"""`ovsnet lab up` on a built lab: converge it to the (edited) topology, in place.

The lab's own changes (lab/diff.py) run in two stages around the hosts;
each host goes through `ovsnet up`'s own code with the lab's settings, so a
host with nothing to do reads, plans nothing and is left alone, and one that
fails is rolled back by that code. A failed host stops the run there: the
hosts before it are converged, those after it untouched, the lab's removals
not made yet; the state file says what was done, and `lab up` again
finishes the job. What cannot change in place is refused before anything
changes (RefusedError listing each, with how to do it).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from ovsnet import apply
from ovsnet.apply import record
from ovsnet.backends.netlink.ops import NlAddAddress, NlDelAddress, NlDeleteLink, NlSetLink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import OvsnetError, RefusedError
from ovsnet.kinds.ovs_port import OvsDelPort
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import endpoints, netns, teardown
from ovsnet.lab.build import Temps, make_leg, make_namespace, make_wire, prepare_host, start_ovs
from ovsnet.lab.diff import LabChange, LabPlan, Part, Stage, diff
from ovsnet.lab.kernel import Kernel, write_sysctl
from ovsnet.lab.layout import SWITCH_BRIDGE, EndpointPlug, LabLayout
from ovsnet.lab.ledger import Ledger, load_lab
from ovsnet.lab.names import DOCKER_DIR, LAB_OVS_TIMEOUT, Lab, LabNames, OvsRun, host_root, targets
from ovsnet.lab.observe import Built, desired_for, observe
from ovsnet.lab.ovs_instance import OvsInstance
from ovsnet.plan.model import Action, Change, Plan
from ovsnet.topology import Checked

Report = Callable[[str], None]
# Test-only: called after each change a host applies (fault injection), with the host's name.
AfterChange = Callable[[str, Change], None]


@dataclass(frozen=True)
class HostOutcome:
    host: str
    applied: int  # 0: no change
    seconds: float
    new: bool = False


@dataclass(frozen=True)
class Converged:
    lab: Lab
    plan: LabPlan
    hosts: tuple[HostOutcome, ...]
    removed: tuple[str, ...]  # hosts removed with their namespaces
    seconds: float


class HostFailed(OvsnetError):
    """A host's apply failed (and was rolled back by it): the run stopped there."""

    def __init__(self, host: str, cause: OvsnetError, done: Sequence[str], left: Sequence[str], file: str):
        self.host, self.cause = host, cause
        lines = [f"{host}: {cause}"]
        if done:
            lines.append(f"converged before it: {', '.join(done)}")
        if left:
            lines.append(f"not touched: {', '.join(left)}")
        lines.append(f"the lab's changes before the hosts are made, those after them are not; fix the cause and run `ovsnet lab up {file}` again")
        super().__init__("\n".join(lines))
        self.exit_code = cause.exit_code


def refusal_text(prefix: str, p: LabPlan) -> str:
    return (f"lab {prefix} cannot be converged in place; nothing was changed:\n"
            + "\n".join(f"  {r.what}\n      do: {r.how}" for r in p.cannot))


def converge(checked: Checked, built: Built, *, docker: bool = False, ssh: bool = False, configure: bool = True,
             report: Report = lambda _m: None, after_change: AfterChange | None = None) -> Converged:
    """Make the built lab match the topology: the lab's changes, then every host, then the removals."""
    start = time.monotonic()
    topo = checked.topology
    if ssh and not built.fleet:
        raise RefusedError(f"lab {built.names.prefix} was built without --ssh and cannot get it in place; "
                           f"`ovsnet lab down {topo.source}`, then `ovsnet lab up {topo.source} --ssh`")
    docker_on = docker or built.docker
    names, want = desired_for(topo, built, docker_on)
    have, broken = observe(built)
    p = diff(have, want, file=topo.source, fleet=built.fleet, broken=broken)
    if p.cannot:
        raise RefusedError(refusal_text(names.prefix, p))
    # Every host the lab has is planned first: one that would refuse stops the run before anything changes.
    planned: dict[str, tuple[Plan, float]] = {}
    for h, t in targets(load_lab(topo, names.prefix, built.lab_dir)).items():
        if h in have.hosts:
            t0 = time.monotonic()
            planned[h] = (apply.plan_live(checked, h, t), time.monotonic() - t0)
    blocked = [f"  {h}: {b.resource}: {b.message}\n      fix: {b.hint}" for h, (hp, _) in planned.items() for b in hp.blockers]
    if blocked:
        raise RefusedError(f"lab {names.prefix}: hosts refuse the edit; nothing was changed:\n" + "\n".join(blocked))
    ledger = Ledger.reopen(built.lab_dir)
    if docker_on and not ledger.data.get("docker"):
        ledger.docker()
    ovs = dict(built.ovs)
    run = _Run(checked, built, names, have, want, ledger, ovs, report)
    run.before(p)
    lab = load_lab(topo, names.prefix, built.lab_dir)
    run.docker(p, lab)
    outcomes: list[HostOutcome] = []
    if configure:
        # A host whose plan was empty and that the lab's changes do not touch has nothing to do.
        idle = {h: sec for h, (hp, sec) in planned.items() if hp.empty and h not in _touched(p)}
        new = {c.key for c in p.stage(Stage.BEFORE, Part.HOST, Action.CREATE)}
        outcomes = _hosts(checked, lab, new, idle, report, after_change)
    run.after(p, lab, configure)
    removed = tuple(c.key for c in p.stage(Stage.AFTER, Part.HOST, Action.DELETE))
    return Converged(load_lab(topo, names.prefix, built.lab_dir), p, tuple(outcomes), removed, time.monotonic() - start)


def host_hook(after_change: AfterChange | None, host: str) -> Callable[[Change], None] | None:
    if after_change is None:
        return None
    hook = after_change

    def one(change: Change) -> None:
        hook(host, change)

    return one


def _touched(p: LabPlan) -> set[str]:
    """Hosts whose NICs or dockerd the lab changes: their plan may change with them."""
    out: set[str] = set()
    for c in p.stage(Stage.BEFORE, Part.CABLE) + p.stage(Stage.BEFORE, Part.DOCKERD):
        out.add(c.after.host if c.part is Part.CABLE else c.key)
        if c.part is Part.CABLE and c.after.far_node and c.after.far_node != c.after.host:
            out.add(c.after.far_node)
    return out


def _hosts(checked: Checked, lab: Lab, new: set[str], idle: Mapping[str, float], report: Report,
           after_change: AfterChange | None) -> list[HostOutcome]:
    out: list[HostOutcome] = []
    hosts = list(targets(lab).items())
    for i, (host, target) in enumerate(hosts):
        if host in idle:
            out.append(HostOutcome(host, 0, idle[host]))
            report(f"{host}: no change ({idle[host]:.2f} s)")
            continue
        t = time.monotonic()
        try:
            result = apply.up(checked, host, target, apply.UpOptions(after_change=host_hook(after_change, host)), report)
        except OvsnetError as exc:
            raise HostFailed(host, exc, [o.host for o in out], [h for h, _ in hosts[i + 1:]], checked.topology.source) from None
        seconds = time.monotonic() - t
        out.append(HostOutcome(host, len(result.applied), seconds, host in new))
        report(f"{host}: {len(result.applied)} changes applied in {seconds:.2f} s" if result.applied else f"{host}: no change ({seconds:.2f} s)")
    return out


class _Run:
    """One converge's lab side: the stages' changes, and the state file kept up to date after each."""

    def __init__(self, checked: Checked, built: Built, names: LabNames, have: LabLayout, want: LabLayout,
                 ledger: Ledger, ovs: dict[str, OvsRun], report: Report):
        self.topo = checked.topology
        self.built, self.names, self.have, self.want = built, names, have, want
        self.ledger, self.ovs, self.report = ledger, ovs, report
        self.lab_dir = built.lab_dir

    # --- before the hosts --------------------------------------------------------------

    def before(self, p: LabPlan) -> None:
        changes = p.stage(Stage.BEFORE)
        if not changes:
            return
        with Kernel() as kernel:
            temps = Temps(self.names)
            for c in p.stage(Stage.BEFORE, Part.HOST, Action.CREATE):
                self._note(c)
                self._new_host(c.key)
            for c in p.stage(Stage.BEFORE, Part.ENDPOINT):
                self._note(c)
                self._unplug(kernel, c.before, gone=c.action is Action.DELETE)
            self._switch(p.stage(Stage.BEFORE, Part.SWITCH_PORT, Action.DELETE))
            self._cables(kernel, temps, p.stage(Stage.BEFORE, Part.CABLE))
            self._legs(kernel, temps, p.stage(Stage.BEFORE, Part.LEG))
            self._switch(p.stage(Stage.BEFORE, Part.SWITCH_PORT, Action.CREATE, Action.MODIFY))
            for c in p.stage(Stage.BEFORE, Part.HOST, Action.CREATE):
                prepare_host(self.topo.hosts[c.key], self.names, kernel, self.ledger, self.lab_dir)
        # Until the removals are made, the lab has the old and the new.
        self.ledger.converged(_union(self.built.names, self.names), _merged(self.have, self.want), self.topo)

    def _note(self, c: LabChange) -> None:
        self.report(f"lab: {c.line()}")

    def _new_host(self, host: str) -> None:
        ns = self.want.hosts[host]
        # A host of the same number removed earlier may have left its files.
        for leftover in (self.lab_dir / "ovs" / ns, host_root(self.lab_dir, ns)):
            shutil.rmtree(leftover, ignore_errors=True)
        make_namespace(self.ledger, ns)
        self.ovs[ns] = start_ovs(self.ledger, self.lab_dir, ns)

    def _unplug(self, kernel: Kernel, plug: EndpointPlug, gone: bool) -> None:
        names = self.built.names
        ns, link = names.endpoint_ns(plug.name), names.endpoint_link(plug.name)
        host_ns = self.have.hosts.get(plug.host)
        if plug.ovs_bridge and host_ns and host_ns in self.ovs:
            with Ovsdb(self.ovs[host_ns].remote, timeout=LAB_OVS_TIMEOUT) as db:
                if link in db.read().ports:
                    db.transact([OvsDelPort(plug.ovs_bridge, link)])
        if netns.exists(ns) and kernel.has_link(ns, "eth0"):
            kernel.apply(ns, [NlDeleteLink("eth0")])
        if gone:
            teardown.remove_namespace(ns)
            self.ledger.forget(ns)

    def _switch(self, changes: Sequence[LabChange]) -> None:
        if not changes:
            return
        ops: list[Any] = []
        for c in changes:
            self._note(c)
            if c.action is Action.DELETE:
                ops.append(OvsDelPort(SWITCH_BRIDGE, c.key))
            elif c.action is Action.CREATE:
                ops.append(c.after.add_op())
            else:
                ops.append(c.after.set_op())
        with Ovsdb(self.ovs[self.names.switch_ns].remote, timeout=LAB_OVS_TIMEOUT) as db:
            db.transact(ops)

    def _cables(self, kernel: Kernel, temps: Temps, changes: Sequence[LabChange]) -> None:
        if any(c.after.loose for c in changes) and not netns.exists(self.names.spare_ns):
            make_namespace(self.ledger, self.names.spare_ns)
        for c in changes:
            self._note(c)
            new = c.after
            if c.action is Action.CREATE:
                if kernel.has_link(new.far_ns, new.far):
                    # Left from a NIC that went missing: the pair is made again whole.
                    kernel.apply(new.far_ns, [NlDeleteLink(new.far)])
                make_wire(kernel, new, temps)
            elif c.action is Action.MOVE:
                old = c.before
                # The host's NIC stays (its OVS port keeps working): only the far end moves, as a cable re-plugged.
                kernel.move(old.far_ns, old.far, new.far_ns, new.far)
                kernel.apply(new.far_ns, [NlSetLink(new.far, mtu=new.mtu, up=not new.loose)])
            else:
                kernel.apply(new.far_ns, [NlSetLink(new.far, mtu=new.mtu)])

    def _legs(self, kernel: Kernel, temps: Temps, changes: Sequence[LabChange]) -> None:
        if not changes:
            return
        rt = self.names.router_ns
        if not netns.exists(rt):
            make_namespace(self.ledger, rt)
        write_sysctl(rt, "net/ipv4/ip_forward", "1")
        if any(":" in a for c in changes for a in c.after.addresses):
            write_sysctl(rt, "net/ipv6/conf/all/forwarding", "1")
        for c in changes:
            self._note(c)
            new = c.after
            if c.action is Action.CREATE:
                make_leg(kernel, self.names, new, temps)
                continue
            old, leg = c.before, self.names.router_leg(new.vlan)
            ops: list[Any] = []
            ops += [NlDelAddress(leg, a) for a in old.addresses if a not in new.addresses]
            ops += [NlAddAddress(leg, a, nodad=True) for a in new.addresses if a not in old.addresses]
            if old.mtu != new.mtu:
                ops.append(NlSetLink(leg, mtu=new.mtu))
                kernel.apply(self.names.switch_ns, [NlSetLink(self.names.router_port(new.vlan), mtu=new.mtu)])
            kernel.apply(rt, ops)

    # --- Docker, once the hosts' namespaces are there ------------------------------------------

    def docker(self, p: LabPlan, lab: Lab) -> None:
        hosts = [c.key for c in p.stage(Stage.BEFORE, Part.DOCKERD)]
        for c in p.stage(Stage.BEFORE, Part.DOCKERD):
            self._note(c)
        if hosts:
            lab_docker.start(lab, hosts=hosts, report=self.report)

    # --- after the hosts -------------------------------------------------------------------------

    def after(self, p: LabPlan, lab: Lab, configure: bool) -> None:
        self._switch(p.stage(Stage.AFTER, Part.SWITCH_PORT, Action.DELETE))
        with Kernel() as kernel:
            for c in p.stage(Stage.AFTER, Part.LEG, Action.DELETE):
                self._note(c)
                if kernel.has_link(self.names.router_ns, self.names.router_leg(c.before.vlan)):
                    kernel.apply(self.names.router_ns, [NlDeleteLink(self.names.router_leg(c.before.vlan))])
            for c in p.stage(Stage.AFTER, Part.CABLE, Action.DELETE):
                self._note(c)
                if kernel.has_link(c.before.host_ns, c.before.nic):
                    kernel.apply(c.before.host_ns, [NlDeleteLink(c.before.nic)])
        for c in p.stage(Stage.AFTER, Part.HOST, Action.DELETE):
            self._note(c)
            self._remove_host(c.key, self.have.hosts[c.key])
        new_eps = p.stage(Stage.AFTER, Part.ENDPOINT, Action.CREATE)
        for c in new_eps:
            self._note(c)
            ns = self.names.endpoint_ns(c.key)
            if not netns.exists(ns):
                make_namespace(self.ledger, ns)
        self.ledger.converged(self.names, self.want, self.topo)
        if configure:
            # Every endpoint not plugged in: the new ones and those the edit moved.
            endpoints.attach_endpoints(lab)

    def _remove_host(self, host: str, ns: str) -> None:
        root = self.lab_dir / DOCKER_DIR / ns
        if root.is_dir():
            lab_docker.stop(lab_docker.DockerRun(host, ns, str(root)))
            shutil.rmtree(root, ignore_errors=True)
        run = self.ovs.get(ns)
        if run is not None:
            OvsInstance.running(ns, run.rundir).stop()
        teardown.remove_namespace(ns)
        for leftover in (self.lab_dir / "ovs" / ns, host_root(self.lab_dir, ns)):
            shutil.rmtree(leftover, ignore_errors=True)
        state = self.lab_dir / "state"
        record.path_for(state, self.topo.name, host).with_suffix(".lock").unlink(missing_ok=True)
        record.remove(state, self.topo.name, host)
        self.ledger.forget(ns)


def _union(old: LabNames, new: LabNames) -> LabNames:
    """Names of both labs at once (between the stages, the removed hosts are still there)."""
    hosts = new.hosts + tuple(h for h in old.hosts if h not in new.hosts)
    eps = new.endpoints + tuple(e for e in old.endpoints if e not in new.endpoints)
    return replace(new, hosts=hosts, endpoints=eps,
                   host_numbers={**old.all_host_numbers(), **new.all_host_numbers()},
                   endpoint_numbers={**old.all_endpoint_numbers(), **new.all_endpoint_numbers()})


def _merged(have: LabLayout, want: LabLayout) -> LabLayout:
    """The lab between the stages: the new file's layout, and what the removals will take away."""
    return replace(
        want,
        hosts={**have.hosts, **want.hosts},
        wires={**{k: w for k, w in have.wires.items() if k not in want.wires}, **want.wires},
        docker=have.docker | want.docker,
    )
