"""The hand-written rtnetlink encoder, byte for byte against pyroute2's own request compiler.

pyroute2's IPBatch compiles the same request as `ip` would send it without
sending anything; ovsnet's codec must produce the same bytes (sequence number
and port id aside, which the sender fills in). Where ovsnet sends something
different on purpose (a route delete's scope), the request is decoded with
pyroute2's parser and the difference is asserted. The decoders are checked
against pyroute2's encoder the other way round.
"""

from __future__ import annotations

import socket
import struct

import pytest
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from ovsnet.backends.netlink import codec
from ovsnet.backends.netlink.ops import (
    NlAddAddress,
    NlDelAddress,
    NlDeleteLink,
    NlDelRoute,
    NlMoveLink,
    NlReplaceRoute,
    NlSetLink,
)
from ovsnet.kinds.linux_bridge import NlCreateBridge
from ovsnet.kinds.veth import NlCreateVeth

INDEX = {"br0": 7, "eth1": 3, "mgmt0": 9, "v0": 11}


def index_of(name: str) -> int:
    return INDEX[name]


def unseq(raw: bytes) -> bytes:
    """Sequence number and port id zeroed: the sender sets its own."""
    b = bytearray(raw)
    struct.pack_into("=II", b, 8, 0, 0)
    return bytes(b)


def pyroute2_bytes(call) -> list[bytes]:
    """What pyroute2 compiles for one call, split into its messages."""
    b = IPBatch()
    call(b)
    data = bytes(b.batch)
    out, off = [], 0
    while off < len(data):
        length = struct.unpack_from("=I", data, off)[0]
        out.append(unseq(data[off:off + length]))
        off += (length + 3) & ~3
    return out


def ours(op) -> list[bytes]:
    return [unseq(raw) for raw, _ in op.messages(index_of)]


CASES = [
    ("bridge", NlCreateBridge("br0"), lambda b: b.link("add", ifname="br0", kind="bridge")),
    ("veth with mtu", NlCreateVeth("v0", "p0", 1400), lambda b: b.link("add", ifname="v0", kind="veth", peer={"ifname": "p0", "mtu": 1400}, mtu=1400)),
    ("veth", NlCreateVeth("v0", "p0"), lambda b: b.link("add", ifname="v0", kind="veth", peer={"ifname": "p0"})),
    ("set up, mtu, master, alias", NlSetLink("v0", up=True, mtu=1400, master="br0", alias="ovsnet:t:patch"),
     lambda b: b.link("set", ifname="v0", state="up", mtu=1400, master=7, ifalias="ovsnet:t:patch")),
    ("set down", NlSetLink("v0", up=False), lambda b: b.link("set", ifname="v0", state="down")),
    ("release from master", NlSetLink("v0", master=""), lambda b: b.link("set", ifname="v0", master=0)),
    ("delete link", NlDeleteLink("v0"), lambda b: b.link("del", ifname="v0")),
    ("add IPv4 address", NlAddAddress("mgmt0", "192.168.10.11/24"), lambda b: b.addr("add", index=9, address="192.168.10.11", prefixlen=24)),
    ("remove IPv4 address", NlDelAddress("eth1", "192.168.10.11/24"), lambda b: b.addr("del", index=3, address="192.168.10.11", prefixlen=24)),
    ("add IPv6 address", NlAddAddress("mgmt0", "2001:db8::11/64"), lambda b: b.addr("add", index=9, address="2001:db8::11", prefixlen=64, family=socket.AF_INET6)),
    ("add IPv6 address, no DAD", NlAddAddress("mgmt0", "2001:db8::11/64", nodad=True),
     lambda b: b.addr("add", index=9, address="2001:db8::11", prefixlen=64, family=socket.AF_INET6, flags=2)),
    ("replace IPv4 default route", NlReplaceRoute("default", "mgmt0", "192.168.10.1", 0),
     lambda b: b.route("replace", dst="0.0.0.0", dst_len=0, oif=9, gateway="192.168.10.1", table=254, priority=0, proto=4, type=1, family=socket.AF_INET)),
    ("replace a prefix route, boot protocol, metric", NlReplaceRoute("10.0.0.0/8", "eth1", "192.168.10.254", 100, "boot"),
     lambda b: b.route("replace", dst="10.0.0.0", dst_len=8, oif=3, gateway="192.168.10.254", table=254, priority=100, proto=3, type=1, family=socket.AF_INET)),
    ("replace IPv6 default route", NlReplaceRoute("default", "mgmt0", "fe80::1", 0),
     lambda b: b.route("replace", dst="::", dst_len=0, oif=9, gateway="fe80::1", table=254, priority=0, proto=4, type=1, family=socket.AF_INET6)),
    ("move into a namespace", NlMoveLink("v0", 5, "eth0"), lambda b: b.link("set", index=11, net_ns_fd=5, ifname="eth0")),
]


