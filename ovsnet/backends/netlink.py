"""Linux links, addresses and routes through rtnetlink (pyroute2).

One `Netlink` object holds one IPRoute socket, opened in the namespace it
was given, for its whole life: a read and the apply after it see the same
namespace, and no `ip` process is ever run. pyroute2 is imported inside the
functions so that `ovsnet --help` does not pay for it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from ovsnet.errors import BackendError, VerificationError
from ovsnet.ops import (
    NlAddAddress,
    NlCreateBridge,
    NlCreateVeth,
    NlDeleteLink,
    NlDelAddress,
    NlDelRoute,
    NlOp,
    NlReplaceRoute,
    NlSetLink,
)
from ovsnet.state import Address, LinuxState, Link, Route

if TYPE_CHECKING:
    from pyroute2 import IPRoute

MAIN_TABLE = 254
RTN_UNICAST = 1
RTPROT_STATIC = 4
IFF_UP = 0x1

PROTO_NAMES = {2: "kernel", 3: "boot", 4: "static", 9: "ra", 16: "dhcp"}

# Neighbour (NUD_*) states, linux/neighbour.h.
NUD_INCOMPLETE = 0x01
NUD_REACHABLE = 0x02
NUD_STALE = 0x04
NUD_DELAY = 0x08
NUD_PROBE = 0x10
NUD_FAILED = 0x20
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
# STALE/DELAY on a fresh entry mean the neighbour itself sent us something.
NUD_ANSWERED = NUD_REACHABLE | NUD_STALE | NUD_DELAY
NUD_PINNED = NUD_PERMANENT | NUD_NOARP

READ_ATTEMPTS = 5
DISCARD_PORT = 9  # what we send is only bait for ARP/ND; nobody need listen


class NetlinkOpError(BackendError):
    """One op of an apply failed; `.done` lists the ops applied before it, in order."""

    def __init__(self, message: str, op: NlOp, done: Sequence[NlOp]):
        super().__init__(message)
        self.op = op
        self.done = list(done)


class NetlinkBatchError(BackendError):
    """A batch stopped at group `.failed`; `.done` were applied whole, `.touched` at least in part."""

    def __init__(self, message: str, failed: int, done: Sequence[int], touched: Sequence[int]):
        super().__init__(message)
        self.failed = failed
        self.done = list(done)
        self.touched = list(touched)


class Netlink:
    """rtnetlink in one namespace (None: the one this process is in)."""

    def __init__(self, netns: str | None = None) -> None:
        from pyroute2 import IPRoute

        self.netns = netns
        self._indices: dict[str, int] = {}
        self._raw: socket.socket | None = None  # for batches, opened on first use
        try:
            # flags=0: a missing namespace is an error, never silently created.
            self._ipr: IPRoute = IPRoute(netns=netns, flags=0) if netns else IPRoute()
        except FileNotFoundError as exc:
            raise BackendError(f"netlink: no network namespace named {netns}") from exc
        except Exception as exc:
            where = f"namespace {netns}" if netns else "this namespace"
            raise BackendError(f"netlink: cannot open a socket in {where}: {_reason(exc)}") from exc

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
        self._ipr.close()

    # --- reading ---------------------------------------------------------

    def read(self) -> LinuxState:
        """Links, addresses and main-table routes, dumped with ovsnet's rtnl codec."""
        from ovsnet.backends import rtnl

        for attempt in range(READ_ATTEMPTS):
            try:
                sock = self._raw_socket()
                raw_links = [rtnl.parse_link(p) for p in rtnl.dump(sock, rtnl.RTM_GETLINK)]
                names = {r.index: r.name for r in raw_links}
                links = {r.name: _link_of(r, names) for r in raw_links}
                self._indices = {r.name: r.index for r in raw_links}
                addresses = tuple(sorted(self._addresses(rtnl.dump(sock, rtnl.RTM_GETADDR), names)))
                routes = tuple(sorted(
                    route
                    for family in (socket.AF_INET, socket.AF_INET6)
                    for route in self._routes(rtnl.dump(sock, rtnl.RTM_GETROUTE, family), names)
                ))
                return LinuxState(links=links, addresses=addresses, routes=routes)
            except rtnl.DumpInterrupted as exc:
                # The kernel says a table changed under the dump (OVS adding a
                # port, say); the answer would be inconsistent, so ask again.
                if attempt + 1 == READ_ATTEMPTS:
                    raise BackendError(f"netlink: cannot read{self._where()}: kept changing during the read") from exc
            except Exception as exc:
                raise BackendError(f"netlink: cannot read{self._where()}: {_reason(exc)}") from exc
        raise AssertionError("unreachable")

    def _raw_socket(self) -> socket.socket:
        if self._raw is None:
            from ovsnet.backends import nlbatch

            self._raw = nlbatch.open_socket(self.netns)
        return self._raw

    @staticmethod
    def _addresses(payloads, names: dict[int, str]) -> Iterable[Address]:
        from ovsnet.backends import rtnl

        for p in payloads:
            a = rtnl.parse_address(p)
            if a is None:
                continue
            ip = ipaddress.ip_address(a.ip)
            if ip.is_loopback or (ip.version == 6 and ip.is_link_local):
                continue
            yield Address(ifname=names.get(a.index, str(a.index)), cidr=f"{ip}/{a.prefixlen}")

    @staticmethod
    def _routes(payloads, names: dict[int, str]) -> Iterable[Route]:
        from ovsnet.backends import rtnl

        for p in payloads:
            r = rtnl.parse_route(p)
            if r.table != MAIN_TABLE or r.rtype != RTN_UNICAST:
                continue
            if r.dst != "default":
                net = ipaddress.ip_network(r.dst)
                if net.version == 6 and net.is_link_local:
                    continue  # fe80::/64 follows every IPv6 link; not ours to manage
            proto = PROTO_NAMES.get(r.proto, str(r.proto))
            if r.nexthops:
                # One Route per nexthop: hiding an ECMP default would make it look absent.
                for oif, gateway in r.nexthops:
                    yield Route(r.dst, names.get(oif, str(oif)), gateway, r.metric, proto)
                continue
            if r.oif is None:
                continue
            yield Route(r.dst, names.get(r.oif, str(r.oif)), r.gateway, r.metric, proto)

    def route_to(self, ip: str) -> str | None:
        """The interface the kernel would send a packet to ip out of, or None."""
        try:
            msgs = self._ipr.route("get", dst=ip)
        except Exception:
            return None
        for msg in msgs:
            oif = msg.get("RTA_OIF")
            if oif:
                found = self._ipr.get_links(oif)
                return found[0].get("IFLA_IFNAME") if found else None
        return None

    def link(self, name: str) -> Link | None:
        """One link by name (a dump: pyroute2's filtered get dumps and decodes them all)."""
        from ovsnet.backends import rtnl

        raw = [rtnl.parse_link(p) for p in rtnl.dump(self._raw_socket(), rtnl.RTM_GETLINK)]
        names = {r.index: r.name for r in raw}
        self._indices = {r.name: r.index for r in raw}
        return next((_link_of(r, names) for r in raw if r.name == name), None)

    def wait_link(self, name: str, timeout: float = 5.0, interval: float = 0.05) -> Link:
        """Wait for a link that something else creates (OVS internal ports come late)."""
        deadline = time.monotonic() + timeout
        while True:
            link = self.link(name)
            if link is not None:
                return link
            if time.monotonic() >= deadline:
                raise VerificationError(f"netlink: link {name} did not appear{self._where()} within {timeout:g} s")
            time.sleep(interval)

    # --- applying --------------------------------------------------------

    def apply(self, ops: Sequence[NlOp]) -> None:
        done: list[NlOp] = []
        for op in ops:
            try:
                self._apply_one(op)
            except Exception as exc:
                raise NetlinkOpError(
                    f"netlink: cannot {describe(op)}{self._where()}: {_reason(exc, op)}", op, done
                ) from exc
            done.append(op)

    def apply_batch(self, groups: Sequence[Sequence[NlOp]]) -> None:
        """Apply many changes' ops (one group each) in few system calls.

        On failure raises NetlinkBatchError saying which group failed and which
        groups were applied (fully, or in part: both need undoing). A create
        whose follow-up failed is removed again, so a create is all or nothing.
        """
        from ovsnet.backends import nlbatch

        outcome = nlbatch.run(self._raw_socket(), groups, self._index)
        for name in outcome.created_then_failed:
            try:
                self._by_name("del", name)
            except Exception:
                pass
        for name in {op.name for ops in groups for op in ops if isinstance(op, NlDeleteLink)}:
            self._indices.pop(name, None)
        if outcome.failed:
            group = min(outcome.failed)
            op, code = outcome.failed[group]
            reason = os.strerror(code)
            if code == errno.EEXIST and isinstance(op, NlAddAddress):
                reason = f"the address is already there ({reason})"
            if code == errno.ENODEV:
                reason = f"no such link ({reason})"
            reason = _mtu_hint(reason, code, op)
            raise NetlinkBatchError(
                f"netlink: cannot {describe(op)}{self._where()}: {reason}", group,
                sorted(outcome.ok), sorted(outcome.touched | outcome.ok),
            )

    def _apply_one(self, op: NlOp) -> None:
        if isinstance(op, NlCreateBridge):
            # The MTU goes in the set after the create, not in the create: only
            # then does the bridge keep it instead of following its ports' MTUs
            # (and falling back to 1500 when its last port goes).
            self._create(op.name, {"kind": "bridge"}, _some(mtu=op.mtu, ifalias=op.alias))
        elif isinstance(op, NlCreateVeth):
            peer: dict[str, Any] = {"ifname": op.peer, **_some(mtu=op.mtu)}
            self._create(op.name, {"kind": "veth", "peer": peer, **_some(mtu=op.mtu)}, _some(ifalias=op.alias))
            if op.alias is not None:
                self._or_undo(op.name, lambda: self._set(op.peer, ifalias=op.alias))
        elif isinstance(op, NlSetLink):
            self._set_link(op)
        elif isinstance(op, NlDeleteLink):
            try:
                self._by_name("del", op.name)
            except LookupError:
                pass  # already gone: the end state a delete asks for
            self._indices.pop(op.name, None)
        elif isinstance(op, (NlAddAddress, NlDelAddress)):
            iface = ipaddress.ip_interface(op.cidr)
            command = "add" if isinstance(op, NlAddAddress) else "del"
            self._ipr.addr(command, index=self._index(op.ifname), address=str(iface.ip),
                           prefixlen=iface.network.prefixlen,
                           family=socket.AF_INET if iface.version == 4 else socket.AF_INET6)
        elif isinstance(op, (NlReplaceRoute, NlDelRoute)):
            command = "replace" if isinstance(op, NlReplaceRoute) else "del"
            self._ipr.route(command, **self._route_spec(op))
        else:
            raise TypeError(f"not a netlink op: {op!r}")

    def _create(self, name: str, spec: dict[str, Any], then: dict[str, Any]) -> None:
        self._ipr.link("add", ifname=name, **spec)
        if then:
            # The kernel ignores IFLA_IFALIAS in a create request; it takes a separate set.
            self._or_undo(name, lambda: self._set(name, **then))

    def _or_undo(self, name: str, step: Callable[[], None]) -> None:
        """Run the rest of a create; on failure remove the link so the op is all or nothing."""
        try:
            step()
        except Exception:
            try:
                self._ipr.link("del", ifname=name)
            except Exception:
                pass
            raise

    def _set(self, name: str, **spec: Any) -> None:
        # The kernel finds the link by IFLA_IFNAME itself: no lookup round trip.
        self._by_name("set", name, **spec)

    def _by_name(self, command: str, name: str, **spec: Any) -> None:
        try:
            self._ipr.link(command, ifname=name, **spec)
        except Exception as exc:
            if getattr(exc, "code", None) == errno.ENODEV:
                raise LookupError(f"no link named {name}") from exc
            raise

    def _set_link(self, op: NlSetLink) -> None:
        spec: dict[str, Any] = _some(mtu=op.mtu, ifalias=op.alias)
        if op.master is not None:
            spec["master"] = self._index(op.master) if op.master else 0
        if op.up is not None:
            spec["state"] = "up" if op.up else "down"
        if spec:
            self._set(op.name, **spec)

    def _route_spec(self, op: NlReplaceRoute | NlDelRoute) -> dict[str, Any]:
        return route_spec(op, self._index(op.ifname))

    def _index(self, name: str) -> int:
        # Cached: a bridge is master of hundreds of ports, one lookup serves them all.
        if name not in self._indices:
            from ovsnet.backends import rtnl

            # One dump refreshes every name; a lookup per name would cost as much each.
            raw = (rtnl.parse_link(p) for p in rtnl.dump(self._raw_socket(), rtnl.RTM_GETLINK))
            self._indices = {r.name: r.index for r in raw}
        if name not in self._indices:
            raise LookupError(f"no link named {name}")
        return self._indices[name]

    def _where(self) -> str:
        return f" in namespace {self.netns}" if self.netns else ""

    # --- probing ---------------------------------------------------------

    def arp_probe(self, ifname: str, target_ip: str, timeout: float = 2.0) -> bool:
        """True when target_ip answers ARP (IPv6: neighbour discovery) on ifname in time.

        How: forget the kernel's neighbour entry for target_ip on ifname, send
        one UDP datagram out of ifname towards it, and watch the new entry.
        The kernel resolves it for us; REACHABLE means a reply came back. The
        old entry has to go because a cached STALE one would say nothing about
        now, and turning it REACHABLE would take 5 s of DELAY. A permanent
        (static) entry is never probed by the kernel, so it counts as answered.

        The datagram socket is made inside the namespace by pyroute2's
        netns.create_socket (a short-lived child does setns and passes the fd
        back): a socket keeps the namespace it was born in, so no thread of
        this process ever has to switch namespaces.
        """
        try:
            ip = ipaddress.ip_address(target_ip)
            index = self._index(ifname)
        except (ValueError, LookupError) as exc:
            raise BackendError(f"netlink: cannot probe {target_ip} on {ifname}{self._where()}: {exc}") from exc
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6

        state = self._neighbour_state(family, index, str(ip))
        if state is not None and state & NUD_PINNED:
            return True
        if state is not None:
            try:
                self._ipr.neigh("del", family=family, dst=str(ip), ifindex=index)
            except Exception:
                pass  # already gone (garbage-collected meanwhile) is fine

        sock = self._udp_socket(family, ifname)
        try:
            deadline = time.monotonic() + timeout
            sent_at = 0.0
            while True:
                state = self._neighbour_state(family, index, str(ip))
                if state is not None and state & NUD_ANSWERED:
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                # (Re)send when no resolution is under way: first round, or it FAILED.
                if (state is None or state & NUD_FAILED) and now - sent_at > 0.5:
                    _bait(sock, ip, index)
                    sent_at = now
                time.sleep(0.02)
        finally:
            sock.close()

    def _neighbour_state(self, family: int, index: int, dst: str) -> int | None:
        for m in self._ipr.get_neighbours(family=family, ifindex=index, dst=dst):
            return m["state"]
        return None

    def _udp_socket(self, family: int, ifname: str) -> socket.socket:
        if self.netns:
            from pyroute2 import netns

            sock = netns.create_socket(self.netns, family, socket.SOCK_DGRAM, flags=0)
        else:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        # Out of this device only, whatever the routing table says (even with no route yet).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        return sock


