"""Processes as /proc shows them: whether one runs, its argv, its children, since when.

The lab stops daemons it started detached (reparented to whatever reaps
orphans here, so waitpid() is not ours to call), and verify tells a probe's
live owner from a pid reused since: both read /proc rather than trusting pid
files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator, Sequence


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first); None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name is in parentheses and may hold spaces or ')': split after the last one.
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running; a zombie counts as gone."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def start_time(pid: int) -> str | None:
    """When the process started, in clock ticks since boot (stat field 22); None when gone."""
    fields = _stat(pid)
    return fields[19] if fields else None


def cmdline(pid: int) -> list[str]:
    """A process's argv; [] when gone or a zombie (whose cmdline is empty)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def pids() -> Iterator[int]:
    return (int(e) for e in os.listdir("/proc") if e.isdigit())


def pids_named(programs: Sequence[str]) -> Iterator[int]:
    """Processes whose argv[0] has one of these base names."""
    for pid in pids():
        argv = cmdline(pid)
        if argv and os.path.basename(argv[0]) in programs:
            yield pid


def descendants(roots: set[int]) -> list[int]:
    """Every child, grandchild, ... of these processes."""
    children: dict[int, list[int]] = {}
    for pid in pids():
        fields = _stat(pid)
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    out, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def signal_and_wait(targets: Sequence[int], sig: int, grace: float) -> list[int]:
    """Send sig to those still running and wait up to `grace` s for them to go; the ones signalled."""
    running = [p for p in targets if alive(p)]
    for pid in running:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while any(alive(p) for p in running) and time.monotonic() < deadline:
        time.sleep(0.02)
    return running
