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
from ovsnet.kinds.docker_network import DockerNetworks
from ovsnet.kinds.ovs_port import OvsAddPort, OvsSetPort
from ovsnet.lab.endpoints import endpoint_bridge, endpoint_mtu
from ovsnet.lab.names import LabNames
from ovsnet.marks import LAB_KEY
from ovsnet.topology.model import DEFAULT_MTU, Attach, Host, Layout, Topology, Vlan

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
    """A port of the lab switch: facing a host's NIC (its trunk) or a router leg (access)."""

    name: str
    mark: str  # external_ids ovsnet-lab: "HOST:NIC" or "router:VLAN"
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None

    def describe(self) -> str:
        if self.trunks:
            vlans = ",".join(str(v) for v in sorted(self.trunks))
            native = f", native {self.tag} untagged" if self.vlan_mode == "native-untagged" and self.tag is not None else ""
            return f"trunk {vlans}{native}"
        return f"access tag {self.tag}" if self.tag is not None else "untagged"

    def add_op(self) -> OvsAddPort:
        return OvsAddPort(SWITCH_BRIDGE, self.name, tag=self.tag, trunks=self.trunks, vlan_mode=self.vlan_mode,
                          external_ids={LAB_KEY: self.mark})

    def set_op(self) -> OvsSetPort:
        return OvsSetPort(self.name, self.tag, self.trunks, self.vlan_mode, {LAB_KEY: self.mark})


@dataclass(frozen=True)
class RouterLeg:
    """The router's link on one VLAN (v<id>), plugged into the switch's access port r<id>."""

    vlan: int
    address: str | None  # "10.100.0.1/24": the VLAN's router address
    mtu: int

    def describe(self) -> str:
        return f"VLAN {self.vlan}, {self.address or 'no address'}, mtu {self.mtu}"


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

    def describe(self) -> str:
        where = f"bridge {self.bridge}" if self.bridge else f"access port of {self.ovs_bridge}"
        return f"{self.host}, VLAN {self.vlan}, {self.address}, {where}"


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
    return [(u.nic, u.assumed_mtu) for u in host.uplinks] + [(ap.interface, DEFAULT_MTU) for ap in host.access_ports]


def routed(topo: Topology) -> list[Vlan]:
    """The VLANs the lab's router has a leg on: none without a switch to plug legs into."""
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v] for v in topo.router.vlans]


def switch_port(topo: Topology, host: Host, nic: str, port: str) -> SwitchPort:
    """The switch's port for a host's NIC: the same VLANs as the host's side (see topology/graph.py)."""
    ids = {v.name: v.id for v in topo.vlans.values()}
    mark = f"{host.name}:{nic}"
    uplink = next((u for u in host.uplinks if u.nic == nic), None)
    if uplink is not None:
        native = ids[uplink.native_vlan] if uplink.native_vlan else None
        trunks = frozenset(ids[v] for v in uplink.vlans) | ({native} if native else frozenset())
        if native is None:
            return SwitchPort(port, mark, trunks=trunks)
        return SwitchPort(port, mark, tag=native, trunks=trunks, vlan_mode="native-untagged")
    tag = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return SwitchPort(port, mark, tag=tag)


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
    gateway = str(vlan.router) if vlan.router is not None and vlan.router.version == ep.address.version else None
    ovs_bridge = host.bridge.name if bridge is None and ep.attach is Attach.OVS else None
    return EndpointPlug(ep.name, host.name, vlan.id, str(ep.address), gateway, bridge, ovs_bridge,
                        endpoint_mtu(topo, host, ep))


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
        for w in ws.values():
            if w.far_node == switch:
                p = switch_port(topo, topo.hosts[w.host], w.nic, w.far)
                ports[p.name] = p
    legs: dict[int, RouterLeg] = {}
    for vlan in routed(topo):
        address = f"{vlan.router}/{vlan.subnet.prefixlen}" if vlan.router is not None and vlan.subnet is not None else None
        legs[vlan.id] = RouterLeg(vlan.id, address, vlan.mtu)
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
        "switch_ports": [{**vars(p), "trunks": sorted(p.trunks)} for p in layout.switch_ports.values()],
        "legs": [vars(leg) for leg in layout.legs.values()],
        "endpoints": [vars(e) for e in layout.endpoints.values()],
        "dhcp": sorted(layout.dhcp),
        "docker": sorted(layout.docker),
    }


def from_json(raw: Mapping[str, Any]) -> LabLayout:
    """The layout the ledger recorded; ValueError (KeyError, TypeError) when it is not one."""
    ws = [Wire(**w) for w in raw["wires"]]
    ports = [SwitchPort(**{**p, "trunks": frozenset(p["trunks"])}) for p in raw["switch_ports"]]
    legs = [RouterLeg(**leg) for leg in raw["legs"]]
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
