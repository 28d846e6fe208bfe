"""A lab's review (lab/review.py) as text and JSON: `ovsnet lab plan` and the drift of `ovsnet lab status`."""

from __future__ import annotations

from typing import Any

from ovsnet.lab.diff import LabChange, Stage, for_json
from ovsnet.lab.review import LabReview
from ovsnet.plan.model import to_json
from ovsnet.render.plan import drift_text, plan_text


def _changes(title: str, changes: list[LabChange], start: int = 0) -> list[str]:
    if not changes:
        return []
    lines = [f"\n{title}:"]
    for n, c in enumerate(changes, start + 1):
        lines.append(f"  {n:3}. {c.line()}")
        lines.append(f"       because: {c.reason}")
    return lines


def lab_plan_text(r: LabReview) -> str:
    lines = [f"Plan for lab {r.prefix} of topology {r.topology}"]
    before, after = r.lab.stage(Stage.BEFORE), r.lab.stage(Stage.AFTER)
    lines += _changes("The lab's own changes, before the hosts", before)
    for h in r.hosts:
        lines.append("")
        text = plan_text(h.plan, offline=h.new)
        lines.append(text.replace("(offline: from nothing)", "(new in the lab: planned from nothing)", 1))
    lines += _changes("The lab's own changes, after the hosts", after, len(before))
    if r.lab.cannot:
        lines.append("\nCANNOT CHANGE IN PLACE (`lab up` refuses; nothing will be changed until these are resolved):")
        for c in r.lab.cannot:
            lines.append(f"  {c.what}\n      do: {c.how}")
    lines.append("\n" + summary(r))
    return "\n".join(lines)


def summary(r: LabReview) -> str:
    same = sum(1 for h in r.hosts if not h.pending and not h.plan.blockers)
    changed = [h for h in r.hosts if h.pending and not h.new]
    new = [h for h in r.hosts if h.new]
    blocked = [h.host for h in r.hosts if h.plan.blockers]
    parts = [f"{len(r.hosts)} hosts: {same} no change"]
    if blocked:
        parts.append(f"{len(blocked)} refusing ({', '.join(blocked)})")
    if changed:
        parts.append(f"{len(changed)} with changes ({', '.join(f'{h.host} {len(h.plan.changes)}' for h in changed)})")
    if new:
        parts.append(f"{len(new)} new ({', '.join(h.host for h in new)})")
    if r.removed:
        parts.append(f"{len(r.removed)} removed ({', '.join(r.removed)})")
    head = "in sync" if r.in_sync else "blocked" if r.blocked else "changes pending"
    return f"{head}: " + ", ".join(parts) + f"; {len(r.lab.changes)} lab changes" + (f", {len(r.lab.cannot)} cannot change in place" if r.lab.cannot else "")


def lab_drift_text(r: LabReview) -> str:
    lines: list[str] = []
    for h in r.hosts:
        if h.new:
            lines.append(f"drift on host {h.host}: not in the lab yet; `ovsnet lab up` adds it")
        else:
            lines.append(drift_text(h.plan))
    for host in r.removed:
        lines.append(f"drift on host {host}: in the lab, no longer in the topology; `ovsnet lab up` removes it")
    if r.lab.changes:
        lines.append(f"drift of the lab itself ({len(r.lab.changes)} differences); `ovsnet lab up` would:")
        lines += [f"  {c.line()}   ({c.reason})" for c in r.lab.changes]
    for c in r.lab.cannot:
        lines.append(f"  cannot change in place: {c.what} (do: {c.how})")
    lines.append(summary(r))
    return "\n".join(lines)


def lab_review_json(r: LabReview) -> dict[str, Any]:
    return {
        "prefix": r.prefix,
        "topology": r.topology,
        "in_sync": r.in_sync,
        "pending": r.pending,
        "hosts": {h.host: {**to_json(h.plan), "new": h.new, "pending": h.pending} for h in r.hosts},
        "removed": list(r.removed),
        "lab": for_json(r.lab),
    }
