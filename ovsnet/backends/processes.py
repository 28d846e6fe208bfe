"""Running a network manager's own program (dhclient, networkctl...) for a handover, inside the target's namespace.

Only a handover runs programs; `up` and `down` of a host without one start
none (tests/hardening/test_no_shell.py). Every program gets an argument
list, never a shell. For a namespace target the child enters the namespace
and, like `ip netns exec`, gets a mount namespace of its own where the
namespace's /etc/netns/NAME files are bound over /etc, so that a client
script writing /etc/resolv.conf writes the namespace's and never this
machine's.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from typing import Sequence

from ovsnet.backends.netns import CLONE_NEWNET, path_of
from ovsnet.errors import BackendError

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_SLAVE = 0x1000, 0x4000, 1 << 19
ETC_NETNS = "/etc/netns"
TIMEOUT = 60.0


def _enter(netns: str) -> None:  # pragma: no cover - runs in the child, between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path_of(netns), os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0 or libc.unshare(CLONE_NEWNS) != 0:
        os._exit(126)
    # Mounts made here stay here: nothing propagates back to this machine.
    libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None)
    etc = f"{ETC_NETNS}/{netns}"
    if os.path.isdir(etc):
        for name in os.listdir(etc):
            src, dst = f"{etc}/{name}", f"/etc/{name}"
            if os.path.exists(dst) and os.path.isfile(src) == os.path.isfile(dst):
                libc.mount(src.encode(), dst.encode(), None, MS_BIND, None)


def run(argv: Sequence[str], netns: str | None = None, timeout: float = TIMEOUT) -> str:
    """Run a program to completion (a daemon that forks away counts as done); its stdout. BackendError on failure."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              preexec_fn=(lambda: _enter(netns)) if netns else None)
    except FileNotFoundError:
        raise BackendError(f"{argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"{' '.join(argv[:3])} did not finish within {timeout:g} s") from None
    if proc.returncode != 0:
        raise BackendError(f"{' '.join(argv[:4])} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout
