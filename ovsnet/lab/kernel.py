"""The lab's own kernel work: netlink sockets per namespace, links moved between
namespaces, and sysctls written from inside a namespace."""

from __future__ import annotations

import ctypes
import os
from typing import Sequence

from ovsnet.backends.netlink import Netlink
from ovsnet.backends.netlink.ops import NlMoveLink, NlOp
from ovsnet.errors import BackendError
from ovsnet.kinds.veth import NlCreateVeth
from ovsnet.lab import netns

CLONE_NEWNET = 0x40000000


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
        """A veth pair from ns_a to ns_b: made whole in ns_a, then one end moved."""
        self.apply(ns_a, [NlCreateVeth(name_a, temp, mtu=mtu)])
        self.move(ns_a, temp, ns_b, name_b)


def write_sysctl(ns: str, key: str, value: str) -> None:
    """Write /proc/sys/<key> as seen from inside `ns`.

    /proc/sys/net answers for the namespace of whoever opens it, so a forked
    child enters the namespace and writes; this process never changes namespace.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    nsfd = os.open(os.path.join(netns.NETNS_DIR, ns), os.O_RDONLY)
    rd, wr = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(rd)
                if libc.setns(nsfd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
                with open(f"/proc/sys/{key}", "w") as f:
                    f.write(value)
                code = 0
            except BaseException as exc:
                os.write(wr, str(exc).encode()[:500])
            finally:
                os._exit(code)
        os.close(wr)
        wr = -1
        reason = b"".join(iter(lambda: os.read(rd, 512), b"")).decode(errors="replace")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(nsfd)
        os.close(rd)
        if wr >= 0:
            os.close(wr)
    if os.waitstatus_to_exitcode(status) != 0:
        raise BackendError(f"lab: cannot set {key.replace('/', '.')}={value} in {ns}: {reason or 'child failed'}")
