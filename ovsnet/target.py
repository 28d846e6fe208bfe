"""Where one host's objects live: which OVSDB, which network namespace, which files.

On a real host every field keeps its default. The lab points the same apply
code at a namespace and a private OVS instance by filling these in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ovsnet.statefile import DEFAULT_STATE_DIR
from ovsnet.topology.model import DEFAULT_OVSDB


@dataclass(frozen=True)
class Target:
    ovsdb: str = DEFAULT_OVSDB
    netns: str | None = None  # None: this process's own namespace
    state_dir: str = DEFAULT_STATE_DIR
    resolv_conf: str = "/etc/resolv.conf"
    docker_host: str | None = None  # None: DOCKER_HOST or Docker's default socket
    datapath: str | None = None  # overrides the topology's (the lab forces netdev)
    ovs_timeout: float = 10.0
    gateway_timeout: float = 5.0
