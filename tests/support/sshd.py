"""A real OpenSSH server inside a test namespace, and a real client in another.

Everything lives in one private directory (config, host key, client key,
authorized_keys, pid file); the server is stopped by its pid. Debian's sshd
wants /run/sshd (its privilege-separation directory) to exist.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .commands import sh

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshServer:
    ns: str
    address: str
    key: Path  # the client's private key
    workdir: Path

    def argv(self, client_ns: str, *command: str) -> list[str]:
        """`ssh` from `client_ns` to root@address running `command` (one argv, no local shell)."""
        return ["ip", "netns", "exec", client_ns, "ssh", "-i", str(self.key), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
                "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=2", f"root@{self.address}", *command]


def missing() -> list[str]:
    return [t for t in (SSHD, "ssh", "ssh-keygen", "sudo") if shutil.which(t) is None]


@contextmanager
def sshd_in(ns: str, address: str, workdir: Path) -> Iterator[SshServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", exist_ok=True)
    host_key, key = workdir / "host_ed25519", workdir / "id_ed25519"
    for k in (host_key, key):
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k))
    (workdir / "authorized_keys").write_text((workdir / "id_ed25519.pub").read_text())
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress {address}\nHostKey {host_key}\nPidFile {workdir / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "AcceptEnv none\nPrintMotd no\n"
    )
    proc = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=open(workdir / "sshd.log", "w"))
    try:
        deadline = time.monotonic() + 20
        while not (workdir / "sshd.pid").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sshd did not start: {(workdir / 'sshd.log').read_text()}")
            time.sleep(0.05)
        yield SshServer(ns, address, key, workdir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
