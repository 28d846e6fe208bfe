"""What a run may leave behind in processes: live pids, child processes, descriptors.

Read from /proc, not through ovsnet, by the soak test and bench/soak.py
alike: a leak is a count that grows from one up/down cycle to the next.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # The command name in parentheses may itself hold spaces or ")".
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_gone(pid: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} still alive after {seconds} s")
        time.sleep(0.02)


def daemon_pid(rundir: Path, program: str) -> int | None:
    """The pid in an OVS daemon's pidfile under `rundir`, if that process is alive."""
    try:
        pid = int((Path(rundir) / f"{program}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def processes_naming(marker: str) -> list[list[str]]:
    """argv of every live process but this one whose command line mentions `marker` (a run prefix or dir)."""
    found = []
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd and alive(int(d.name)):
            found.append([a.decode(errors="replace") for a in cmd.rstrip(b"\0").split(b"\0")])
    return found


def children() -> list[int]:
    """Live child processes of this one."""
    me = str(os.getpid())
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] not in ("Z", "X"):
            out.append(int(d.name))
    return out


def open_fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def own_usage() -> dict[str, int]:
    """This process's open descriptors, threads and live children: what an in-process apply could leak."""
    return {"fds": open_fds(), "threads": len(os.listdir("/proc/self/task")), "children": len(children())}
