"""DHCP in the lab: a dnsmasq on the router's leg of each VLAN a host takes its address from, and each such host's dhclient.

A host whose management says `addresses = "dhcp"` starts its life in the
lab as such a host does: its NIC up, an ISC dhclient on it (pid and lease
files in the host's own root, see Target.root), the lease from the router's
dnsmasq. The server hands out the top quarter of the VLAN's subnet, with the
VLAN's router as the router option, for 2 minutes (dnsmasq's shortest
lease), so renewals happen within a test's patience.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from ovsnet.backends import processes
from ovsnet.backends.dhcp import Dhclient
from ovsnet.backends.netlink import Netlink
from ovsnet.errors import BackendError
from ovsnet.topology.model import Host, Topology, Vlan

LEASE = "2m"
LEASE_WAIT = 60.0


def dhcp_hosts(topo: Topology) -> list[Host]:
    return [h for h in topo.hosts.values() if h.management is not None and h.management.dhcp and h.uplink_nic]


def served_vlans(topo: Topology) -> list[Vlan]:
    names = {h.management_vlan for h in dhcp_hosts(topo)}
    return [topo.vlans[n] for n in sorted(n for n in names if n)]


def pool(vlan: Vlan) -> tuple[str, str]:
    """The top quarter of the subnet, short of its broadcast address."""
    net = vlan.subnet
    assert net is not None
    first = int(net.network_address) + (net.num_addresses * 3) // 4
    last = int(net.broadcast_address) - 1
    return str(ipaddress.ip_address(first)), str(ipaddress.ip_address(last))


def start_server(router_ns: str, leg: str, vlan: Vlan, workdir: Path) -> None:
    """dnsmasq as the VLAN's DHCP server only (no DNS: --port=0), on the router's leg."""
    if vlan.subnet is None or vlan.router is None:
        raise BackendError(f"lab: VLAN {vlan.name} serves DHCP but has no subnet and router")
    workdir.mkdir(parents=True, exist_ok=True)
    low, high = pool(vlan)
    processes.run([
        "dnsmasq", "--conf-file=/dev/null", "--port=0", f"--interface={leg}", "--bind-interfaces", "--dhcp-authoritative",
        f"--dhcp-range={low},{high},{LEASE}", f"--dhcp-option=option:router,{vlan.router}",
        f"--dhcp-leasefile={workdir / f'dnsmasq.{leg}.leases'}", f"--pid-file={workdir / f'dnsmasq.{leg}.pid'}",
    ], router_ns)


def start_client(host_ns: str, nic: str, root: Path) -> str:
    """The host's dhclient on its NIC; returns the lease's address once the NIC holds it."""
    Dhclient(str(root), host_ns).start(nic)
    deadline = time.monotonic() + LEASE_WAIT
    with Netlink(host_ns) as nl:
        while True:
            lease = next((a for a in nl.read().addresses if a.ifname == nic and a.dynamic and ":" not in a.cidr), None)
            if lease is not None:
                return lease.cidr
            if time.monotonic() > deadline:
                raise BackendError(f"lab: {nic} in {host_ns} got no DHCP lease within {LEASE_WAIT:g} s")
            time.sleep(0.2)