def _bait(sock: socket.socket, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, index: int) -> None:
    addr: tuple[Any, ...] = (str(ip), DISCARD_PORT) if ip.version == 4 else (str(ip), DISCARD_PORT, 0, index)
    try:
        sock.sendto(b"ovsnet-probe", addr)
    except OSError:
        pass  # down link, no source address: the entry never resolves and we say False


def route_spec(op: NlReplaceRoute | NlDelRoute, oif: int) -> dict[str, Any]:
    gateway = ipaddress.ip_address(op.gateway) if op.gateway else None
    if op.dst == "default":
        version = gateway.version if gateway else 4
        net = ipaddress.ip_network("0.0.0.0/0" if version == 4 else "::/0")
    else:
        net = ipaddress.ip_network(op.dst, strict=False)
    if gateway is not None and gateway.version != net.version:
        raise ValueError(f"gateway {gateway} is not of the same family as {op.dst}")
    spec: dict[str, Any] = {
        "family": socket.AF_INET if net.version == 4 else socket.AF_INET6,
        "dst": str(net.network_address),
        "dst_len": net.prefixlen,
        "oif": oif,
        "table": MAIN_TABLE,
        "priority": op.metric,
    }
    if isinstance(op, NlReplaceRoute):
        spec.update(proto=proto_number(op.proto), type=RTN_UNICAST)
    if gateway is not None:
        spec["gateway"] = str(gateway)
    return spec


