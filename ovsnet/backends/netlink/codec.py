"""rtnetlink messages: the encoder of every netlink write ovsnet makes, and fast dump decoders.

Hand-written on purpose, for speed. Measured on this project's machine
(2026-11-30, Python 3.11, pyroute2 0.9.7):
- encoding one RTM_NEWLINK request costs about 4 us here, 133 us with
  pyroute2's message classes (ifinfmsg.encode) and 450 to 600 us through its
  request compiler (IPBatch.link), load about 1: a 1,000-port `up` sends
  about 6,000 requests, so pyroute2 would add 0.8 to 3.6 s, and at 200 ports
  0.2 to 0.7 s against a floor of 0.4 s (bench/apply.py);
- decoding a link dump costs 46 us a link here, 394 us with
  ifinfmsg.decode (301 links, load 3.7): a 1,000-port host has about 3,000
  links, read before and after every apply, so 0.14 s against 1.2 s a read,
  where the goal for a no-op `up` is 0.5 s.
So this module knows only the handful of messages and attributes ovsnet
writes and dumps (links, addresses, routes in the main table) and packs them
with `struct`; its output is checked byte for byte against pyroute2's own
encoding, and its decoders against pyroute2's encoder, in
tests/unit/test_netlink_codec.py. The one-off requests (a neighbour entry,
a route lookup) are here too: importing pyroute2's netlink classes costs
0.21 s (load 7, `python -X importtime`), paid by every `up` that moves the
address for a single ARP probe; so `up`, `down` and `status` import no
pyroute2 at all.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from typing import Iterator

# Message types and flags, linux/rtnetlink.h and linux/netlink.h.
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
F_REQUEST, F_MULTI, F_ACK, F_DUMP_INTR = 0x1, 0x2, 0x4, 0x10
F_DUMP = 0x300
F_REPLACE, F_EXCL, F_CREATE = 0x100, 0x200, 0x400

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_IFALIAS, IFLA_LINK_NETNSID = 18, 28, 20, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL, IFA_CACHEINFO, IFA_FLAGS = 1, 2, 6, 8
IFA_F_NODAD = 0x02  # linux/if_addr.h; in IFA_FLAGS, as pyroute2 sends it
INFINITY_LIFE = 0xFFFFFFFF  # a static address: no lifetime
NDA_DST = 1
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_MULTIPATH, RTA_TABLE = 1, 4, 5, 6, 9, 15
IFF_UP = 0x1
RT_TABLE_MAIN, RTN_UNICAST = 254, 1
IP6_RT_PRIO_USER = 1024
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_NOWHERE = 0, 253, 255

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BxxxiHBB")
_NLA = struct.Struct("=HH")
_NEXTHOP = struct.Struct("=HBBi")


class DumpInterrupted(Exception):
    """The kernel changed the table during the dump; ask again."""


# --- encoding ------------------------------------------------------------------


def _attr(kind: int, payload: bytes) -> bytes:
    length = _NLA.size + len(payload)
    return _NLA.pack(length, kind) + payload + b"\0" * (-length % 4)


def _str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("=I", value))


def message(mtype: int, flags: int, body: bytes) -> bytes:
    """One request; the sequence number is filled in when it is sent."""
    return _HDR.pack(_HDR.size + len(body), mtype, flags | F_REQUEST, 0, 0) + body


def link_kind(kind: str, data: bytes = b"") -> bytes:
    """IFLA_LINKINFO for a create: the link's kind and its kind-specific data."""
    return _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, kind) + (_attr(IFLA_INFO_DATA, data) if data else b""))


def new_link(name: str, info: bytes, mtu: int | None = None) -> bytes:
    """Create a link (fails if the name exists: F_EXCL)."""
    attrs = _str(IFLA_IFNAME, name) + (_u32(IFLA_MTU, mtu) if mtu else b"") + info
    return message(RTM_NEWLINK, F_ACK | F_CREATE | F_EXCL, _IFINFO.pack(0, 0, 0, 0, 0) + attrs)


def new_bridge(name: str) -> bytes:
    return new_link(name, link_kind("bridge"))


def new_veth(name: str, peer: str, mtu: int | None) -> bytes:
    peer_body = _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, peer) + (_u32(IFLA_MTU, mtu) if mtu else b"")
    return new_link(name, link_kind("veth", _attr(VETH_INFO_PEER, peer_body)), mtu)


