"""Where one host's objects live: which OVSDB, which network namespace, which files.

On a real host every field keeps its default. The lab, and anyone driving a
namespace, points the same apply code at a namespace and a private OVS
instance by filling these in. A namespace run uses the namespace's own files
(/etc/netns/NAME/..., the iproute2 convention that `ip netns exec` bind-mounts
over /etc), so it can never touch this machine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    gateway_timeout: float = 5.0
    # The host's filesystem, for its network manager's state and configuration
    # (/run/systemd/netif, /etc/network/interfaces, dhclient's pid and lease
    # files): "/" on a real host; the lab gives each simulated host a directory.
    root: str = "/"

    @property
    def etc(self) -> str:
        """The host's /etc, or the namespace's own."""
        return f"{ETC_NETNS}/{self.netns}" if self.netns else ETC

    @property
    def resolv_conf_path(self) -> str:
        return self.resolv_conf or f"{self.etc}/resolv.conf"
