"""What a kind is, and what the planner hands it.

A kind is one sort of object ovsnet manages (an OVS port, a Linux bridge, the
host's uplink addresses, a Docker network...). Its module holds everything
about it: its desired form and how the topology gives it, how it reads
itself out of a host snapshot, its diff, the backend operations it emits with
their undo, its teardown, and what it remembers between runs. The planner
and the executor only walk the registry (ovsnet.kinds.KINDS), as nmstate's
apply walks its interface types: adding a kind is one module and one line
there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import Current, Link
from ovsnet.marks import alias_for
from ovsnet.plan.model import Action, Blocker, Change, Health, Phase
from ovsnet.topology.model import Host, Topology

ADOPT_HINT = "pass --adopt to let ovsnet take it over"


@dataclass(frozen=True)
class Settings:
    """What the run says beyond the topology file."""

    datapath: str | None = None  # overrides the topology's (the lab forces netdev)
    adopt: bool = False
    docker: bool = True  # False: Docker is not reachable; say so and plan the rest


@dataclass(frozen=True)
class Desired:
    """One host's part of the topology, as each kind's desired objects."""

    topology: str
    host: str
    parts: Mapping[str, tuple[Any, ...]]

    def of(self, kind: str) -> tuple[Any, ...]:
        return self.parts.get(kind, ())


class Context:
    """What a kind's plan or teardown sees, and where it puts what it decides."""

    def __init__(self, topology: str, host: str, current: Current, saved: Mapping[str, Any], settings: Settings):
        self.topology = topology
        self.host = host
        self.current = current
        self.settings = settings
        self._saved = saved
        self.changes: list[Change] = []
        self.blockers: list[Blocker] = []
        self.notes: list[str] = []
        self.facts: list[str] = []
        self.checks: list[Any] = []
        self.keep: dict[str, Any] = {}
        self.moves_from: list[str] = []
        self.health: list[Health] = []
        self.kind = ""  # the kind planning now (the planner sets it): each change says whose it is

    def add(self, action: Action, resource: str, phase: Phase, reason: str, *, before: str | None = None,
            after: str | None = None, ops: tuple[Any, ...] = (), undo: tuple[Any, ...] = ()) -> None:
        self.changes.append(Change(action, resource, phase, reason, before, after, ops, undo, self.kind))

    def block(self, resource: str, message: str, hint: str = ADOPT_HINT) -> None:
        self.blockers.append(Blocker(resource, message, hint))

    def unhealthy(self, resource: str, message: str) -> None:
        """Declared and present, but not working (status reports it as drift; up cannot fix it)."""
        self.health.append(Health(resource, message))

    def saved(self, kind: str) -> Any:
        """What `kind` remembered about this host before ovsnet's first change, or None."""
        return self._saved.get(kind)

    def whose(self, owner: str | None) -> str:
        return f"topology {owner}" if owner else "not ovsnet"

    # Linux links that several kinds create (bridges, veth ends) are taken
    # over and tuned the same way.

    def owned_link(self, cur: Link, resource: str) -> bool:
        """A link in the way is ours, or adopted now (--adopt), or a blocker."""
        if cur.owner == self.topology:
            return True
        if self.settings.adopt:
            alias = alias_for(self.topology, "adopted")
            self.add(Action.ADOPT, resource, Phase.LINUX, "--adopt: mark it as ovsnet's", before=f"alias {cur.alias!r}", after=f"alias {alias!r}",
                     ops=(NlSetLink(cur.name, alias=alias),), undo=(NlSetLink(cur.name, alias=cur.alias or ""),))
            return True
        self.block(resource, f"{cur.name} exists and belongs to {self.whose(cur.owner)}")
        return False

    def tune_link(self, cur: Link, resource: str, mtu: int, reason: str) -> None:
        if cur.mtu != mtu:
            self.add(Action.MODIFY, resource, Phase.LINUX, reason, before=f"mtu {cur.mtu}", after=f"mtu {mtu}",
                     ops=(NlSetLink(cur.name, mtu=mtu),), undo=(NlSetLink(cur.name, mtu=cur.mtu),))
        if not cur.up:
            self.add(Action.MODIFY, resource, Phase.LINUX, reason, before="down", after="up",
                     ops=(NlSetLink(cur.name, up=True),), undo=(NlSetLink(cur.name, up=False),))


@dataclass
class Presumed:
    """The host before ovsnet, for the offline plan: each kind adds what it assumes is there."""

    links: list[str] = field(default_factory=list)
    addresses: list[tuple[str, str]] = field(default_factory=list)
    routes: list[tuple[str, str, str | None, str]] = field(default_factory=list)  # dst, ifname, gateway, proto


class Kind:
    """Base of every kind; the defaults are "nothing to do"."""

    name: ClassVar[str]
    # Which backends a host snapshot must include for this kind's desired objects.
    reads: ClassVar[frozenset[str]] = frozenset()

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[Any, ...]:
        return ()

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        pass

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        pass

    def presume(self, want: tuple[Any, ...], before: Presumed) -> None:
        pass

    # What the kind remembers between runs (see ovsnet.apply.record): its own
    # typed record, to and from JSON, and how an older and a newer one merge.
    def record_to_json(self, part: Any) -> Any:
        raise NotImplementedError(f"kind {self.name} keeps no record")

    def record_from_json(self, raw: Any) -> Any:
        raise NotImplementedError(f"kind {self.name} keeps no record")

    def merge_record(self, old: Any, new: Any) -> Any:
        return old if old is not None else new
