"""`ovsnet lab up --ssh`: the lab as a fleet reached over real SSH.

Every simulated host runs Debian's OpenSSH server inside its namespace (its
own config, host key, pid file and log under <lab>/ssh/<namespace>/), and a
`controller` station joins the management VLAN as an access port of the
lab switch, holding the one key the hosts trust. A host whose management
VLAN is tagged on its trunk cannot be reached before ovsnet configures it
(it has only an untagged NIC, and this machine has no 8021q module to give
it a VLAN interface): such a host gets an out-of-band link from the
controller instead, as a real fleet's console network would be, and its
inventory address is that link's.

Everything lives under the lab directory and in the lab's namespaces;
`stop` ends the sshd processes by pid (each checked to run this lab's own
config), and `teardown.destroy` removes the rest with the lab.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ovsnet import procs
from ovsnet.backends.netlink.ops import NlAddAddress, NlReplaceRoute, NlSetLink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import BackendError, UsageError
from ovsnet.kinds.ovs_port import OvsAddPort
from ovsnet.lab import netns
from ovsnet.lab.kernel import Kernel
from ovsnet.lab.ledger import Ledger
from ovsnet.lab.names import LAB_OVS_TIMEOUT, Lab, resolv_conf_path
from ovsnet.topology import addressing
from ovsnet.topology.model import Host, Layout, Topology

SSH_DIR = "ssh"
RUN_FILE = "sshd.json"  # <lab>/ssh/sshd.json: what started, for stop() in a later process
CONTROLLER = "controller"
CONTROLLER_NIC = "eth0"
SWITCH_PORT = "ctl0"
OOB_NET = ipaddress.ip_network("198.18.0.0/16")  # RFC 2544's benchmark range: never a real fleet's
OOB_NIC = "oob0"
START_TIMEOUT = 20.0
SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without it


@dataclass(frozen=True)
class Station:
    """How the controller reaches one host: the address it dials, and over which link."""

    host: str
    namespace: str
    address: str  # what ansible_host is
    oob: bool  # over the out-of-band link (the host's management VLAN is tagged)


@dataclass(frozen=True)
class Fleet:
    """The SSH side of a lab, as later commands find it again."""

    lab_dir: Path
    controller_ns: str
    controller_address: str
    stations: Mapping[str, Station]

    @property
    def dir(self) -> Path:
        return self.lab_dir / SSH_DIR

    @property
    def key(self) -> Path:
        return self.dir / "controller" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def control_dir(self) -> Path:
        return self.dir / "cp"


def controller_ns(prefix: str) -> str:
    return f"{prefix}-c"


def management_vlan(topo: Topology) -> str:
    """The VLAN the controller joins: the management VLAN most hosts share."""
    counts: dict[str, int] = {}
    for h in topo.hosts.values():
        v = h.management_vlan
        if v is not None and topo.vlans[v].subnet is not None:
            counts[v] = counts.get(v, 0) + 1
    if not counts:
        raise UsageError(f"lab --ssh: no host of {topo.name} has a management VLAN with a subnet for the controller to join")
    return max(counts, key=lambda v: (counts[v], v))


def needs_oob(host: Host) -> bool:
    """True when the host's management VLAN is not untagged on the NIC its address starts on.

    Before ovsnet such a host sends untagged frames the switch's trunk port drops.
    """
    if host.management is None or host.layout is Layout.FLAT:
        return False
    up = host.uplink_of(host.uplink_nic)
    return up is None or up.native_vlan != host.management_vlan


def controller_address(topo: Topology, vlan: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """The highest address of the VLAN's subnet that nothing in the topology holds or hands out."""
    subnet = topo.vlans[vlan].subnet
    assert subnet is not None
    taken = set(addressing.reserved_addresses(topo))
    slices, _ = addressing.plan(topo)
    handed = [s.network for s in slices.values() if s.vlan == vlan]
    hosts = subnet.hosts()
    for addr in reversed(list(hosts)) if subnet.num_addresses <= 65536 else ():
        if addr not in taken and not any(addr in n for n in handed):
            return ipaddress.ip_interface(f"{addr}/{subnet.prefixlen}")
    raise UsageError(f"lab --ssh: VLAN {vlan} ({subnet}) has no free address for the controller")


def _oob_pair(index: int) -> tuple[str, str]:
    """(controller end, host end) of host number `index`'s out-of-band /30."""
    base = int(OOB_NET.network_address) + 4 * index
    return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))


def _check_oob_free(topo: Topology) -> None:
    for v in topo.vlans.values():
        if v.subnet is not None and v.subnet.version == 4 and v.subnet.overlaps(OOB_NET):
            raise UsageError(f"lab --ssh: VLAN {v.name}'s subnet {v.subnet} overlaps the lab's out-of-band network {OOB_NET}")


# --- up ---------------------------------------------------------------------------


