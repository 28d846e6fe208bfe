"""A private Docker engine inside a lab host's network namespace (lab and tests only).

Each simulated host that has Docker networks can get its own dockerd, with
its data root, exec root, socket, pidfile and log under the lab directory
(`<lab>/docker/<namespace>/`), so nothing touches the machine's own Docker.
It runs through `nsenter --net` (`ip netns exec` remounts /sys, and dockerd
then fails with "Devices cgroup isn't mounted"); dockerd starts its own
containerd under its exec root. Containers go in a cgroup named after the
namespace, so the lab finds them again even when their shim is gone.

No registry is reachable from the lab: `make_image` builds the local image
`local/busybox:1` from Debian's busybox-static.

What is running is recorded in `<lab>/docker/<namespace>/run.json` before
it starts, and `destroy` (called by teardown.destroy) stops containers,
containerd shims, containerd and dockerd of that lab only, unmounts what
they left mounted and removes their cgroups.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import tarfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ovsnet import procs
from ovsnet.errors import BackendError, UsageError
from ovsnet.kinds import Settings
from ovsnet.kinds.docker_network import DockerNetworks
from ovsnet.lab import netns
from ovsnet.lab.names import DOCKER_DIR, SUN_PATH_MAX, Daemon, Lab, LabNames

IMAGE = "local/busybox:1"
BUSYBOX = "/bin/busybox"  # Debian's busybox-static: one static binary, no libraries needed
IMAGE_TOOLS = ("sh", "ping", "sleep", "ip", "ifconfig", "route", "cat", "ls", "wget", "nc", "true", "hostname", "arping", "traceroute")
RUN_FILE = "run.json"
PROGRAMS = ("dockerd", "containerd", "containerd-shim-runc-v2", "containerd-shim", "docker-proxy")
START_TIMEOUT = 30.0
STOP_GRACE = 10.0
# containerd's ttrpc socket is the longest path under the exec root.
_LONGEST_SOCKET = "run/containerd/containerd.sock.ttrpc"


@dataclass(frozen=True)
class DockerRun:
    """One lab dockerd, found again from its directory."""

    host: str
    namespace: str
    root: str  # <lab>/docker/<namespace>

    @property
    def socket(self) -> str:
        return f"{self.root}/docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> str:
        return f"{self.root}/lib"

    @property
    def exec_root(self) -> str:
        return f"{self.root}/run"

    @property
    def pidfile(self) -> str:
        return f"{self.root}/docker.pid"

    @property
    def log(self) -> str:
        return f"{self.root}/dockerd.log"

    @property
    def cgroup_parent(self) -> str:
        # Named after the namespace (so after the lab's prefix): destroy finds
        # the containers' processes by it, and no other lab's.
        return f"ovsnet-lab-{self.namespace}"


def docker_hosts(lab: Lab) -> list[str]:
    """Hosts that have Docker networks for `ovsnet up` to create: those get a dockerd."""
    topo = lab.topology
    return [h.name for h in topo.hosts.values() if DockerNetworks().desire(topo, h, Settings())]


def runs(lab: Lab) -> dict[str, DockerRun]:
    """Host -> its lab dockerd, for the hosts that have one recorded."""
    out = {}
    for host in lab.topology.hosts:
        ns = lab.names.host_ns(host)
        root = Path(lab.lab_dir) / DOCKER_DIR / ns
        if (root / RUN_FILE).exists():
            out[host] = DockerRun(host, ns, str(root))
    return out


def docker_host(lab: Lab, host: str) -> str | None:
    """DOCKER_HOST for a lab host's dockerd, or None when it has none."""
    run = runs(lab).get(host)
    return run.docker_host if run else None


# --- starting ----------------------------------------------------------------------


