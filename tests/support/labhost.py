"""A simulated host: a network namespace with its own OVS, eth1 wired to a gateway namespace.

It stands for node1 of the seed before ovsnet ran: eth1 holds the host's
address and default route, and the gateway namespace answers on the
management VLAN untagged, as an upstream switch port with a native VLAN
would. The daemons are a private ovsdb-server + ovs-vswitchd (userspace
datapath) with every file in one run directory, so the machine's own
interfaces and Open vSwitch are never touched.

The pieces are context managers so that whatever was made is removed on
leaving, pass or fail: the pytest fixtures wrap them one by one (a test may
want a namespace without OVS), `SimulatedHost` puts them together for the
benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ovsnet.apply.target import Target
from ovsnet.backends.ethtool import set_tx_checksum
from ovsnet.lab import netns
from ovsnet.lab.ovs_instance import OvsInstance

from .commands import sh, vsctl
from .topologies import MGMT_GATEWAY, NODE1_ADDRESS

# Objects add_foreign_objects makes: not ovsnet's, so ovsnet must never touch them.
FOREIGN_LINKS = ("fbr", "fv0", "fv1", "fw0", "fw1", "lbrf", "fdum0", "fdum1")
FOREIGN_OVS_BRIDGE = "fbr"
OWNER_KEY = "ovsnet-topology"


@contextmanager
def namespaces(prefix: str) -> Iterator[Callable[[str], str]]:
    """make("a") creates namespace <prefix>a; all of them are removed on leaving, newest first."""
    made: list[str] = []

    def make(suffix: str) -> str:
        name = f"{prefix}{suffix}"
        # Recorded first: a create that fails after the namespace exists must still be undone.
        made.append(name)
        netns.create(name)
        return name

    try:
        yield make
    finally:
        failed: list[BaseException] = []
        for name in reversed(made):
            try:
                netns.remove(name)
            except Exception as exc:  # remove the others all the same
                failed.append(exc)
        if failed:
            raise failed[0]


@contextmanager
def private_ovs(ns: str, rundir: Path) -> Iterator[OvsInstance]:
    """ovsdb-server + ovs-vswitchd running in `ns`; stopped on leaving, before the namespace goes."""
    instance = OvsInstance()
    # start() stops whatever it started if it fails part-way.
    instance.start(ns, rundir)
    try:
        yield instance
    finally:
        instance.stop()


def wire_uplink(ns: str, gw: str) -> None:
    """eth1 in `ns` holds the host's address and default route; its peer gw0 in `gw` is the gateway."""
    sh("ip", "link", "add", "eth1", "netns", ns, "type", "veth", "peer", "name", "gw0", "netns", gw)
    # Once eth1 is a port of the userspace OVS bridge, TCP from the gateway
    # needs its checksums finished on the way out (see ovsnet.backends.ethtool).
    set_tx_checksum(gw, "gw0", False)
    prefixlen = NODE1_ADDRESS.split("/")[1]
    sh("ip", "-n", gw, "-batch", "-", input=f"addr add {MGMT_GATEWAY}/{prefixlen} dev gw0\nlink set gw0 up\n")
    sh("ip", "-n", ns, "-batch", "-", input=f"addr add {NODE1_ADDRESS} dev eth1\nlink set eth1 up\n"
                                           f"route add default via {MGMT_GATEWAY} dev eth1\n")


def wire_two_cables(ns: str, gw: str) -> None:
    """eth1 and eth2 in `ns`, each cabled to a port of the gateway's Linux bridge `sw`, which holds the gateway's address."""
    sh("ip", "-n", gw, "link", "add", "sw", "type", "bridge")
    for i in (1, 2):
        sh("ip", "link", "add", f"eth{i}", "netns", ns, "type", "veth", "peer", "name", f"gw{i}", "netns", gw)
        set_tx_checksum(gw, f"gw{i}", False)  # as in wire_uplink
        sh("ip", "-n", gw, "-batch", "-", input=f"link set gw{i} master sw\nlink set gw{i} up\n")
    prefixlen = NODE1_ADDRESS.split("/")[1]
    sh("ip", "-n", gw, "-batch", "-", input=f"addr add {MGMT_GATEWAY}/{prefixlen} dev sw\nlink set sw up\n")


