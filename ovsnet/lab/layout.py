"""What a lab is made of besides its hosts' configuration: hosts' namespaces, cables,
the switch's ports, the router's legs, test endpoints, lab dockerds.

Pure: derived from the topology and the lab's names, nothing read or made.
`build` makes a layout from nothing; `lab up` on a built lab diffs the layout it
recorded (checked against what is really there, lab/observe.py) with the
edited file's (lab/diff.py) and makes only the difference (lab/converge.py).
The ledger keeps the layout as built (`to_json`/`from_json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ovsnet.kinds import Settings
from ovsnet.kinds.bond import OvsAddBond, OvsSetBond, other_config
from ovsnet.kinds.docker_network import DockerNetworks
from ovsnet.kinds.ovs_port import OvsAddPort, OvsSetPort, trunk_of
from ovsnet.lab.endpoints import endpoint_bridge, endpoint_mtu
from ovsnet.lab.names import LabNames
from ovsnet.marks import LAB_KEY
from ovsnet.topology.model import DEFAULT_MTU, Attach, Host, Lacp, Layout, Topology, Vlan

SWITCH_BRIDGE = "br-lab"
NO_CABLE = ""  # a Wire's far node when the NIC has no cable: its far end waits in the spare namespace


@dataclass(frozen=True)
class Wire:
    """One cable as a veth pair, named by its first host end: the host's NIC and where the other end is."""

    host: str
    host_ns: str
    nic: str
    far_node: str  # the switch's name, another host's, or NO_CABLE
    far_ns: str
    far: str  # the other end's name in far_ns (a switch port, another host's NIC)
    mtu: int

    @property
    def key(self) -> str:
        return f"{self.host}:{self.nic}"

    @property
    def loose(self) -> bool:
        return self.far_node == NO_CABLE

    def describe(self) -> str:
        far = "no cable" if self.loose else f"{self.far_node}:{self.far}"
        return f"{far}, mtu {self.mtu}"


@dataclass(frozen=True)
class SwitchPort:
    """A port of the lab switch: facing a host's NIC (its trunk), a host's LACP bond (a LAG of
    its member cables' ends), or a router leg (access)."""

    name: str
    mark: str  # external_ids ovsnet-lab: "HOST:NIC", "HOST:BOND" or "router:VLAN"
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    # A LAG: its interfaces (the member cables' switch ends, sorted), bond_mode, lacp and
    # other_config (sorted items); a plain port has none and one interface named like it.
    members: tuple[str, ...] = ()
    bond_mode: str | None = None
    lacp: str | None = None
    config: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        if self.trunks:
            vlans = ",".join(str(v) for v in sorted(self.trunks))
            native = f", native {self.tag} untagged" if self.vlan_mode == "native-untagged" and self.tag is not None else ""
            text = f"trunk {vlans}{native}"
        else:
            text = f"access tag {self.tag}" if self.tag is not None else "untagged"
        if self.members:
            text += f", LAG of {', '.join(self.members)} ({self.bond_mode}, lacp {self.lacp})"
        return text

    def add_op(self) -> OvsAddPort | OvsAddBond:
        marks = {LAB_KEY: self.mark}
        if self.members:
            return OvsAddBond(SWITCH_BRIDGE, self.name, self.members, self.bond_mode or "active-backup", self.lacp or Lacp.OFF.value,
                              dict(self.config), self.tag, self.trunks, self.vlan_mode, marks)
        return OvsAddPort(SWITCH_BRIDGE, self.name, tag=self.tag, trunks=self.trunks, vlan_mode=self.vlan_mode, external_ids=marks)

    def set_op(self) -> OvsSetPort | OvsSetBond:
        marks = {LAB_KEY: self.mark}
        if self.members:
            return OvsSetBond(self.name, self.members, self.bond_mode or "active-backup", self.lacp or Lacp.OFF.value,
                              dict(self.config), self.tag, self.trunks, self.vlan_mode, marks)
        return OvsSetPort(self.name, self.tag, self.trunks, self.vlan_mode, marks)

    @property
    def interfaces(self) -> tuple[str, ...]:
        return self.members or (self.name,)