@pytest.mark.parametrize("name, op, call", CASES, ids=[c[0] for c in CASES])
def test_same_bytes_as_pyroute2(name, op, call):
    mine = ours(op)
    theirs = pyroute2_bytes(call)
    assert mine[: len(theirs)] == theirs, f"{name}: {mine[0].hex()} vs {theirs[0].hex()}"


def test_bridge_create_sets_mtu_and_alias_after_the_create():
    """The MTU goes in a set after the create (the bridge then keeps it); the kernel ignores an alias in a create."""
    first, second = NlCreateBridge("br0", 9000, "ovsnet:t:docker-bridge").messages(index_of)
    assert first[1] == "br0" and second[1] is None  # the create is what must be undone if the set fails
    assert unseq(second[0]) == pyroute2_bytes(lambda b: b.link("set", ifname="br0", mtu=9000, ifalias="ovsnet:t:docker-bridge"))[0]


def test_veth_alias_goes_on_both_ends():
    msgs = NlCreateVeth("v0", "p0", None, "ovsnet:t:patch").messages(index_of)
    assert [m[1] for m in msgs] == ["v0", None, None]
    assert [unseq(m[0]) for m in msgs[1:]] == [
        pyroute2_bytes(lambda b: b.link("set", ifname=n, ifalias="ovsnet:t:patch"))[0] for n in ("v0", "p0")
    ]


