"""Does an address answer on a link? ARP (IPv4) or neighbour discovery (IPv6), watched through netlink."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

from ovsnet.backends.netlink import codec
from ovsnet.errors import BackendError

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
DISCARD_PORT = 9  # what we send is only bait for ARP/ND; nobody need listen


def answers(nl: Any, ifname: str, target_ip: str, timeout: float = 2.0) -> bool:
    """True when target_ip answers ARP (IPv6: neighbour discovery) on ifname in time.

    How: forget the kernel's neighbour entry for target_ip on ifname, send
    one UDP datagram out of ifname towards it, and watch the new entry.
    The kernel resolves it for us; REACHABLE means a reply came back. The
    old entry has to go because a cached STALE one would say nothing about
    now, and turning it REACHABLE would take 5 s of DELAY. A permanent
    (static) entry is never probed by the kernel, so it counts as answered.

    The datagram socket is made inside the namespace (ovsnet.backends.netns):
    a socket keeps the namespace it was born in.
    """
    try:
        ip = ipaddress.ip_address(target_ip)
        index = nl.index(ifname)
    except (ValueError, LookupError) as exc:
        raise BackendError(f"netlink: cannot probe {target_ip} on {ifname}{nl.where()}: {exc}") from exc
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    raw = nl.socket()

    state = _neighbour_state(raw, family, index, str(ip))
    if state is not None and state & NUD_PINNED:
        return True
    if state is not None:
        try:
            codec.request(raw, codec.del_neighbour(index, str(ip)))
        except OSError:
            pass  # already gone (garbage-collected meanwhile) is fine

    sock = _udp_socket(nl.netns, family, ifname)
    try:
        deadline = time.monotonic() + timeout
        sent_at = 0.0
        while True:
            state = _neighbour_state(raw, family, index, str(ip))
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


def _neighbour_state(raw: socket.socket, family: int, index: int, dst: str) -> int | None:
    """The state of one neighbour entry, from a dump of the family's table."""
    for _ in range(5):
        try:
            for p in codec.dump(raw, codec.RTM_GETNEIGH, family):
                n = codec.parse_neighbour(p)
                if n.index == index and n.dst == dst:
                    return n.state
            return None
        except codec.DumpInterrupted:
            continue  # the table changed under the dump: ask again
    return None


def _udp_socket(netns: str | None, family: int, ifname: str) -> socket.socket:
    from ovsnet.backends.netns import socket_in

    sock = socket_in(netns, family, socket.SOCK_DGRAM)
    # Out of this device only, whatever the routing table says (even with no route yet).
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    return sock


def _bait(sock: socket.socket, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, index: int) -> None:
    addr: tuple[Any, ...] = (str(ip), DISCARD_PORT) if ip.version == 4 else (str(ip), DISCARD_PORT, 0, index)
    try:
        sock.sendto(b"ovsnet-probe", addr)
    except OSError:
        pass  # down link, no source address: the entry never resolves and we say False