def start(lab: Lab, report: Callable[[str], None] = lambda _m: None) -> Fleet:
    """The controller station, its key, and an sshd in every host with a management address."""
    topo = lab.topology
    if not lab.names.switch:
        raise UsageError(f"lab --ssh: {topo.name} has no [lab] switch for the controller to plug into")
    for tool in (SSHD, "ssh-keygen"):
        if shutil.which(tool) is None:
            raise UsageError(f"lab --ssh needs OpenSSH ({tool} is missing): apt-get install openssh-server openssh-client")
    _check_oob_free(topo)
    vlan = management_vlan(topo)
    me = controller_address(topo, vlan)
    fleet_dir = lab.lab_dir / SSH_DIR
    (fleet_dir / "controller").mkdir(parents=True, exist_ok=True)
    (fleet_dir / "cp").mkdir(exist_ok=True)
    ns = controller_ns(lab.prefix)
    ledger = Ledger.reopen(lab.lab_dir)
    ledger.namespace(ns)
    netns.create(ns)
    ledger.station(CONTROLLER, ns)
    stations = _plug_controller(lab, ns, vlan, me)
    fleet = Fleet(lab.lab_dir, ns, str(me.ip), stations)
    _keygen(fleet.key, "ovsnet lab controller")
    (fleet.dir / "authorized_keys").write_text(fleet.key.with_suffix(".pub").read_text())
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    known = []
    for st in stations.values():
        host_dir = fleet.dir / st.namespace
        host_dir.mkdir(exist_ok=True)
        _keygen(host_dir / "ssh_host_ed25519_key", f"{st.host} in ovsnet lab {lab.prefix}")
        pub = (host_dir / "ssh_host_ed25519_key.pub").read_text().split()
        mgmt = topo.hosts[st.host].management
        addrs = {st.address, *(str(a.ip) for a in (mgmt.addresses if mgmt else ()))}
        known += [f"{a} {pub[0]} {pub[1]}" for a in sorted(addrs)]
        _start_sshd(fleet, st)
        report(f"{st.host}: sshd on {st.address}" + (" (out-of-band link: its management VLAN is tagged)" if st.oob else ""))
    fleet.known_hosts.write_text("\n".join(known) + "\n")
    for st in stations.values():
        _wait_reachable(ns, st)
    (fleet.dir / "fleet.json").write_text(json.dumps({
        "controller_ns": ns, "controller_address": fleet.controller_address,
        "stations": {h: {"namespace": s.namespace, "address": s.address, "oob": s.oob} for h, s in stations.items()},
    }, indent=2) + "\n")
    return fleet


