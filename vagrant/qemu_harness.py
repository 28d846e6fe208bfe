#!/usr/bin/env python3
"""The two-VM trunk test on plain QEMU (software emulation is enough).

Boots node1 and node2 from the image of build-box.sh, each with `-snapshot`
(the image is never written), a management NIC (QEMU user networking,
restricted: nothing leaves the VM) and a second NIC joined to the other VM's by
a QEMU socket link (UDP on 127.0.0.1, like libvirt's UDP tunnel): the trunk.
The working tree goes in on a small ext4 disk
made for each run with `mke2fs -d`. Commands run in the guests through the
QEMU guest agent (virtio-serial; qemu-ga's guest-exec), each with a timeout.
Each VM is provisioned with vagrant/provision.sh, the script Vagrant runs, and
the test then checks:

  1. the kernel datapath: `ovs-dpctl show` lists system@ovs-system, and the
     bridge's datapath_type is system;
  2. `ovsnet up --allow-uplink-move` succeeded on each VM: the address and
     default route are on the management port, the trunk NIC is a bridge port
     with no address, `ovsnet status` says in sync, and the management NIC is
     not in OVS;
  3. the ping matrix (vagrant/testbed.py): same-VLAN pings across the trunk
     succeed, cross-VLAN ones fail unless the router joins both VLANs, and
     on-link pings across VLANs never get an answer;
  4. the capture of the trunk (QEMU filter-dump, read with `tcpdump -e`):
     802.1Q frames of VLANs 100 and 200 carrying their own subnets, VLAN 10
     untagged, and no other tag.

Every QEMU process is killed at the end, pass or fail (and with the harness,
if it is killed: PR_SET_PDEATHSIG).

Usage: qemu_harness.py [--image-dir DIR] [--keep] [--work DIR] [--timeout S] [--sabotage HOST:CMD]
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOPOLOGY_REL = "vagrant/topology.toml"
GUEST_SRC = "/ovsnet"
sys.path.insert(0, str(HERE))
import testbed  # noqa: E402


def log(msg: str) -> None:
    print(f"[harness +{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


T0 = time.monotonic()


class HarnessError(Exception):
    pass


# --- the guest agent -----------------------------------------------------------------------


class Agent:
    """A client for qemu-ga on a unix socket (QEMU's chardev for the virtio port)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name
        self.sock: socket.socket | None = None
        self.buf = b""
        self.lock = threading.Lock()

    def _connect(self, deadline: float) -> None:
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(self.path))
                self.sock = s
                return
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.name}: cannot connect to the guest agent socket {self.path}")
                time.sleep(0.2)

    def _send(self, obj: dict) -> None:
        assert self.sock is not None
        self.sock.sendall(json.dumps(obj).encode() + b"\n")

    def _read_json(self, deadline: float) -> dict:
        """The next JSON object from the agent (one per line)."""
        assert self.sock is not None
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1 :]
                line = line.replace(b"\xff", b"").strip()
                if not line:
                    continue
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise HarnessError(f"{self.name}: the guest agent closed the connection")
            self.buf += chunk

    def wait_ready(self, timeout: float) -> None:
        """Sync with guest-sync-delimited until the agent answers (it starts with the guest)."""
        deadline = time.monotonic() + timeout
        self._connect(deadline)
        n = int(time.time()) % 100000 * 10
        while True:
            n += 1
            self._send({"execute": "guest-sync-delimited", "arguments": {"id": n}})
            retry = time.monotonic() + 3
            try:
                while True:
                    msg = self._read_json(min(retry, deadline))
                    if msg.get("return") == n:
                        self.buf = b""
                        return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"{self.name}: the guest agent did not answer within {timeout:.0f} s")

    def call(self, execute: str, arguments: dict | None = None, timeout: float = 30) -> object:
        with self.lock:
            msg = {"execute": execute}
            if arguments is not None:
                msg["arguments"] = arguments
            self._send(msg)
            try:
                reply = self._read_json(time.monotonic() + timeout)
            except TimeoutError:
                raise HarnessError(f"{self.name}: no answer to {execute} within {timeout:.0f} s") from None
        if "error" in reply:
            raise HarnessError(f"{self.name}: {execute}: {reply['error'].get('desc', reply['error'])}")
        return reply.get("return")

    def run(self, script: str, timeout: float = 120, env: dict[str, str] | None = None,
            cancel: threading.Event | None = None) -> tuple[int, str, str]:
        """Run a bash script in the guest; (exit code, stdout, stderr). The guest kills it at
        timeout; setting cancel makes the harness stop waiting for it."""
        envs = [f"{k}={v}" for k, v in {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}.items()]
        pid = self.call("guest-exec", {
            "path": "/usr/bin/timeout",
            "arg": ["-k", "5", str(int(timeout)), "/bin/bash", "-c", script],
            "env": envs,
            "capture-output": True,
        })["pid"]  # type: ignore[index]
        deadline = time.monotonic() + timeout + 20
        delay = 0.2
        while True:
            st = self.call("guest-exec-status", {"pid": pid})
            if st.get("exited"):  # type: ignore[union-attr]
                out = base64.b64decode(st.get("out-data", "")).decode(errors="replace")  # type: ignore[union-attr]
                err = base64.b64decode(st.get("err-data", "")).decode(errors="replace")  # type: ignore[union-attr]
                code = st.get("exitcode", -st.get("signal", 0) or 255)  # type: ignore[union-attr]
                if code == 124:
                    err += f"\n(timed out after {timeout:.0f} s in the guest)"
                return code, out, err
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name}: command did not finish within {timeout:.0f} s: {script[:80]}")
            if cancel is not None and cancel.is_set():
                raise HarnessError(f"{self.name}: stopped waiting (another VM failed): {script[:80]}")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# --- the VMs ---------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL QEMU if the harness dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Vm:
    name: str
    index: int
    work: Path
    image: Path
    trunk: str  # the socket netdev's address options: "udp=127.0.0.1:PEER,localaddr=127.0.0.1:MINE"
    capture: Path | None = None
    memory: int = 1024
    ssh_port: int | None = None  # forward 127.0.0.1:ssh_port to the guest's sshd (eth0)
    proc: subprocess.Popen | None = None
    agent: Agent | None = None
    console: Path = field(init=False)

    def __post_init__(self) -> None:
        self.console = self.work / f"{self.name}.console.log"

    @property
    def trunk_mac(self) -> str:
        return f"52:54:00:0a:00:{0x10 + self.index:02x}"

    def argv(self, tree_img: Path) -> list[str]:
        cmdline = (self.image / "cmdline").read_text().strip()
        a = [
            "qemu-system-x86_64", "-name", self.name,
            "-accel", os.environ.get("OVSNET_VM_ACCEL", "tcg"),
            "-m", str(self.memory), "-smp", "1",
            "-nodefaults", "-display", "none", "-vga", "none", "-no-reboot",
            "-kernel", str(self.image / "vmlinuz"), "-initrd", str(self.image / "initrd.img"),
            "-append", cmdline,
            "-snapshot",
            "-drive", f"file={self.image / 'root.img'},format=raw,if=virtio",
            "-drive", f"file={tree_img},format=raw,if=virtio,readonly=on",
            # eth0: the management NIC (Vagrant's SSH NIC); restrict=on: nothing leaves.
            "-netdev", "user,id=mgmt,restrict=on" + (f",hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22" if self.ssh_port else ""),
            "-device", f"virtio-net-pci,netdev=mgmt,mac=52:54:00:0a:01:{0x10 + self.index:02x}",
            # eth1: the trunk, a socket link to the other VM. UDP, not listen/connect:
            # QEMU 7.2's connect side never retries, so a VM that starts before its
            # peer listens would have a dead link; datagrams need no ordering.
            "-netdev", f"socket,id=trunk,{self.trunk}",
            "-device", f"virtio-net-pci,netdev=trunk,mac={self.trunk_mac}",
            "-chardev", f"socket,id=qga,path={self.work / (self.name + '.qga')},server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=qga,name=org.qemu.guest_agent.0",
            "-serial", f"file:{self.console}",
            "-pidfile", str(self.work / f"{self.name}.pid"),
        ]
        if self.capture is not None:
            a += ["-object", f"filter-dump,id=cap,netdev=trunk,file={self.capture}"]
        return a

    def start(self, tree_img: Path) -> None:
        argv = self.argv(tree_img)
        (self.work / f"{self.name}.argv").write_text(" ".join(argv) + "\n")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.work / f"{self.name}.qemu.log", "w"),
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        self.agent = Agent(self.work / f"{self.name}.qga", self.name)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise HarnessError(f"{self.name}: QEMU exited with {self.proc.returncode}: {(self.work / (self.name + '.qemu.log')).read_text()[-2000:]}")

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.close()
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    def console_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no console log)"