@dataclass(frozen=True)
class RouterLeg:
    """The router's link on one VLAN (v<id>), plugged into the switch's access port r<id>."""

    vlan: int
    addresses: tuple[str, ...]  # sorted: "10.100.0.1/24", and "2001:db8:100::1/64" on a dual-stack VLAN
    mtu: int

    def describe(self) -> str:
        return f"VLAN {self.vlan}, {', '.join(self.addresses) or 'no address'}, mtu {self.mtu}"


@dataclass(frozen=True)
class EndpointPlug:
    """A test endpoint: its namespace's eth0, and where its host-side end is plugged."""

    name: str
    host: str
    vlan: int
    address: str
    gateway: str | None
    bridge: str | None  # the Linux bridge it joins, or None: an access port of ovs_bridge
    ovs_bridge: str | None
    mtu: int
    address6: str | None = None  # beside an IPv4 address, on a dual-stack VLAN
    gateway6: str | None = None

    def describe(self) -> str:
        where = f"bridge {self.bridge}" if self.bridge else f"access port of {self.ovs_bridge}"
        six = f" and {self.address6}" if self.address6 else ""
        return f"{self.host}, VLAN {self.vlan}, {self.address}{six}, {where}"


@dataclass(frozen=True)
class LabLayout:
    switch: str | None = None
    datapath: str = "netdev"
    hosts: Mapping[str, str] = field(default_factory=dict)  # host -> its namespace
    wires: Mapping[str, Wire] = field(default_factory=dict)
    switch_ports: Mapping[str, SwitchPort] = field(default_factory=dict)
    legs: Mapping[int, RouterLeg] = field(default_factory=dict)
    endpoints: Mapping[str, EndpointPlug] = field(default_factory=dict)
    dhcp: frozenset[int] = frozenset()  # VLANs the router serves DHCP on
    docker: frozenset[str] = frozenset()  # hosts with a lab dockerd


def host_nics(host: Host) -> list[tuple[str, int]]:
    """(NIC, MTU) of every NIC the host has before ovsnet: its uplinks (or its flat
    NIC), and the existing interfaces the topology attaches as access ports."""
    if host.layout is Layout.FLAT:
        return [(host.flat.nic, DEFAULT_MTU)] if host.flat else []
    return [(n, u.assumed_mtu) for u in host.uplinks for n in u.members] + [(ap.interface, DEFAULT_MTU) for ap in host.access_ports]


def routed(topo: Topology) -> list[Vlan]:
    """The VLANs the lab's router has a leg on: none without a switch to plug legs into."""
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v] for v in topo.router.vlans]


def switch_port(topo: Topology, host: Host, nic: str, port: str) -> SwitchPort:
    """The switch's port for a host's NIC: the same VLANs as the host's side (see topology/graph.py)."""
    ids = {v.name: v.id for v in topo.vlans.values()}
    mark = f"{host.name}:{nic}"
    uplink = host.uplink_of(nic)
    if uplink is not None:
        native = ids[uplink.native_vlan] if uplink.native_vlan else None
        trunks = frozenset(ids[v] for v in uplink.vlans) | ({native} if native else frozenset())
        if native is None:
            return SwitchPort(port, mark, trunks=trunks)
        return SwitchPort(port, mark, tag=native, trunks=trunks, vlan_mode="native-untagged")
    tag = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return SwitchPort(port, mark, tag=tag)


def lacp_bond(host: Host, nic: str) -> str | None:
    """The LACP bond this NIC is a member of: the switch faces it with a LAG."""
    up = host.uplink_of(nic)
    return up.bond.name if up is not None and up.bond is not None and up.bond.lacp is not Lacp.OFF else None


