"""Does an address answer on a link? ARP (IPv4) or neighbour discovery (IPv6), watched through netlink."""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Any

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

    The datagram socket is made inside the namespace by pyroute2's
    netns.create_socket (a short-lived child does setns and passes the fd
    back): a socket keeps the namespace it was born in, so no thread of
    this process ever has to switch namespaces.
    """
    try:
        ip = ipaddress.ip_address(target_ip)
        index = nl.index(ifname)
    except (ValueError, LookupError) as exc:
        raise BackendError(f"netlink: cannot probe {target_ip} on {ifname}{nl.where()}: {exc}") from exc
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    ipr = nl.iproute()

    state = _neighbour_state(ipr, family, index, str(ip))
    if state is not None and state & NUD_PINNED:
        return True
    if state is not None:
        try:
            ipr.neigh("del", family=family, dst=str(ip), ifindex=index)
        except Exception:
            pass  # already gone (garbage-collected meanwhile) is fine

    sock = _udp_socket(nl.netns, family, ifname)
    try:
        deadline = time.monotonic() + timeout
        sent_at = 0.0
        while True:
            state = _neighbour_state(ipr, family, index, str(ip))
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


def _neighbour_state(ipr: Any, family: int, index: int, dst: str) -> int | None:
    for m in ipr.get_neighbours(family=family, ifindex=index, dst=dst):
        return m["state"]
    return None


def _udp_socket(netns: str | None, family: int, ifname: str) -> socket.socket:
    if netns:
        from pyroute2 import netns as pr_netns

        sock = pr_netns.create_socket(netns, family, socket.SOCK_DGRAM, flags=0)
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
