"""A private Open vSwitch (ovsdb-server + ovs-vswitchd) inside one network namespace.

Lab and test infrastructure: each simulated host gets its own database and
switch daemon, with every file (db, socket, pidfiles, logs) in one run
directory, so nothing touches the machine's own /var/run/openvswitch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ovsnet import procs
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import BackendError

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
START_TIMEOUT = 10.0


class OvsInstance:
    def __init__(self) -> None:
        self.netns: str | None = None
        self.rundir: Path | None = None

    @classmethod
    def running(cls, netns_name: str, rundir: str | os.PathLike[str]) -> OvsInstance:
        """An instance started earlier (by another process), to stop it."""
        inst = cls()
        inst.netns, inst.rundir = netns_name, Path(rundir).resolve()
        return inst

    @property
    def remote(self) -> str:
        return f"unix:{self._dir() / 'db.sock'}"

    def start(self, netns_name: str, rundir: str | os.PathLike[str]) -> None:
        """Create a fresh database and run both daemons in `netns_name`."""
        self.netns = netns_name
        self.rundir = Path(rundir).resolve()
        self.rundir.mkdir(parents=True, exist_ok=True)
        try:
            self._run(["ovsdb-tool", "create", str(self.rundir / "conf.db"), SCHEMA], netns=False)
            self._daemon(
                "ovsdb-server",
                f"--remote=punix:{self.rundir / 'db.sock'}",
                str(self.rundir / "conf.db"),
            )
            self._wait_for(self.rundir / "db.sock")
            with Ovsdb(self.remote, timeout=START_TIMEOUT) as db:
                db.ensure_root()
            self.start_vswitchd()
        except BaseException:
            self.stop()
            raise

    def start_vswitchd(self) -> None:
        self._daemon("ovs-vswitchd", self.remote)

    def stop_vswitchd(self) -> None:
        self._kill("ovs-vswitchd")

    def stop(self) -> None:
        """Stop both daemons (switch first, so it does not log a lost database)."""
        if self.rundir is None:
            return
        self._kill("ovs-vswitchd")
        self._kill("ovsdb-server")

    # --- helpers -----------------------------------------------------------

    def _dir(self) -> Path:
        if self.rundir is None:
            raise RuntimeError("OvsInstance not started")
        return self.rundir

    def _env(self) -> dict[str, str]:
        # Without OVS_RUNDIR the daemons put control sockets in /var/run/openvswitch.
        return {**os.environ, "OVS_RUNDIR": str(self._dir())}

    def _run(self, argv: list[str], netns: bool = True) -> None:
        if netns:
            assert self.netns is not None
            argv = ["ip", "netns", "exec", self.netns, *argv]
        proc = subprocess.run(
            argv, env=self._env(), capture_output=True, text=True, timeout=START_TIMEOUT * 3
        )
        if proc.returncode != 0:
            raise BackendError(
                f"{' '.join(argv)} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()}"
            )

    def _daemon(self, program: str, *args: str) -> None:
        rundir = self._dir()
        # --detach returns once the daemon is ready (ovsdb-server: listening).
        self._run(
            [
                program,
                "--detach",
                "--no-chdir",
                f"--pidfile={rundir / (program + '.pid')}",
                f"--log-file={rundir / (program + '.log')}",
                *args,
            ]
        )

    def _wait_for(self, path: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not path.exists():
            if time.monotonic() > deadline:
                raise BackendError(f"{path} did not appear within {START_TIMEOUT:g} s")
            time.sleep(0.02)

    def _pid(self, program: str) -> int | None:
        """The daemon's pid from its pidfile, only if that process is still ours.

        A stale pidfile's pid may belong to an unrelated process by now; the
        command line must name this instance's run directory.
        """
        pidfile = self._dir() / f"{program}.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, ValueError):
            return None
        if not cmdline or os.path.basename(cmdline[0].decode()) != program:
            return None
        if not any(str(self._dir()).encode() in arg for arg in cmdline):
            return None
        return pid

    def _kill(self, program: str) -> None:
        pid = self._pid(program)
        if pid is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            if _wait_gone(pid, STOP_GRACE):
                break
        else:
            raise BackendError(f"{program} (pid {pid}) did not exit after SIGKILL")
        # A killed daemon cannot remove its own pidfile.
        (self._dir() / f"{program}.pid").unlink(missing_ok=True)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while procs.alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
