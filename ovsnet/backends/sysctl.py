"""Kernel settings under /proc/sys/net that netlink cannot write: one file, in the target's namespace.

The one ovsnet writes is IPv6 off on a Docker bridge of a dual-stack
network (net.ipv6.conf.<bridge>.disable_ipv6): Docker's bridge driver puts
the network's IPv6 gateway (the VLAN's router6) and fe80::1 on the bridge,
and has no IPv6 counterpart of inhibit_ipv4 (checked with Docker 20.10;
28's gateway_mode_ipv6=isolated needs an --internal network, with no default
route). Left there, the host would answer for the VLAN's router and sit on
the containers' segment. Netlink sets an interface's IPv4 settings
(IFLA_INET_CONF) but not its IPv6 ones, hence the file.

/proc/sys/net answers for the namespace of the task that opens it, so a
thread that entered the namespace opens it (ovsnet.backends.netns.inside);
this process never changes namespace and starts no program.
"""

from __future__ import annotations

from ovsnet.backends.netns import inside
from ovsnet.errors import BackendError

PROC_SYS = "/proc/sys"


def _path(key: str) -> str:
    # "net.ipv6.conf.br-web.disable_ipv6": interface names may hold dots, so
    # keys are written with '/' between parts (as the file tree has them).
    return f"{PROC_SYS}/{key}"


class Sysctl:
    """The sysctl backend of one target (its namespace, or this one)."""

    def __init__(self, netns: str | None):
        self.netns = netns

    def read(self, key: str) -> str:
        def get() -> str:
            with open(_path(key)) as f:
                return f.read().strip()

        try:
            return inside(self.netns, get) if self.netns else get()
        except OSError as exc:
            raise BackendError(f"sysctl: cannot read {key.replace('/', '.')}{self._where()}: {exc.strerror or exc}") from None

    def write(self, key: str, value: str) -> None:
        def put() -> None:
            with open(_path(key), "w") as f:
                f.write(value)

        try:
            inside(self.netns, put) if self.netns else put()
        except OSError as exc:
            raise BackendError(f"sysctl: cannot set {key.replace('/', '.')}={value}{self._where()}: {exc.strerror or exc}") from None

    def _where(self) -> str:
        return f" in namespace {self.netns}" if self.netns else ""
