"""What a lab is called and what a built one is: its kernel names, its OVS
instances, and how each host of it is reached.

Every name derives from one per-lab prefix and the topology's order, so a
later process (status, exec, verify, destroy) finds the same namespaces,
links and directories again from the topology file alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from ovsnet.apply.target import Target
from ovsnet.errors import UsageError
from ovsnet.topology.model import Topology

LAB_ROOT = Path("/run/ovsnet-lab")
ETC_NETNS = Path("/etc/netns")
OVS_PROGRAMS = ("ovsdb-server", "ovs-vswitchd")
IFNAMSIZ = 16  # the kernel's limit, NUL included: names are at most 15 bytes
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,7}$")
SUN_PATH_MAX = 107  # bytes of a unix socket path, NUL excluded
DOCKER_DIR = "docker"  # <lab>/docker/<namespace>/: a lab host's dockerd (see lab/docker.py)
# Every simulated host's ovs-vswitchd shares this machine's cores with all the
# others (and with the userspace datapath's threads): on a loaded machine a
# fresh one has been seen to take over 10 s to apply its first transaction.
LAB_OVS_TIMEOUT = 60.0


def default_prefix(topo: Topology) -> str:
    """Two letters of the topology's name and a hash of name and file.

    The file's path goes into the hash so that two files that happen to use
    one name still get two labs; the same file always gets the same prefix,
    so `down` finds what `up` made.
    """
    letters = re.sub(r"[^a-z0-9]", "", topo.name.lower())
    stem = (letters if letters[:1].isalpha() else "l" + letters)[:2].ljust(2, "l")
    source = topo.source if topo.source.startswith("<") else str(Path(topo.source).resolve())
    digest = hashlib.sha256(f"{topo.name}\0{source}".encode()).hexdigest()
    return stem + digest[:4]


def default_lab_dir(prefix: str) -> Path:
    return LAB_ROOT / prefix


def _fits(name: str) -> bool:
    return len(name.encode()) < IFNAMSIZ


@dataclass(frozen=True)
class LabNames:
    """Every name the lab gives the kernel, derived from the prefix and the topology's order.

    Namespaces are "<prefix>-<role><n>"; the "-" after the prefix is what
    `owns` checks, so lab "ab" never claims lab "abc"'s namespaces.
    """

    prefix: str
    hosts: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    switch: str | None = None
    router: str | None = None
    # The number in each host's and endpoint's names, when the lab was converged
    # to an edited file: kept from the lab as built, so adding or removing a
    # host renames no other one (empty: numbered in the topology's order).
    host_numbers: Mapping[str, int] = field(default_factory=dict)
    endpoint_numbers: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # At most 8 characters: "<prefix>-e<n>" and "<prefix>t<n>" then fit in
        # 15 bytes up to n = 99999, and the prefix cannot contain the "-".
        if not PREFIX_RE.match(self.prefix):
            raise UsageError(
                f"lab prefix {self.prefix!r} is not 2 to 8 lowercase letters and digits starting with a letter"
            )

    @classmethod
    def for_topology(cls, topo: Topology, prefix: str | None = None, before: LabNames | None = None) -> LabNames:
        """The names of the topology's nodes; `before`: the lab as built, whose numbers are kept."""
        switch = topo.lab.switch if topo.lab else None
        hosts = tuple(topo.hosts)
        endpoints = tuple(ep.name for ep in topo.endpoints)
        return cls(
            prefix=prefix or default_prefix(topo),
            hosts=hosts,
            endpoints=endpoints,
            switch=switch,
            router=topo.router.name if topo.router and switch else None,
            host_numbers=_numbered(hosts, before.all_host_numbers() if before else None),
            endpoint_numbers=_numbered(endpoints, before.all_endpoint_numbers() if before else None),
        )

    def host_number(self, host: str) -> int:
        return self.host_numbers[host] if self.host_numbers else self.hosts.index(host) + 1

    def endpoint_number(self, endpoint: str) -> int:
        return self.endpoint_numbers[endpoint] if self.endpoint_numbers else self.endpoints.index(endpoint) + 1

    def all_host_numbers(self) -> dict[str, int]:
        """Every number given out, those of hosts removed since included: none is given twice."""
        return {**self.host_numbers, **{h: self.host_number(h) for h in self.hosts}}

    def all_endpoint_numbers(self) -> dict[str, int]:
        return {**self.endpoint_numbers, **{e: self.endpoint_number(e) for e in self.endpoints}}

    @property
    def ns_prefix(self) -> str:
        return f"{self.prefix}-"

    def owns(self, name: str) -> bool:
        return name.startswith(self.ns_prefix)

    def host_ns(self, host: str) -> str:
        return f"{self.prefix}-h{self.host_number(host)}"

    @property
    def switch_ns(self) -> str:
        return f"{self.prefix}-sw"

    @property
    def router_ns(self) -> str:
        return f"{self.prefix}-rt"

    @property
    def spare_ns(self) -> str:
        """Where the far ends of uncabled NICs go: a NIC with no carrier, as on a real host."""
        return f"{self.prefix}-x"

    def endpoint_ns(self, endpoint: str) -> str:
        return f"{self.prefix}-e{self.endpoint_number(endpoint)}"

    def endpoint_link(self, endpoint: str) -> str:
        """The endpoint's veth end on the host side; prefixed so apply never mistakes it for its own."""
        return f"{self.prefix}e{self.endpoint_number(endpoint)}"

    def temp_link(self, n: int) -> str:
        """A veth end's name until it moves to its namespace; unique in the lab."""
        return f"{self.prefix}t{n}"

    def switch_port(self, host: str, nic: str) -> str:
        index = self.host_number(host)
        name = f"h{index}-{nic}"
        return name if _fits(name) else f"h{index}-{hashlib.sha256(nic.encode()).hexdigest()[:8]}"

    @staticmethod
    def router_leg(vlan_id: int) -> str:
        return f"v{vlan_id}"

    @staticmethod
    def router_port(vlan_id: int) -> str:
        """The switch's end of the router's leg on that VLAN."""
        return f"r{vlan_id}"

    def nodes(self) -> dict[str, str]:
        """Node name -> namespace; hosts win a name clash (exec by namespace still works)."""
        out: dict[str, str] = {h: self.host_ns(h) for h in self.hosts}
        if self.switch:
            out.setdefault(self.switch, self.switch_ns)
        if self.router:
            out.setdefault(self.router, self.router_ns)
        for e in self.endpoints:
            out.setdefault(e, self.endpoint_ns(e))
        return out


