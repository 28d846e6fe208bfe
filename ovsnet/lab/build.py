"""Building the simulated network of a topology: hosts, cables, switch, router
(its endpoints are plugged in after apply: lab/endpoints.py).

Every node is a network namespace named after one per-lab prefix; hosts and
the switch each run a private Open vSwitch. The hosts are left exactly as a
real host looks before `ovsnet up` (uplink NIC up, holding the management
addresses, default route via the gateway): configuring them is the product's
apply code's job, pointed at each host through `names.targets(lab)`.

Everything made is written to a state file (lab/ledger.py) *before* it is
made, so that `teardown.destroy` removes a half-built lab, or one whose
builder crashed, from the state file alone; it also scans for namespaces
with the prefix, and nothing without the prefix is ever touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from ovsnet.backends.netlink.ops import NlAddAddress, NlOp, NlReplaceRoute, NlSetLink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import UsageError
from ovsnet.kinds.ovs_bridge import OvsAddBridge
from ovsnet.lab import dhcp, layout, netns
from ovsnet.lab.kernel import Kernel, write_sysctl
from ovsnet.lab.layout import SWITCH_BRIDGE
from ovsnet.lab.ledger import STATE_FILE, Ledger, pidfile_pids
from ovsnet.lab.names import (
    LAB_OVS_TIMEOUT,
    SUN_PATH_MAX,
    Lab,
    LabNames,
    OvsRun,
    default_lab_dir,
    host_root,
    resolv_conf_path,
)
from ovsnet.lab.ovs_instance import OvsInstance
from ovsnet.marks import LAB_KEY
from ovsnet.topology.model import Host, Topology


class Temps:
    """Names for veth ends on their way to their namespace (a counter per run)."""

    def __init__(self, names: LabNames):
        self.names = names
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return self.names.temp_link(self.n)


def build(
    topo: Topology,
    prefix: str | None = None,
    lab_dir: str | os.PathLike[str] | None = None,
) -> Lab:
    """Make the lab's namespaces, OVS instances, cables, switch and router; hosts as before ovsnet.

    On failure the half-built lab is left as it is, for inspection; it is
    all in the state file, and teardown.destroy() removes it.
    """
    names = LabNames.for_topology(topo, prefix)
    where = Path(lab_dir or default_lab_dir(names.prefix)).resolve()
    _refuse_existing(names, where)
    _check_socket_paths(names, where)
    ledger = Ledger.begin(where, names, topo)
    want = layout.desired(topo, names)
    _make_namespaces(names, ledger)
    ovs = _start_ovs(names, where, ledger)
    with Kernel() as kernel:
        temps = Temps(names)
        if any(w.loose for w in want.wires.values()):
            make_namespace(ledger, names.spare_ns)
        for wire in want.wires.values():
            make_wire(kernel, wire, temps)
        for leg in want.legs.values():
            make_leg(kernel, names, leg, temps)
        _make_switch(names, ovs, want)
        _make_router(topo, names, where)
        for host in topo.hosts.values():
            prepare_host(host, names, kernel, ledger, where)
    switch_ports = {w.key: w.far for w in want.wires.values() if want.switch and w.far_node == want.switch}
    ledger.complete(switch_ports, want)
    return Lab(topo, names, where, ovs, switch_ports)


def _refuse_existing(names: LabNames, lab_dir: Path) -> None:
    existing = netns.listed(names.ns_prefix)
    if existing or (lab_dir / STATE_FILE).exists():
        raise UsageError(
            f"lab {names.prefix} already exists ({', '.join(existing) or lab_dir / STATE_FILE}); destroy it first"
        )


def _check_socket_paths(names: LabNames, lab_dir: Path) -> None:
    # ovs-vswitchd's control socket is the longest path in a run directory.
    for ns in _ovs_namespaces(names):
        path = lab_dir / "ovs" / ns / "ovs-vswitchd.4194304.ctl"
        if len(str(path).encode()) > SUN_PATH_MAX:
            raise UsageError(f"lab directory {lab_dir} is too long for OVS's unix sockets; use a shorter one")


def _make_namespaces(names: LabNames, ledger: Ledger) -> None:
    for ns in names.nodes().values():
        make_namespace(ledger, ns)


def make_namespace(ledger: Ledger, ns: str) -> None:
    # Recorded first: destroy must find it even if this process dies now.
    ledger.namespace(ns)
    netns.create(ns)


def _ovs_namespaces(names: LabNames) -> list[str]:
    return [names.host_ns(h) for h in names.hosts] + ([names.switch_ns] if names.switch else [])


def _start_ovs(names: LabNames, lab_dir: Path, ledger: Ledger) -> dict[str, OvsRun]:
    return {ns: start_ovs(ledger, lab_dir, ns) for ns in _ovs_namespaces(names)}


def start_ovs(ledger: Ledger, lab_dir: Path, ns: str) -> OvsRun:
    """A private OVS in `ns`, with a fresh database in <lab>/ovs/<ns>."""
    run = OvsRun(ns, str(lab_dir / "ovs" / ns))
    ledger.ovs(run)
    OvsInstance().start(ns, run.rundir)
    ledger.ovs_pids(run, pidfile_pids(Path(run.rundir)))
    return run


def make_wire(kernel: Kernel, wire: layout.Wire, temps: Temps) -> None:
    """The cable's veth pair, both ends up; a NIC with no cable keeps its far end down (no carrier)."""
    kernel.veth(wire.host_ns, wire.nic, wire.far_ns, wire.far, temps.next(), wire.mtu)
    kernel.apply(wire.host_ns, [NlSetLink(wire.nic, up=True)])
    if not wire.loose:
        kernel.apply(wire.far_ns, [NlSetLink(wire.far, up=True)])