def set_link(name: str, up: bool | None = None, mtu: int | None = None, master: int | None = None,
             alias: str | None = None) -> bytes:
    """Change a link found by name (the kernel looks IFLA_IFNAME up itself)."""
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    attrs = _str(IFLA_IFNAME, name)
    if mtu is not None:
        attrs += _u32(IFLA_MTU, mtu)
    if master is not None:
        attrs += _u32(IFLA_MASTER, master)
    if alias is not None:
        attrs += _str(IFLA_IFALIAS, alias)
    return message(RTM_NEWLINK, F_ACK, _IFINFO.pack(0, 0, 0, flags, change) + attrs)


def move_link(index: int, netns_fd: int, new_name: str) -> bytes:
    """Move link `index` into the namespace of `netns_fd`, renaming it (it must be down)."""
    attrs = _u32(IFLA_NET_NS_FD, netns_fd) + _str(IFLA_IFNAME, new_name)
    return message(RTM_NEWLINK, F_ACK, _IFINFO.pack(0, 0, index, 0, 0) + attrs)


def get_link(name: str) -> bytes:
    """`ip link show NAME`: one link, answered by the kernel alone (no dump)."""
    return message(RTM_GETLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))


def del_link(name: str) -> bytes:
    return message(RTM_DELLINK, F_ACK, _IFINFO.pack(0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name))


def address(add: bool, index: int, cidr: str, valid: int | None = None, nodad: bool = False) -> bytes:
    """Add or remove an address; with `valid` (seconds) it expires then unless renewed, as a lease does.

    `nodad` (IPv6): usable at once, no duplicate address detection (`ip addr add ... nodad`).
    """
    iface = ipaddress.ip_interface(cidr)
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    packed = iface.ip.packed
    body = _IFADDR.pack(family, iface.network.prefixlen, 0, 0, index) + _attr(IFA_ADDRESS, packed)
    if iface.version == 4:
        # IPv4 wants IFA_LOCAL too (IFA_ADDRESS alone would be a peer address); IPv6 takes either.
        body += _attr(IFA_LOCAL, packed)
    if add and valid is not None:
        # ifa_cacheinfo: preferred, valid, then two timestamps the kernel fills in.
        body += _attr(IFA_CACHEINFO, struct.pack("=IIII", valid, valid, 0, 0))
    if add and nodad and iface.version == 6:
        body += _u32(IFA_FLAGS, IFA_F_NODAD)
    if add:
        return message(RTM_NEWADDR, F_ACK | F_CREATE | F_EXCL, body)
    return message(RTM_DELADDR, F_ACK, body)


def route(replace: bool, dst: str, oif: int, gateway: str | None, metric: int, proto: int) -> bytes:
    gw = ipaddress.ip_address(gateway) if gateway else None
    if dst == "default":
        net = ipaddress.ip_network("::/0" if gw is not None and gw.version == 6 else "0.0.0.0/0")
    else:
        net = ipaddress.ip_network(dst, strict=False)
    if gw is not None and gw.version != net.version:
        raise ValueError(f"gateway {gw} is not of the same family as {dst}")
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    if replace:
        scope = RT_SCOPE_UNIVERSE if gw is not None else RT_SCOPE_LINK
        head = _RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, proto, scope, RTN_UNICAST, 0)
    else:
        # NOWHERE matches any scope on delete, as `ip route del` does.
        head = _RTMSG.pack(family, net.prefixlen, 0, 0, RT_TABLE_MAIN, 0, RT_SCOPE_NOWHERE, 0, 0)
    attrs = _attr(RTA_DST, net.network_address.packed) if net.prefixlen else b""
    attrs += _u32(RTA_OIF, oif)
    if gw is not None:
        attrs += _attr(RTA_GATEWAY, gw.packed)
    if net.version == 6 and not metric:
        metric = IP6_RT_PRIO_USER  # what the kernel makes of 0; said explicitly, as pyroute2 does
    attrs += _u32(RTA_TABLE, RT_TABLE_MAIN) + _u32(RTA_PRIORITY, metric)
    flags = F_ACK | (F_CREATE | F_REPLACE if replace else 0)
    return message(RTM_NEWROUTE if replace else RTM_DELROUTE, flags, head + attrs)


def get_route(ip: str) -> bytes:
    """`ip route get IP`: the route the kernel would use to reach one address."""
    addr = ipaddress.ip_address(ip)
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    body = _RTMSG.pack(family, addr.max_prefixlen, 0, 0, 0, 0, 0, 0, 0) + _attr(RTA_DST, addr.packed)
    return message(RTM_GETROUTE, 0, body)


def del_neighbour(index: int, ip: str) -> bytes:
    """Forget one neighbour entry (ARP or NDP), so that the next probe resolves afresh."""
    addr = ipaddress.ip_address(ip)
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    return message(RTM_DELNEIGH, F_ACK, _NDMSG.pack(family, index, 0, 0, 0) + _attr(NDA_DST, addr.packed))


