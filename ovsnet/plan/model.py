"""What a plan is: ordered changes, each with its reason, its ops and their undo.

A change is Terraform's record (action, before, after, reason) with the
backend operations that make it and, computed from the "before" snapshot,
the ones that take it back, so rollback never has to guess. Checks are the
plan's promises about the live host (an internal port appeared, the gateway
answers), run between phases; a failed check rolls the run back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


class Action(str, enum.Enum):
    CREATE = "create"
    MODIFY = "modify"
    MOVE = "move"
    DELETE = "delete"
    ADOPT = "adopt"
    RESTORE = "restore"


class Phase(str, enum.Enum):
    """When a change runs; the order of the members is the order of a plan."""

    LINUX = "netlink"
    OVSDB = "ovsdb"
    UPLINK = "uplink"
    DNS = "dns"
    HANDOVER = "handover"
    DOCKER = "docker"
    CLEANUP = "netlink-cleanup"


PHASES = tuple(Phase)


class Op(Protocol):
    """One backend operation. `backend` names who executes it ("netlink", "ovsdb", "docker", "files")."""

    backend: str

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Change:
    action: Action
    resource: str  # one identifier form: "port:br-ovs/eth1", "link:br-web", ...
    phase: Phase
    reason: str
    before: str | None = None
    after: str | None = None
    ops: tuple[Any, ...] = ()
    undo: tuple[Any, ...] = ()
    # The kind that planned it ("" outside a kind): a rollback that cannot undo
    # it keeps that kind's part of the record, and only that (ovsnet.apply.run).
    kind: str = ""

    def line(self) -> str:
        if self.action is Action.CREATE:
            what = self.after or ""
        elif self.action is Action.DELETE:
            what = self.before or ""
        else:
            what = f"{self.before} -> {self.after}"
        return f"{self.action.value:7} {self.resource}  {what}".rstrip()

    @property
    def backend(self) -> str | None:
        return self.ops[0].backend if self.ops else None


@dataclass(frozen=True)
class Blocker:
    """Something in the way that ovsnet will not touch without being told."""

    resource: str
    message: str
    hint: str


@dataclass(frozen=True)
class Health:
    """Something the host has as declared but that does not work now (a bond's member down).

    Not a change: `up` cannot fix it (a cable, the switch's side), so a plan
    with only health findings applies nothing; `status` counts it as drift.
    """

    resource: str
    message: str


class Check(Protocol):
    """A promise about the live host, run after the changes of `after` (see apply.executor)."""

    after: Phase

    def describe(self) -> str: ...

    def run(self, backends: Any) -> None:
        """Raise VerificationError when the host does not keep the promise."""


@dataclass(frozen=True)
class Plan:
    topology: str
    host: str
    changes: tuple[Change, ...]
    blockers: tuple[Blocker, ...] = ()
    notes: tuple[str, ...] = ()
    checks: tuple[Any, ...] = ()  # Check objects, in order
    # What the host has now that this plan is about to lose and `down` must put
    # back (the NIC's addresses, its MTU...): written before the first change.
    # Keyed by the kind that remembers it.
    keep: Mapping[str, Any] = field(default_factory=dict)
    # The SSH guard's question: the NICs whose addresses this plan moves away.
    moves_from: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()  # what the planner found about the host (its network manager...)
    order: tuple[Phase, ...] = tuple(Phase)  # the order of phases this plan runs in (down has its own)
    health: tuple[Health, ...] = ()  # what exists as declared but does not work (status: drift)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def moves_uplink(self) -> bool:
        return bool(self.moves_from)


def to_json(plan: Plan) -> dict[str, Any]:
    return {
        "topology": plan.topology,
        "host": plan.host,
        "moves_uplink": plan.moves_uplink,
        "changes": [
            {"action": c.action.value, "resource": c.resource, "phase": c.phase.value, "before": c.before, "after": c.after, "reason": c.reason}
            for c in plan.changes
        ],
        "checks": [{"after": c.after.value, "check": c.describe()} for c in plan.checks],
        "blockers": [{"resource": b.resource, "message": b.message, "hint": b.hint} for b in plan.blockers],
        "notes": list(plan.notes),
        "facts": list(plan.facts),
        "health": [{"resource": h.resource, "message": h.message} for h in plan.health],
    }
