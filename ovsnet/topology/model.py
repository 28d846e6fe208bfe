"""The desired layout, as read from topology.toml: intent only, no I/O.

Names are resolved by the loader: every VLAN reference here is a VLAN name
that exists in `Topology.vlans`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Mapping, Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]

DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"
DEFAULT_MTU = 1500


class Datapath(str, enum.Enum):
    SYSTEM = "system"  # the kernel datapath, what real hosts use
    NETDEV = "netdev"  # userspace, what the lab uses


class Layout(str, enum.Enum):
    VLAN = "vlan"  # the seed's recommended layout: OVS trunk + per-VLAN Linux bridges
    FLAT = "flat"  # the seed's simple layout: NIC in a Linux bridge, Docker -b


class Attach(str, enum.Enum):
    DOCKER = "docker"  # on the VLAN's Docker (Linux) bridge
    OVS = "ovs"  # an access port straight on the OVS bridge


@dataclass(frozen=True)
class Stack:
    """One address family of a VLAN: its subnet, its router there, the size of each host's slice.

    `suffix` is how the file spells its keys: "" for subnet/router/host_slice
    (and a Docker bridge's ip_range), "6" for subnet6/router6/host_slice6 (and
    ip_range6), so findings name the key that was written.
    """

    subnet: IPNetwork
    router: IPAddress | None
    host_slice: int | None
    suffix: str = ""

    @property
    def version(self) -> int:
        return self.subnet.version


@dataclass(frozen=True)
class Vlan:
    name: str
    id: int
    # `subnet` is the VLAN's subnet of either family (IPv6 on a v6-only VLAN);
    # `subnet6` is the IPv6 one beside an IPv4 `subnet` (a dual-stack VLAN).
    subnet: IPNetwork | None = None
    router: IPAddress | None = None  # the containers' gateway on this VLAN
    mtu: int = DEFAULT_MTU
    host_slice: int | None = None  # prefix length of each host's container slice
    subnet6: IPNetwork | None = None
    router6: IPAddress | None = None
    host_slice6: int | None = None

    @property
    def stacks(self) -> tuple[Stack, ...]:
        """The VLAN's address families, as written: `subnet`'s first, then `subnet6`'s."""
        out = []
        if self.subnet is not None:
            out.append(Stack(self.subnet, self.router, self.host_slice))
        if self.subnet6 is not None:
            out.append(Stack(self.subnet6, self.router6, self.host_slice6, "6"))
        return tuple(out)

    def stack(self, version: int) -> Stack | None:
        """The VLAN's IPv4 (4) or IPv6 (6) family, whichever key holds it; None when it has none."""
        return next((s for s in self.stacks if s.version == version), None)

    @property
    def subnets(self) -> tuple[IPNetwork, ...]:
        return tuple(s.subnet for s in self.stacks)

    @property
    def routers(self) -> tuple[IPAddress, ...]:
        return tuple(s.router for s in self.stacks if s.router is not None)


class BondMode(str, enum.Enum):
    """OVS Port.bond_mode."""

    ACTIVE_BACKUP = "active-backup"
    BALANCE_SLB = "balance-slb"
    BALANCE_TCP = "balance-tcp"  # needs LACP


class Lacp(str, enum.Enum):
    """OVS Port.lacp."""

    OFF = "off"
    PASSIVE = "passive"
    ACTIVE = "active"


class LacpTime(str, enum.Enum):
    """OVS Port other_config:lacp-time: how often LACP PDUs go out (30 s or 1 s)."""

    SLOW = "slow"
    FAST = "fast"


DEFAULT_BOND = "bond0"


@dataclass(frozen=True)
class Bond:
    """Several NICs as one OVS port (an OVS bond): the uplink trunk over all of them."""

    name: str  # the OVS port's name (an OVS bond has no kernel link of its own)
    nics: tuple[str, ...]
    mode: BondMode = BondMode.ACTIVE_BACKUP
    lacp: Lacp = Lacp.OFF
    lacp_time: LacpTime = LacpTime.SLOW


