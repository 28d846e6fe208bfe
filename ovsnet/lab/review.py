"""What `lab up` would change in a built lab: `ovsnet lab plan` and the drift of `ovsnet lab status`.

Each host the lab has is planned by `ovsnet plan`'s own code with the lab's
settings (its namespace, private OVS, datapath, files, dockerd); a host the
file adds is planned from nothing, as `plan --offline` does; the lab's own
objects are diffed by lab/diff.py. Nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ovsnet.apply import plan_live
from ovsnet.kinds import Settings
from ovsnet.lab.diff import LabPlan, diff
from ovsnet.lab.ledger import load_lab
from ovsnet.lab.names import LabNames, targets
from ovsnet.lab.observe import desired_for, load_built, observe
from ovsnet.plan import offline, planner
from ovsnet.plan.model import Plan
from ovsnet.topology import Checked


@dataclass(frozen=True)
class HostReview:
    host: str
    plan: Plan
    new: bool = False  # not in the lab yet: planned from nothing

    @property
    def pending(self) -> bool:
        return self.new or not self.plan.empty


@dataclass(frozen=True)
class LabReview:
    prefix: str
    topology: str
    lab: LabPlan
    hosts: tuple[HostReview, ...]
    removed: tuple[str, ...]  # hosts `lab up` removes, with their namespaces

    @property
    def pending(self) -> bool:
        """`lab up` has something to do (or would refuse: lab.cannot)."""
        return not self.lab.empty or bool(self.removed) or any(h.pending for h in self.hosts)

    @property
    def blocked(self) -> bool:
        return bool(self.lab.cannot) or any(h.plan.blockers for h in self.hosts)

    @property
    def in_sync(self) -> bool:
        return not self.pending and not self.blocked


def review(checked: Checked, prefix: str | None = None, lab_dir: str | Path | None = None) -> LabReview:
    """Every host's plan and the lab's own changes, for the (edited) file; the lab must be built."""
    topo = checked.topology
    name = LabNames.for_topology(topo, prefix).prefix
    built = load_built(name, lab_dir, topo.name, topo.source)
    names, want = desired_for(topo, built, built.docker)
    have, broken = observe(built)
    lab_plan = diff(have, want, file=topo.source, fleet=built.fleet, broken=broken)
    lab = load_lab(topo, name, built.lab_dir)
    where = targets(lab)
    datapath = want.datapath
    hosts = []
    for host in topo.hosts:
        t = where.get(host)
        if t is None or host not in have.hosts:
            desired = planner.desire(topo, topo.hosts[host], Settings(datapath=datapath))
            hosts.append(HostReview(host, planner.diff(desired, offline.from_nothing(desired)), new=True))
        else:
            hosts.append(HostReview(host, plan_live(checked, host, t)))
    removed = tuple(h for h in have.hosts if h not in topo.hosts)
    return LabReview(names.prefix, topo.name, lab_plan, tuple(hosts), removed)
