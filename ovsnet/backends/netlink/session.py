"""Linux links, addresses and routes of one network namespace, read and written over rtnetlink.

One `Netlink` object holds one raw NETLINK_ROUTE socket, opened in the
namespace it was given, for its whole life: a read and the apply after it see
the same namespace, and no `ip` process is ever run. Every write goes through
the one sender (ovsnet.backends.netlink.send). The socket is born inside
the namespace (ovsnet.backends.netns); pyroute2 is not needed at all here.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from typing import Any, Callable, Iterable, Sequence

from ovsnet.backends.netlink import codec, send
from ovsnet.backends.netlink.ops import PROTO_NAMES, NlDeleteLink, NlOp
from ovsnet.current import Address, Link, LinuxState, Route
from ovsnet.errors import BackendError, VerificationError

NETNS_DIR = "/var/run/netns"
MAIN_TABLE = 254
RTN_UNICAST = 1
IFF_UP = 0x1
READ_ATTEMPTS = 5


class NetlinkBatchError(BackendError):
    """A batch stopped at group `.failed`; `.done` were applied whole, `.touched` at least in part."""

    def __init__(self, message: str, failed: int | None, done: Sequence[int], touched: Sequence[int]):
        super().__init__(message)
        self.failed = failed
        self.done = list(done)
        self.touched = list(touched)


class NetlinkOpError(BackendError):
    """One op of a plain op list failed; `.done` lists the ops applied before it, in order."""

    def __init__(self, message: str, op: NlOp, done: Sequence[NlOp]):
        super().__init__(message)
        self.op = op
        self.done = list(done)


class Netlink:
    """rtnetlink in one namespace (None: the one this process is in)."""

    def __init__(self, netns: str | None = None) -> None:
        if netns and not os.path.exists(os.path.join(NETNS_DIR, netns)):
            # Checked here: a missing namespace is an error, never silently created.
            raise BackendError(f"netlink: no network namespace named {netns}")
        self.netns = netns
        self._indices: dict[str, int] = {}
        self._sock: socket.socket | None = None

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def socket(self) -> socket.socket:
        if self._sock is None:
            try:
                self._sock = send.open_socket(self.netns)
            except FileNotFoundError as exc:
                raise BackendError(f"netlink: no network namespace named {self.netns}") from exc
            except OSError as exc:
                raise BackendError(f"netlink: cannot open a socket{self.where()}: {exc.strerror or exc}") from exc
        return self._sock

    def where(self) -> str:
        return f" in namespace {self.netns}" if self.netns else ""

    # --- reading ---------------------------------------------------------

    def read(self) -> LinuxState:
        """Links, addresses and main-table routes."""
        for attempt in range(READ_ATTEMPTS):
            try:
                sock = self.socket()
                raw_links = [codec.parse_link(p) for p in codec.dump(sock, codec.RTM_GETLINK)]
                names = {r.index: r.name for r in raw_links}
                links = {r.name: _link_of(r, names) for r in raw_links}
                self._indices = {r.name: r.index for r in raw_links}
                addresses = tuple(sorted(_addresses(codec.dump(sock, codec.RTM_GETADDR), names)))
                routes = tuple(sorted(
                    route
                    for family in (socket.AF_INET, socket.AF_INET6)
                    for route in _routes(codec.dump(sock, codec.RTM_GETROUTE, family), names)
                ))
                return LinuxState(links=links, addresses=addresses, routes=routes)
            except codec.DumpInterrupted as exc:
                # The kernel says a table changed under the dump (OVS adding a
                # port, say); the answer would be inconsistent, so ask again.
                if attempt + 1 == READ_ATTEMPTS:
                    raise BackendError(f"netlink: cannot read{self.where()}: kept changing during the read") from exc
            except BackendError:
                raise
            except OSError as exc:
                raise BackendError(f"netlink: cannot read{self.where()}: {exc.strerror or exc}") from exc
        raise AssertionError("unreachable")

    def links(self) -> dict[str, Link]:
        raw = [codec.parse_link(p) for p in codec.dump(self.socket(), codec.RTM_GETLINK)]
        names = {r.index: r.name for r in raw}
        self._indices = {r.name: r.index for r in raw}
        return {r.name: _link_of(r, names) for r in raw}

    def link(self, name: str) -> Link | None:
        """One link by name, or None (a get request: waiting for one link must not dump thousands)."""
        try:
            (p,) = codec.request(self.socket(), codec.get_link(name))[:1]
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise BackendError(f"netlink: cannot read link {name}{self.where()}: {exc.strerror}") from None
        r = codec.parse_link(p)
        self._indices[r.name] = r.index
        names = {r.index: r.name}
        if r.master and r.master not in names:
            names.update((i, n) for n, i in self._indices.items())
        return _link_of(r, names)

    def wait_link(self, name: str, timeout: float = 5.0, interval: float = 0.05) -> Link:
        """Wait for a link that something else creates (OVS internal ports come late)."""
        deadline = time.monotonic() + timeout
        while True:
            link = self.link(name)
            if link is not None:
                return link
            if time.monotonic() >= deadline:
                raise VerificationError(f"netlink: link {name} did not appear{self.where()} within {timeout:g} s")
            time.sleep(interval)

    def index(self, name: str) -> int:
        # Cached: a bridge is master of hundreds of ports, one lookup serves them all.
        if name not in self._indices:
            # One dump refreshes every name; a lookup per name would cost as much each.
            self.links()
        if name not in self._indices:
            raise LookupError(f"no link named {name}")
        return self._indices[name]

    def answers(self, ifname: str, ip: str, timeout: float = 2.0) -> bool:
        """Whether ip answers ARP (IPv6: neighbour discovery) on ifname within timeout (see probe.py)."""
        from ovsnet.backends.netlink import probe

        return probe.answers(self, ifname, ip, timeout)

    def route_to(self, ip: str) -> str | None:
        """The interface the kernel would send a packet to ip out of, or None."""
        try:
            req = codec.get_route(ip)
        except ValueError:
            return None
        try:
            msgs = codec.request(self.socket(), req)
        except OSError:
            return None
        for p in msgs:
            oif = codec.parse_route(p).oif
            if oif:
                return next((link.name for link in self.links().values() if link.index == oif), None)
        return None

    # --- writing: the one path --------------------------------------------

    def apply_groups(self, groups: Sequence[Sequence[NlOp]], on_group: Callable[[int], None] | None = None) -> None:
        """Apply many changes' ops (one group each), in order, stopping at the first error.

        On failure raises NetlinkBatchError saying which group failed, which
        groups were applied whole (`.done`) and which need undoing (`.touched`:
        those, and the failed one if part of it went through). A create whose
        follow-up failed is removed again, so a create is all or nothing.
        on_group(i) runs once group i is done and before group i+1 is sent;
        if it raises, the exception is re-raised as it is, with `.touched`
        attached for the rollback.
        """
        sender = send.Sender(self.socket(), self.index)
        try:
            outcome = sender.run(groups, on_group)
        except BaseException as exc:
            exc.touched = list(sender.outcome.ok)  # type: ignore[attr-defined]
            raise
        finally:
            self._forget(groups)
        if outcome.failed is None:
            return
        group, op, code = outcome.failed
        for name in outcome.created_then_failed:
            try:
                self.apply_groups([[NlDeleteLink(name)]])
            except BackendError:
                pass  # it was just made here; if it cannot go either, the failure below says enough
        touched = outcome.ok + ([group] if outcome.touched and not outcome.created_then_failed else [])
        raise NetlinkBatchError(f"netlink: cannot {op.describe()}{self.where()}: {op.explain(code)}", group, outcome.ok, touched)

    def apply(self, ops: Sequence[NlOp]) -> None:
        """Apply ops in order, each on its own (for the lab and one-off writes)."""
        try:
            self.apply_groups([[op] for op in ops])
        except NetlinkBatchError as exc:
            failed = exc.failed if exc.failed is not None else 0
            raise NetlinkOpError(str(exc), ops[failed], [ops[i] for i in exc.done]) from None

    def _forget(self, groups: Sequence[Sequence[NlOp]]) -> None:
        """Names deleted or moved away no longer have the index we cached."""
        for ops in groups:
            for op in ops:
                for name in op.removes():
                    self._indices.pop(name, None)


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


def _addresses(payloads: Iterable[memoryview], names: dict[int, str]) -> Iterable[Address]:
    for p in payloads:
        if codec.link_local6_address(p):
            continue
        a = codec.parse_address(p)
        if a is None:
            continue
        ip = ipaddress.ip_address(a.ip)
        if ip.is_loopback or (ip.version == 6 and ip.is_link_local):
            continue
        yield Address(ifname=names.get(a.index, str(a.index)), cidr=f"{ip}/{a.prefixlen}", valid=a.valid)


def _routes(payloads: Iterable[memoryview], names: dict[int, str]) -> Iterable[Route]:
    for p in payloads:
        # The header says the table and type: the local table's thousands of
        # routes (a host with 1,000 ports) are skipped before any decoding.
        if not codec.maybe_main_unicast(p) or codec.link_local6_route(p):
            continue
        r = codec.parse_route(p)
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