def test_route_delete_matches_any_scope_as_ip_route_del_does():
    """pyroute2 sends scope 0 (universe); `ip route del` and ovsnet send NOWHERE, which matches any scope."""
    (raw,) = ours(NlDelRoute("default", "mgmt0", "192.168.10.1", 0))
    msg = rtmsg(raw)
    msg.decode()
    assert msg["header"]["type"] == codec.RTM_DELROUTE
    assert (msg["family"], msg["dst_len"], msg["table"], msg["scope"]) == (socket.AF_INET, 0, 254, codec.RT_SCOPE_NOWHERE)
    assert (msg.get_attr("RTA_OIF"), msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_PRIORITY")) == (9, "192.168.10.1", 0)
    theirs = pyroute2_bytes(lambda b: b.route("del", dst="0.0.0.0", dst_len=0, oif=9, gateway="192.168.10.1", table=254, priority=0, family=socket.AF_INET, scope=255))
    assert [raw] == theirs


def test_requests_ask_for_an_ack_and_creates_refuse_to_replace():
    for _, op, _ in CASES:
        for raw in ours(op):
            flags = struct.unpack_from("=H", raw, 6)[0]
            assert flags & codec.F_REQUEST and flags & codec.F_ACK, op
    create = ours(NlCreateBridge("br0"))[0]
    assert struct.unpack_from("=H", create, 6)[0] & (codec.F_CREATE | codec.F_EXCL) == codec.F_CREATE | codec.F_EXCL


def test_an_unknown_index_is_a_lookup_error():
    with pytest.raises(KeyError):
        NlAddAddress("nope0", "192.0.2.1/24").messages(index_of)


# --- decoding: pyroute2 encodes, ovsnet's dump parsers read -------------------------------------


def _encoded(msg) -> memoryview:
    msg.encode()
    return memoryview(bytes(msg.data))[16:]


def test_parse_link_reads_what_pyroute2_wrote():
    m = ifinfmsg()
    m["index"] = 12
    m["flags"] = 1
    m["attrs"] = [("IFLA_IFNAME", "br-web"), ("IFLA_MTU", 9000), ("IFLA_MASTER", 4), ("IFLA_IFALIAS", "ovsnet:t:docker-bridge"),
                  ("IFLA_ADDRESS", "02:00:00:00:00:01"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
    r = codec.parse_link(_encoded(m))
    assert (r.index, r.name, r.kind, r.mtu, r.master, r.alias, r.mac, r.flags & 1) == (12, "br-web", "bridge", 9000, 4, "ovsnet:t:docker-bridge", "02:00:00:00:00:01", 1)


def test_parse_address_and_route_read_what_pyroute2_wrote():
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = socket.AF_INET, 24, 9
    a["attrs"] = [("IFA_ADDRESS", "192.168.10.11"), ("IFA_LOCAL", "192.168.10.11")]
    assert codec.parse_address(_encoded(a)) == codec.RawAddress(9, "192.168.10.11", 24)
    r = rtmsg()
    r["family"], r["dst_len"], r["table"], r["proto"], r["type"] = socket.AF_INET, 8, 254, 3, 1
    r["attrs"] = [("RTA_DST", "10.0.0.0"), ("RTA_OIF", 3), ("RTA_GATEWAY", "192.168.10.254"), ("RTA_PRIORITY", 100), ("RTA_TABLE", 254)]
    got = codec.parse_route(_encoded(r))
    assert (got.dst, got.oif, got.gateway, got.metric, got.proto, got.table, got.rtype) == ("10.0.0.0/8", 3, "192.168.10.254", 100, 3, 254, 1)


@pytest.mark.parametrize(("ip", "local"), [
    ("fe80::1", True), ("febf::1", True),  # all of fe80::/10
    ("fec0::1", False), ("2001:db8::1", False), ("fd00::1", False), ("::1", False),
])
def test_ipv6_link_local_addresses_are_told_from_their_bytes(ip, local):
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = socket.AF_INET6, 64, 9
    a["attrs"] = [("IFA_ADDRESS", ip)]
    assert codec.link_local6_address(_encoded(a)) is local


def test_an_ipv4_address_is_never_link_local6():
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = socket.AF_INET, 16, 9
    a["attrs"] = [("IFA_ADDRESS", "169.254.1.1"), ("IFA_LOCAL", "169.254.1.1")]
    assert codec.link_local6_address(_encoded(a)) is False


@pytest.mark.parametrize(("dst", "dst_len", "local"), [
    ("fe80::", 64, True), ("fe80::", 10, False), ("2001:db8::", 64, False),
])
def test_the_link_local_route_of_a_link_is_told_from_its_bytes(dst, dst_len, local):
    r = rtmsg()
    r["family"], r["dst_len"], r["table"], r["proto"], r["type"] = socket.AF_INET6, dst_len, 254, 2, 1
    r["attrs"] = [("RTA_DST", dst), ("RTA_OIF", 3)]
    assert codec.link_local6_route(_encoded(r)) is local


# --- one-off requests: a route lookup, a neighbour entry (no pyroute2 on the `up` path) ---------


@pytest.mark.parametrize("ip", ["192.168.10.1", "2001:db8::1"])
def test_route_lookup_is_what_pyroute2_would_send(ip):
    m = rtmsg()
    m["family"], m["dst_len"] = (socket.AF_INET, 32) if "." in ip else (socket.AF_INET6, 128)
    m["attrs"] = [("RTA_DST", ip)]
    m["header"]["type"], m["header"]["flags"] = codec.RTM_GETROUTE, 1
    m.encode()
    assert codec.get_route(ip) == bytes(m.data)


@pytest.mark.parametrize("ip", ["192.168.10.1", "fe80::1"])
def test_neighbour_delete_is_what_pyroute2_would_send(ip):
    m = ndmsg()
    m["family"], m["ifindex"] = (socket.AF_INET if "." in ip else socket.AF_INET6), 7
    m["attrs"] = [("NDA_DST", ip)]
    m["header"]["type"], m["header"]["flags"] = codec.RTM_DELNEIGH, 1 | 4
    m.encode()
    assert codec.del_neighbour(7, ip) == bytes(m.data)


@pytest.mark.parametrize("ip", ["192.168.10.1", "2001:db8::1"])
def test_parse_neighbour_reads_what_pyroute2_wrote(ip):
    m = ndmsg()
    m["family"], m["ifindex"], m["state"] = (socket.AF_INET if "." in ip else socket.AF_INET6), 7, 0x02
    m["attrs"] = [("NDA_DST", ip), ("NDA_LLADDR", "02:00:00:00:00:01")]
    assert codec.parse_neighbour(_encoded(m)) == codec.RawNeighbour(7, 0x02, ip)
