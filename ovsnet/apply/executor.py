"""Applies a plan's changes in order, runs its checks between phases, and rolls back what it did.

Consecutive changes of one backend go together: every OVSDB change of a run
in one transaction, Linux changes in one netlink batch. A failure anywhere
(a backend error, a check, an injected fault) undoes every change that was
applied, even in part, newest first, through the same backends.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ovsnet.apply.live import Live, Report
from ovsnet.errors import VerificationError
from ovsnet.plan.model import PHASES, Change, Phase

AfterChange = Callable[[Change], None]


def _due_before(rank: dict[Phase, int], phase: Phase) -> Callable[[Any], bool]:
    """Checks due before the changes of `phase`: those that follow an earlier phase of the plan."""
    return lambda check: rank[check.after] < rank[phase]


class Executor:
    def __init__(self, live: Live, report: Report, after_change: AfterChange | None = None):
        self.live = live
        self.report = report
        self.after_change = after_change
        self.done: list[Change] = []
        self._done_ids: set[int] = set()
        self.undo_failed: list[Change] = []  # what a rollback could not undo
        self.step = "reading the host"  # what runs now, for the failure report

    def run(self, changes: Sequence[Change], checks: Sequence[Any] = (), order: Sequence[Phase] = PHASES) -> None:
        rank = {ph: i for i, ph in enumerate(order)}
        pending = list(checks)
        i = 0
        while i < len(changes):
            phase, backend = changes[i].phase, changes[i].backend
            # A check runs once the phase it follows is over (in this plan's order of phases).
            pending = self._checks(pending, _due_before(rank, phase))
            j = i
            while j < len(changes) and changes[j].phase is phase and changes[j].backend == backend:
                j += 1
            self._group(changes[i:j])
            i = j
        self._checks(pending, lambda c: True)

    def _checks(self, pending: list[Any], due: Callable[[Any], bool]) -> list[Any]:
        left = []
        for check in pending:
            if not due(check):
                left.append(check)
                continue
            self.step = check.describe()
            check.run(self.live)
        return left

    def _group(self, group: Sequence[Change]) -> None:
        backend = group[0].backend
        if backend is None:  # changes with nothing to do (a record note)
            self._mark(group)
            return
        phase = group[0].phase
        if backend == "ovsdb":
            self.step = f"the OVSDB transaction ({len(group)} changes: {group[0].resource} ...)"
            self.report(f"ovsdb: one transaction, {len(group)} changes")
        elif backend == "netlink" and len(group) > 1:
            self.step = f"the netlink batch ({len(group)} changes: {group[0].resource} ...)"
            self.report(f"{phase.value}: {len(group)} changes in one netlink batch")
        else:
            self.step = group[0].resource
            for c in group:
                self.report(f"{phase.value}: {c.line()}")

        def on_group(k: int) -> None:
            self._mark([group[k]])
            if self.after_change is not None:
                self.after_change(group[k])

        try:
            self.live.apply_groups(backend, [c.ops for c in group], on_group if self.after_change else None)
        except BaseException as exc:
            failed = getattr(exc, "failed", None)
            if isinstance(failed, int) and 0 <= failed < len(group):
                self.step = group[failed].resource
            self._mark([group[k] for k in sorted(getattr(exc, "touched", ()))])
            raise
        self._mark(group)

    def _mark(self, changes: Sequence[Change]) -> None:
        for c in changes:
            if id(c) not in self._done_ids:
                self._done_ids.add(id(c))
                self.done.append(c)

    def rollback(self) -> tuple[list[str], list[str]]:
        """Undo every applied change, newest first; OVSDB undos in one transaction."""
        undone: list[str] = []
        errors: list[str] = []
        pending = [c for c in reversed(self.done) if c.undo]
        # Nothing to undo (an internal port brought up that goes with its port): done already.
        undone += [c.resource for c in reversed(self.done) if not c.undo]
        i = 0
        while i < len(pending):
            backend = pending[i].undo[0].backend
            j = i
            while j < len(pending) and pending[j].undo[0].backend == backend:
                j += 1
            self._undo(backend, pending[i:j], undone, errors)
            i = j
        return undone, errors

    def _undo(self, backend: str, group: list[Change], undone: list[str], errors: list[str]) -> None:
        if backend == "ovsdb":
            try:
                # Newest change first; each change's undo ops in their own order
                # (a moved port: delete it here, then add it back where it was).
                # Waiting for ovs-vswitchd: undos after this one may need the
                # links it makes again (a management port, for its address).
                self.live.apply_groups(backend, [c.undo for c in group], None, wait=True)
                undone += [c.resource for c in group]
            except VerificationError:
                # Committed, but ovs-vswitchd is not applying (the very fault that
                # may have failed this run): the database is as before, and
                # ovs-vswitchd follows it when it is back.
                undone += [c.resource for c in group]
            except Exception as exc:  # keep undoing the rest
                errors += [f"{c.resource} ({exc})" for c in group]
                self.undo_failed += group
            return
        left = group
        while left:
            try:
                self.live.apply_groups(backend, [c.undo for c in left], None)
                undone += [c.resource for c in left]
                return
            except Exception as exc:
                failed = getattr(exc, "failed", None)
                failed = failed if isinstance(failed, int) else next((k for k in range(len(left)) if k not in set(getattr(exc, "touched", ()))), 0)
                undone += [left[k].resource for k in range(failed)]
                errors.append(f"{left[failed].resource} ({exc})")
                self.undo_failed.append(left[failed])
                left = left[failed + 1:]  # keep undoing the rest
