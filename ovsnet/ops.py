"""The vocabulary shared by the planner and the backends.

The planner turns a diff into these operations; the OVSDB backend executes
every Ovs* operation of an apply in one transaction, the netlink backend the
Nl* operations in order over one socket. Each is small and idempotent-minded:
it says the end state of one object, never "toggle".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

# --- OVSDB ---------------------------------------------------------------


@dataclass(frozen=True)
class OvsAddBridge:
    name: str
    datapath_type: str  # "system" or "netdev"
    external_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OvsDelBridge:
    name: str


@dataclass(frozen=True)
class OvsAddPort:
    """Create a port with one interface of the same name."""

    bridge: str
    name: str
    iface_type: str = ""  # "" for an existing kernel device, "internal" for a port OVS creates
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None  # None lets OVS pick (access with tag, trunk without)
    external_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OvsSetPort:
    """Set the VLAN columns and marks of an existing port, whole."""

    name: str
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OvsSetBridge:
    name: str
    datapath_type: str
    external_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OvsDelPort:
    bridge: str
    name: str


OvsOp = Union[OvsAddBridge, OvsDelBridge, OvsSetBridge, OvsAddPort, OvsSetPort, OvsDelPort]

# --- netlink -------------------------------------------------------------


@dataclass(frozen=True)
class NlCreateBridge:
    name: str
    mtu: int | None = None
    alias: str | None = None


@dataclass(frozen=True)
class NlCreateVeth:
    name: str
    peer: str
    mtu: int | None = None
    alias: str | None = None  # written on both ends


@dataclass(frozen=True)
class NlSetLink:
    """Change what is given, leave what is None alone.

    master="" releases the link from its bridge.
    """

    name: str
    up: bool | None = None
    mtu: int | None = None
    master: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class NlDeleteLink:
    name: str


@dataclass(frozen=True)
class NlAddAddress:
    ifname: str
    cidr: str


@dataclass(frozen=True)
class NlDelAddress:
    ifname: str
    cidr: str


@dataclass(frozen=True)
class NlReplaceRoute:
    """`ip route replace`: atomic, so the host is never without the route."""

    dst: str  # "default" or CIDR
    ifname: str
    gateway: str | None = None
    metric: int = 0
    proto: str = "static"  # restoring a route puts its original protocol back too


@dataclass(frozen=True)
class NlDelRoute:
    dst: str
    ifname: str
    gateway: str | None = None
    metric: int = 0


NlOp = Union[
    NlCreateBridge,
    NlCreateVeth,
    NlSetLink,
    NlDeleteLink,
    NlAddAddress,
    NlDelAddress,
    NlReplaceRoute,
    NlDelRoute,
]

# --- resolv.conf and Docker --------------------------------------------------


@dataclass(frozen=True)
class DnsSetServers:
    """Replace the nameserver lines of the host's resolv.conf, keep the rest."""

    servers: tuple[str, ...]


@dataclass(frozen=True)
class DockerCreateNetwork:
    name: str
    bridge: str
    subnet: str | None
    gateway: str | None
    ip_range: str | None
    mtu: int
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DockerRemoveNetwork:
    name: str


DockerOp = Union[DockerCreateNetwork, DockerRemoveNetwork]
Op = Union[OvsOp, NlOp, DnsSetServers, DockerOp]