def make_leg(kernel: Kernel, names: LabNames, leg: layout.RouterLeg, temps: Temps) -> None:
    """The router's leg on one VLAN, its far end the switch's (not yet added) port."""
    name, port = names.router_leg(leg.vlan), names.router_port(leg.vlan)
    kernel.veth(names.router_ns, name, names.switch_ns, port, temps.next(), leg.mtu)
    ops: list[NlOp] = [NlSetLink(name, up=True)]
    # Both families' router addresses; IPv6 ones without DAD, usable at once.
    ops += [NlAddAddress(name, a, nodad=True) for a in leg.addresses]
    kernel.apply(names.router_ns, ops)
    kernel.apply(names.switch_ns, [NlSetLink(port, up=True)])


def _make_switch(names: LabNames, ovs: Mapping[str, OvsRun], want: layout.LabLayout) -> None:
    """The switch's bridge and all its ports (a LAG for each host's LACP bond) in one transaction
    (one ovs-vswitchd reconfiguration)."""
    if not names.switch:
        return
    ops: list[Any] = [OvsAddBridge(SWITCH_BRIDGE, want.datapath, {LAB_KEY: names.prefix})]
    ops += [p.add_op() for p in want.switch_ports.values()]
    with Ovsdb(ovs[names.switch_ns].remote, timeout=LAB_OVS_TIMEOUT) as db:
        db.transact(ops)


def _make_router(topo: Topology, names: LabNames, lab_dir: Path) -> None:
    routed = layout.routed(topo)
    if not routed:
        return
    write_sysctl(names.router_ns, "net/ipv4/ip_forward", "1")
    if any(r.version == 6 for v in routed for r in v.routers):
        write_sysctl(names.router_ns, "net/ipv6/conf/all/forwarding", "1")
    for vlan in dhcp.served_vlans(topo):
        if vlan in routed:
            dhcp.start_server(names.router_ns, names.router_leg(vlan.id), vlan, lab_dir / "dhcp")


def prepare_host(host: Host, names: LabNames, kernel: Kernel, ledger: Ledger, lab_dir: Path) -> None:
    """The host as a real one is before `ovsnet up`: its resolv.conf, NICs up, address and route on its NIC."""
    ns = names.host_ns(host.name)
    ledger.etc_netns(ns)
    path = resolv_conf_path(ns)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Before any DHCP client: its script writes here (the namespace's own resolv.conf).
    path.write_text(f"# {host.name} in ovsnet lab {names.prefix}\n")
    kernel.apply(ns, _before_ovsnet(host))
    # The lab's userspace datapath reads a NIC with a packet socket, so the
    # host's kernel still sees every frame that NIC receives (the kernel
    # datapath takes them away from the stack); by Linux's default it then
    # answers ARP for the host's address on a bond member whose MAC is not the
    # management port's, and a peer that caches that MAC loses the host
    # (verify of bonded.toml, about one run in ten). Answering only on the
    # interface that holds the address is what a kernel-datapath host does.
    write_sysctl(ns, "net/ipv4/conf/all/arp_ignore", "1")
    m = host.management
    if m is not None and m.dhcp and host.uplink_nic:
        dhcp.start_client(ns, host.uplink_nic, host_root(lab_dir, ns))


def _before_ovsnet(host: Host) -> list[NlOp]:
    """What a real host looks like before `ovsnet up`: NICs up, its addresses on the uplink NIC."""
    ops: list[NlOp] = [NlSetLink(nic, up=True) for nic, _ in layout.host_nics(host)]
    nic, m = host.uplink_nic, host.management
    if nic is None or m is None:
        return ops
    # A real host's IPv6 address passed duplicate address detection long ago: no DAD here either.
    ops += [NlAddAddress(nic, str(a), nodad=True) for a in m.addresses]
    ops += [NlReplaceRoute("default", nic, str(gw)) for gw in m.gateways]
    return ops
