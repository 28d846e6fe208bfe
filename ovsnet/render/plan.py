"""Plans and drift as text for people; progress while applying."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from ovsnet.plan.model import Plan

_PHASE_TITLES = {
    "netlink": "Linux bridges, patch links and NIC MTUs (netlink)",
    "ovsdb": "Open vSwitch (one OVSDB transaction)",
    "uplink": "Host address and default route: NIC -> bridge side (route replaced atomically)",
    "dns": "DNS",
    "handover": "The host's network manager: the NIC to OVS, the management port to the manager",
    "docker": "Docker networks",
    "netlink-cleanup": "Last: removals (netlink), IPv6 off on Docker bridges (sysctl)",
}


def plan_text(p: Plan, offline: bool = False) -> str:
    head = f"Plan for host {p.host} of topology {p.topology}" + (" (offline: from nothing)" if offline else "")
    lines = [head]
    for fact in p.facts:
        lines.append(f"  found: {fact}")
    if p.empty and not p.blockers:
        lines.append("  nothing to change: the host matches the topology")
    phase: str | None = None
    n = 0
    for c in p.changes:
        if c.phase.value != phase:
            phase = c.phase.value
            lines.append(f"\n{_PHASE_TITLES.get(c.phase.value, c.phase.value)}:")
        n += 1
        lines.append(f"  {n:3}. {c.line()}")
        lines.append(f"       because: {c.reason}")
    if p.moves_uplink:
        lines.append(f"\nAfter the move ovsnet checks that the gateway answers, and puts {', '.join(p.moves_from)} back as it was if not.")
    nic_mtus = p.keep.get("nic")
    for nic in sorted(nic_mtus.mtus if nic_mtus else ()):
        lines.append(f"{nic}'s mtu before ovsnet's first change is kept in the state file; `ovsnet down` puts it back.")
    for note in p.notes:
        lines.append(f"note: {note}")
    if p.health:
        lines.append("\nNot working (up cannot fix these; status reports them as drift):")
        lines += [f"  {h.resource}: {h.message}" for h in p.health]
    if p.blockers:
        lines.append("\nREFUSED, nothing will be applied until these are resolved:")
        for b in p.blockers:
            lines.append(f"  {b.resource}: {b.message}\n      fix: {b.hint}")
    return "\n".join(lines)


def drift_text(p: Plan) -> str:
    found = [f"  found: {fact}" for fact in p.facts]
    if not p.changes and not p.blockers and not p.health:
        return "\n".join([f"in sync: host {p.host} matches topology {p.topology}", *found])
    if p.changes or p.blockers:
        lines = [f"drift on host {p.host} ({len(p.changes)} differences); `ovsnet up` would:", *found]
    else:
        lines = [f"drift on host {p.host}: configured as the topology says, but not working:", *found]
    lines += [f"  {c.line()}   ({c.reason})" for c in p.changes]
    lines += [f"  blocked {b.resource}: {b.message}" for b in p.blockers]
    lines += [f"  unhealthy {h.message}" for h in p.health]
    return "\n".join(lines)


@contextmanager
def progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A live status line on a terminal (rich), plain lines otherwise, nothing when quiet."""
    if quiet:
        yield lambda _msg: None
        return
    if not sys.stderr.isatty():
        def line(msg: str) -> None:
            sys.stderr.write(f"  {msg}\n")

        yield line
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("applying") as status:
        def report(msg: str) -> None:
            console.log(msg)
            status.update(msg)

        yield report