def start(lab: Lab, hosts: Sequence[str] | None = None, image: bool = True, report: Callable[[str], None] = lambda _m: None) -> dict[str, DockerRun]:
    """Start one dockerd per host (all at once, then wait for each), and make the image in each.

    `hosts` defaults to the hosts with Docker networks. On failure the
    daemons already started are left running for inspection; teardown.destroy
    removes them with the rest of the lab.
    """
    _check_tools()
    chosen = list(docker_hosts(lab) if hosts is None else hosts)
    started: dict[str, tuple[DockerRun, subprocess.Popen]] = {}
    t0 = time.monotonic()
    for host in chosen:
        run = DockerRun(host, lab.names.host_ns(host), str(Path(lab.lab_dir) / DOCKER_DIR / lab.names.host_ns(host)))
        started[host] = (run, _spawn(run))
    for run, proc in started.values():
        _wait_ready(run, proc, t0 + START_TIMEOUT)
        if image:
            make_image(run.docker_host)
    if started:
        report(f"docker: {len(started)} dockerd started in {time.monotonic() - t0:.2f} s ({', '.join(started)})")
    return {h: r for h, (r, _) in started.items()}


def _check_tools() -> None:
    missing = [p for p in ("dockerd", "containerd", "runc", "nsenter") if not _which(p)]
    if missing:
        raise BackendError(f"lab Docker: {', '.join(missing)} not found; install Debian's docker.io (apt-get install docker.io)")
    import importlib.util

    if importlib.util.find_spec("docker") is None:
        raise BackendError("lab Docker: the Docker SDK for Python is not installed: pip install 'ovsnet[docker]'")


def _which(program: str) -> str | None:
    import shutil

    return shutil.which(program)


def _spawn(run: DockerRun) -> subprocess.Popen:
    root = Path(run.root)
    if len(str(root / _LONGEST_SOCKET).encode()) > SUN_PATH_MAX:
        raise UsageError(f"lab directory {root.parent.parent} is too long for dockerd's unix sockets; use a shorter one")
    if (root / RUN_FILE).exists() and _daemon_pids(root):
        raise UsageError(f"a lab dockerd already runs for {run.namespace} ({root}); destroy the lab first")
    root.mkdir(parents=True, exist_ok=True)
    # Our own (empty) config file: the machine's /etc/docker/daemon.json must not leak in.
    (root / "daemon.json").write_text("{}\n")
    # Recorded before it starts, so that destroy finds it even if this process dies now.
    (root / RUN_FILE).write_text(json.dumps({"host": run.host, "namespace": run.namespace, "root": run.root}) + "\n")
    argv = [
        "nsenter", f"--net={os.path.join(netns.NETNS_DIR, run.namespace)}", "--",
        "dockerd",
        "--config-file", str(root / "daemon.json"),
        "--data-root", run.data_root,
        "--exec-root", run.exec_root,
        "--pidfile", run.pidfile,
        "-H", run.docker_host,
        # IPv6 networks need no daemon flag: IPv6 is enabled per network (EnableIPv6), on
        # 20.10 as on newer engines; --ipv6 only concerns the default bridge, which is off,
        # and ip6tables (experimental in 20.10, on by default from 27) stays off like iptables.
        "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
        # vfs works on any filesystem the lab directory is on (overlay2 does
        # not nest in overlayfs), and the lab's image is one 2 MB binary.
        "--storage-driver=vfs",
        "--cgroup-parent", run.cgroup_parent,
        "--log-level=warn",
        "--shutdown-timeout=2",
    ]
    log = open(run.log, "ab")
    try:
        # nsenter execs dockerd: the child's pid is dockerd's.
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    finally:
        log.close()


def _wait_ready(run: DockerRun, proc: subprocess.Popen, deadline: float) -> None:
    import docker

    while True:
        code = proc.poll()
        if code is not None:
            raise BackendError(f"lab dockerd for {run.host} ({run.namespace}) exited with status {code} while starting:\n{_log_tail(run)}")
        if os.path.exists(run.socket):
            try:
                with closing(docker.DockerClient(base_url=run.docker_host, timeout=2)) as client:
                    client.ping()
                return
            except docker.errors.DockerException:
                pass
        if time.monotonic() > deadline:
            raise BackendError(f"lab dockerd for {run.host} ({run.namespace}) did not answer on {run.socket} within {START_TIMEOUT:g} s:\n{_log_tail(run)}")
        time.sleep(0.05)


