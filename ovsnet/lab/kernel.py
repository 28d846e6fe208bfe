"""The lab's own kernel work: netlink sockets per namespace, links moved between
namespaces, and sysctls written from inside a namespace."""

from __future__ import annotations

import os
from typing import Sequence

from ovsnet.backends.ethtool import set_tx_checksum
from ovsnet.backends.netlink import Netlink
from ovsnet.backends.netlink.ops import NlMoveLink, NlOp
from ovsnet.backends.netns import inside
from ovsnet.errors import BackendError
from ovsnet.kinds.veth import NlCreateVeth
from ovsnet.lab import netns


class Kernel:
    """One netlink socket per namespace for the whole build: opening one costs a fork."""

    def __init__(self) -> None:
        self._nl: dict[str, Netlink] = {}

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self._nl.values():
            sock.close()

    def _netlink(self, ns: str) -> Netlink:
        if ns not in self._nl:
            self._nl[ns] = Netlink(ns)
        return self._nl[ns]

    def apply(self, ns: str, ops: Sequence[NlOp]) -> None:
        self._netlink(ns).apply(ops)

    def move(self, src: str, name: str, dst: str, new_name: str) -> None:
        """Move a (down) link to another namespace, renaming it on the way (the lab's cabling)."""
        fd = os.open(os.path.join(netns.NETNS_DIR, dst), os.O_RDONLY)
        try:
            self.apply(src, [NlMoveLink(name, fd, new_name)])
        except BackendError as exc:
            raise BackendError(f"lab: cannot move {name} from {src} to {dst} as {new_name}: {exc}") from exc
        finally:
            os.close(fd)

    def has_link(self, ns: str, name: str) -> bool:
        return self._netlink(ns).link(name) is not None

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, temp: str, mtu: int | None) -> None:
        """A veth pair from ns_a to ns_b: made whole in ns_a, then one end moved.

        Both ends finish their own checksums (TX offload off): every lab
        cable or leg ends in, or crosses, a userspace OVS bridge, which
        forwards a partial checksum unfinished (see ovsnet.backends.ethtool).
        """
        self.apply(ns_a, [NlCreateVeth(name_a, temp, mtu=mtu)])
        set_tx_checksum(ns_a, name_a, False)
        self.move(ns_a, temp, ns_b, name_b)
        set_tx_checksum(ns_b, name_b, False)


def write_sysctl(ns: str, key: str, value: str) -> None:
    """Write /proc/sys/<key> as seen from inside `ns`.

    /proc/sys/net answers for the namespace of the task that opens it, so a
    thread that entered the namespace opens and writes it; this process never
    changes namespace.
    """

    def write() -> None:
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)

    try:
        inside(ns, write)
    except OSError as exc:
        raise BackendError(f"lab: cannot set {key.replace('/', '.')}={value} in {ns}: {exc.strerror or exc}") from None
