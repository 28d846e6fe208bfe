"""What the real-engine tests share: the engine's prerequisites, and its processes.

The Docker tests never skip: a machine without an engine fails them with the
reason, since CI installs one (docker.io, busybox-static).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ovsnet import procs
from ovsnet.lab import docker as lab_docker

INSTALL = "apt-get install docker.io busybox-static"


def missing_for_engine(extra: tuple[str, ...] = ()) -> str | None:
    """What this machine lacks to run a lab dockerd (and the `extra` programs); None when nothing."""
    missing = [p for p in ("dockerd", "containerd", "runc", *extra) if shutil.which(p) is None]
    if not Path(lab_docker.BUSYBOX).exists():
        missing.append(lab_docker.BUSYBOX)
    return f"missing {', '.join(missing)}; {INSTALL}" if missing else None


def docker_processes(mark: str) -> list[str]:
    """Docker daemons (and their shims) whose command line names `mark`: a lab's, by its prefix."""
    out = []
    for pid in procs.pids_named(lab_docker.PROGRAMS):
        argv = procs.cmdline(pid)
        if any(mark in a for a in argv):
            out.append(f"{pid} {' '.join(argv)[:120]}")
    return out