def switch_lag(topo: Topology, names: LabNames, host: Host, bond: str, ports: list[str]) -> SwitchPort:
    """The switch's side of a host's LACP bond: one bond of the member cables' ports, LACP active,
    so the host's bond negotiates with a real partner (a bond without LACP faces plain ports, as
    on a switch without a LAG). Until the host's bond answers LACP (a host before ovsnet, or
    after `down`), it falls back to active-backup over the port of the NIC that holds the
    host's address then (bond-primary), as switches' "LACP fallback" serves a host that boots."""
    up = next(u for u in host.uplinks if u.bond is not None and u.bond.name == bond)
    assert up.bond is not None
    tag, trunks, mode = trunk_of(topo, up.vlans, up.native_vlan)
    if len(ports) == 1:
        return SwitchPort(ports[0], f"{host.name}:{up.nic}", tag, trunks, mode)
    name = names.switch_port(host.name, bond)
    if name in ports:  # a NIC named like the bond: keep the LAG's name apart from its ports'
        name = names.switch_port(host.name, f"lag-{bond}")
    holder = host.uplink_nic if host.uplink_nic in up.members else up.nic
    config = other_config({"lacp-fallback-ab": "true", "bond-primary": names.switch_port(host.name, holder)}, up.bond.lacp_time.value)
    return SwitchPort(name, f"{host.name}:{bond}", tag, trunks, mode, tuple(sorted(ports)), up.bond.mode.value, Lacp.ACTIVE.value,
                      tuple(sorted(config.items())))


def router_port(names: LabNames, vlan: Vlan) -> SwitchPort:
    return SwitchPort(names.router_port(vlan.id), f"router:{vlan.name}", tag=vlan.id)


def wires(topo: Topology, names: LabNames) -> dict[str, Wire]:
    """Every cable as a veth pair; NICs with no cable get one whose far end is in the spare namespace."""
    switch = topo.lab.switch if topo.lab else None
    mtus = {(h.name, nic): mtu for h in topo.hosts.values() for nic, mtu in host_nics(h)}
    out: dict[str, Wire] = {}
    cabled: set[tuple[str, str | None]] = set()
    for cable in topo.lab.cables if topo.lab else ():
        a, b = (cable.a, cable.b) if cable.a.node != switch else (cable.b, cable.a)
        if b.node != switch and (b.node, b.nic or "") < (a.node, a.nic or ""):
            # Named by the same end whichever way the file writes it.
            a, b = b, a
        cabled |= {(a.node, a.nic), (b.node, b.nic)}
        mtu = mtus.get((a.node, a.nic or ""), DEFAULT_MTU)
        if switch and b.node == switch:
            w = Wire(a.node, names.host_ns(a.node), a.nic or "", switch, names.switch_ns, names.switch_port(a.node, a.nic or ""), mtu)
        else:
            w = Wire(a.node, names.host_ns(a.node), a.nic or "", b.node, names.host_ns(b.node), b.nic or "", mtu)
        out[w.key] = w
    for (host, nic), mtu in mtus.items():
        if (host, nic) not in cabled:
            w = Wire(host, names.host_ns(host), nic, NO_CABLE, names.spare_ns, names.switch_port(host, nic), mtu)
            out[w.key] = w
    return out


def endpoint_plug(topo: Topology, names: LabNames, name: str) -> EndpointPlug:
    ep = next(e for e in topo.endpoints if e.name == name)
    host = topo.hosts[ep.host]
    vlan = topo.vlans[ep.vlan]
    bridge = endpoint_bridge(host, ep)
    ovs_bridge = host.bridge.name if bridge is None and ep.attach is Attach.OVS else None

    def router(version: int) -> str | None:
        st = vlan.stack(version)
        return str(st.router) if st is not None and st.router is not None else None

    return EndpointPlug(ep.name, host.name, vlan.id, str(ep.address), router(ep.address.version), bridge, ovs_bridge,
                        endpoint_mtu(topo, host, ep), str(ep.address6) if ep.address6 else None,
                        router(6) if ep.address6 else None)


