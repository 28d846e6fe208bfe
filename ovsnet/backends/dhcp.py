"""ISC dhclient, driven for a handover: stop it on one interface, start it on another with the same lease.

The lease follows the host's address to the management port: the port has
the NIC's MAC (see ovsnet.kinds.ovs_port), the NIC's lease file is copied for
the port, so the new client asks for the same address (INIT-REBOOT) and the
server, seeing the same client, gives it. A stopped client (SIGTERM, as
`dhclient -x` does) keeps its lease: nothing is released.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from ovsnet.backends import processes
from ovsnet.errors import BackendError
from ovsnet.managers import under
from ovsnet.managers.dhclient import LEASES, PIDFILE, pid_of

STOP_WAIT = 10.0


class Dhclient:
    def __init__(self, root: str, netns: str | None):
        self.root = Path(root)
        self.netns = netns

    def pidfile(self, iface: str) -> Path:
        return under(self.root, PIDFILE.format(name=iface))

    def leases(self, iface: str) -> Path:
        return under(self.root, LEASES.format(name=iface))

    def start(self, iface: str) -> None:
        """dhclient on `iface`, in the background at once (it asks for the lease it has on file)."""
        self.leases(iface).parent.mkdir(parents=True, exist_ok=True)
        self.pidfile(iface).parent.mkdir(parents=True, exist_ok=True)
        processes.run(["dhclient", "-4", "-nw", "-pf", str(self.pidfile(iface)), "-lf", str(self.leases(iface)), iface], self.netns)
        deadline = time.monotonic() + STOP_WAIT
        while pid_of(self.root, iface, self.netns) is None:
            if time.monotonic() > deadline:
                raise BackendError(f"dhclient on {iface} did not start (no live pid in {self.pidfile(iface)})")
            time.sleep(0.05)

    def stop(self, iface: str) -> None:
        """Stop the client of `iface` without releasing its lease; nothing to do when none runs."""
        pid = pid_of(self.root, iface, self.netns)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        while os.path.exists(f"/proc/{pid}"):
            if time.monotonic() > deadline:
                raise BackendError(f"dhclient on {iface} (pid {pid}) did not stop within {STOP_WAIT:g} s")
            time.sleep(0.05)
        self.pidfile(iface).unlink(missing_ok=True)

    def copy_lease(self, src: str, dst: str) -> None:
        """The leases of `src` as leases of `dst` (the interface named in each lease rewritten)."""
        try:
            text = self.leases(src).read_text()
        except FileNotFoundError:
            return  # no lease on file: the new client asks afresh
        except OSError as exc:
            raise BackendError(f"cannot read {self.leases(src)}: {exc.strerror}") from None
        self.write_leases(dst, re.sub(rf'interface "{re.escape(src)}";', f'interface "{dst}";', text))

    def write_leases(self, iface: str, text: str | None) -> None:
        path = self.leases(iface)
        if text is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def lease_text(self, iface: str) -> str | None:
        try:
            return self.leases(iface).read_text()
        except FileNotFoundError:
            return None