def _plug_controller(lab: Lab, ns: str, vlan: str, me: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> dict[str, Station]:
    """The controller's NIC as an access port of the management VLAN; out-of-band links where needed."""
    topo = lab.topology
    v = topo.vlans[vlan]
    stations: dict[str, Station] = {}
    with Kernel() as kernel:
        kernel.veth(ns, CONTROLLER_NIC, lab.names.switch_ns, SWITCH_PORT, lab.names.temp_link(900), v.mtu)
        kernel.apply(lab.names.switch_ns, [NlSetLink(SWITCH_PORT, up=True)])
        ops = [NlSetLink(CONTROLLER_NIC, up=True), NlAddAddress(CONTROLLER_NIC, str(me))]
        if v.router is not None:
            ops.append(NlReplaceRoute("default", CONTROLLER_NIC, str(v.router)))
        kernel.apply(ns, ops)
        no_tx_checksum(ns, CONTROLLER_NIC)
        for i, (name, host) in enumerate(topo.hosts.items(), start=1):
            if host.management is None:
                continue
            host_ns = lab.names.host_ns(name)
            if not needs_oob(host):
                if host.uplink_nic:
                    no_tx_checksum(host_ns, host.uplink_nic)
                stations[name] = Station(name, host_ns, str(host.management.addresses[0].ip), False)
                continue
            mine, theirs = _oob_pair(i)
            kernel.veth(ns, f"oob{i}", host_ns, OOB_NIC, lab.names.temp_link(900 + i), None)
            kernel.apply(ns, [NlSetLink(f"oob{i}", up=True), NlAddAddress(f"oob{i}", f"{mine}/30")])
            kernel.apply(host_ns, [NlSetLink(OOB_NIC, up=True), NlAddAddress(OOB_NIC, f"{theirs}/30")])
            stations[name] = Station(name, host_ns, theirs, True)
    with Ovsdb(lab.ovs[lab.names.switch_ns].remote, timeout=LAB_OVS_TIMEOUT) as db:
        db.transact([OvsAddPort("br-lab", SWITCH_PORT, tag=v.id, external_ids={"ovsnet-lab": CONTROLLER})])
    # The controller's own resolv.conf, so that nothing run there reads the machine's.
    path = resolv_conf_path(ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# controller of ovsnet lab {lab.prefix}\n")
    Ledger.reopen(lab.lab_dir).etc_netns(ns)
    return stations


SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def no_tx_checksum(ns: str, ifname: str) -> None:
    """Turn off a veth's transmit checksum offload (what `ethtool -K IF tx off` does).

    A veth leaves a TCP segment's checksum for the hardware to fill in; the
    userspace datapath reads it with AF_PACKET and forwards it unfilled, so
    the far end drops every segment: pings cross the lab switch, SSH does not.
    """
    import array
    import fcntl
    import socket

    from ovsnet.backends.netns import socket_in

    value = array.array("I", [ETHTOOL_STXCSUM, 0])
    addr, _ = value.buffer_info()
    ifreq = struct.pack("16sP", ifname.encode(), addr).ljust(40, b"\0")
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError as exc:
        raise BackendError(f"lab --ssh: cannot turn off tx checksum offload of {ifname} in {ns}: {exc.strerror}") from None
    finally:
        sock.close()


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    proc = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise BackendError(f"lab --ssh: ssh-keygen for {path} failed: {proc.stderr.strip()}")


def sshd_config(fleet: Fleet, st: Station) -> str:
    d = fleet.dir / st.namespace
    return "\n".join([
        f"# sshd of {st.host} in an ovsnet lab: everything it reads or writes is under {d}",
        "Port 22",
        f"HostKey {d / 'ssh_host_ed25519_key'}",
        f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {fleet.dir / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PrintMotd no",
        "UseDNS no",
        # Ansible with many forks opens many connections at once.
        "MaxStartups 100:30:200",
        "MaxSessions 100",
        "Subsystem sftp internal-sftp",
        "",
    ])


def _start_sshd(fleet: Fleet, st: Station) -> None:
    d = fleet.dir / st.namespace
    config = d / "sshd_config"
    config.write_text(sshd_config(fleet, st))
    _record(fleet.dir, st.namespace, {"config": str(config), "pidfile": str(d / "sshd.pid")})
    # nsenter --net: only the network namespace changes (ip netns exec would
    # also remount /sys); sshd daemonizes and writes its pid file.
    argv = ["nsenter", f"--net={os.path.join(netns.NETNS_DIR, st.namespace)}", "--",
            SSHD, "-f", str(config), "-E", str(d / "sshd.log")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise BackendError(f"lab --ssh: sshd for {st.host} did not start (exit {proc.returncode}): "
                           f"{(proc.stderr or _tail(d / 'sshd.log')).strip()}")
    deadline = time.monotonic() + START_TIMEOUT
    while _pid(config, d / "sshd.pid") is None:
        if time.monotonic() > deadline:
            raise BackendError(f"lab --ssh: sshd for {st.host} wrote no pid file within {START_TIMEOUT:g} s: {_tail(d / 'sshd.log')}")
        time.sleep(0.05)


def _wait_reachable(controller: str, st: Station) -> None:
    """Until the controller opens a TCP connection to the host's sshd (a fresh switch may need seconds)."""
    import socket

    from ovsnet.backends.netns import socket_in

    deadline = time.monotonic() + START_TIMEOUT
    family = socket.AF_INET6 if ":" in st.address else socket.AF_INET
    while True:
        sock = socket_in(controller, family, socket.SOCK_STREAM)
        sock.settimeout(2.0)
        try:
            sock.connect((st.address, 22))
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BackendError(f"lab --ssh: the controller cannot reach {st.host}'s sshd at {st.address}:22: {exc}") from None
            time.sleep(0.2)
        finally:
            sock.close()


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text().splitlines()[-10:])
    except OSError:
        return ""


def _record(fleet_dir: Path, ns: str, info: dict[str, str]) -> None:
    path = fleet_dir / RUN_FILE
    data = _runs(fleet_dir)
    data[ns] = info
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _runs(fleet_dir: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((fleet_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pid(config: Path, pidfile: Path) -> int | None:
    """The sshd of this pid file, only while its command line names this lab's config."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    # The listener rewrites its title: "sshd: /usr/sbin/sshd -f CONFIG ... [listener] 0 of 100-200 startups".
    title = " ".join(procs.cmdline(pid))
    return pid if title.startswith(("sshd:", SSHD)) and f" {config} " in f"{title} " else None


# --- later commands ---------------------------------------------------------------


def load(lab: Lab) -> Fleet | None:
    """The SSH side of a built lab, or None when it was built without --ssh."""
    try:
        data = json.loads((lab.lab_dir / SSH_DIR / "fleet.json").read_text())
    except (OSError, ValueError):
        return None
    stations = {h: Station(h, s["namespace"], s["address"], bool(s["oob"])) for h, s in data["stations"].items()}
    return Fleet(lab.lab_dir, data["controller_ns"], data["controller_address"], stations)


def daemons(lab_dir: Path) -> list[int]:
    """This lab's sshd listeners still running."""
    out = []
    for info in _runs(lab_dir / SSH_DIR).values():
        pid = _pid(Path(info.get("config", "")), Path(info.get("pidfile", "")))
        if pid is not None:
            out.append(pid)
    return out


def stop(lab_dir: Path, grace: float = 5.0) -> None:
    """End this lab's sshd listeners by pid (sessions in the hosts' namespaces go with the namespaces)."""
    pids = daemons(lab_dir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs.signal_and_wait(pids, sig, grace)
