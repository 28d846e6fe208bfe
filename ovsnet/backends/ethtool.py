"""The one ethtool setting ovsnet makes: TX checksum offload off on veths that feed a userspace OVS bridge.

A veth leaves a TCP or UDP checksum unfinished (CHECKSUM_PARTIAL) for the
receiver's kernel to trust. When the receiver is a port of OVS's userspace
datapath (`datapath_type=netdev`, the lab's), ovs-vswitchd reads the frame
through a packet socket and forwards it as it is, and the host at the other
end drops it for its bad checksum: ARP and ping (software checksums) get
through, TCP does not (an SSH session died the moment the host's address
moved behind OVS). With TX checksum offload off on the sending veth the
kernel finishes the checksum before the frame leaves. The kernel datapath
has no such problem.

Set through the SIOCETHTOOL ioctl (ETHTOOL_STXCSUM), on a socket born in the
target's namespace: ethtool's own netlink family would need a generic
netlink family lookup for one flag.
"""

from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.backends.netns import socket_in
from ovsnet.errors import BackendError

SIOCETHTOOL = 0x8946
ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM = 0x16, 0x17
IFNAMSIZ = 16


def _ethtool(netns: str | None, ifname: str, cmd: int, data: int = 0) -> int:
    value = ctypes.create_string_buffer(struct.pack("=II", cmd, data))
    ifreq = struct.pack(f"@{IFNAMSIZ}sP", ifname.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    sock = socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    except OSError as exc:
        raise BackendError(f"ethtool: cannot {'read' if cmd == ETHTOOL_GTXCSUM else 'set'} TX checksumming of {ifname}: {exc.strerror}") from None
    finally:
        sock.close()
    return struct.unpack_from("=II", value.raw)[1]


def tx_checksum(netns: str | None, ifname: str) -> bool:
    return bool(_ethtool(netns, ifname, ETHTOOL_GTXCSUM))


def set_tx_checksum(netns: str | None, ifname: str, on: bool) -> None:
    _ethtool(netns, ifname, ETHTOOL_STXCSUM, 1 if on else 0)


class Ethtool:
    """The ethtool backend of one target (its namespace)."""

    def __init__(self, netns: str | None):
        self.netns = netns

    def set_tx_checksum(self, ifname: str, on: bool) -> None:
        set_tx_checksum(self.netns, ifname, on)


@dataclass(frozen=True)
class EthtoolTxChecksum:
    """TX checksum offload of one link, on or off."""

    name: str
    on: bool
    backend: ClassVar[str] = "ethtool"

    def run(self, ethtool: Any) -> None:
        ethtool.set_tx_checksum(self.name, self.on)

    def describe(self) -> str:
        return f"set TX checksum offload of {self.name} {'on' if self.on else 'off'}"