def node1_target(ovsdb: str, ns: str, workdir: Path, resolv_text: str, **options) -> Target:
    """Where ovsnet applies to this host: its OVS, its namespace, and state and resolv.conf under `workdir`.

    The resolv.conf is written here because ovsnet rewrites and restores it,
    and the real /etc/resolv.conf must never be the one.
    """
    resolv = Path(workdir) / "resolv.conf"
    resolv.write_text(resolv_text)
    return Target(ovsdb=ovsdb, netns=ns, state_dir=str(Path(workdir) / "state"), resolv_conf=str(resolv), **options)


def add_foreign_objects(ns: str, ovsdb: str, tag: str) -> None:
    """Objects ovsnet must never touch: OVS bridge + ports, Linux bridge + port, addresses, routes.

    `tag` makes the mark of "another ovsnet topology" on fw0 differ from the
    topology under test, whose name also carries the tag.
    """
    # (veth pairs stand in for dummies: this kernel has no dummy module.)
    batch = [
        "link add fv0 type veth peer name fv1",
        "link add fw0 type veth peer name fw1",
        "link add lbrf type bridge",
        "link add fdum0 type veth peer name fdum1",
        "link set fdum0 master lbrf",
        "link set fdum1 alias ovsnet:other-topology:bridge",  # another topology's mark
    ] + [f"link set {l} up" for l in ("fv0", "fv1", "fw0", "fw1", "lbrf", "fdum0", "fdum1")] + [
        "addr add 10.88.0.1/24 dev lbrf",
        "addr add 10.77.0.1/24 dev fv1",
        "addr add 10.66.0.1/24 dev fdum1",
        "route add 10.99.0.0/24 via 10.88.0.254 dev lbrf",
        "route add 10.98.0.0/24 dev fdum1 metric 50",
    ]
    sh("ip", "-n", ns, "-batch", "-", input="\n".join(batch) + "\n")
    br = FOREIGN_OVS_BRIDGE
    vsctl(ovsdb, "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev",
          "external_ids:owner=someone-else", "other_config:hwaddr=02:00:00:00:0f:01",
          "--", "add-port", br, "fv0", "tag=33", "--", "set", "Port", "fv0", "external_ids:owner=someone-else",
          # Marked by *another* ovsnet topology: not ours either.
          "--", "add-port", br, "fw0", "trunks=100,200", "--", "set", "Port", "fw0",
          f"external_ids:{OWNER_KEY}=other{tag}", "external_ids:ovsnet-role=uplink")


class SimulatedHost:
    """node1 before ovsnet, for scripts: namespaces <prefix>h (the host) and <prefix>g (the gateway).

        with SimulatedHost(prefix, workdir, gateway_timeout=30.0) as host:
            apply.up(checked, "node1", host.target)

    Keyword arguments go to the Target. Leaving the block (or stop()) stops
    the daemons and removes both namespaces, whatever happened in it.
    """

    def __init__(self, prefix: str, workdir: Path, resolv_text: str = "nameserver 9.9.9.9\n", **target_options):
        self.prefix, self.workdir = prefix, Path(workdir)
        self._resolv_text, self._target_options = resolv_text, target_options
        self._stack = ExitStack()

    def start(self) -> SimulatedHost:
        try:
            make = self._stack.enter_context(namespaces(self.prefix))
            self.ns, self.gw = make("h"), make("g")
            self.ovs = self._stack.enter_context(private_ovs(self.ns, self.workdir / "ovs"))
            wire_uplink(self.ns, self.gw)
            self.target = node1_target(self.ovs.remote, self.ns, self.workdir, self._resolv_text, **self._target_options)
            self.resolv = Path(self.target.resolv_conf)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> SimulatedHost:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def vsctl(self, *args: str, timeout: float = 600, wait: bool = True) -> str:
        return vsctl(self.ovs.remote, *args, timeout=timeout, wait=wait)

    def ip(self, *args: str, input: str | None = None) -> str:
        # No time limit: a benchmark's batch of thousands of links is timed, not cut off.
        return sh("ip", "-n", self.ns, *args, input=input, timeout=None)
