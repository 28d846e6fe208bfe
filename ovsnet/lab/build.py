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
from ovsnet.kinds.bond import OvsAddBond, other_config
from ovsnet.kinds.ovs_bridge import OvsAddBridge
from ovsnet.kinds.ovs_port import OvsAddPort, trunk_of
from ovsnet.lab import dhcp, netns
from ovsnet.lab.kernel import Kernel, write_sysctl
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
from ovsnet.topology.model import DEFAULT_MTU, Host, Lacp, Layout, Topology, Vlan

SWITCH_BRIDGE = "br-lab"


class _Temps:
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
    _make_namespaces(names, ledger)
    ovs = _start_ovs(names, where, ledger)
    with Kernel() as kernel:
        temps = _Temps(names)
        switch_ports = _cable(topo, names, kernel, temps, ledger)
        _router_legs(topo, names, kernel, temps)
        _make_switch(topo, names, ovs, switch_ports)
        _make_router(topo, names, where)
        _prepare_hosts(topo, names, kernel, ledger, where)
    ledger.complete(switch_ports)
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
    wanted = list(names.nodes().values())
    for ns in wanted:
        ledger.namespace(ns)
        netns.create(ns)


def _ovs_namespaces(names: LabNames) -> list[str]:
    return [names.host_ns(h) for h in names.hosts] + ([names.switch_ns] if names.switch else [])


def _start_ovs(names: LabNames, lab_dir: Path, ledger: Ledger) -> dict[str, OvsRun]:
    runs = {}
    for ns in _ovs_namespaces(names):
        run = OvsRun(ns, str(lab_dir / "ovs" / ns))
        ledger.ovs(run)
        OvsInstance().start(ns, run.rundir)
        ledger.ovs_pids(run, pidfile_pids(Path(run.rundir)))
        runs[ns] = run
    return runs


def _host_nics(host: Host) -> list[tuple[str, int]]:
    """(NIC, MTU) of every NIC the host has before ovsnet: its uplinks (or its flat
    NIC), and the existing interfaces the topology attaches as access ports."""
    if host.layout is Layout.FLAT:
        return [(host.flat.nic, DEFAULT_MTU)] if host.flat else []
    return [(n, u.assumed_mtu) for u in host.uplinks for n in u.members] + [(ap.interface, DEFAULT_MTU) for ap in host.access_ports]


def _cable(topo: Topology, names: LabNames, kernel: Kernel, temps: _Temps, ledger: Ledger) -> dict[str, str]:
    """Every cable as a veth pair; NICs with no cable get a peer in the spare namespace."""
    switch = topo.lab.switch if topo.lab else None
    mtus = {(h.name, nic): mtu for h in topo.hosts.values() for nic, mtu in _host_nics(h)}
    switch_ports: dict[str, str] = {}
    cabled: set[tuple[str, str | None]] = set()
    for cable in topo.lab.cables if topo.lab else ():
        a, b = (cable.a, cable.b) if cable.a.node != switch else (cable.b, cable.a)
        cabled |= {(a.node, a.nic), (b.node, b.nic)}
        mtu = mtus.get((a.node, a.nic or ""))
        if switch and b.node == switch:
            port = names.switch_port(a.node, a.nic or "")
            kernel.veth(names.host_ns(a.node), a.nic or "", names.switch_ns, port, temps.next(), mtu)
            kernel.apply(names.switch_ns, [NlSetLink(port, up=True)])
            switch_ports[str(a)] = port
        else:
            kernel.veth(names.host_ns(a.node), a.nic or "", names.host_ns(b.node), b.nic or "", temps.next(), mtu)
    loose = [(host, nic, mtu) for (host, nic), mtu in mtus.items() if (host, nic) not in cabled]
    if loose:
        ledger.namespace(names.spare_ns)
        netns.create(names.spare_ns)
    for host, nic, mtu in loose:
        kernel.veth(names.host_ns(host), nic, names.spare_ns, names.switch_port(host, nic), temps.next(), mtu)
    return switch_ports


def _routed(topo: Topology) -> list[Vlan]:
    """The VLANs the lab's router has a leg on: none without a switch to plug legs into."""
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v] for v in topo.router.vlans]


def _router_legs(topo: Topology, names: LabNames, kernel: Kernel, temps: _Temps) -> None:
    for vlan in _routed(topo):
        leg, port = names.router_leg(vlan.id), names.router_port(vlan.id)
        kernel.veth(names.router_ns, leg, names.switch_ns, port, temps.next(), vlan.mtu)
        ops: list[NlOp] = [NlSetLink(leg, up=True)]
        # Both families' router addresses; IPv6 ones without DAD, usable at once.
        ops += [NlAddAddress(leg, f"{st.router}/{st.subnet.prefixlen}", nodad=True) for st in vlan.stacks if st.router is not None]
        kernel.apply(names.router_ns, ops)
        kernel.apply(names.switch_ns, [NlSetLink(port, up=True)])


def _switch_port_op(topo: Topology, host: Host, nic: str, port: str) -> OvsAddPort:
    """The switch's port for a host's NIC: the same VLANs as the host's side (see topology/graph.py)."""
    ids = {v.name: v.id for v in topo.vlans.values()}
    marks = {"ovsnet-lab": f"{host.name}:{nic}"}
    uplink = host.uplink_of(nic)
    if uplink is not None:
        native = ids[uplink.native_vlan] if uplink.native_vlan else None
        trunks = frozenset(ids[v] for v in uplink.vlans) | ({native} if native else frozenset())
        if native is None:
            return OvsAddPort(SWITCH_BRIDGE, port, trunks=trunks, external_ids=marks)
        return OvsAddPort(SWITCH_BRIDGE, port, tag=native, trunks=trunks, vlan_mode="native-untagged", external_ids=marks)
    tag = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return OvsAddPort(SWITCH_BRIDGE, port, tag=tag, external_ids=marks)