def _log_tail(run: DockerRun, lines: int = 15) -> str:
    try:
        text = Path(run.log).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(f"  {line}" for line in text[-lines:]) or "(empty log)"


def image_tar(busybox: str = BUSYBOX, tools: Sequence[str] = IMAGE_TOOLS) -> bytes:
    """A root filesystem with busybox and its applet links, as `docker import` takes it."""
    try:
        data = Path(busybox).read_bytes()
    except OSError as exc:
        raise BackendError(f"lab Docker image: cannot read {busybox} ({exc.strerror}); install Debian's busybox-static (apt-get install busybox-static)") from None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for tool in tools:
            info = tarfile.TarInfo(f"bin/{tool}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def make_image(docker_host: str, image: str = IMAGE, busybox: str = BUSYBOX) -> None:
    """`docker import` of the busybox root filesystem, through the Engine API."""
    import docker

    repo, _, tag = image.rpartition(":")
    if not repo:
        repo, tag = image, "latest"
    with closing(docker.DockerClient(base_url=docker_host, timeout=30)) as client:
        try:
            client.api.import_image_from_data(image_tar(busybox), repository=repo, tag=tag, changes=['CMD ["sh"]', "ENV PATH=/bin"])
            client.images.get(image)
        except docker.errors.DockerException as exc:
            raise BackendError(f"lab Docker at {docker_host}: cannot make image {image}: {exc}") from None


# --- stopping ----------------------------------------------------------------------


def stop(run: DockerRun) -> None:
    """Stop one lab dockerd and everything it started; leaves its directory."""
    _stop_root(Path(run.root))


def destroy(prefix: str, lab_dir: str | os.PathLike[str]) -> None:
    """Every lab dockerd of lab `prefix` under `lab_dir`, stopped and cleaned (teardown.destroy's hook).

    Safe to run twice, on a lab that never had Docker, or after a crash.
    """
    names = LabNames(prefix)
    top = Path(lab_dir) / DOCKER_DIR
    roots = sorted(p for p in top.iterdir() if p.is_dir() and names.owns(p.name)) if top.is_dir() else []
    # Force-remove containers through each API first, all daemons at once: a
    # container's `sleep` ignores SIGTERM, and dockerd would wait for it.
    for root in roots:
        _remove_containers(root)
    # SIGTERM lets dockerd stop its containerd and unmount; then what is left goes by SIGKILL.
    _signal_and_wait([pid for root in roots for pid in _dockerd_pids(root)], signal.SIGTERM, STOP_GRACE)
    leftover = _leftover_pids(names, top)
    _signal_and_wait(leftover, signal.SIGKILL, STOP_GRACE)
    for root in roots:
        _unmount_under(root)
    for ns_name in {r.name for r in roots} | _cgroup_namespaces(names):
        _remove_cgroups(f"ovsnet-lab-{ns_name}")


def daemons(prefix: str, lab_dir: str | os.PathLike[str]) -> Iterator[Daemon]:
    """The lab's running Docker processes (for teardown.status)."""
    names = LabNames(prefix)
    top = Path(lab_dir) / DOCKER_DIR
    for pid in _leftover_pids(names, top, containers=False):
        argv = procs.cmdline(pid)
        if argv:
            yield Daemon(pid, os.path.basename(argv[0]), _root_in(argv, top))


def _stop_root(root: Path) -> None:
    _remove_containers(root)
    _signal_and_wait(_dockerd_pids(root), signal.SIGTERM, STOP_GRACE)
    _signal_and_wait(_daemon_pids(root) + _cgroup_pids(f"ovsnet-lab-{root.name}"), signal.SIGKILL, STOP_GRACE)
    _unmount_under(root)
    _remove_cgroups(f"ovsnet-lab-{root.name}")


def _remove_containers(root: Path) -> None:
    sock = root / "docker.sock"
    if not sock.exists() or not _dockerd_pids(root):
        return
    try:
        import docker

        with closing(docker.DockerClient(base_url=f"unix://{sock}", timeout=10)) as client:
            for c in client.api.containers(all=True, quiet=True):
                try:
                    client.api.remove_container(c["Id"], force=True)
                except docker.errors.NotFound:
                    pass
    except Exception:
        pass  # dead or stuck daemon: the signals below take over


def _dockerd_pids(root: Path) -> list[int]:
    """The dockerd of this root: its pidfile, checked against its command line."""
    pids = set()
    try:
        pids.add(int((root / "docker.pid").read_text().strip()))
    except (OSError, ValueError):
        pass
    pids |= set(procs.pids_named(PROGRAMS[:1]))
    return sorted(p for p in pids if _names_root(p, root) and os.path.basename((procs.cmdline(p) or [""])[0]) == "dockerd")


def _daemon_pids(root: Path) -> list[int]:
    """dockerd, containerd and shims whose command line names this root."""
    return sorted(p for p in procs.pids_named(PROGRAMS) if _names_root(p, root))


def _names_root(pid: int, root: Path) -> bool:
    mark = f"{root}/"
    return any(arg.startswith(mark) or f"={mark}" in arg or f"unix://{mark}" in arg for arg in procs.cmdline(pid)[1:])


def _root_in(argv: Sequence[str], top: Path) -> str | None:
    mark = f"{top}/"
    for arg in argv[1:]:
        at = arg.find(mark)
        if at >= 0:
            return mark + arg[at + len(mark):].split("/", 1)[0]
    return None


def _leftover_pids(names: LabNames, top: Path, containers: bool = True) -> list[int]:
    """Docker daemons naming a directory of this lab, their descendants, and its containers' processes."""
    mark = f"{top}/{names.ns_prefix}"
    found = {p for p in procs.pids_named(PROGRAMS) if any(mark in arg for arg in procs.cmdline(p)[1:])}
    if containers:
        found |= set(procs.descendants(found))
        for ns_name in _cgroup_namespaces(names):
            found |= set(_cgroup_pids(f"ovsnet-lab-{ns_name}"))
    found.discard(os.getpid())
    return sorted(found)


def _signal_and_wait(pids: Sequence[int], sig: int, grace: float) -> None:
    for pid in procs.signal_and_wait(pids, sig, grace):
        _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own child (a dockerd this process started), so no zombie is left."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --- mounts and cgroups --------------------------------------------------------------


def _mounts() -> list[str]:
    out: list[str] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            out.append(fields[4].replace("\\040", " "))
    return out


def _unmount_under(root: Path) -> None:
    """Lazily unmount what dockerd left mounted under its root (netns, shm, the data root itself), deepest first."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    mark = str(root)
    MNT_DETACH = 2
    for _ in range(3):  # a mount may be stacked over another
        points = sorted((m for m in _mounts() if m == mark or m.startswith(mark + "/")), key=len, reverse=True)
        if not points:
            return
        for point in points:
            libc.umount2(point.encode(), MNT_DETACH)


def _cgroup_roots() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 controllers and v2)."""
    out: list[Path] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        pre, _, post = line.partition(" - ")
        if post.split()[:1] in (["cgroup"], ["cgroup2"]):
            out.append(Path(pre.split()[4]))
    return out


def _cgroup_namespaces(names: LabNames) -> set[str]:
    """Lab namespaces that have a container cgroup left (found by the cgroup's name alone)."""
    found = set()
    stem = f"ovsnet-lab-{names.ns_prefix}"
    for top in _cgroup_roots():
        try:
            found |= {p.name[len("ovsnet-lab-"):] for p in top.iterdir() if p.name.startswith(stem) and p.is_dir()}
        except OSError:
            continue
    return found


def _cgroup_pids(parent: str) -> list[int]:
    pids = set()
    for top in _cgroup_roots():
        base = top / parent
        if not base.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(base):
            if "cgroup.procs" in files:
                try:
                    pids |= {int(x) for x in Path(dirpath, "cgroup.procs").read_text().split()}
                except (OSError, ValueError):
                    pass
    return sorted(pids)


def _remove_cgroups(parent: str) -> None:
    """rmdir the containers' cgroups and their parent, deepest first (only empty ones go)."""
    for top in _cgroup_roots():
        base = top / parent
        if not base.is_dir():
            continue
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda w: len(w[0]), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