# --- the test ------------------------------------------------------------------------------------


def free_port() -> int:
    """A UDP port on 127.0.0.1 that nothing uses now."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def link_local(mac: str) -> str:
    """The IPv6 link-local address the kernel derives from a MAC (EUI-64)."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    eui = b[:3] + [0xFF, 0xFE] + b[3:]
    return "fe80::" + ":".join(f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2))


def tree_files() -> list[str]:
    """The working tree as git sees it: tracked and untracked files, not ignored ones."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True, check=True).stdout
        return [f for f in out.decode().split("\0") if f and (REPO / f).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        skip = {".git", ".venv", "__pycache__", ".hypothesis", ".pytest_cache", ".vagrant", "build", "dist"}
        files = []
        for root, dirs, names in os.walk(REPO):
            dirs[:] = [d for d in dirs if d not in skip and not d.endswith(".egg-info")]
            files += [os.path.relpath(os.path.join(root, n), REPO) for n in names]
        return files


def make_tree_disk(work: Path) -> Path:
    stage = work / "tree"
    for rel in tree_files():
        dst = stage / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst)
    size = sum(f.stat().st_size for f in stage.rglob("*") if f.is_file())
    mb = max(32, size * 3 // 2**20 + 16)
    img = work / "tree.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-L", "ovsnet-src", "-d", str(stage), str(img), f"{mb}M"], check=True)
    shutil.rmtree(stage)
    return img


@dataclass
class Checks:
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        log(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail and not ok else ""))
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(ok for _, ok, _ in self.results)


def on_each(vms: list[Vm], step) -> None:
    """step(vm) for every VM at once (each waits on its own guest), returning when all are done."""
    threads = [threading.Thread(target=step, args=(vm,), daemon=True) for vm in vms]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


def run_checked(vm: Vm, script: str, timeout: float, what: str, env: dict[str, str] | None = None) -> str:
    assert vm.agent is not None
    vm.check_alive()
    code, out, err = vm.agent.run(script, timeout, env)
    if code != 0:
        raise HarnessError(f"{vm.name}: {what} failed (exit {code}):\n{out[-3000:]}\n{err[-3000:]}")
    return out


_IPV4 = re.compile(r"ethertype IPv4 \(0x0800\),(?: length \d+:)? (\d+\.\d+\.\d+\.\d+)(?:\.\d+)? > (\d+\.\d+\.\d+\.\d+)(?:\.\d+)?: (.*)")
_ARP_REQ = re.compile(r"Request who-has (\S+) tell (\S+?),")
_ARP_REP = re.compile(r"Reply (\S+) is-at")


def parse_capture(pcap: Path) -> dict:
    """The trunk's frames per VLAN tag (None: untagged), from `tcpdump -e -nn`.

    For each frame: the IPv4 source and destination, or the ARP sender (the
    address a frame speaks for on its segment)."""
    p = subprocess.run(["tcpdump", "-e", "-nn", "-r", str(pcap)], capture_output=True, text=True)
    per_tag: dict[object, dict] = {}
    for line in p.stdout.splitlines():
        m = re.search(r"vlan (\d+), p \d+", line)
        tag = int(m.group(1)) if m else None
        t = per_tag.setdefault(tag, {"frames": 0, "ipv4": [], "arp_senders": [], "sample": line})
        t["frames"] += 1
        if (m := _IPV4.search(line)):
            t["ipv4"].append((m.group(1), m.group(2), m.group(3)))
        elif (m := _ARP_REQ.search(line)):
            t["arp_senders"].append(m.group(2))
        elif (m := _ARP_REP.search(line)):
            t["arp_senders"].append(m.group(1))
    return {"tags": per_tag, "stderr": p.stderr, "rc": p.returncode}


def check_capture(topo: testbed.Topo, cap: dict, checks: Checks) -> None:
    """Each VLAN of the trunk has its own tag (the native one none), and carries its own subnet.

    - no tag outside the trunk's VLANs;
    - per VLAN, an ICMP echo between two of its own addresses (same-VLAN
      traffic crossed the link with the right tag);
    - every IPv4 frame has its source or its destination in the VLAN's subnet
      (routed traffic has one end elsewhere, never both), and every ARP sender
      is in the subnet (the on-link probes ask for foreign addresses, but speak
      for their own).
    """
    import ipaddress

    h = next(iter(topo.hosts.values()))
    up = h["uplinks"][0]
    native = topo.vlan_name(up["native_vlan"]) if "native_vlan" in up else None
    trunk = {topo.vlan_name(ref): topo.vlans[topo.vlan_name(ref)] for ref in up["vlans"]}
    expected = {None if name == native else v["id"]: name for name, v in trunk.items()}
    tags = cap["tags"]
    for tag in sorted(tags, key=lambda t: -1 if t is None else t):
        t = tags[tag]
        echo = sum(1 for *_, rest in t["ipv4"] if "ICMP echo" in rest)
        log(f"  capture: {'untagged' if tag is None else f'VLAN {tag}'}: {t['frames']} frames, {len(t['ipv4'])} IPv4 ({echo} ICMP echo), {len(t['arp_senders'])} ARP")
    unknown = [t for t in tags if t not in expected]
    checks.add("trunk: no 802.1Q tag other than the topology's", not unknown, f"unexpected tags {unknown}")
    for tag, vname in expected.items():
        label = f"untagged (native VLAN {vname})" if tag is None else f"802.1Q tag {tag} ({vname})"
        t = tags.get(tag, {"frames": 0, "ipv4": [], "arp_senders": []})
        subnet = trunk[vname].get("subnet")
        if not subnet:
            checks.add(f"trunk: {label} frames seen", t["frames"] > 0, "none")
            continue
        net = ipaddress.ip_network(subnet)
        inside = lambda a: ipaddress.ip_address(a) in net  # noqa: E731
        own_echo = [(s, d) for s, d, rest in t["ipv4"] if "ICMP echo request" in rest and inside(s) and inside(d)]
        checks.add(f"trunk: {label}: ICMP echo within {subnet}", bool(own_echo), f"{t['frames']} frames, no echo request between two {subnet} addresses")
        stray = sorted({f"{s} > {d}" for s, d, _ in t["ipv4"] if not inside(s) and not inside(d)} | {f"ARP from {a}" for a in t["arp_senders"] if not inside(a)})
        checks.add(f"trunk: {label}: nothing from another subnet", not stray, f"foreign frames: {stray[:6]}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--image-dir", help="image from build-box.sh (default: build or reuse it)")
    ap.add_argument("--work", help="work directory (default: a temporary one, removed unless --keep)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs, capture)")
    ap.add_argument("--timeout", type=float, default=1500, help="overall limit in seconds")
    ap.add_argument("--memory", type=int, default=1024, help="MiB per VM")
    ap.add_argument("--sabotage", action="append", default=[], metavar="HOST:COMMAND",
                    help="run COMMAND on HOST after provisioning, to see the checks catch a broken network "
                         "(e.g. 'node1:ovs-vsctl set port ovs-br-web tag=200'); the run must then fail")
    args = ap.parse_args(argv)

    if args.image_dir:
        image = Path(args.image_dir)
    else:
        log("image: vagrant/build-box.sh (cached when unchanged)")
        out = subprocess.run([str(HERE / "build-box.sh"), "--print-dir"], stdout=subprocess.PIPE, text=True)
        if out.returncode != 0:
            log("build-box.sh failed")
            return 1
        image = Path(out.stdout.strip().splitlines()[-1])
    for f in ("root.img", "vmlinuz", "initrd.img", "cmdline"):
        if not (image / f).exists():
            log(f"no {f} in {image}: run vagrant/build-box.sh")
            return 1

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="ovsnet-vm."))
    work.mkdir(parents=True, exist_ok=True)
    topo = testbed.Topo(str(REPO / TOPOLOGY_REL))
    names = list(topo.hosts)
    if len(names) != 2:
        log(f"{TOPOLOGY_REL} must have two hosts, has {names}")
        return 1
    # The router's host first: the other waits for its router anyway.
    rhost = topo.router_host()
    if rhost in names:
        names.remove(rhost)
        names.insert(0, rhost)
    port_a, port_b = free_port(), free_port()
    while port_b == port_a:
        port_b = free_port()
    capture = work / "trunk.pcap"
    vms = [
        Vm(names[0], 2 if names[0] == "node2" else 1, work, image, f"udp=127.0.0.1:{port_b},localaddr=127.0.0.1:{port_a}", memory=args.memory),
        Vm(names[1], 2 if names[1] == "node2" else 1, work, image, f"udp=127.0.0.1:{port_a},localaddr=127.0.0.1:{port_b}", capture, memory=args.memory),
    ]
    checks = Checks()
    deadline = time.monotonic() + args.timeout

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    timings: dict[str, float] = {}
    try:
        t = time.monotonic()
        tree = make_tree_disk(work)
        log(f"working tree on {tree.name} ({tree.stat().st_size >> 20} MiB, label ovsnet-src)")
        for vm in vms:
            vm.start(tree)
            vm.check_alive()
            log(f"{vm.name}: QEMU pid {vm.proc.pid} (TCG), trunk {vm.trunk}, console {vm.console}")
        for vm in vms:
            vm.agent.wait_ready(min(300, deadline - time.monotonic()))
            log(f"{vm.name}: guest agent answers")
        timings["boot"] = time.monotonic() - t

        # Share the tree, then provision both at once (the second waits for the router).
        for vm in vms:
            run_checked(vm, f"mkdir -p {GUEST_SRC} && mount -o ro LABEL=ovsnet-src {GUEST_SRC}", 60, "mounting the working tree")
            # A Vagrant box's management NIC has the DHCP default route (metric 0,
            # dhclient); restricted user networking gives none, so set it as a box has it.
            # DHCP on the management NIC may still be running: wait for its address first.
            run_checked(vm, "for i in $(seq 90); do ip -4 -o addr show dev eth0 | grep -q inet && break; sleep 1; done; "
                            "ip route replace default via 10.0.2.2 dev eth0 metric 0", 120, "the management NIC's default route")
        # The cable first: both trunk NICs up, and a link-local ping each way
        # (IPv6, nothing configured yet), so a dead link fails here, not in a timeout.
        for vm in vms:
            run_checked(vm, f"ip link set dev $(basename $(dirname $(grep -l {vm.trunk_mac} /sys/class/net/*/address))) up", 30, "trunk NIC up")
        for vm, peer in ((vms[1], vms[0]), (vms[0], vms[1])):
            code, out, err = vm.agent.run(f"dev=$(basename $(dirname $(grep -l {vm.trunk_mac} /sys/class/net/*/address))); "
                                          f"ping -6 -n -q -c 1 -w 15 {link_local(peer.trunk_mac)}%$dev", 60)
            if not checks.add(f"trunk link: {vm.name} -> {peer.name} (IPv6 link-local, before provisioning)", code == 0, (out + err).strip()[-300:]):
                raise HarnessError("the trunk link between the VMs passes no frames")

        t = time.monotonic()
        errors: dict[str, str] = {}
        outputs: dict[str, str] = {}

        failed = threading.Event()  # one VM's provisioning failed: stop waiting for the other

        def provision(vm: Vm) -> None:
            try:
                assert vm.agent is not None
                code, out, err = vm.agent.run(f"{GUEST_SRC}/vagrant/provision.sh {vm.name}", min(1200, deadline - time.monotonic()),
                                              {"OVSNET_SRC": GUEST_SRC, "OVSNET_TRUNK_MAC": vm.trunk_mac, "OVSNET_GATEWAY_WAIT": "600"},
                                              cancel=failed)
                outputs[vm.name] = out + err
                if code != 0:
                    errors[vm.name] = f"exit {code}"
            except Exception as exc:  # reported below
                errors[vm.name] = str(exc)
            if vm.name in errors:
                failed.set()

        on_each(vms, provision)
        timings["provision"] = time.monotonic() - t
        for vm in vms:
            print(f"----- {vm.name}: provision.sh -----\n{outputs.get(vm.name, '').rstrip()}\n-----", flush=True)
            checks.add(f"{vm.name}: provision.sh (ovsnet up --allow-uplink-move)", vm.name not in errors, errors.get(vm.name, ""))
        if errors:
            raise HarnessError("provisioning failed")

        for item in args.sabotage:
            host, _, cmd = item.partition(":")
            vm = next((v for v in vms if v.name == host), None)
            if vm is None or not cmd:
                raise HarnessError(f"--sabotage {item!r}: give HOST:COMMAND with HOST one of {names}")
            log(f"SABOTAGE on {host}: {cmd}")
            run_checked(vm, cmd, 60, "sabotage")

        # 1 and 2: kernel datapath and the state ovsnet left.
        for vm in vms:
            facts = dict(line.split("=", 1) for line in run_checked(vm, f"python3 {GUEST_SRC}/vagrant/testbed.py facts {GUEST_SRC}/{TOPOLOGY_REL} {vm.name}", 60, "facts").splitlines())
            facts = {k: v.strip("'") for k, v in facts.items()}
            nic, bridge, addr = facts["NIC"], facts["BRIDGE"], facts["ADDRESSES"].split()[0]
            gw = facts["GATEWAY"]
            mgmt_port = topo.hosts[vm.name].get("management", {}).get("port", "mgmt0")
            out = run_checked(vm, "ovs-dpctl show", 60, "ovs-dpctl show")
            checks.add(f"{vm.name}: ovs-dpctl show lists system@ovs-system", "system@ovs-system" in out, out[:300])
            out = run_checked(vm, f"ovs-vsctl get bridge {bridge} datapath_type; ovs-vsctl port-to-br {nic}; "
                                  f"ip -o -4 addr show dev {mgmt_port}; echo ---; ip -o -4 addr show dev {nic}; echo ---; ip -4 route show default; echo ---; "
                                  f"ovs-vsctl port-to-br eth0 2>&1 || echo eth0-not-in-ovs; echo ---; ip -o -4 addr show dev eth0; ip -4 route show default dev eth0", 60, "state")
            parts = out.split("---\n")
            first = parts[0].splitlines()
            checks.add(f"{vm.name}: bridge {bridge} has datapath_type system", first[0].strip().strip('"') == "system", first[0])
            checks.add(f"{vm.name}: {nic} is a port of {bridge}", len(first) > 1 and first[1].strip() == bridge, out[:200])
            checks.add(f"{vm.name}: {addr} moved onto {mgmt_port}", addr in first[-1] if len(first) > 2 else False, parts[0])
            checks.add(f"{vm.name}: {nic} has no IPv4 address left", parts[1].strip() == "", parts[1])
            checks.add(f"{vm.name}: default route via {gw} dev {mgmt_port}", f"default via {gw} dev {mgmt_port}" in parts[2], parts[2])
            checks.add(f"{vm.name}: management NIC eth0 is not in OVS", "eth0-not-in-ovs" in parts[3], parts[3])
            checks.add(f"{vm.name}: eth0 keeps its address and its default route (metric 1024 behind {mgmt_port}'s)",
                       "10.0.2.15/24" in parts[4] and "default via 10.0.2.2" in parts[4] and "metric 1024" in parts[4], parts[4])
            # ovsnet itself moved the uplink: it kept the NIC as it was before, for `down`.
            saved_path = f"/var/lib/ovsnet/{facts['TOPOLOGY_NAME']}/{vm.name}.json"
            code, out, err = vm.agent.run(f"cat {saved_path}", 30)
            try:
                saved = (json.loads(out).get("parts") or {}).get("uplink") or {}
            except json.JSONDecodeError:
                saved = {}
            checks.add(f"{vm.name}: ovsnet saved {nic} as it was before the move ({saved_path})",
                       saved.get("nic") == nic and addr in saved.get("addresses", []), (out + err)[:300])
            code, out, err = vm.agent.run(f"ovsnet status {GUEST_SRC}/{TOPOLOGY_REL} --host {vm.name}", 120)
            checks.add(f"{vm.name}: ovsnet status: in sync", code == 0, (out + err)[-500:])
            code, out, err = vm.agent.run(f"ping -n -q -c 2 -W 3 -I {mgmt_port} {gw}", 60)
            checks.add(f"{vm.name}: the router {gw} answers on {mgmt_port}", code == 0, out + err)

        # 3: the ping matrix, from both VMs at once.
        t = time.monotonic()
        results: dict[str, str] = {}

        def pings(vm: Vm) -> None:
            results[vm.name] = run_checked(vm, f"python3 {GUEST_SRC}/vagrant/testbed.py pings {GUEST_SRC}/{TOPOLOGY_REL} {vm.name}", 300, "pings")

        on_each(vms, pings)
        timings["pings"] = time.monotonic() - t
        (work / "pings.jsonl").write_text("".join(results.get(vm.name, "") for vm in vms))
        print(flush=True)
        m = subprocess.run([sys.executable, str(HERE / "testbed.py"), "matrix", str(REPO / TOPOLOGY_REL), str(work / "pings.jsonl")], capture_output=True, text=True)
        print(m.stdout, flush=True)
        checks.add("ping matrix as the topology says (same VLAN across the trunk: yes; across VLANs: only via the router; layer 2 across VLANs: never)", m.returncode == 0, m.stdout.splitlines()[-1] if m.stdout else m.stderr)

        # ovsnet's own verdict from each host: its host's row of the matrix,
        # expected from the graph (the VMs' trunks meet as the assumed upstream).
        for vm in vms:
            code, out, err = vm.agent.run(f"ovsnet verify {GUEST_SRC}/{TOPOLOGY_REL}", 300)
            print(f"----- {vm.name}: ovsnet verify, exit {code} -----\n{(out + err).rstrip()}\n-----", flush=True)
            checks.add(f"{vm.name}: ovsnet verify (this host's row) as the topology says", code == 0, f"exit {code}")

        # 4: the capture of the trunk.
        for vm in vms:
            vm.stop()  # flushes and closes the capture
        cap = parse_capture(capture)
        if cap["rc"] != 0 or not cap["tags"]:
            checks.add("trunk capture readable by tcpdump", False, cap["stderr"])
        else:
            check_capture(topo, cap, checks)
    except (HarnessError, KeyboardInterrupt, TimeoutError) as exc:
        checks.add("harness", False, str(exc))
        for vm in vms:
            log(f"{vm.name}: last console lines:\n{vm.console_tail()}")
    finally:
        for vm in vms:
            vm.stop()
        leftover = [vm.name for vm in vms if vm.proc is not None and vm.proc.poll() is None]
        if leftover:
            log(f"QEMU still running for {leftover}!")

    total = time.monotonic() - T0
    passed = sum(1 for _, ok, _ in checks.results if ok)
    failed = len(checks.results) - passed
    print()
    print("Summary of the two-VM trunk test (QEMU, TCG):")
    for name, ok, _ in checks.results:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f", total {total:.0f} s")
    if args.keep or not checks.ok:
        print(f"logs and capture kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"vm-trunk: {passed} passed, {failed} failed")
    return 0 if checks.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