# --- decoding ----------------------------------------------------------------------


def messages(buf: bytes) -> Iterator[tuple[int, int, int, memoryview]]:
    """(type, flags, seq, payload) of each message in a receive buffer."""
    view = memoryview(buf)
    off = 0
    while off + _HDR.size <= len(buf):
        length, mtype, flags, seq, _pid = _HDR.unpack_from(buf, off)
        if length < _HDR.size:
            break
        yield mtype, flags, seq, view[off + _HDR.size: off + length]
        off += (length + 3) & ~3


def attrs(payload: memoryview, start: int) -> dict[int, memoryview]:
    out: dict[int, memoryview] = {}
    off = start
    end = len(payload)
    while off + 4 <= end:
        length, kind = _NLA.unpack_from(payload, off)
        if length < 4:
            break
        out[kind & 0x3FFF] = payload[off + 4: off + length]
        off += (length + 3) & ~3
    return out


def _cstr(raw: memoryview) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def _u32v(raw: memoryview) -> int:
    return struct.unpack_from("=I", raw, 0)[0]


@dataclass(frozen=True)
class RawLink:
    index: int
    name: str
    kind: str
    flags: int
    mtu: int
    master: int | None
    link: int | None
    link_netnsid: bool
    alias: str | None
    mac: str | None


@dataclass(frozen=True)
class RawAddress:
    index: int
    ip: str
    prefixlen: int
    valid: int | None = None  # seconds left, or None: forever (static)


@dataclass(frozen=True)
class RawRoute:
    dst: str  # "default" or CIDR
    oif: int | None
    gateway: str | None
    metric: int
    proto: int
    table: int
    rtype: int
    nexthops: tuple[tuple[int, str | None], ...] = ()


def parse_link(p: memoryview) -> RawLink:
    _family, _type, index, flags, _change = _IFINFO.unpack_from(p, 0)
    a = attrs(p, _IFINFO.size)
    kind = ""
    if IFLA_LINKINFO in a:
        info = attrs(a[IFLA_LINKINFO], 0)
        if IFLA_INFO_KIND in info:
            kind = _cstr(info[IFLA_INFO_KIND])
    mac = bytes(a[IFLA_ADDRESS]).hex(":") if IFLA_ADDRESS in a else None
    return RawLink(
        index=index,
        name=_cstr(a[IFLA_IFNAME]) if IFLA_IFNAME in a else str(index),
        kind=kind,
        flags=flags,
        mtu=_u32v(a[IFLA_MTU]) if IFLA_MTU in a else 0,
        master=_u32v(a[IFLA_MASTER]) if IFLA_MASTER in a else None,
        link=_u32v(a[IFLA_LINK]) if IFLA_LINK in a else None,
        link_netnsid=IFLA_LINK_NETNSID in a,
        alias=_cstr(a[IFLA_IFALIAS]) or None if IFLA_IFALIAS in a else None,
        mac=mac,
    )


def parse_address(p: memoryview) -> RawAddress | None:
    _family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(p, 0)
    a = attrs(p, _IFADDR.size)
    raw = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    if raw is None:
        return None
    valid = None
    if IFA_CACHEINFO in a:
        _preferred, left = struct.unpack_from("=II", a[IFA_CACHEINFO], 0)
        valid = None if left == INFINITY_LIFE else left
    return RawAddress(index, str(ipaddress.ip_address(bytes(raw))), prefixlen, valid)


def _link_local6(raw: memoryview | None) -> bool:
    return raw is not None and len(raw) == 16 and raw[0] == 0xFE and raw[1] & 0xC0 == 0x80


def link_local6_address(p: memoryview) -> bool:
    """An IPv6 link-local address (fe80::/10), known from its bytes alone.

    Every IPv6 link has one, and ovsnet never manages them: on a host with
    1,000 ports they were most of the no-op's addresses and IPv6 routes.
    Skipping them before any ipaddress object is made took the address read
    from 0.41 to 0.07 s and the route read from 0.57 to 0.17 s under
    cProfile, and the no-op `up`'s CPU from 0.49 to 0.35 s (N=1000,
    bench/apply.py --phases --profile, load 6-8, 2026-11-30).
    """
    family = p[0]
    if family != socket.AF_INET6:
        return False
    a = attrs(p, _IFADDR.size)
    return _link_local6(a.get(IFA_LOCAL) or a.get(IFA_ADDRESS))


