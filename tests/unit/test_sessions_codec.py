"""The SSH guard's two inet_diag structs, packed by hand, against pyroute2's own encoding."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from pyroute2.netlink.diag import inet_diag_msg, inet_diag_req

from ovsnet.backends import sessions


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_the_dump_request_is_what_pyroute2_would_send(family):
    req = inet_diag_req()
    req["sdiag_family"], req["sdiag_protocol"], req["idiag_states"] = family, socket.IPPROTO_TCP, 0x402
    req["header"]["type"], req["header"]["flags"], req["header"]["sequence_number"] = sessions.SOCK_DIAG_BY_FAMILY, 0x301, family
    req.encode()
    assert sessions.diag_request(family, 0x402, seq=family) == bytes(req.data)


def _message(family, src, dst, sport, dport, inode):
    """An inet_diag_msg as the kernel lays it out (linux/inet_diag.h), with its netlink header."""
    size = 4 if family == socket.AF_INET else 16
    a = ipaddress.ip_address(src).packed.ljust(16, b"\0")[:16] if size == 16 else ipaddress.ip_address(src).packed + bytes(12)
    b = ipaddress.ip_address(dst).packed.ljust(16, b"\0")[:16] if size == 16 else ipaddress.ip_address(dst).packed + bytes(12)
    body = struct.pack("=BBBB", family, sessions.TCP_ESTABLISHED, 0, 0) + struct.pack(">HH", sport, dport) + a + b
    body += struct.pack("=IQ", 3, 0) + struct.pack("=IIIII", 0, 0, 0, 0, inode)
    return struct.pack("=IHHII", 16 + len(body), sessions.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + body


@pytest.mark.parametrize(("family", "src", "dst", "plain_src", "plain_dst"), [
    (socket.AF_INET, "192.168.10.11", "192.168.10.50", "192.168.10.11", "192.168.10.50"),
    (socket.AF_INET6, "2001:db8::11", "2001:db8::50", "2001:db8::11", "2001:db8::50"),
    # a dual-stack sshd sees an IPv4 peer as ::ffff:a.b.c.d: the guard wants the IPv4 address
    (socket.AF_INET6, "::ffff:192.168.10.11", "::ffff:192.168.10.50", "192.168.10.11", "192.168.10.50"),
])
def test_a_socket_reads_as_pyroute2_reads_it(family, src, dst, plain_src, plain_dst):
    raw = _message(family, src, dst, 22, 51234, 987654)
    ref = inet_diag_msg(raw)
    ref.decode()
    assert (ref["idiag_sport"], ref["idiag_dport"], ref["idiag_inode"]) == (22, 51234, 987654)
    assert ipaddress.ip_address(ref["idiag_dst"]) == ipaddress.ip_address(dst)
    got = sessions.parse_diag(raw[16:])
    assert got == sessions.TcpSocket(sessions.TCP_ESTABLISHED, plain_src, 22, plain_dst, 51234, 987654)
