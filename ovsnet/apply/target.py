"""Where one host's objects live: which OVSDB, which network namespace, which files.

On a real host every field keeps its default. The lab, and anyone driving a
namespace, points the same apply code at a namespace and a private OVS
instance by filling these in. A namespace run uses the namespace's own files
(/etc/netns/NAME/..., the iproute2 convention that `ip netns exec` bind-mounts
over /etc), so it can never touch this machine's /etc: its resolv.conf, and
a network manager's configuration, are read there. What lives outside /etc
(/run, /var/lib) is shared by every namespace under that convention: a
namespace run reads only a DHCP client's pid file there, and takes the
client for the namespace's only if the process lives in that namespace
(managers/dhclient.py); the machine's network managers' state is never read
for a namespace. `root` (--root) puts all of the host's files under one
directory instead (the lab gives each simulated host one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ovsnet.errors import UsageError
from ovsnet.topology.model import DEFAULT_OVSDB

DEFAULT_STATE_DIR = "/var/lib/ovsnet"
ETC = "/etc"
ETC_NETNS = "/etc/netns"


@dataclass(frozen=True)
class Target:
    ovsdb: str = DEFAULT_OVSDB
    netns: str | None = None  # None: this process's own namespace
    state_dir: str = DEFAULT_STATE_DIR
    # None: the host's own /etc/resolv.conf, or the namespace's /etc/netns/NAME/resolv.conf.
    resolv_conf: str | None = field(default=None)
    docker_host: str | None = None  # None: DOCKER_HOST or Docker's default socket
    datapath: str | None = None  # overrides the topology's (the lab forces netdev)
    ovs_timeout: float = 10.0
    # Per Docker API call. A local daemon answers in milliseconds; an emulated
    # guest's took more than 10 s to create one network.
    docker_timeout: float = 10.0
    gateway_timeout: float = 5.0
    # The host's filesystem, for its network manager's state and configuration
    # (/run/systemd/netif, /etc/network/interfaces, dhclient's pid and lease
    # files), and its /etc/resolv.conf: None is "/" with the namespace's own
    # /etc (see above); the lab gives each simulated host a directory.
    root: str | None = None

    @property
    def files_root(self) -> str:
        return self.root or "/"

    @property
    def shared_files(self) -> bool:
        """A namespace without a root of its own: outside /etc, its files are the machine's."""
        return self.netns is not None and self.root is None

    @property
    def etc(self) -> str:
        """The host's /etc: under its root, the namespace's own, or this machine's."""
        if self.root:
            return f"{self.root.rstrip('/')}{ETC}"
        return f"{ETC_NETNS}/{self.netns}" if self.netns else ETC

    @property
    def resolv_conf_path(self) -> str:
        return self.resolv_conf or f"{self.etc}/resolv.conf"


DAEMON_TIMEOUT_MAX = 600.0


def check_daemon_timeout(option: str, seconds: float, daemon: str) -> float:
    """A per-call timeout for one of the host's daemons, or a UsageError saying what is allowed."""
    if not 0 < seconds <= DAEMON_TIMEOUT_MAX:  # NaN fails this too
        raise UsageError(f"{option} {seconds:g}: give the seconds {daemon} may take per call, more than 0 and at most {DAEMON_TIMEOUT_MAX:g}")
    return float(seconds)
