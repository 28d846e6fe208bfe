"""What is left of a lab (status), and removing all of it (destroy).

Both work from the state file when there is one, and from what the machine
shows with the lab's prefix when there is not: a half-built lab, or one whose
builder crashed, goes too; nothing without the prefix is ever touched.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from ovsnet import procs
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import netns
from ovsnet.lab import ssh as lab_ssh
from ovsnet.lab.ledger import STATE_FILE, pidfile_pids, read_state
from ovsnet.lab.names import ETC_NETNS, OVS_PROGRAMS, Daemon, LabNames, default_lab_dir

STOP_GRACE = 5.0


@dataclass(frozen=True)
class LabStatus:
    prefix: str
    lab_dir: str
    state_file: bool
    complete: bool
    namespaces: tuple[str, ...]
    daemons: tuple[Daemon, ...]  # this lab's OVS daemons still running
    etc_netns: tuple[str, ...]

    @property
    def exists(self) -> bool:
        return bool(self.state_file or self.namespaces or self.daemons or self.etc_netns)


def status(prefix: str, lab_dir: str | os.PathLike[str] | None = None) -> LabStatus:
    names = LabNames(prefix)
    where = Path(lab_dir or default_lab_dir(prefix)).resolve()
    data = read_state(where)
    return LabStatus(
        prefix=prefix,
        lab_dir=str(where),
        state_file=(where / STATE_FILE).exists(),
        complete=bool(data.get("complete")),
        namespaces=tuple(_lab_namespaces(names, data)),
        daemons=tuple(_lab_daemons(names, where, data)) + tuple(lab_docker.daemons(prefix, where))
        + tuple(Daemon(pid, "sshd", None) for pid in lab_ssh.daemons(where)),
        etc_netns=tuple(_lab_etc_netns(names, data)),
    )


def destroy(prefix: str, lab_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove every trace of lab `prefix`; safe to run twice, or on a half-built lab.

    Order matters: daemons first (a process keeps a deleted namespace and
    its links alive), then namespaces, then files.
    """
    names = LabNames(prefix)
    where = Path(lab_dir or default_lab_dir(prefix)).resolve()
    data = read_state(where)
    # Lab dockerds first: their containers live outside the lab's namespaces.
    lab_docker.destroy(prefix, where)
    lab_ssh.stop(where)
    _stop([d.pid for d in _lab_daemons(names, where, data)])
    namespaces = _lab_namespaces(names, data)
    _stop(_pids_in(namespaces))
    for ns in namespaces:
        _quietly(netns.remove, ns)
    for ns in _lab_etc_netns(names, data):
        shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
    if _is_lab_dir(names, where, data):
        shutil.rmtree(where, ignore_errors=True)


def remove_namespace(ns: str) -> None:
    """One namespace of a lab, with the processes in it and its /etc/netns files (a host or endpoint an edit removed)."""
    _stop(_pids_in([ns]))
    _quietly(netns.remove, ns)
    shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)


def _is_lab_dir(names: LabNames, where: Path, data: Mapping[str, Any]) -> bool:
    """Only a directory that is this lab's is removed: a mistyped --lab-dir must not cost a tree."""
    return data.get("prefix") == names.prefix or where.name == names.prefix


def _lab_namespaces(names: LabNames, data: Mapping[str, Any]) -> list[str]:
    recorded = [ns for ns in data.get("namespaces", []) if isinstance(ns, str) and names.owns(ns)]
    return sorted({ns for ns in recorded if netns.exists(ns)} | set(netns.listed(names.ns_prefix)))


def _lab_etc_netns(names: LabNames, data: Mapping[str, Any]) -> list[str]:
    try:
        found = {p.name for p in ETC_NETNS.iterdir() if names.owns(p.name)}
    except OSError:
        found = set()
    recorded = {ns for ns in data.get("etc_netns", []) if isinstance(ns, str) and names.owns(ns)}
    return sorted(found | {ns for ns in recorded if (ETC_NETNS / ns).exists()})


def _lab_daemons(names: LabNames, lab_dir: Path, data: Mapping[str, Any]) -> Iterator[Daemon]:
    """This lab's running OVS daemons: recorded pids, pidfiles, and any OVS process naming its dir.

    Each candidate's command line must name a run directory of this lab, so
    a recycled pid or another lab's daemon is never taken for ours.
    """
    rundirs = [str(info.get("rundir")) for info in data.get("ovs", {}).values() if isinstance(info, dict)]
    rundirs = [r for r in rundirs if names.owns(Path(r).name)]
    candidates: set[int] = set()
    for info in data.get("ovs", {}).values():
        if isinstance(info, dict):
            candidates |= {p for p in info.get("pids", {}).values() if isinstance(p, int)}
    for rundir in rundirs:
        candidates |= set(pidfile_pids(Path(rundir)).values())
    candidates |= set(procs.pids_named(OVS_PROGRAMS))
    # Both marks contain the prefix: a daemon of another lab (or test) never matches.
    marks = [*rundirs, f"{lab_dir}/ovs/{names.ns_prefix}"]
    for pid in sorted(candidates):
        argv = procs.cmdline(pid)
        if not argv or os.path.basename(argv[0]) not in OVS_PROGRAMS:
            continue
        hit = next((m for m in marks if any(m in arg for arg in argv[1:])), None)
        if hit is not None:
            yield Daemon(pid, os.path.basename(argv[0]), hit if hit in rundirs else None)


def _pids_in(namespaces: Sequence[str]) -> list[int]:
    """Processes living in these namespaces (ping, tcpdump, dockerd left by a test)."""
    inodes = set()
    for ns in namespaces:
        try:
            st = os.stat(os.path.join(netns.NETNS_DIR, ns))
        except OSError:
            continue
        inodes.add((st.st_dev, st.st_ino))
    if not inodes:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in inodes:
            out.append(int(entry))
    return out


def _stop(pids: Sequence[int]) -> None:
    """SIGTERM all, then SIGKILL what is still running after the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs.signal_and_wait(pids, sig, STOP_GRACE)


def _quietly(step: Callable[..., object], *args: Any) -> None:
    try:
        step(*args)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL):
            raise