def link_local6_route(p: memoryview) -> bool:
    """The fe80::/64 route that follows every IPv6 link, known from its bytes alone (see link_local6_address)."""
    family, dst_len = p[0], p[1]
    if family != socket.AF_INET6 or dst_len != 64:
        return False
    return _link_local6(attrs(p, _RTMSG.size).get(RTA_DST))


@dataclass(frozen=True)
class RawNeighbour:
    index: int
    state: int  # NUD_* bits
    dst: str | None


def parse_neighbour(p: memoryview) -> RawNeighbour:
    _family, index, state, _flags, _type = _NDMSG.unpack_from(p, 0)
    raw = attrs(p, _NDMSG.size).get(NDA_DST)
    return RawNeighbour(index, state, str(ipaddress.ip_address(bytes(raw))) if raw is not None else None)


def parse_route(p: memoryview) -> RawRoute:
    family, dst_len, _src_len, _tos, table, proto, _scope, rtype, _flags = _RTMSG.unpack_from(p, 0)
    a = attrs(p, _RTMSG.size)
    if RTA_TABLE in a:
        table = _u32v(a[RTA_TABLE])
    dst = "default"
    if dst_len and RTA_DST in a:
        dst = str(ipaddress.ip_network((bytes(a[RTA_DST]), dst_len), strict=False))
    gateway = str(ipaddress.ip_address(bytes(a[RTA_GATEWAY]))) if RTA_GATEWAY in a else None
    hops: list[tuple[int, str | None]] = []
    if RTA_MULTIPATH in a:
        mp = a[RTA_MULTIPATH]
        off = 0
        while off + _NEXTHOP.size <= len(mp):
            length, _f, _h, ifindex = _NEXTHOP.unpack_from(mp, off)
            if length < _NEXTHOP.size:
                break
            ha = attrs(mp[off:off + length], _NEXTHOP.size)
            hops.append((ifindex, str(ipaddress.ip_address(bytes(ha[RTA_GATEWAY]))) if RTA_GATEWAY in ha else None))
            off += (length + 3) & ~3
    return RawRoute(
        dst=dst,
        oif=_u32v(a[RTA_OIF]) if RTA_OIF in a else None,
        gateway=gateway,
        metric=_u32v(a[RTA_PRIORITY]) if RTA_PRIORITY in a else 0,
        proto=proto,
        table=table,
        rtype=rtype,
        nexthops=tuple(hops),
    )


RT_TABLE_COMPAT = 252  # the header's table when the real one is only in RTA_TABLE


def maybe_main_unicast(p: memoryview) -> bool:
    """From the route header alone: could this be a unicast route of the main table?"""
    _f, _d, _s, _t, table, _p, _sc, rtype, _fl = _RTMSG.unpack_from(p, 0)
    return rtype == RTN_UNICAST and table in (RT_TABLE_MAIN, RT_TABLE_COMPAT)


def dump(sock: socket.socket, mtype: int, family: int = 0) -> list[memoryview]:
    """Every message of one dump; raises DumpInterrupted when the kernel says so."""
    if mtype == RTM_GETROUTE:
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    elif mtype == RTM_GETNEIGH:
        body = _NDMSG.pack(family, 0, 0, 0, 0)
    elif mtype == RTM_GETADDR:
        body = _IFADDR.pack(family, 0, 0, 0, 0)
    else:
        body = _IFINFO.pack(family, 0, 0, 0, 0)
    req = bytearray(message(mtype, F_DUMP, body))
    struct.pack_into("=I", req, 8, 0x7FFF0000)
    sock.sendall(bytes(req))
    out: list[memoryview] = []
    interrupted = False
    while True:
        data = sock.recv(1 << 20)
        for kind, flags, seq, payload in messages(data):
            if seq != 0x7FFF0000:
                continue  # a late ack of something else
            if flags & F_DUMP_INTR:
                interrupted = True
            if kind == NLMSG_DONE:
                if interrupted:
                    raise DumpInterrupted()
                return out
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload, 0)[0]
                raise OSError(code, f"netlink dump failed: errno {code}")
            out.append(payload)


# --- one-off requests ------------------------------------------------------------------


def request(sock: socket.socket, raw: bytes, seq: int = 0x7FFE0000) -> list[memoryview]:
    """Send one request answered by messages (not a dump): their payloads; OSError on NLMSG_ERROR."""
    req = bytearray(raw)
    struct.pack_into("=I", req, 8, seq)
    sock.sendall(bytes(req))
    while True:
        data = sock.recv(1 << 20)
        out: list[memoryview] = []
        for kind, _flags, got, payload in messages(data):
            if got != seq:
                continue
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload, 0)[0]
                if code:
                    raise OSError(code, os.strerror(code))
                return out
            out.append(payload)
        if out:
            return out
