"""What a host has now, as read from OVSDB, netlink, its files and Docker.

The backends fill these in; each kind's planner compares them with its
desired objects. Everything is frozen so a snapshot taken before an apply can
be kept as the "before" of every change and for rollback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from ovsnet.errors import BackendError
from ovsnet.marks import (
    DOCKER_OWNER_LABEL,
    OWNER_KEY,
    ROLE_KEY,
    alias_owner,
    alias_role,
)


@dataclass(frozen=True)
class OvsInterface:
    name: str
    type: str = ""  # "" is a system (kernel/netdev) interface
    ofport: int | None = None  # -1 means ovs-vswitchd failed to open it
    error: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    mac: str | None = None  # the MAC asked for (Interface.mac; internal ports only)
    # What ovs-vswitchd reports (ephemeral columns): the carrier, and for a port
    # with LACP whether this interface's partner is current (None: no LACP).
    link_state: str | None = None  # "up", "down", or None before ovs-vswitchd has looked
    lacp_current: bool | None = None


@dataclass(frozen=True)
class OvsPort:
    name: str
    bridge: str
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    interfaces: tuple[OvsInterface, ...] = ()
    external_ids: Mapping[str, str] = field(default_factory=dict)
    # Bonds (a port of several interfaces): Port.bond_mode, Port.lacp, and
    # other_config (lacp-time among others); None when unset.
    bond_mode: str | None = None
    lacp: str | None = None
    other_config: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str | None:
        return self.external_ids.get(OWNER_KEY)

    @property
    def role(self) -> str | None:
        return self.external_ids.get(ROLE_KEY)

    @property
    def is_bond(self) -> bool:
        return len(self.interfaces) > 1

    @property
    def iface_type(self) -> str:
        return self.interfaces[0].type if len(self.interfaces) == 1 else ""


@dataclass(frozen=True)
class OvsBridge:
    name: str
    datapath_type: str = ""
    ports: tuple[str, ...] = ()
    external_ids: Mapping[str, str] = field(default_factory=dict)

    @property
    def owner(self) -> str | None:
        return self.external_ids.get(OWNER_KEY)


@dataclass(frozen=True)
class OvsState:
    bridges: Mapping[str, OvsBridge] = field(default_factory=dict)
    ports: Mapping[str, OvsPort] = field(default_factory=dict)
    cur_cfg: int = 0


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str = ""  # "bridge", "veth", "tun", "openvswitch", "" for plain NICs
    master: str | None = None
    peer: str | None = None  # for veths: the other end's name, when visible
    mtu: int = 1500
    up: bool = False
    alias: str | None = None
    mac: str | None = None

    @property
    def owner(self) -> str | None:
        return alias_owner(self.alias)

    @property
    def role(self) -> str | None:
        return alias_role(self.alias)


@dataclass(frozen=True, order=True)
class Address:
    ifname: str
    cidr: str  # "192.0.2.10/24"
    valid: int | None = field(default=None, compare=False)  # seconds left of a lease (or SLAAC); None: static

    @property
    def dynamic(self) -> bool:
        return self.valid is not None


@dataclass(frozen=True, order=True)
class Route:
    dst: str  # "default" or a CIDR
    ifname: str
    gateway: str | None = None
    metric: int = 0
    proto: str = "static"  # "kernel" for connected routes, "boot", "static", "dhcp", ...


@dataclass(frozen=True)
class LinuxState:
    links: Mapping[str, Link] = field(default_factory=dict)
    addresses: tuple[Address, ...] = ()
    routes: tuple[Route, ...] = ()

    def addresses_of(self, ifname: str) -> tuple[str, ...]:
        return tuple(a.cidr for a in self.addresses if a.ifname == ifname)

    def address(self, ifname: str, cidr: str) -> Address | None:
        return next((a for a in self.addresses if a.ifname == ifname and a.cidr == cidr), None)

    def routes_via(self, ifname: str) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.ifname == ifname)

    def default_routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.dst == "default")


@dataclass(frozen=True)
class DockerNetwork:
    name: str
    id: str
    driver: str
    bridge: str | None  # com.docker.network.bridge.name
    subnet: str | None
    gateway: str | None
    ip_range: str | None
    mtu: int | None
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[str, ...] = ()  # names of attached containers
    # The IPv6 pool of a network with IPv6 enabled; subnet/gateway/ip_range are the IPv4 one.
    subnet6: str | None = None
    gateway6: str | None = None
    ip_range6: str | None = None

    @property
    def owner(self) -> str | None:
        return self.labels.get(DOCKER_OWNER_LABEL)


@dataclass(frozen=True)
class HostFiles:
    """The host's files as a handover reads them: under `root` ("/" on a real host), or
    given texts (a snapshot in a test). A path's text, or None when it does not exist."""

    root: str | None = None
    texts: Mapping[str, str | None] = field(default_factory=dict)

    def text(self, path: str) -> str | None:
        if path in self.texts or self.root is None:
            return self.texts.get(path)
        try:
            with open(os.path.join(self.root, path.lstrip("/")), encoding="utf-8") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise BackendError(f"cannot read {path}: {exc}") from None

    def names(self, directory: str) -> tuple[str, ...]:
        """The file names in a directory (given texts included), sorted."""
        prefix = directory.rstrip("/") + "/"
        given = {p[len(prefix):] for p in self.texts if p.startswith(prefix) and "/" not in p[len(prefix):]}
        found: set[str] = set()
        if self.root is not None:
            try:
                found = set(os.listdir(os.path.join(self.root, directory.lstrip("/"))))
            except OSError:
                pass
        return tuple(sorted(given | found))


@dataclass(frozen=True)
class Current:
    """One read of the host: the "actual" side of every kind's diff."""

    ovs: OvsState
    linux: LinuxState
    dns: tuple[str, ...] | None = None  # resolv.conf nameservers; None: not read
    docker: Mapping[str, DockerNetwork] | None = None  # None: Docker not reachable or not asked
    managers: Mapping[str, Any] = field(default_factory=dict)  # link -> ovsnet.managers.Managed, when asked
    files: HostFiles | None = None  # the host's configuration files, for a handover; None: not read