@dataclass(frozen=True)
class Uplink:
    """A physical NIC (or a bond of several) added to the OVS bridge as a trunk."""

    nic: str  # the NIC; for a bond, its first member
    vlans: tuple[str, ...]
    native_vlan: str | None = None  # carried untagged on the wire
    # None: the file leaves it out, and the NIC's MTU is left as it is (a NIC
    # already at jumbo MTU must not drop to 1500 because a topology never
    # mentioned it).
    mtu: int | None = None
    bond: Bond | None = None  # `nics = [...]` in the file

    @property
    def assumed_mtu(self) -> int:
        """The MTU the checks and the lab take the NIC to have."""
        return self.mtu or DEFAULT_MTU

    @property
    def members(self) -> tuple[str, ...]:
        """Every NIC this uplink uses: the bond's, or the one NIC."""
        return self.bond.nics if self.bond else (self.nic,)

    @property
    def port(self) -> str:
        """The OVS port's name: the bond's, or the NIC's."""
        return self.bond.name if self.bond else self.nic


class Handover(str, enum.Enum):
    """Who runs the management port's configuration once the NIC is a bridge port."""

    NONE = "none"  # refuse to move an address a network manager would put back
    AUTO = "auto"  # whichever manager manages the NIC now
    NETWORKD = "networkd"  # systemd-networkd (netplan's networkd renderer included)
    NETWORKMANAGER = "networkmanager"
    IFUPDOWN = "ifupdown"  # Debian's /etc/network/interfaces
    DHCLIENT = "dhclient"  # an ISC dhclient run by hand or by a script, no manager


@dataclass(frozen=True)
class Management:
    """The host's own addresses, moved from the NIC onto the bridge side."""

    addresses: tuple[IPInterface, ...]
    gateway: IPAddress | None = None
    dns: tuple[IPAddress, ...] = ()
    vlan: str | None = None  # None: untagged on the OVS bridge
    port: str = "mgmt0"  # OVS internal port that receives the addresses
    from_nic: str | None = None  # where the addresses are now; default: the first uplink
    dhcp: bool = False  # addresses = "dhcp": the address is a lease, and follows the host to the port
    handover: Handover = Handover.NONE
    gateway6: IPAddress | None = None  # the IPv6 default route's next hop, beside an IPv4 `gateway`

    @property
    def gateways(self) -> tuple[IPAddress, ...]:
        """The default routes' next hops, one per family."""
        return tuple(g for g in (self.gateway, self.gateway6) if g is not None)


@dataclass(frozen=True)
class DockerBridge:
    """A Linux bridge for Docker on one VLAN, patched into OVS by a veth pair."""

    bridge: str
    vlan: str
    patch_ovs: str  # veth end that becomes an OVS access port
    patch_bridge: str  # veth end enslaved to the Linux bridge
    network: str | None = None  # Docker network to create on the bridge
    ip_range: IPNetwork | None = None  # explicit slice; else the address plan picks one
    mtu: int | None = None  # default: the VLAN's
    ip_range6: IPNetwork | None = None  # explicit slice of the VLAN's subnet6

    def explicit(self, suffix: str) -> IPNetwork | None:
        """The pinned range of a VLAN family's keys ("" pairs with subnet, "6" with subnet6)."""
        return self.ip_range6 if suffix == "6" else self.ip_range


@dataclass(frozen=True)
class AccessPort:
    """An existing interface attached to the OVS bridge on one VLAN."""

    interface: str
    vlan: str


@dataclass(frozen=True)
class OvsBridgeSpec:
    name: str = "br-ovs"
    datapath: Datapath = Datapath.SYSTEM


