"""The netlink operations every kind shares: set/delete a link, addresses, routes.

An op says the end state of one object and encodes itself into rtnetlink
requests (ovsnet.backends.netlink.codec); the batch sender
(ovsnet.backends.netlink.batch) is the only code that sends them, for `up`,
`down`, rollback and the lab alike. Kinds that create their own sort of link
(a Linux bridge, a veth pair) define their create op beside themselves, on
the same base.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Callable, ClassVar

from ovsnet.backends.netlink import codec

IndexOf = Callable[[str], int]
Message = tuple[bytes, "str | None"]  # a request, and the link it creates (to undo a half-made create)

PROTO_NAMES = {2: "kernel", 3: "boot", 4: "static", 9: "ra", 16: "dhcp"}
RTPROT_STATIC = 4


def proto_number(name: str) -> int:
    """The route protocol as the kernel numbers it; the names read() gives, or digits."""
    for number, known in PROTO_NAMES.items():
        if known == name:
            return number
    return int(name) if name.isdigit() else RTPROT_STATIC


class NlOp:
    """Base of every netlink op."""

    backend: ClassVar[str] = "netlink"
    # A delete of what is already gone reached the end state it asked for:
    # the kernel's answers that say "gone" for this op.
    absent_is_done: ClassVar[frozenset[int]] = frozenset()

    def messages(self, index_of: IndexOf) -> list[Message]:
        raise NotImplementedError

    def index_needs(self) -> frozenset[str]:
        """Links whose index the encoding needs (looked up after earlier creates are flushed)."""
        return frozenset()

    def removes(self) -> frozenset[str]:
        """Names that no longer exist here once the op ran (their cached index is stale)."""
        return frozenset()

    def describe(self) -> str:
        raise NotImplementedError

    def subject(self) -> str:
        """The link the op is about, for "no such link" errors."""
        return getattr(self, "name", "") or getattr(self, "ifname", "")

    def explain(self, code: int) -> str:
        """Why the kernel refused, in words that say what to do."""
        text = os.strerror(code)
        if code == errno.ENODEV:
            return f"no link named {self.subject()} ({text})"
        return text


@dataclass(frozen=True)
class NlSetLink(NlOp):
    """Change what is given, leave what is None alone.

    master="" releases the link from its bridge.
    """

    name: str
    up: bool | None = None
    mtu: int | None = None
    master: str | None = None
    alias: str | None = None

    def messages(self, index_of: IndexOf) -> list[Message]:
        master = None
        if self.master is not None:
            master = index_of(self.master) if self.master else 0
        if self.up is None and self.mtu is None and master is None and self.alias is None:
            return []
        return [(codec.set_link(self.name, self.up, self.mtu, master, self.alias), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.master}) if self.master else frozenset()

    def describe(self) -> str:
        parts = []
        if self.master is not None:
            parts.append(f"master {self.master}" if self.master else "nomaster")
        if self.mtu is not None:
            parts.append(f"mtu {self.mtu}")
        if self.alias is not None:
            parts.append(f"alias {self.alias!r}")
        if self.up is not None:
            parts.append("up" if self.up else "down")
        return f"set link {self.name} {' '.join(parts)}".rstrip()

    def explain(self, code: int) -> str:
        # EINVAL alone does not say that the MTU is what the NIC refused.
        if code == errno.EINVAL and self.mtu is not None:
            return f"{os.strerror(code)}: {self.name} does not take mtu {self.mtu} (more than its driver allows); lower the mtu in the topology"
        return super().explain(code)


@dataclass(frozen=True)
class NlDeleteLink(NlOp):
    name: str
    absent_is_done: ClassVar[frozenset[int]] = frozenset({errno.ENODEV})

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.del_link(self.name), None)]

    def removes(self) -> frozenset[str]:
        return frozenset({self.name})

    def describe(self) -> str:
        return f"delete link {self.name}"


@dataclass(frozen=True)
class NlAddAddress(NlOp):
    ifname: str
    cidr: str
    valid: int | None = None  # seconds it lives unless renewed (a lease's copy); None: static
    # IPv6, no duplicate address detection: an address moved between two links of
    # one host is that host's already, and must not sit "tentative" for a second.
    nodad: bool = False

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.address(True, index_of(self.ifname), self.cidr, self.valid, self.nodad), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.ifname})

    def describe(self) -> str:
        return f"add address {self.cidr} to {self.ifname}"

    def explain(self, code: int) -> str:
        if code == errno.EEXIST:
            return f"the address is already there ({os.strerror(code)})"
        return super().explain(code)


@dataclass(frozen=True)
class NlDelAddress(NlOp):
    ifname: str
    cidr: str
    # Gone already: a network manager that took over the link flushed it (NetworkManager
    # does as it deactivates a port whose DHCP failed), and a rollback must not call that a failure.
    absent_is_done: ClassVar[frozenset[int]] = frozenset({errno.EADDRNOTAVAIL})

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.address(False, index_of(self.ifname), self.cidr), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.ifname})

    def describe(self) -> str:
        return f"remove address {self.cidr} from {self.ifname}"


@dataclass(frozen=True)
class NlPromoteSecondaries(NlOp):
    """net.ipv4.conf.NAME.promote_secondaries=1, through netlink.

    With it off (the kernel's default, and a fresh namespace's), removing a
    subnet's primary IPv4 address removes every secondary address of that
    subnet too, and the routes through them. Renumbering a host within its
    subnet adds the new address (a secondary) before the old one leaves:
    without this the new one would leave with it. Left on afterwards: it is
    what systemd's defaults set on most hosts, and it only changes what an
    address removal takes with it.
    """

    ifname: str

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.set_inet_conf(self.ifname, {codec.IPV4_DEVCONF_PROMOTE_SECONDARIES: 1}), None)]

    def describe(self) -> str:
        return f"set net.ipv4.conf.{self.ifname}.promote_secondaries=1"


@dataclass(frozen=True)
class NlReplaceRoute(NlOp):
    """`ip route replace`: atomic, so the host is never without the route."""

    dst: str  # "default" or CIDR
    ifname: str
    gateway: str | None = None
    metric: int = 0
    proto: str = "static"  # restoring a route puts its original protocol back too

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.route(True, self.dst, index_of(self.ifname), self.gateway, self.metric, proto_number(self.proto)), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.ifname})

    def describe(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"replace route {self.dst}{via} dev {self.ifname} metric {self.metric}"


@dataclass(frozen=True)
class NlDelRoute(NlOp):
    dst: str
    ifname: str
    gateway: str | None = None
    metric: int = 0

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.route(False, self.dst, index_of(self.ifname), self.gateway, self.metric, 0), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.ifname})

    def describe(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        return f"delete route {self.dst}{via} dev {self.ifname} metric {self.metric}"


@dataclass(frozen=True)
class NlMoveLink(NlOp):
    """Move a (down) link into another network namespace, renaming it: the lab's cabling.

    `netns_fd` is an open descriptor of the target namespace, kept open by
    the caller until the batch has run.
    """

    name: str
    netns_fd: int
    new_name: str

    def messages(self, index_of: IndexOf) -> list[Message]:
        return [(codec.move_link(index_of(self.name), self.netns_fd, self.new_name), None)]

    def index_needs(self) -> frozenset[str]:
        return frozenset({self.name})

    def removes(self) -> frozenset[str]:
        return frozenset({self.name})

    def describe(self) -> str:
        return f"move link {self.name} to another namespace as {self.new_name}"
