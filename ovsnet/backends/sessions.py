"""Who is logged in over the network now: sshd's established TCP connections, asked of the kernel.

The SSH guard must know whether moving a NIC would cut somebody's SSH
session. An environment variable cannot say (SSH_CONNECTION is dropped by
sudo's env_reset and never names other users' sessions), so the kernel is
asked through NETLINK_SOCK_DIAG (inet_diag, what `ss` uses) for the TCP
sockets of the target's network namespace, and a socket belongs to sshd when
a process whose executable is sshd holds it (its inode in /proc/PID/fd), or
when it was accepted on a port an sshd process listens on (sshd started by
socket activation holds only the accepted ones). Requests are encoded and
parsed with pyroute2's inet_diag message classes, over a socket born in the
namespace (ovsnet.backends.netns).
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
    from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST
    from pyroute2.netlink.diag import inet_diag_msg, inet_diag_req

    out: list[TcpSocket] = []
    sock = socket_in(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        sock.bind((0, 0))
        for family in (socket.AF_INET, socket.AF_INET6):
            req = inet_diag_req()
            req["sdiag_family"], req["sdiag_protocol"], req["idiag_states"] = family, socket.IPPROTO_TCP, states
            req["header"]["type"], req["header"]["flags"], req["header"]["sequence_number"] = SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, family
            req.encode()
            sock.sendall(bytes(req.data))
            for raw in _replies(sock, family):
                m = inet_diag_msg(raw)
                m.decode()
                out.append(TcpSocket(m["idiag_state"], _plain(m["idiag_src"]), m["idiag_sport"], _plain(m["idiag_dst"]), m["idiag_dport"], m["idiag_inode"]))
    finally:
        sock.close()
    return out


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


def _plain(address: str) -> str:
    """An IPv4-mapped IPv6 address (a dual-stack listener's peer) as the IPv4 address it is."""
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def socket_owners(inodes: set[int]) -> dict[int, set[int]]:
    """inode -> pids holding it, for the socket inodes asked about (a walk of /proc/*/fd)."""
    owners: dict[int, set[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue  # gone, or not ours to look at
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners.setdefault(inode, set()).add(int(entry))
    return owners


def _is_sshd(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) in SSHD
    except OSError:
        return False


def ssh_sessions(netns: str | None) -> list[Session]:
    """The SSH connections into the namespace (this process's own when None), whoever opened them."""
    sockets = tcp_sockets(netns)
    owners = socket_owners({s.inode for s in sockets if s.inode})
    sshd_inodes = {inode for inode, pids in owners.items() if any(_is_sshd(p) for p in pids)}
    sshd_ports = {s.local_port for s in sockets if s.state == TCP_LISTEN and s.inode in sshd_inodes}
    return [
        Session(s.remote, s.remote_port, s.local, s.local_port)
        for s in sockets
        if s.state == TCP_ESTABLISHED and (s.inode in sshd_inodes or s.local_port in sshd_ports)
    ]