def _link_of(r: Any, names: dict[int, str]) -> Link:
    # A veth peer in another namespace reports an index that means nothing here.
    peer = names.get(r.link) if r.kind == "veth" and not r.link_netnsid else None
    return Link(
        name=r.name,
        index=r.index,
        kind=r.kind,
        master=names.get(r.master) if r.master else None,
        peer=peer,
        mtu=r.mtu,
        up=bool(r.flags & IFF_UP),
        alias=r.alias,
        mac=r.mac,
    )


def proto_number(name: str) -> int:
    """The route protocol as the kernel numbers it; the names read() gives, or digits."""
    for number, known in PROTO_NAMES.items():
        if known == name:
            return number
    return int(name) if name.isdigit() else RTPROT_STATIC


def describe(op: NlOp) -> str:
    """An op in plain words, as it goes after "cannot"."""
    if isinstance(op, NlCreateBridge):
        return f"create bridge {op.name}"
    if isinstance(op, NlCreateVeth):
        return f"create veth {op.name}/{op.peer}"
    if isinstance(op, NlSetLink):
        parts = []
        if op.master is not None:
            parts.append(f"master {op.master}" if op.master else "nomaster")
        if op.mtu is not None:
            parts.append(f"mtu {op.mtu}")
        if op.alias is not None:
            parts.append(f"alias {op.alias!r}")
        if op.up is not None:
            parts.append("up" if op.up else "down")
        return f"set link {op.name} {' '.join(parts)}".rstrip()
    if isinstance(op, NlDeleteLink):
        return f"delete link {op.name}"
    if isinstance(op, NlAddAddress):
        return f"add address {op.cidr} to {op.ifname}"
    if isinstance(op, NlDelAddress):
        return f"remove address {op.cidr} from {op.ifname}"
    verb = "replace" if isinstance(op, NlReplaceRoute) else "delete"
    via = f" via {op.gateway}" if op.gateway else ""
    return f"{verb} route {op.dst}{via} dev {op.ifname} metric {op.metric}"


def _mtu_hint(reason: str, code: int, op: NlOp | None) -> str:
    # EINVAL alone does not say that the MTU is what the NIC refused.
    if code == errno.EINVAL and isinstance(op, NlSetLink) and op.mtu is not None:
        return f"{reason}: {op.name} does not take mtu {op.mtu} (more than its driver allows); lower the mtu in the topology"
    return reason


def _some(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _reason(exc: BaseException, op: NlOp | None = None) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        text = os.strerror(code)
        if code == errno.EEXIST and isinstance(op, NlAddAddress):
            return f"the address is already there ({text})"
        return _mtu_hint(text, code, op)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, LookupError):
        return str(exc.args[0]) if exc.args else str(exc)
    return str(exc) or type(exc).__name__
