"""The lab's own changes for an edited topology: what the lab has (lab/observe.py) against
what the file asks for (lab/layout.py), as ordered changes, and what cannot change in place.

Pure. The hosts' own configuration is not here: each host is planned and
applied by `ovsnet up`'s code. The lab's changes run in two stages around
the hosts: what the hosts will need (new namespaces, cables, switch ports,
router legs) before them, what they stop using (old cables, ports, legs,
hosts) after them, and endpoints are plugged in last, once the bridges they
join exist.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

from ovsnet.lab.layout import LabLayout, RouterLeg, Wire
from ovsnet.plan.model import Action


class Stage(str, enum.Enum):
    BEFORE = "before the hosts"
    AFTER = "after the hosts"


class Part(str, enum.Enum):
    """What a lab change is about; the values are the resource names' middle."""

    HOST = "host"
    ENDPOINT = "endpoint"
    CABLE = "cable"
    LEG = "router-leg"
    SWITCH_PORT = "switch-port"
    DOCKERD = "dockerd"


@dataclass(frozen=True)
class LabChange:
    action: Action
    part: Part
    key: str
    stage: Stage
    reason: str
    before: Any = None  # the layout's item (Wire, SwitchPort, ...) or a namespace name
    after: Any = None

    @property
    def resource(self) -> str:
        return f"lab:{self.part.value}:{self.key}"

    def line(self) -> str:
        b, a = _describe(self.before), _describe(self.after)
        if self.action is Action.CREATE:
            what = a
        elif self.action is Action.DELETE:
            what = b
        else:
            what = f"{b} -> {a}"
        return f"{self.action.value:7} {self.resource}  {what}".rstrip()


def _describe(item: Any) -> str:
    if item is None:
        return ""
    describe = getattr(item, "describe", None)
    return describe() if callable(describe) else str(item)


@dataclass(frozen=True)
class Refusal:
    """Something the edit asks of the lab that cannot be done in place, and how to do it."""

    what: str
    how: str