def docker_hosts(topo: Topology) -> frozenset[str]:
    """Hosts with Docker networks for `ovsnet up` to create: those get a lab dockerd."""
    return frozenset(h.name for h in topo.hosts.values() if DockerNetworks().desire(topo, h, Settings()))


def desired(topo: Topology, names: LabNames, docker: bool = False) -> LabLayout:
    """The lab the topology asks for (`docker`: the lab runs a dockerd in every host with Docker networks)."""
    from ovsnet.lab import dhcp

    switch = topo.lab.switch if topo.lab else None
    ports: dict[str, SwitchPort] = {}
    ws = wires(topo, names)
    if switch:
        lags: dict[tuple[str, str], list[str]] = {}
        for w in ws.values():
            if w.far_node != switch:
                continue
            bond = lacp_bond(topo.hosts[w.host], w.nic)
            if bond is not None:
                lags.setdefault((w.host, bond), []).append(w.far)
                continue
            p = switch_port(topo, topo.hosts[w.host], w.nic, w.far)
            ports[p.name] = p
        for (host, bond), ends in lags.items():
            p = switch_lag(topo, names, topo.hosts[host], bond, ends)
            ports[p.name] = p
    legs: dict[int, RouterLeg] = {}
    for vlan in routed(topo):
        addresses = tuple(sorted(f"{st.router}/{st.subnet.prefixlen}" for st in vlan.stacks if st.router is not None))
        legs[vlan.id] = RouterLeg(vlan.id, addresses, vlan.mtu)
        p = router_port(names, vlan)
        ports[p.name] = p
    routed_ids = set(legs)
    return LabLayout(
        switch=switch,
        datapath=topo.lab.datapath.value if topo.lab else "netdev",
        hosts={h: names.host_ns(h) for h in topo.hosts},
        wires=ws,
        switch_ports=ports,
        legs=legs,
        endpoints={e.name: endpoint_plug(topo, names, e.name) for e in topo.endpoints},
        dhcp=frozenset(v.id for v in dhcp.served_vlans(topo) if v.id in routed_ids),
        docker=docker_hosts(topo) if docker else frozenset(),
    )


# --- in the ledger ---------------------------------------------------------------------


def to_json(layout: LabLayout) -> dict[str, Any]:
    return {
        "switch": layout.switch,
        "datapath": layout.datapath,
        "hosts": dict(layout.hosts),
        "wires": [vars(w) for w in layout.wires.values()],
        "switch_ports": [{**vars(p), "trunks": sorted(p.trunks), "members": list(p.members), "config": [list(kv) for kv in p.config]}
                         for p in layout.switch_ports.values()],
        "legs": [{**vars(leg), "addresses": list(leg.addresses)} for leg in layout.legs.values()],
        "endpoints": [vars(e) for e in layout.endpoints.values()],
        "dhcp": sorted(layout.dhcp),
        "docker": sorted(layout.docker),
    }


def from_json(raw: Mapping[str, Any]) -> LabLayout:
    """The layout the ledger recorded; ValueError (KeyError, TypeError) when it is not one."""
    ws = [Wire(**w) for w in raw["wires"]]
    ports = [SwitchPort(**{**p, "trunks": frozenset(p["trunks"]), "members": tuple(p.get("members", ())),
                           "config": tuple((str(k), str(v)) for k, v in p.get("config", ()))}) for p in raw["switch_ports"]]
    legs = [RouterLeg(leg["vlan"], tuple(leg["addresses"]), leg["mtu"]) for leg in raw["legs"]]
    eps = [EndpointPlug(**e) for e in raw["endpoints"]]
    return LabLayout(
        switch=raw["switch"],
        datapath=str(raw["datapath"]),
        hosts={str(h): str(ns) for h, ns in raw["hosts"].items()},
        wires={w.key: w for w in ws},
        switch_ports={p.name: p for p in ports},
        legs={leg.vlan: leg for leg in legs},
        endpoints={e.name: e for e in eps},
        dhcp=frozenset(int(v) for v in raw["dhcp"]),
        docker=frozenset(str(h) for h in raw["docker"]),
    )