@dataclass(frozen=True)
class FlatBridge:
    """The seed's first way: the NIC straight into a Linux bridge, Docker on it."""

    bridge: str
    nic: str
    vlan: str | None = None  # which topology VLAN this segment is, for addresses and the lab
    network: str | None = None  # informational: Docker's default network uses -b


@dataclass(frozen=True)
class Host:
    name: str
    layout: Layout = Layout.VLAN
    ovsdb: str = DEFAULT_OVSDB
    docker_host: str | None = None
    docker_required: bool = False  # refuse to apply anything when Docker is not reachable
    bridge: OvsBridgeSpec = field(default_factory=OvsBridgeSpec)
    uplinks: tuple[Uplink, ...] = ()
    management: Management | None = None
    docker: tuple[DockerBridge, ...] = ()
    access_ports: tuple[AccessPort, ...] = ()
    flat: FlatBridge | None = None

    @property
    def uplink_nic(self) -> str | None:
        """The NIC the host's own address lives on before the first `up`."""
        if self.management and self.management.from_nic:
            return self.management.from_nic
        if self.flat:
            return self.flat.nic
        return self.uplinks[0].nic if self.uplinks else None

    @property
    def management_vlan(self) -> str | None:
        """The VLAN of the host's own addresses: declared, or the uplink's native one."""
        if self.management is None:
            return None
        if self.layout is Layout.FLAT:
            return self.flat.vlan if self.flat else None
        if self.management.vlan:
            return self.management.vlan
        up = self.uplink_of(self.uplink_nic)
        return up.native_vlan if up else None

    def uplink_of(self, nic: str | None) -> Uplink | None:
        """The uplink that uses this NIC (one NIC, or a bond's member)."""
        return next((u for u in self.uplinks if nic in u.members), None)


@dataclass(frozen=True)
class Router:
    """Routes between the listed VLANs; at each VLAN's `router` address."""

    name: str = "router"
    vlans: tuple[str, ...] = ()


@dataclass(frozen=True)
class Endpoint:
    """A test endpoint: something on a VLAN with an address, for verify."""

    name: str
    host: str
    vlan: str
    address: IPInterface
    attach: Attach = Attach.DOCKER
    address6: IPInterface | None = None  # its IPv6 address beside an IPv4 `address`

    @property
    def addresses(self) -> tuple[IPInterface, ...]:
        return (self.address,) if self.address6 is None else (self.address, self.address6)

    def address_of(self, version: int) -> IPInterface | None:
        return next((a for a in self.addresses if a.version == version), None)


SWITCH = "switch"


@dataclass(frozen=True)
class CableEnd:
    node: str  # a host name, or the lab switch's name
    nic: str | None = None  # None on the switch side: the lab names the port

    def __str__(self) -> str:
        return f"{self.node}:{self.nic}" if self.nic else self.node


@dataclass(frozen=True)
class Cable:
    a: CableEnd
    b: CableEnd


@dataclass(frozen=True)
class LabSpec:
    """The file's [lab] section: what the lab should simulate (the running lab is ovsnet.lab.names.Lab)."""

    switch: str | None = None  # a simulated upstream switch, when cables go to it
    cables: tuple[Cable, ...] = ()
    datapath: Datapath = Datapath.NETDEV  # the lab has no OVS kernel module


@dataclass(frozen=True)
class VerifySettings:
    """How `ovsnet verify` probes; nothing here is applied to a host."""

    # A local image reference (never pulled) for the short-lived probe
    # containers, one per Docker network; it must be able to run `sleep`.
    probe_image: str | None = None


@dataclass(frozen=True)
class Topology:
    name: str
    vlans: Mapping[str, Vlan]
    hosts: Mapping[str, Host]
    router: Router | None = None
    endpoints: tuple[Endpoint, ...] = ()
    lab: LabSpec | None = None
    source: str = "<memory>"
    verify: VerifySettings = field(default_factory=VerifySettings)

    def vlan_by_id(self) -> dict[int, Vlan]:
        return {v.id: v for v in self.vlans.values()}
