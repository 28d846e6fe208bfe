"""SSH from this machine into the VMs, as a user or a tool (Ansible) would reach a
host: a key made for the run, installed through the guest agent for root and
for the non-root user (`vagrant`, sudo without a password under Debian's
default sudoers, so `env_reset` applies), and the VM's management NIC
forwarded from 127.0.0.1:PORT (QEMU user networking, hostfwd) to its sshd."""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .log import HarnessError
from .machine import Vm

# The user Vagrant logs in as, in Vagrant's boxes and in build-box.sh's image.
SUDO_USER = "vagrant"


@dataclass(frozen=True)
class SshKey:
    private: Path
    public: str


def make_key(work: Path) -> SshKey:
    path = work / "id_ed25519"
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ovsnet-vm-test", "-f", str(path)], check=True)
    return SshKey(path, path.with_suffix(".pub").read_text().strip())


def install_key(vm: Vm, key: SshKey, users: tuple[str, ...]) -> None:
    """authorized_keys for each user, and sshd running."""
    script = "set -e\n"
    for user in users:
        q = shlex.quote(user)
        script += (f"home=$(getent passwd {q} | cut -d: -f6); [ -n \"$home\" ] || {{ echo 'no user {user}' >&2; exit 1; }}\n"
                   f"install -d -m 700 -o {q} -g $(id -g {q}) \"$home/.ssh\"\n"
                   f"grep -qxF {shlex.quote(key.public)} \"$home/.ssh/authorized_keys\" 2>/dev/null || "
                   f"echo {shlex.quote(key.public)} >> \"$home/.ssh/authorized_keys\"\n"
                   f"chown {q}: \"$home/.ssh/authorized_keys\"; chmod 600 \"$home/.ssh/authorized_keys\"\n")
    script += "systemctl is-active -q ssh || systemctl start ssh\n"
    vm.check(script, 60, f"installing the SSH key for {', '.join(users)}")


def ssh_argv(port: int, key: SshKey, user: str, command: str | None = None) -> list[str]:
    """The ssh command line to the VM behind 127.0.0.1:port. -F /dev/null: this
    machine's own ssh config plays no part; the host key is not recorded (every
    run's VMs are new)."""
    argv = ["ssh", "-F", "/dev/null", "-i", str(key.private), "-p", str(port),
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=20", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=6",
            f"{user}@127.0.0.1"]
    return argv + ([command] if command is not None else [])


def wait_ssh(port: int, key: SshKey, user: str, timeout: float) -> float:
    """Until `ssh ... true` succeeds; seconds it took."""
    t = time.monotonic()
    last = ""
    while time.monotonic() - t < timeout:
        p = subprocess.run(ssh_argv(port, key, user, "true"), capture_output=True, text=True, timeout=60)
        if p.returncode == 0:
            return time.monotonic() - t
        last = p.stderr.strip()
        time.sleep(2)
    raise HarnessError(f"ssh {user}@127.0.0.1 -p {port} did not work within {timeout:.0f} s: {last}")


def ssh_config(entries: dict[str, int], key: SshKey, user: str = "root") -> str:
    """An ssh_config naming each VM, for `ssh -F FILE node1` by hand or an Ansible
    inventory (ansible_ssh_common_args='-F FILE')."""
    out = []
    for name, port in entries.items():
        out += [f"Host {name}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}",
                f"  IdentityFile {key.private}", "  IdentitiesOnly yes", "  StrictHostKeyChecking no",
                "  UserKnownHostsFile /dev/null", "  LogLevel ERROR", ""]
    return "\n".join(out)