def _switch_lag_op(topo: Topology, names: LabNames, host: Host, bond: str, ports: list[str]) -> Any:
    """The switch's side of a host's LACP bond: one bond of the member cables' ports, LACP active,
    so the host's bond negotiates with a real partner (a bond without LACP faces plain ports, as
    on a switch without a LAG). Until the host's bond answers LACP (a host before ovsnet, or
    after `down`), it falls back to active-backup over the port of the NIC that holds the
    host's address then (bond-primary), as switches' "LACP fallback" serves a host that boots."""
    up = next(u for u in host.uplinks if u.bond is not None and u.bond.name == bond)
    assert up.bond is not None
    tag, trunks, mode = trunk_of(topo, up.vlans, up.native_vlan)
    name = names.switch_port(host.name, bond)
    if name in ports:  # a NIC named like the bond: keep the LAG's name apart from its ports'
        name = names.switch_port(host.name, f"lag-{bond}")
    if len(ports) == 1:
        return OvsAddPort(SWITCH_BRIDGE, ports[0], tag=tag, trunks=trunks, vlan_mode=mode, external_ids={"ovsnet-lab": f"{host.name}:{up.nic}"})
    holder = host.uplink_nic if host.uplink_nic in up.members else up.nic
    primary = names.switch_port(host.name, holder)
    config = other_config({"lacp-fallback-ab": "true", "bond-primary": primary}, up.bond.lacp_time.value)
    return OvsAddBond(SWITCH_BRIDGE, name, tuple(ports), up.bond.mode.value, Lacp.ACTIVE.value, config,
                      tag, trunks, mode, {"ovsnet-lab": f"{host.name}:{bond}"})


def _make_switch(topo: Topology, names: LabNames, ovs: Mapping[str, OvsRun], switch_ports: Mapping[str, str]) -> None:
    """The switch's bridge and all its ports in one transaction (one ovs-vswitchd reconfiguration)."""
    if not names.switch:
        return
    datapath = topo.lab.datapath.value if topo.lab else "netdev"
    ops: list[Any] = [OvsAddBridge(SWITCH_BRIDGE, datapath, {"ovsnet-lab": names.prefix})]
    lags: dict[tuple[str, str], list[str]] = {}
    for end, port in switch_ports.items():
        host, _, nic = end.partition(":")
        up = topo.hosts[host].uplink_of(nic)
        if up is not None and up.bond is not None and up.bond.lacp is not Lacp.OFF:
            lags.setdefault((host, up.bond.name), []).append(port)
            continue
        ops.append(_switch_port_op(topo, topo.hosts[host], nic, port))
    for (host, bond), ports in lags.items():
        ops.append(_switch_lag_op(topo, names, topo.hosts[host], bond, ports))
    for vlan in _routed(topo):
        ops.append(OvsAddPort(SWITCH_BRIDGE, names.router_port(vlan.id), tag=vlan.id,
                              external_ids={"ovsnet-lab": f"router:{vlan.name}"}))
    with Ovsdb(ovs[names.switch_ns].remote, timeout=LAB_OVS_TIMEOUT) as db:
        db.transact(ops)


def _make_router(topo: Topology, names: LabNames, lab_dir: Path) -> None:
    routed = _routed(topo)
    if not routed:
        return
    write_sysctl(names.router_ns, "net/ipv4/ip_forward", "1")
    if any(r.version == 6 for v in routed for r in v.routers):
        write_sysctl(names.router_ns, "net/ipv6/conf/all/forwarding", "1")
    for vlan in dhcp.served_vlans(topo):
        if vlan in routed:
            dhcp.start_server(names.router_ns, names.router_leg(vlan.id), vlan, lab_dir / "dhcp")


def _prepare_hosts(topo: Topology, names: LabNames, kernel: Kernel, ledger: Ledger, lab_dir: Path) -> None:
    for host in topo.hosts.values():
        ns = names.host_ns(host.name)
        ledger.etc_netns(ns)
        path = resolv_conf_path(ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Before any DHCP client: its script writes here (the namespace's own resolv.conf).
        path.write_text(f"# {host.name} in ovsnet lab {names.prefix}\n")
        kernel.apply(ns, _before_ovsnet(host))
        m = host.management
        if m is not None and m.dhcp and host.uplink_nic:
            dhcp.start_client(ns, host.uplink_nic, host_root(lab_dir, ns))


def _before_ovsnet(host: Host) -> list[NlOp]:
    """What a real host looks like before `ovsnet up`: NICs up, its addresses on the uplink NIC."""
    ops: list[NlOp] = [NlSetLink(nic, up=True) for nic, _ in _host_nics(host)]
    nic, m = host.uplink_nic, host.management
    if nic is None or m is None:
        return ops
    # A real host's IPv6 address passed duplicate address detection long ago: no DAD here either.
    ops += [NlAddAddress(nic, str(a), nodad=True) for a in m.addresses]
    ops += [NlReplaceRoute("default", nic, str(gw)) for gw in m.gateways]
    return ops
