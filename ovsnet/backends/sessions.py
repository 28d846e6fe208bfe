"""Who is logged in over the network now: sshd's established TCP connections, asked of the kernel.

The SSH guard must know whether moving a NIC would cut somebody's SSH
session. An environment variable cannot say (SSH_CONNECTION is dropped by
sudo's env_reset and never names other users' sessions), so the kernel is
asked through NETLINK_SOCK_DIAG (inet_diag, what `ss` uses) for the TCP
sockets of the target's network namespace, and a socket belongs to sshd when
a process whose executable is sshd holds it (its inode in /proc/PID/fd), or
when it was accepted on a port an sshd process listens on (sshd started by
socket activation holds only the accepted ones). The socket is born in the
namespace (ovsnet.backends.netns).

The two inet_diag structs are packed here by hand: importing pyroute2's
inet_diag classes cost 0.67 to 0.71 s (load 7, `python -X importtime`),
paid by every `up` that moves an address, for one request. The tests check
both structs against pyroute2's own encoding.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

from ovsnet.backends.netns import socket_in

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_ESTABLISHED, TCP_LISTEN = 1, 10
SSHD = ("sshd",)
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
# struct inet_diag_req_v2 and struct inet_diag_msg (linux/inet_diag.h); the
# socket id (ports, addresses) is in network byte order.
_REQ = struct.Struct("=BBBxI4x32x12x")
_HDR = struct.Struct("=IHHII")
_MSG_HEAD = struct.Struct("=BBBB")
_PORTS = struct.Struct(">HH")
_TAIL = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode
_ID_SIZE = 48


@dataclass(frozen=True)
class TcpSocket:
    state: int
    local: str
    local_port: int
    remote: str
    remote_port: int
    inode: int


@dataclass(frozen=True)
class Session:
    """An established SSH connection into this namespace: from `remote`, to our `local` address."""

    remote: str
    remote_port: int
    local: str
    local_port: int


def tcp_sockets(netns: str | None, states: int = (1 << TCP_ESTABLISHED) | (1 << TCP_LISTEN)) -> list[TcpSocket]:
    """The namespace's TCP sockets in `states` (a bit mask of TCP states), both families."""
    out: list[TcpSocket] = []
    sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        sock.bind((0, 0))
        for family in (socket.AF_INET, socket.AF_INET6):
            sock.sendall(diag_request(family, states, seq=family))
            out += [parse_diag(raw[_HDR.size:]) for raw in _replies(sock, family)]
    finally:
        sock.close()
    return out


def diag_request(family: int, states: int, seq: int = 0) -> bytes:
    """SOCK_DIAG_BY_FAMILY dump of the family's TCP sockets in `states`."""
    body = _REQ.pack(family, socket.IPPROTO_TCP, 0, states)
    return _HDR.pack(_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def parse_diag(p: bytes) -> TcpSocket:
    """One inet_diag_msg payload."""
    family, state, _timer, _retrans = _MSG_HEAD.unpack_from(p, 0)
    sport, dport = _PORTS.unpack_from(p, 4)
    size = 4 if family == socket.AF_INET else 16
    src, dst = p[8:8 + size], p[24:24 + size]
    inode = _TAIL.unpack_from(p, 4 + _ID_SIZE)[4]
    return TcpSocket(state, _plain(ipaddress.ip_address(src)), sport, _plain(ipaddress.ip_address(dst)), dport, inode)


def _replies(sock: socket.socket, seq: int) -> list[bytes]:
    out: list[bytes] = []
    while True:
        data = sock.recv(1 << 20)
        off = 0
        while off + 16 <= len(data):
            length, mtype, _flags, got, _pid = struct.unpack_from("=IHHII", data, off)
            if length < 16:
                return out
            if got == seq:
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data, off + 16)[0]
                    if code:
                        raise OSError(code, f"sock_diag: {os.strerror(code)}")
                    return out
                out.append(data[off:off + length])
            off += (length + 3) & ~3


def _plain(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack listener's peer) as the IPv4 address it is."""
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def sshd_pids() -> list[int]:
    """The processes whose executable is sshd (one readlink per process)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _is_sshd(int(entry)):
            out.append(int(entry))
    return out


def sockets_held(pids: list[int], inodes: set[int]) -> set[int]:
    """Which of `inodes` the processes `pids` hold (their /proc/PID/fd).

    Only sshd's processes are walked: walking every process's descriptors
    cost 0.6 s of a 200-port `up` (ovs-vswitchd and dockerd hold thousands),
    against a few milliseconds for sshd's few (bench/apply.py --phases,
    uplink.sessions, 2026-11-30).
    """
    held: set[int] = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue  # gone, or not ours to look at
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                held.add(int(target[8:-1]))
    return held


def _is_sshd(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) in SSHD
    except OSError:
        return False


def ssh_sessions(netns: str | None) -> list[Session]:
    """The SSH connections into the namespace (this process's own when None), whoever opened them."""
    sockets = tcp_sockets(netns)
    if not any(s.state == TCP_ESTABLISHED for s in sockets):
        return []
    sshd_inodes = sockets_held(sshd_pids(), {s.inode for s in sockets if s.inode})
    sshd_ports = {s.local_port for s in sockets if s.state == TCP_LISTEN and s.inode in sshd_inodes}
    return [
        Session(s.remote, s.remote_port, s.local, s.local_port)
        for s in sockets
        if s.state == TCP_ESTABLISHED and (s.inode in sshd_inodes or s.local_port in sshd_ports)
    ]