def _numbered(names: Sequence[str], before: Mapping[str, int] | None) -> dict[str, int]:
    """Numbers from 1 in order; with the lab as built, its numbers kept and new names after its highest.

    The numbers of names gone are kept too, so that a name added later
    never takes the namespace name of one removed.
    """
    if before is None:
        return {}
    out = dict(before)
    top = max(before.values(), default=0)
    for n in names:
        if n not in out:
            top += 1
            out[n] = top
    return out


# --- what a built lab is ---------------------------------------------------------


@dataclass(frozen=True)
class OvsRun:
    """One private OVS instance, found again by its run directory."""

    namespace: str
    rundir: str

    @property
    def remote(self) -> str:
        return f"unix:{self.rundir}/db.sock"


@dataclass(frozen=True)
class Lab:
    topology: Topology
    names: LabNames
    lab_dir: Path
    ovs: Mapping[str, OvsRun]  # namespace -> its OVS (hosts and switch)
    switch_ports: Mapping[str, str] = field(default_factory=dict)  # "node1:eth1" -> switch port
    # Nodes the lab added beside the topology's (`lab up --ssh`'s controller): name -> namespace.
    stations: Mapping[str, str] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.names.prefix

    @property
    def namespaces(self) -> dict[str, str]:
        nodes = self.names.nodes()
        return {**nodes, **{n: ns for n, ns in self.stations.items() if n not in nodes}}

    @property
    def state_dir(self) -> Path:
        return self.lab_dir / "state"

    def ns(self, node: str) -> str:
        """The namespace of a node, given its name or its namespace name."""
        nodes = self.namespaces
        if node in nodes:
            return nodes[node]
        if node in nodes.values():
            return node
        raise UsageError(f"lab {self.prefix} has no node {node!r}; nodes: {', '.join(nodes)}")

    def ovs_of(self, host: str) -> OvsRun:
        return self.ovs[self.names.host_ns(host)]


@dataclass(frozen=True)
class Daemon:
    pid: int
    program: str
    rundir: str | None


def resolv_conf_path(namespace: str) -> Path:
    # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc/*: DNS writes stay in the lab.
    return ETC_NETNS / namespace / "resolv.conf"


# --- reaching its nodes ------------------------------------------------------------


def host_root(lab_dir: Path | str, ns: str) -> Path:
    """A simulated host's own files (its DHCP client's pid and leases): Target.root."""
    return Path(lab_dir) / "root" / ns


def targets(lab: Lab) -> dict[str, Target]:
    """Each host's Target: what `ovsnet up`'s own code is pointed at to configure it.

    Only the hosts the lab has: a host an edited file adds has none until
    `lab up` makes it.
    """
    datapath = lab.topology.lab.datapath.value if lab.topology.lab else "netdev"
    out = {}
    for host in lab.topology.hosts:
        ns = lab.names.host_ns(host)
        if ns not in lab.ovs:
            continue
        out[host] = Target(
            ovsdb=lab.ovs[ns].remote,
            netns=ns,
            state_dir=str(lab.state_dir),
            resolv_conf=str(resolv_conf_path(ns)),
            datapath=datapath,
            ovs_timeout=LAB_OVS_TIMEOUT,
            root=str(host_root(lab.lab_dir, ns)),
            # The host's own lab dockerd, when one runs; never the machine's
            # Docker, whose networks would put bridges in the machine's namespace.
            docker_host=f"unix://{Path(lab.lab_dir) / DOCKER_DIR / ns / 'docker.sock'}",
        )
    return out


def exec_argv(lab: Lab, node: str, argv: Sequence[str]) -> list[str]:
    """argv that runs a command in a node's namespace; OVS tools there find the node's own OVS."""
    ns = lab.ns(node)
    run = lab.ovs.get(ns)
    env = ["env", f"OVS_RUNDIR={run.rundir}"] if run else []
    return ["ip", "netns", "exec", ns, *env, *argv]