@dataclass(frozen=True)
class LabPlan:
    changes: tuple[LabChange, ...] = ()
    cannot: tuple[Refusal, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes and not self.cannot

    def stage(self, stage: Stage, part: Part | None = None, *actions: Action) -> list[LabChange]:
        return [c for c in self.changes if c.stage is stage and (part is None or c.part is part)
                and (not actions or c.action in actions)]


def rebuild(file: str) -> str:
    return f"rebuild the lab: `ovsnet lab down {file}`, then `ovsnet lab up {file}`"


def diff(have: LabLayout, want: LabLayout, *, file: str = "FILE", fleet: bool = False,
         broken: tuple[Refusal, ...] = ()) -> LabPlan:
    """The lab's changes from `have` to `want`, in the order they run; `broken`: what observe found beyond repair.

    fleet: the lab runs sshd in its hosts and a controller (`lab up --ssh`),
    which know the hosts they were started with.
    """
    cannot = list(broken) + _cannot(have, want, file, fleet)
    changes: list[LabChange] = []
    changes += _hosts(have, want)
    changes += _endpoints(have, want)
    changes += _cables(have, want)
    changes += _legs(have.legs, want.legs)
    changes += _switch_ports(have, want)
    changes += _dockerds(have, want)
    # Listed in the order lab/converge.py makes them.
    changes.sort(key=_rank)
    return LabPlan(tuple(changes), tuple(cannot))


_BEFORE = (Part.HOST, Part.ENDPOINT, "unplug", Part.CABLE, Part.LEG, Part.SWITCH_PORT, Part.DOCKERD)
_AFTER = (Part.SWITCH_PORT, Part.LEG, Part.CABLE, Part.HOST, Part.ENDPOINT)


def _rank(c: LabChange) -> tuple[int, int]:
    if c.stage is Stage.AFTER:
        return 1, _AFTER.index(c.part)
    # A switch port whose cable is re-plugged elsewhere goes before the cable moves.
    unplug = c.part is Part.SWITCH_PORT and c.action is Action.DELETE
    return 0, _BEFORE.index("unplug" if unplug else c.part)


def _cannot(have: LabLayout, want: LabLayout, file: str, fleet: bool) -> list[Refusal]:
    out: list[Refusal] = []
    if have.switch != want.switch:
        out.append(Refusal(f"the lab's switch: {have.switch or 'none'} -> {want.switch or 'none'}", rebuild(file)))
    if have.datapath != want.datapath:
        out.append(Refusal(f"the lab's datapath: {have.datapath} -> {want.datapath}", rebuild(file)))
    if have.dhcp != want.dhcp:
        out.append(Refusal(
            f"the VLANs the router serves DHCP on: {_ids(have.dhcp)} -> {_ids(want.dhcp)}", rebuild(file)))
    added, removed = set(want.hosts) - set(have.hosts), set(have.hosts) - set(want.hosts)
    if fleet and (added or removed):
        which = ", ".join([f"+{h}" for h in sorted(added)] + [f"-{h}" for h in sorted(removed)])
        out.append(Refusal(f"hosts added or removed ({which}) in a lab built with --ssh (the controller, its inventory "
                           "and the hosts' sshd know the hosts it started with)",
                           f"`ovsnet lab down {file}`, then `ovsnet lab up {file} --ssh`"))
    for key in sorted(set(have.wires) & set(want.wires)):
        old, new = have.wires[key], want.wires[key]
        if old.host in want.hosts and _recabled(old, new) and not (_movable(old, have) and _movable(new, want)):
            out.append(Refusal(
                f"cable {key}: {old.describe()} -> {new.describe()} (a NIC cabled to another host cannot be re-plugged "
                "in place: the lab would have to replace the NIC under the host's Open vSwitch)", rebuild(file)))
    return out


def _ids(vlans: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(vlans)) or "none"


def _recabled(old: Wire, new: Wire) -> bool:
    return (old.far_node, old.far_ns, old.far) != (new.far_node, new.far_ns, new.far)


def _movable(w: Wire, lay: LabLayout) -> bool:
    """A far end the lab can move without touching a host: in the switch or in the spare namespace."""
    return w.loose or w.far_node == lay.switch


def _hosts(have: LabLayout, want: LabLayout) -> list[LabChange]:
    out = [LabChange(Action.CREATE, Part.HOST, h, Stage.BEFORE, "new in the topology", after=f"namespace {ns}, its own Open vSwitch")
           for h, ns in want.hosts.items() if h not in have.hosts]
    out += [LabChange(Action.DELETE, Part.HOST, h, Stage.AFTER, "no longer in the topology", before=f"namespace {ns} and everything in it")
            for h, ns in have.hosts.items() if h not in want.hosts]
    return out


def _endpoints(have: LabLayout, want: LabLayout) -> list[LabChange]:
    out: list[LabChange] = []
    for name, old in have.endpoints.items():
        new = want.endpoints.get(name)
        if new is None:
            # Unplugged before the hosts: a bridge the edit removes must not hold it.
            out.append(LabChange(Action.DELETE, Part.ENDPOINT, name, Stage.BEFORE, "no longer in the topology", before=old))
        elif new != old:
            out.append(LabChange(Action.MODIFY, Part.ENDPOINT, name, Stage.BEFORE, "unplugged before the hosts, plugged in again after them",
                                 before=old, after=new))
    out += [LabChange(Action.CREATE, Part.ENDPOINT, name, Stage.AFTER, "plugged in once its host has the bridge it joins", after=new)
            for name, new in want.endpoints.items() if name not in have.endpoints]
    return out


def _cables(have: LabLayout, want: LabLayout) -> list[LabChange]:
    out: list[LabChange] = []
    for key, new in want.wires.items():
        old = have.wires.get(key)
        if old is None:
            out.append(LabChange(Action.CREATE, Part.CABLE, key, Stage.BEFORE, "a new NIC or cable", after=new))
        elif _recabled(old, new):
            if _movable(old, have) and _movable(new, want):
                out.append(LabChange(Action.MOVE, Part.CABLE, key, Stage.BEFORE, "re-plugged: its far end moves, the host's NIC stays",
                                     before=old, after=new))
        elif old.mtu != new.mtu:
            out.append(LabChange(Action.MODIFY, Part.CABLE, key, Stage.BEFORE, "the far end follows the NIC's MTU", before=old, after=new))
    for key, old in have.wires.items():
        # A removed host's cables go with its namespace.
        if key not in want.wires and old.host in want.hosts:
            out.append(LabChange(Action.DELETE, Part.CABLE, key, Stage.AFTER, "its NIC is no longer in the topology", before=old))
    return out


def _legs(have: Mapping[int, RouterLeg], want: Mapping[int, RouterLeg]) -> list[LabChange]:
    have, want = dict(sorted(have.items())), dict(sorted(want.items()))
    out = [LabChange(Action.CREATE, Part.LEG, f"v{v}", Stage.BEFORE, "the router joins this VLAN", after=leg)
           for v, leg in want.items() if v not in have]
    out += [LabChange(Action.MODIFY, Part.LEG, f"v{v}", Stage.BEFORE, "the VLAN's router address or MTU changed", before=have[v], after=leg)
            for v, leg in want.items() if v in have and have[v] != leg]
    out += [LabChange(Action.DELETE, Part.LEG, f"v{v}", Stage.AFTER, "the router leaves this VLAN", before=leg)
            for v, leg in have.items() if v not in want]
    return out


def _switch_ports(have: LabLayout, want: LabLayout) -> list[LabChange]:
    if not want.switch or have.switch != want.switch:
        return []
    out: list[LabChange] = []
    moved_away = {w.far for k, w in have.wires.items() if k in want.wires and w.far_node == have.switch
                  and want.wires[k].far != w.far}
    # Interfaces another port takes over (a plain port becoming a LAG's member, or a LAG split up).
    reused = {i for name, p in want.switch_ports.items() for i in p.interfaces if name not in have.switch_ports or
              have.switch_ports[name].interfaces != p.interfaces}
    # Ports in name order: what the switch's OVSDB lists comes in no order of its own.
    for name, old in sorted(have.switch_ports.items()):
        if name in want.switch_ports and old != want.switch_ports[name]:
            why = "follows the VLAN" if old.mark.startswith("router:") else "follows the host's trunk"
            out.append(LabChange(Action.MODIFY, Part.SWITCH_PORT, name, Stage.BEFORE, why, before=old, after=want.switch_ports[name]))
        elif name not in want.switch_ports:
            # A cable unplugged from the switch loses its port before its far end moves.
            # So does a port whose interfaces another port takes over.
            stage = Stage.BEFORE if set(old.interfaces) & (moved_away | reused) else Stage.AFTER
            out.append(LabChange(Action.DELETE, Part.SWITCH_PORT, name, stage, "nothing is plugged into it any more", before=old))
    out += [LabChange(Action.CREATE, Part.SWITCH_PORT, name, Stage.BEFORE, "for a new cable or router leg", after=new)
            for name, new in sorted(want.switch_ports.items()) if name not in have.switch_ports]
    return out


def _dockerds(have: LabLayout, want: LabLayout) -> list[LabChange]:
    # A dockerd no longer needed is left running: its host may still have containers.
    return [LabChange(Action.CREATE, Part.DOCKERD, h, Stage.BEFORE, "the host has Docker networks now", after="a private dockerd")
            for h in sorted(want.docker - have.docker) if h in want.hosts]


def for_json(p: LabPlan) -> dict[str, Any]:
    return {
        "changes": [{"action": c.action.value, "resource": c.resource, "stage": c.stage.name.lower(),
                     "before": _describe(c.before) or None, "after": _describe(c.after) or None, "reason": c.reason}
                    for c in p.changes],
        "cannot": [{"what": r.what, "how": r.how} for r in p.cannot],
    }

