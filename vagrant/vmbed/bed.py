"""The test bed: N VMs of one image, joined by cables, booted together, with the
working tree inside, SSH from this machine, provisioning, and teardown.

    from vmbed import Bed, Cable, find_image
    with Bed(find_image(None), work, hosts=("node2", "node1"),
             cables=(Cable("trunk", "node2", "node1"), Cable("trunk2", "node2", "node1"))) as bed:
        bed.boot()                                  # both VMs at once; the tree at /ovsnet
        bed.setup_ssh()                             # key for root and vagrant; sshd answers
        bed.provision({"node2": {}, "node1": {"OVSNET_PROVISION": "install"}})
        bed["node1"].check("ip -br addr")           # in the guest, through qemu-ga
        bed["node1"].reboot()                       # and back, the overlay kept
        bed.set_cable("trunk2", up=False)           # a pulled cable (QMP set_link, both ends)
        subprocess.run(bed.ssh_argv("node1", "vagrant", "sudo -n true"))

A cable's NIC is eth1 for the first cable, eth2 for the second... in every VM
it joins; eth0 is the management NIC (QEMU user networking, SSH forward).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from . import ssh
from .agent import Result
from .log import HarnessError, log
from .machine import Nic, Vm
from .tree import GUEST_SRC, MOUNT_SCRIPT, REPO, make_tree_disk

T = TypeVar("T")
IMAGE_FILES = ("root.img", "vmlinuz", "initrd.img", "cmdline")


@dataclass(frozen=True)
class Cable:
    """A point-to-point link between two VMs (a QEMU socket netdev pair over UDP on
    127.0.0.1, as libvirt's UDP tunnel): netdev id `name` in both."""

    name: str
    a: str
    b: str


def find_image(image_dir: str | Path | None) -> Path:
    """The guest image: image_dir, or build-box.sh's (built now unless cached)."""
    if image_dir is None:
        log("image: vagrant/build-box.sh (cached when unchanged)")
        p = subprocess.run([str(REPO / "vagrant" / "build-box.sh"), "--print-dir"], stdout=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise HarnessError("vagrant/build-box.sh failed")
        image_dir = p.stdout.strip().splitlines()[-1]
    image = Path(image_dir)
    missing = [f for f in IMAGE_FILES if not (image / f).exists()]
    if missing:
        raise HarnessError(f"no {', '.join(missing)} in {image}: run vagrant/build-box.sh")
    return image


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A UDP (or TCP) port on 127.0.0.1 that nothing uses now."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _index(name: str, position: int) -> int:
    m = re.search(r"(\d+)$", name)
    return int(m.group(1)) if m else position + 1


def _cable_mac(k: int, index: int) -> str:
    # Cable 0 keeps the MACs the Vagrantfile and earlier runs used (52:54:00:0a:00:1N);
    # 01 is the management NIC's byte, so cable k > 0 takes k + 1.
    return f"52:54:00:0a:{0 if k == 0 else k + 1:02x}:{0x10 + index:02x}"


class Bed:
    def __init__(self, image: Path, work: Path, hosts: Sequence[str], cables: Sequence[Cable] = (),
                 captures: Sequence[tuple[str, str]] = (), memory: int = 1024, ssh_forward: bool = True):
        self.image, self.work = image, work
        self.cables = {c.name: c for c in cables}
        self.timings: dict[str, float] = {}
        self.key: ssh.SshKey | None = None
        work.mkdir(parents=True, exist_ok=True)
        nics: dict[str, list[Nic]] = {h: [] for h in hosts}
        index = {h: _index(h, i) for i, h in enumerate(hosts)}
        for k, c in enumerate(cables):
            if c.a not in nics or c.b not in nics or c.a == c.b:
                raise HarnessError(f"cable {c.name}: {c.a} and {c.b} must be two of {list(hosts)}")
            pa = free_port()
            pb = free_port()
            while pb == pa:
                pb = free_port()
            nics[c.a].append(Nic(c.name, _cable_mac(k, index[c.a]), f"udp=127.0.0.1:{pb},localaddr=127.0.0.1:{pa}"))
            nics[c.b].append(Nic(c.name, _cable_mac(k, index[c.b]), f"udp=127.0.0.1:{pa},localaddr=127.0.0.1:{pb}"))
        caps: dict[str, list[str]] = {h: [] for h in hosts}
        for host, netdev in captures:
            caps[host].append(netdev)
        self.vms: dict[str, Vm] = {
            h: Vm(h, index[h], work, image, tuple(nics[h]), memory,
                  free_port(socket.SOCK_STREAM) if ssh_forward else None, tuple(caps[h]))
            for h in hosts
        }

    def __getitem__(self, name: str) -> Vm:
        return self.vms[name]

    def __enter__(self) -> Bed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def timed(self, what: str, seconds: float) -> float:
        self.timings[what] = seconds
        return seconds

    # --- boot ---------------------------------------------------------------------------------

    def boot(self, timeout: float = 400, tree: bool = True) -> float:
        """Start every VM, wait for each guest agent, mount the working tree at /ovsnet."""
        t = time.monotonic()
        tree_img = make_tree_disk(self.work) if tree else None
        for vm in self.vms.values():
            vm.start(tree_img)
            vm.check_alive()
            log(f"{vm.name}: QEMU pid {vm.proc.pid if vm.proc else '?'}, NICs "
                + ", ".join(f"{n.netdev} {n.mac}" for n in vm.nics) + (f", ssh 127.0.0.1:{vm.ssh_port}" if vm.ssh_port else ""))
        deadline = t + timeout
        for vm in self.vms.values():
            vm.wait_agent(max(1.0, deadline - time.monotonic()))
            log(f"{vm.name}: guest agent answers ({time.monotonic() - t:.1f} s after start)")
        if tree:
            self.each(lambda vm: vm.check(MOUNT_SCRIPT, 60, f"mounting the working tree at {GUEST_SRC}"))
        return self.timed("boot", time.monotonic() - t)

    def each(self, step: Callable[[Vm], T], names: Sequence[str] | None = None) -> dict[str, T]:
        """step(vm) for every VM (or those named) at once, each waiting on its own guest;
        when all are done, their results, or HarnessError naming every failure."""
        vms = [self.vms[n] for n in names] if names is not None else list(self.vms.values())
        results: dict[str, T] = {}
        errors: dict[str, BaseException] = {}

        def one(vm: Vm) -> None:
            try:
                results[vm.name] = step(vm)
            except BaseException as exc:  # re-raised below, in the caller's thread
                errors[vm.name] = exc

        threads = [threading.Thread(target=one, args=(vm,), daemon=True) for vm in vms]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise HarnessError("; ".join(f"{n}: {e}" for n, e in errors.items()))
        return results

    # --- links ---------------------------------------------------------------------------------

    def set_cable(self, name: str, up: bool) -> None:
        """Both ends of a cable down (no carrier on either NIC, no frame crosses) or up."""
        c = self.cables[name]
        for host in (c.a, c.b):
            self.vms[host].set_link(name, up)
        log(f"cable {name} ({c.a} - {c.b}): {'up' if up else 'down'}")

    # --- ssh -----------------------------------------------------------------------------------

    def setup_ssh(self, users: tuple[str, ...] = ("root", ssh.SUDO_USER), timeout: float = 180) -> float:
        """A key for this run, installed for users in every VM; returns when `ssh ... true`
        works as each user on each VM. Writes WORK/ssh_config (Host node1 ...)."""
        t = time.monotonic()
        self.key = ssh.make_key(self.work)
        key = self.key
        self.each(lambda vm: ssh.install_key(vm, key, users))
        for vm in self.vms.values():
            if vm.ssh_port is None:
                raise HarnessError(f"{vm.name} has no SSH forward (Bed(..., ssh_forward=True))")
            for user in users:
                took = ssh.wait_ssh(vm.ssh_port, key, user, max(5.0, timeout - (time.monotonic() - t)))
                log(f"{vm.name}: ssh -p {vm.ssh_port} {user}@127.0.0.1 works ({took:.1f} s)")
        (self.work / "ssh_config").write_text(ssh.ssh_config({n: vm.ssh_port for n, vm in self.vms.items() if vm.ssh_port}, key))
        return self.timed("ssh setup", time.monotonic() - t)

    def ssh_argv(self, host: str, user: str = "root", command: str | None = None) -> list[str]:
        """The ssh command line into host as user (after setup_ssh): a list for subprocess."""
        vm = self.vms[host]
        if self.key is None or vm.ssh_port is None:
            raise HarnessError("ssh_argv before setup_ssh")
        return ssh.ssh_argv(vm.ssh_port, self.key, user, command)

    # --- provisioning ------------------------------------------------------------------------------

    def provision(self, hosts: dict[str, dict[str, str]], timeout: float = 1200, check: bool = True) -> dict[str, Result]:
        """vagrant/provision.sh HOST on each named VM at once, with extra environment per
        host (e.g. OVSNET_PROVISION=install). One failing stops the wait for the others.
        Each host's Result (code 255 when the harness gave up on it); with check, a
        HarnessError carrying the outputs when one failed."""
        t = time.monotonic()
        failed = threading.Event()
        results: dict[str, Result] = {}

        def one(vm: Vm) -> None:
            env = {"OVSNET_SRC": GUEST_SRC, "OVSNET_GATEWAY_WAIT": "600", **hosts[vm.name]}
            if vm.nics:
                env.setdefault("OVSNET_TRUNK_MAC", vm.nics[0].mac)
            t1 = time.monotonic()
            try:
                results[vm.name] = vm.run(f"{GUEST_SRC}/vagrant/provision.sh {vm.name}", timeout, env, cancel=failed)
            except HarnessError as exc:
                results[vm.name] = Result(255, "", str(exc))
            self.timed(f"provision {vm.name}", time.monotonic() - t1)
            if not results[vm.name].ok:
                failed.set()

        self.each(one, list(hosts))
        self.timed("provision", time.monotonic() - t)
        bad = [n for n in hosts if not results[n].ok]
        if check and bad:
            detail = "\n".join(f"----- {n}: provision.sh, exit {results[n].code} -----\n{results[n].text[-4000:]}" for n in hosts)
            raise HarnessError(f"provisioning failed on {', '.join(bad)}:\n{detail}")
        return results

    # --- the end ----------------------------------------------------------------------------------

    def stop(self) -> None:
        for vm in self.vms.values():
            vm.stop()
        left = [vm.name for vm in self.vms.values() if vm.proc is not None and vm.proc.poll() is None]
        if left:
            raise HarnessError(f"QEMU still running for {left}")

    def remove_work(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)

    def timing_line(self) -> str:
        return ", ".join(f"{k} {v:.0f} s" for k, v in self.timings.items())
