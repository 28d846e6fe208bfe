"""One host's part of the topology, spelled as the objects the backends hold.

This is the "desired" side of the planner's diff: OVS bridge and ports with
their VLAN columns, Linux bridges and veth pairs, where the host's own
addresses and routes must end up, and the Docker networks.
"""

from __future__ import annotations

from dataclasses import dataclass

from ovsnet.topology import addressing
from ovsnet.topology.model import Host, Layout, Topology

ROLE_BRIDGE = "bridge"
ROLE_UPLINK = "uplink"
ROLE_MGMT = "management"
ROLE_PATCH = "patch"
ROLE_ACCESS = "access"
ROLE_DOCKER_BRIDGE = "docker-bridge"
ROLE_FLAT_BRIDGE = "flat-bridge"


@dataclass(frozen=True)
class DesiredPort:
    name: str
    role: str
    iface_type: str = ""
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.vlan_mode in ("trunk", "native-untagged", "native-tagged"):
            vlans = ",".join(str(v) for v in sorted(self.trunks))
            native = f", native {self.tag} untagged" if self.vlan_mode == "native-untagged" else ""
            return f"trunk {vlans}{native}"
        if self.tag is not None:
            return f"access tag {self.tag}" + (" (internal)" if self.iface_type == "internal" else "")
        return "untagged" + (" (internal)" if self.iface_type == "internal" else "")


@dataclass(frozen=True)
class DesiredLinuxBridge:
    name: str
    mtu: int
    role: str
    reason: str = ""


@dataclass(frozen=True)
class DesiredVeth:
    name: str  # the end that goes into OVS
    peer: str  # the end enslaved to `master`
    master: str
    mtu: int
    reason: str = ""


@dataclass(frozen=True)
class DesiredNic:
    """A NIC that is not ovsnet's but whose MTU the topology sets (an uplink's `mtu`).

    Its MTU before the first change is kept in the state file so `down`
    puts that exact value back.
    """

    name: str
    mtu: int
    reason: str = ""


@dataclass(frozen=True)
class DesiredUplink:
    """Where the host's own addresses and default route must end up."""

    nic: str  # where they are before the first `up`
    target: str  # the OVS internal port, or the flat Linux bridge
    addresses: tuple[str, ...]
    gateway: str | None
    dns: tuple[str, ...]
    flat: bool = False


@dataclass(frozen=True)
class DesiredDockerNetwork:
    name: str
    bridge: str
    vlan: str
    subnet: str | None
    gateway: str | None
    ip_range: str | None
    mtu: int


@dataclass(frozen=True)
class DesiredHost:
    topology: str
    host: str
    layout: Layout
    ovsdb: str
    bridge: str | None
    datapath: str
    ports: tuple[DesiredPort, ...]
    linux_bridges: tuple[DesiredLinuxBridge, ...]
    veths: tuple[DesiredVeth, ...]
    uplink: DesiredUplink | None
    docker_networks: tuple[DesiredDockerNetwork, ...]
    flat_nic: str | None = None
    nics: tuple[DesiredNic, ...] = ()


def for_host(topo: Topology, host: Host, datapath: str | None = None) -> DesiredHost:
    """The host's desired objects; `datapath` overrides the file's (the lab forces netdev)."""
    vlans = topo.vlans

    def vid(name: str) -> int:
        return vlans[name].id
    slices, _ = addressing.plan(topo)
    uplink = None
    m = host.management
    if m and host.uplink_nic:
        target = host.flat.bridge if host.layout is Layout.FLAT and host.flat else m.port
        uplink = DesiredUplink(
            nic=host.uplink_nic,
            target=target,
            addresses=tuple(str(a) for a in m.addresses),
            gateway=str(m.gateway) if m.gateway else None,
            dns=tuple(str(d) for d in m.dns),
            flat=host.layout is Layout.FLAT,
        )
    if host.layout is Layout.FLAT and host.flat:
        mtu = topo.vlans[host.flat.vlan].mtu if host.flat.vlan else 1500
        return DesiredHost(
            topology=topo.name,
            host=host.name,
            layout=host.layout,
            ovsdb=host.ovsdb,
            bridge=None,
            datapath="",
            ports=(),
            linux_bridges=(DesiredLinuxBridge(host.flat.bridge, mtu, ROLE_FLAT_BRIDGE, f"flat layout: {host.flat.nic} and Docker share it"),),
            veths=(),
            uplink=uplink,
            docker_networks=(),
            flat_nic=host.flat.nic,
        )

    ports: list[DesiredPort] = []
    for up in host.uplinks:
        trunks = frozenset(vid(v) for v in up.vlans) | ({vid(up.native_vlan)} if up.native_vlan else frozenset())
        if up.native_vlan:
            ports.append(DesiredPort(up.nic, ROLE_UPLINK, "", vid(up.native_vlan), trunks, "native-untagged", f"uplink trunk, {up.native_vlan} untagged"))
        else:
            ports.append(DesiredPort(up.nic, ROLE_UPLINK, "", None, trunks, "trunk", "uplink trunk"))
    if m:
        mvlan = host.management_vlan
        ports.append(DesiredPort(m.port, ROLE_MGMT, "internal", vid(mvlan) if mvlan else None, frozenset(), "access", f"the host's own addresses, VLAN {mvlan}"))
    bridges, veths, networks = [], [], []
    # Each VLAN's strings once, not once per Docker network: 4094 VLANs x 50 hosts add up.
    vlan_text: dict[str, tuple[str | None, str | None]] = {}
    for d in host.docker:
        mtu = d.mtu or topo.vlans[d.vlan].mtu
        ports.append(DesiredPort(d.patch_ovs, ROLE_PATCH, "", vid(d.vlan), frozenset(), "access", f"patch to Docker bridge {d.bridge}, VLAN {d.vlan}"))
        bridges.append(DesiredLinuxBridge(d.bridge, mtu, ROLE_DOCKER_BRIDGE, f"Docker bridge for VLAN {d.vlan}"))
        veths.append(DesiredVeth(d.patch_ovs, d.patch_bridge, d.bridge, mtu, f"patch link OVS <-> {d.bridge}"))
        if d.network:
            v = topo.vlans[d.vlan]
            if d.vlan not in vlan_text:
                vlan_text[d.vlan] = (str(v.subnet) if v.subnet else None, str(v.router) if v.router else None)
            subnet, gateway = vlan_text[d.vlan]
            sl = slices.get((host.name, d.vlan))
            networks.append(
                DesiredDockerNetwork(
                    name=d.network,
                    bridge=d.bridge,
                    vlan=d.vlan,
                    subnet=subnet,
                    gateway=gateway,
                    ip_range=str(sl.network) if sl else None,
                    mtu=mtu,
                )
            )
    for ap in host.access_ports:
        ports.append(DesiredPort(ap.interface, ROLE_ACCESS, "", vid(ap.vlan), frozenset(), "access", f"access port on VLAN {ap.vlan}"))
    return DesiredHost(
        topology=topo.name,
        host=host.name,
        layout=host.layout,
        ovsdb=host.ovsdb,
        bridge=host.bridge.name,
        datapath=datapath or host.bridge.datapath.value,
        ports=tuple(ports),
        linux_bridges=tuple(bridges),
        veths=tuple(veths),
        uplink=uplink,
        docker_networks=tuple(networks),
        # Only uplinks: access ports and the flat NIC have no mtu in the topology.
        nics=tuple(DesiredNic(up.nic, up.mtu, "the uplink's mtu in the topology") for up in host.uplinks if up.mtu is not None),
    )
