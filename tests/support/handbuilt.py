"""Hosts built by hand, with the seed's own commands: ovs-vsctl, ip, and the docker client.

What `ovsnet import` is for: a host someone configured without ovsnet. Each
function here types what the seed article types (`ovs-vsctl add-br`,
`add-port ... trunks=`, `brctl addbr` (as `ip link add ... type bridge`:
bridge-utils is not installed), veth pairs, `docker network create`), inside
one simulated host of a lab: its namespace, its private OVS, its own dockerd.
Nothing here goes through ovsnet's code.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .commands import sh, vsctl


@dataclass(frozen=True)
class Where:
    """One simulated host: its namespace, its OVSDB, its dockerd, its resolv.conf."""

    ns: str
    ovsdb: str
    docker_host: str | None
    resolv_conf: Path


@dataclass(frozen=True)
class DockerVlan:
    """One Linux bridge for Docker on one VLAN, patched into OVS, and its network."""

    bridge: str
    vid: int
    network: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    ip_range: str | None = None


def ip(w: Where, *lines: str) -> None:
    sh("ip", "-n", w.ns, "-batch", "-", input="\n".join(lines) + "\n")


def docker(w: Where, *argv: str) -> str:
    env = {**os.environ, "DOCKER_HOST": w.docker_host or ""}
    p = subprocess.run(["docker", *argv], capture_output=True, text=True, env=env, timeout=120)
    if p.returncode != 0:
        raise AssertionError(f"docker {' '.join(argv)} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout


def vlan_host(w: Where, *, nic: str, vids: list[int], native: int | None, mgmt_tag: int | None, address: str, gateway: str,
              dns: str, docker_vlans: list[DockerVlan], bridge: str = "br-ovs", mgmt: str = "mgmt0") -> None:
    """The seed's recommended layout: an OVS bridge trunking the NIC, the host's address on an internal port,
    one Linux bridge per container VLAN joined by a veth pair whose OVS end is an access port."""
    trunk = [f"trunks={','.join(map(str, vids))}"] + ([f"tag={native}", "vlan_mode=native-untagged"] if native else [])
    vsctl(w.ovsdb, "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
    vsctl(w.ovsdb, "add-port", bridge, nic, *trunk)
    vsctl(w.ovsdb, "add-port", bridge, mgmt, *([f"tag={mgmt_tag}"] if mgmt_tag else []), "--", "set", "interface", mgmt, "type=internal")
    # The seed's order, so the host is never cut off: the address on the new side first, then the route, then off the NIC.
    ip(w, f"link set {mgmt} up", f"addr add {address} dev {mgmt}", f"route replace default via {gateway} dev {mgmt}", f"addr del {address} dev {nic}")
    w.resolv_conf.write_text(f"nameserver {dns}\n")
    for d in docker_vlans:
        ovs_end, br_end = f"ovs-{d.bridge}", f"lnx-{d.bridge}"
        ip(w, f"link add {d.bridge} type bridge", f"link set {d.bridge} up", f"link add {ovs_end} type veth peer name {br_end}",
           f"link set {br_end} master {d.bridge}", f"link set {br_end} up", f"link set {ovs_end} up")
        vsctl(w.ovsdb, "add-port", bridge, ovs_end, f"tag={d.vid}")
        if d.network:
            network_on(w, d)


def network_on(w: Where, d: DockerVlan) -> None:
    """`docker network create` on an existing bridge, no address on it, the VLAN's router as gateway, a slice of the subnet."""
    argv = ["network", "create", "-d", "bridge", "-o", f"com.docker.network.bridge.name={d.bridge}",
            "-o", "com.docker.network.bridge.inhibit_ipv4=true"]
    for flag, v in (("--subnet", d.subnet), ("--gateway", d.gateway), ("--ip-range", d.ip_range)):
        if v:
            argv += [flag, v]
    docker(w, *argv, d.network or "")


def flat_host(w: Where, *, nic: str, address: str, gateway: str, dns: str, bridge: str = "br0") -> None:
    """The seed's simple layout, in its own order: brctl addbr br0; ip addr del ... dev eth0;
    ip addr add ... dev br0; brctl addif br0 eth0; ip route add default via ... dev br0."""
    ip(w, f"link add {bridge} type bridge", f"link set {bridge} up", f"addr add {address} dev {bridge}",
       f"link set {nic} master {bridge}", f"route replace default via {gateway} dev {bridge}", f"addr del {address} dev {nic}")
    w.resolv_conf.write_text(f"nameserver {dns}\n")


def dockerd_on_bridge(lab, host: str, bridge: str, fixed_cidr: str) -> str:
    """The seed's `dockerd -b br0` (with --fixed-cidr, its per-host range), as a lab host's dockerd; returns its DOCKER_HOST.

    Laid out as ovsnet.lab.docker lays out its own (run file first, same
    directories), so the lab's teardown stops it and removes what it made.
    """
    import json
    import time

    from ovsnet.lab import docker as lab_docker
    from ovsnet.lab import netns
    from ovsnet.lab.names import DOCKER_DIR

    ns = lab.names.host_ns(host)
    run = lab_docker.DockerRun(host, ns, str(Path(lab.lab_dir) / DOCKER_DIR / ns))
    root = Path(run.root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "daemon.json").write_text("{}\n")
    (root / lab_docker.RUN_FILE).write_text(json.dumps({"host": host, "namespace": ns, "root": run.root}) + "\n")
    argv = ["nsenter", f"--net={os.path.join(netns.NETNS_DIR, ns)}", "--", "dockerd", "--config-file", str(root / "daemon.json"),
            "--data-root", run.data_root, "--exec-root", run.exec_root, "--pidfile", run.pidfile, "-H", run.docker_host,
            "--bridge", bridge, "--fixed-cidr", fixed_cidr, "--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
            "--storage-driver=vfs", "--cgroup-parent", run.cgroup_parent, "--log-level=warn", "--shutdown-timeout=2"]
    with open(run.log, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    lab_docker._wait_ready(run, proc, time.monotonic() + 60)
    return run.docker_host
