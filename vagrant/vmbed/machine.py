"""One QEMU virtual machine of the test bed: its command line, its guest agent
(commands in the guest), its QMP socket (links down and up), a reboot that
waits for the guest to come back, and stopping it.

The VM boots the image of build-box.sh with -snapshot: its writes go to a
temporary overlay that lives as long as the QEMU process, so they survive a
guest reboot (QEMU resets the machine and keeps running) and vanish when QEMU
stops. The image itself is never written.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .agent import Agent, Result
from .log import HarnessError, log
from .qmp import Qmp


@dataclass(frozen=True)
class Nic:
    """A guest NIC on a QEMU socket netdev: one end of a cable to another VM."""

    netdev: str  # the -netdev id: also the name QMP set_link takes
    mac: str
    socket: str  # "udp=127.0.0.1:PEER,localaddr=127.0.0.1:MINE"


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL QEMU if the harness dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Vm:
    name: str
    index: int  # node1 -> 1: the last byte of its MACs is 0x10 + index
    work: Path
    image: Path
    nics: tuple[Nic, ...] = ()  # eth1, eth2, ... in this order (eth0 is the management NIC)
    memory: int = 1024
    ssh_port: int | None = None  # 127.0.0.1:ssh_port on this machine -> the guest's port 22 (eth0)
    captures: tuple[str, ...] = ()  # netdev ids whose frames QEMU writes to a pcap file
    proc: subprocess.Popen | None = field(default=None, init=False)
    agent: Agent = field(init=False)
    qmp: Qmp = field(init=False)

    def __post_init__(self) -> None:
        self.agent = Agent(str(self.work / f"{self.name}.qga"), self.name)
        self.qmp = Qmp(str(self.work / f"{self.name}.qmp"), self.name)

    # --- what it is -------------------------------------------------------------------------

    @property
    def console(self) -> Path:
        return self.work / f"{self.name}.console.log"

    @property
    def mgmt_mac(self) -> str:
        return f"52:54:00:0a:01:{0x10 + self.index:02x}"

    def nic(self, netdev: str) -> Nic:
        for n in self.nics:
            if n.netdev == netdev:
                return n
        raise HarnessError(f"{self.name} has no NIC on netdev {netdev!r}; it has {[n.netdev for n in self.nics]}")

    def capture_path(self, netdev: str) -> Path:
        return self.work / f"{self.name}.{netdev}.pcap"

    def argv(self, tree_img: Path | None) -> list[str]:
        cmdline = (self.image / "cmdline").read_text().strip()
        a = [
            "qemu-system-x86_64", "-name", self.name,
            "-accel", os.environ.get("OVSNET_VM_ACCEL", "tcg"),
            "-m", str(self.memory), "-smp", "1",
            # No -no-reboot: a guest reboot resets the machine inside the same QEMU
            # process, so the -snapshot overlay (the guest's writes) survives it.
            "-nodefaults", "-display", "none", "-vga", "none",
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
            "-append", cmdline,
            "-snapshot",
            "-drive", f"file={self.image / 'root.img'},format=raw,if=virtio",
        ]
        if tree_img is not None:
            a += ["-drive", f"file={tree_img},format=raw,if=virtio,readonly=on"]
        # eth0: the management NIC (Vagrant's SSH NIC); restrict=on: nothing leaves
        # the VM through it, but the forward to sshd still comes in.
        fwd = f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22" if self.ssh_port else ""
        a += ["-netdev", f"user,id=mgmt,restrict=on{fwd}",
              "-device", f"virtio-net-pci,netdev=mgmt,mac={self.mgmt_mac}"]
        # eth1...: socket links to the other VMs. UDP, not listen/connect: QEMU 7.2's
        # connect side never retries, so a VM that starts before its peer listens
        # would have a dead link; datagrams need no ordering.
        for n in self.nics:
            a += ["-netdev", f"socket,id={n.netdev},{n.socket}",
                  "-device", f"virtio-net-pci,netdev={n.netdev},mac={n.mac}"]
        for netdev in self.captures:
            a += ["-object", f"filter-dump,id=cap-{netdev},netdev={netdev},file={self.capture_path(netdev)}"]
        a += [
            "-chardev", f"socket,id=qga,path={self.work / (self.name + '.qga')},server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
            "-qmp", f"unix:{self.work / (self.name + '.qmp')},server=on,wait=off",
            "-serial", f"file:{self.console}",
            "-pidfile", str(self.work / f"{self.name}.pid"),
        ]
        return a

    # --- life cycle ---------------------------------------------------------------------------

    def start(self, tree_img: Path | None) -> None:
        argv = self.argv(tree_img)
        (self.work / f"{self.name}.argv").write_text(" ".join(argv) + "\n")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.work / f"{self.name}.qemu.log", "w"),
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise HarnessError(f"{self.name}: QEMU exited with {self.proc.returncode}: "
                               f"{(self.work / (self.name + '.qemu.log')).read_text()[-2000:]}")

    def wait_agent(self, timeout: float) -> None:
        self.check_alive()
        self.agent.wait_ready(timeout)

    def stop(self) -> None:
        self.agent.close()
        self.qmp.close()
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    # --- in the guest ---------------------------------------------------------------------------

    def run(self, script: str, timeout: float = 120, env: dict[str, str] | None = None,
            cancel: threading.Event | None = None) -> Result:
        """A bash script in the guest as root: its Result, whatever its exit code."""
        self.check_alive()
        return self.agent.run(script, timeout, env, cancel)

    def check(self, script: str, timeout: float = 120, what: str = "", env: dict[str, str] | None = None) -> str:
        """A bash script in the guest that must succeed: its stdout, or HarnessError."""
        r = self.run(script, timeout, env)
        if not r.ok:
            raise HarnessError(f"{self.name}: {what or script[:80]} failed (exit {r.code}):\n{r.out[-3000:]}\n{r.err[-3000:]}")
        return r.out

    def nic_name(self, netdev: str) -> str:
        """The guest's name for the NIC on netdev (found by its MAC)."""
        mac = self.nic(netdev).mac
        return self.check(f"basename $(dirname $(grep -l {mac} /sys/class/net/*/address))", 30, f"the NIC with MAC {mac}").strip()

    def boot_id(self, timeout: float = 30) -> str:
        return self.check("cat /proc/sys/kernel/random/boot_id", timeout, "boot_id").strip()

    def reboot(self, timeout: float = 600) -> float:
        """Reboot the guest cleanly (systemctl reboot) and wait until its agent answers
        from the new boot (a new boot_id); seconds it took."""
        old = self.boot_id()
        t = time.monotonic()
        self.agent.spawn(["/bin/systemctl", "reboot"])
        deadline = t + timeout
        while True:
            self.check_alive()
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError(f"{self.name}: not back from the reboot within {timeout:.0f} s:\n{self.console_tail()}")
            try:
                # While the old system shuts down, its agent may still answer: the
                # boot_id tells the two apart.
                self.agent.wait_ready(min(30, left))
                if self.boot_id(10) != old:
                    took = time.monotonic() - t
                    log(f"{self.name}: rebooted, guest agent back after {took:.1f} s")
                    return took
            except HarnessError:
                pass
            time.sleep(1)

    # --- from outside ---------------------------------------------------------------------------

    def set_link(self, netdev: str, up: bool) -> None:
        """This VM's end of a cable down or up (QMP set_link)."""
        self.nic(netdev)
        self.qmp.set_link(netdev, up)

    def console_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"
