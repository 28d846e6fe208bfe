"""The simulated network of a topology: hosts, cables, switch, router, endpoints.

Every node is a network namespace named after one per-lab prefix; hosts and
the switch each run a private Open vSwitch. The hosts are left exactly as a
real host looks before `ovsnet up` (uplink NIC up, holding the management
addresses, default route via the gateway): configuring them is the product's
apply code's job, pointed at each host through `targets(lab)`.

Everything made is written to a state file *before* it is made, so that
`destroy` removes a half-built lab, or one whose builder crashed, from the
state file alone; it also scans for namespaces with the prefix, and nothing
without the prefix is ever touched.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from ovsnet import procs
from ovsnet.backends.netlink import Netlink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import BackendError, UsageError
from ovsnet.lab import netns
from ovsnet.lab.ovs_instance import OvsInstance
from ovsnet.ops import (
    NlAddAddress,
    NlCreateVeth,
    NlOp,
    NlReplaceRoute,
    NlSetLink,
    OvsAddBridge,
    OvsAddPort,
    OvsOp,
)
from ovsnet.target import Target
from ovsnet.topology.model import DEFAULT_MTU, Attach, Endpoint, Host, Layout, Topology, Vlan

LAB_ROOT = Path("/run/ovsnet-lab")
ETC_NETNS = Path("/etc/netns")
STATE_FILE = "lab.json"
STATE_FORMAT = 1
SWITCH_BRIDGE = "br-lab"
OVS_PROGRAMS = ("ovsdb-server", "ovs-vswitchd")
IFNAMSIZ = 16  # the kernel's limit, NUL included: names are at most 15 bytes
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,7}$")
CLONE_NEWNET = 0x40000000
STOP_GRACE = 5.0
SUN_PATH_MAX = 107  # bytes of a unix socket path, NUL excluded


# --- names -------------------------------------------------------------------


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

    def __post_init__(self) -> None:
        # At most 8 characters: "<prefix>-e<n>" and "<prefix>t<n>" then fit in
        # 15 bytes up to n = 99999, and the prefix cannot contain the "-".
        if not PREFIX_RE.match(self.prefix):
            raise UsageError(
                f"lab prefix {self.prefix!r} is not 2 to 8 lowercase letters and digits starting with a letter"
            )

    @classmethod
    def for_topology(cls, topo: Topology, prefix: str | None = None) -> LabNames:
        switch = topo.lab.switch if topo.lab else None
        return cls(
            prefix=prefix or default_prefix(topo),
            hosts=tuple(topo.hosts),
            endpoints=tuple(ep.name for ep in topo.endpoints),
            switch=switch,
            router=topo.router.name if topo.router and switch else None,
        )

    @property
    def ns_prefix(self) -> str:
        return f"{self.prefix}-"

    def owns(self, name: str) -> bool:
        return name.startswith(self.ns_prefix)

    def host_ns(self, host: str) -> str:
        return f"{self.prefix}-h{self.hosts.index(host) + 1}"

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
        return f"{self.prefix}-e{self.endpoints.index(endpoint) + 1}"

    def endpoint_link(self, endpoint: str) -> str:
        """The endpoint's veth end on the host side; prefixed so apply never mistakes it for its own."""
        return f"{self.prefix}e{self.endpoints.index(endpoint) + 1}"

    def temp_link(self, n: int) -> str:
        """A veth end's name until it moves to its namespace; unique in the lab."""
        return f"{self.prefix}t{n}"

    def switch_port(self, host: str, nic: str) -> str:
        index = self.hosts.index(host) + 1
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

    @property
    def prefix(self) -> str:
        return self.names.prefix

    @property
    def namespaces(self) -> dict[str, str]:
        return self.names.nodes()

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


def resolv_conf_path(namespace: str) -> Path:
    # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc/*: DNS writes stay in the lab.
    return ETC_NETNS / namespace / "resolv.conf"


def targets(lab: Lab) -> dict[str, Target]:
    from ovsnet.lab.docker import DOCKER_DIR

    datapath = lab.topology.lab.datapath.value if lab.topology.lab else "netdev"
    out = {}
    for host in lab.topology.hosts:
        ns = lab.names.host_ns(host)
        out[host] = Target(
            ovsdb=lab.ovs[ns].remote,
            netns=ns,
            state_dir=str(lab.state_dir),
            resolv_conf=str(resolv_conf_path(ns)),
            datapath=datapath,
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


# --- the state file ---------------------------------------------------------------


class _Ledger:
    """The lab's state file, rewritten (atomically) before each thing is made."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def begin(cls, lab_dir: Path, names: LabNames, topo: Topology) -> _Ledger:
        lab_dir.mkdir(parents=True, exist_ok=True)
        ledger = cls(
            lab_dir / STATE_FILE,
            {
                "format": STATE_FORMAT,
                "prefix": names.prefix,
                "topology": topo.name,
                "source": topo.source,
                "lab_dir": str(lab_dir),
                "complete": False,
                "names": {
                    "hosts": list(names.hosts),
                    "endpoints": list(names.endpoints),
                    "switch": names.switch,
                    "router": names.router,
                },
                "namespaces": [],
                "ovs": {},
                "etc_netns": [],
                "switch_ports": {},
            },
        )
        ledger.save()
        return ledger

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def namespace(self, name: str) -> None:
        self.data["namespaces"].append(name)
        self.save()

    def ovs(self, run: OvsRun) -> None:
        self.data["ovs"][run.namespace] = {"rundir": run.rundir, "pids": {}}
        self.save()

    def ovs_pids(self, run: OvsRun, pids: Mapping[str, int]) -> None:
        self.data["ovs"][run.namespace]["pids"] = dict(pids)
        self.save()

    def etc_netns(self, name: str) -> None:
        self.data["etc_netns"].append(name)
        self.save()

    def complete(self, switch_ports: Mapping[str, str]) -> None:
        self.data["switch_ports"] = dict(switch_ports)
        self.data["complete"] = True
        self.save()


def _read_state(lab_dir: Path) -> dict[str, Any]:
    """The state file, or {} when it is missing or unreadable (down must still work)."""
    try:
        data = json.loads((lab_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_lab(topo: Topology, prefix: str | None = None, lab_dir: str | os.PathLike[str] | None = None) -> Lab:
    """The Lab of an earlier build(), from its state file (for commands run in a later process)."""
    names = LabNames.for_topology(topo, prefix)
    where = Path(lab_dir or default_lab_dir(names.prefix)).resolve()
    data = _read_state(where)
    if not data:
        raise UsageError(f"no lab {names.prefix} at {where}: build it first")
    if data.get("prefix") != names.prefix or data.get("topology") != topo.name:
        raise UsageError(f"the lab at {where} is {data.get('prefix')} of topology {data.get('topology')!r}, not this one")
    if not data.get("complete"):
        raise UsageError(f"lab {names.prefix} was not completely built; destroy it and build again")
    ovs = {ns: OvsRun(ns, info["rundir"]) for ns, info in data["ovs"].items()}
    return Lab(topo, names, where, ovs, dict(data.get("switch_ports", {})))


# --- building ------------------------------------------------------------------------


class _Kernel:
    """One netlink socket per namespace for the whole build: opening one costs a fork."""

    def __init__(self) -> None:
        self._nl: dict[str, Netlink] = {}
        self._raw: dict[str, Any] = {}

    def __enter__(self) -> _Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in [*self._nl.values(), *self._raw.values()]:
            sock.close()

    def _netlink(self, ns: str) -> Netlink:
        if ns not in self._nl:
            self._nl[ns] = Netlink(ns)
        return self._nl[ns]

    def apply(self, ns: str, ops: Sequence[NlOp]) -> None:
        self._netlink(ns).apply(ops)

    def move(self, src: str, name: str, dst: str, new_name: str) -> None:
        """Move a (down) link to another namespace, renaming it on the way.

        The netlink backend has no op for this (the product never moves
        links between namespaces), so it is done here with pyroute2 directly.
        """
        from pyroute2 import IPRoute

        if src not in self._raw:
            self._raw[src] = IPRoute(netns=src, flags=0)
        ipr = self._raw[src]
        try:
            (index,) = ipr.link_lookup(ifname=name)
            ipr.link("set", index=index, net_ns_fd=dst, ifname=new_name)
        except Exception as exc:
            raise BackendError(f"lab: cannot move {name} from {src} to {dst} as {new_name}: {exc}") from exc

    def has_link(self, ns: str, name: str) -> bool:
        return self._netlink(ns).link(name) is not None

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, temp: str, mtu: int | None) -> None:
        """A veth pair from ns_a to ns_b: made whole in ns_a, then one end moved."""
        self.apply(ns_a, [NlCreateVeth(name_a, temp, mtu=mtu)])
        self.move(ns_a, temp, ns_b, name_b)


class _Temps:
    def __init__(self, names: LabNames):
        self.names = names
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return self.names.temp_link(self.n)


def build(
    topo: Topology,
    prefix: str | None = None,
    lab_dir: str | os.PathLike[str] | None = None,
) -> Lab:
    """Make the lab's namespaces, OVS instances, cables, switch and router; hosts as before ovsnet.

    On failure the half-built lab is left as it is, for inspection; it is
    all in the state file, and destroy() removes it.
    """
    names = LabNames.for_topology(topo, prefix)
    where = Path(lab_dir or default_lab_dir(names.prefix)).resolve()
    _refuse_existing(names, where)
    _check_socket_paths(names, where)
    ledger = _Ledger.begin(where, names, topo)
    _make_namespaces(names, ledger)
    ovs = _start_ovs(names, where, ledger)
    with _Kernel() as kernel:
        temps = _Temps(names)
        switch_ports = _cable(topo, names, kernel, temps, ledger)
        _router_legs(topo, names, kernel, temps)
        _make_switch(topo, names, ovs, switch_ports)
        _make_router(topo, names)
        _prepare_hosts(topo, names, kernel, ledger)
    ledger.complete(switch_ports)
    return Lab(topo, names, where, ovs, switch_ports)


def _refuse_existing(names: LabNames, lab_dir: Path) -> None:
    existing = netns.listed(names.ns_prefix)
    if existing or (lab_dir / STATE_FILE).exists():
        raise UsageError(
            f"lab {names.prefix} already exists ({', '.join(existing) or lab_dir / STATE_FILE}); destroy it first"
        )


def _check_socket_paths(names: LabNames, lab_dir: Path) -> None:
    # ovs-vswitchd's control socket is the longest path in a run directory.
    for ns in _ovs_namespaces(names):
        path = lab_dir / "ovs" / ns / "ovs-vswitchd.4194304.ctl"
        if len(str(path).encode()) > SUN_PATH_MAX:
            raise UsageError(f"lab directory {lab_dir} is too long for OVS's unix sockets; use a shorter one")


def _make_namespaces(names: LabNames, ledger: _Ledger) -> None:
    wanted = list(names.nodes().values())
    for ns in wanted:
        ledger.namespace(ns)
        netns.create(ns)


def _ovs_namespaces(names: LabNames) -> list[str]:
    return [names.host_ns(h) for h in names.hosts] + ([names.switch_ns] if names.switch else [])


def _start_ovs(names: LabNames, lab_dir: Path, ledger: _Ledger) -> dict[str, OvsRun]:
    runs = {}
    for ns in _ovs_namespaces(names):
        run = OvsRun(ns, str(lab_dir / "ovs" / ns))
        ledger.ovs(run)
        OvsInstance().start(ns, run.rundir)
        ledger.ovs_pids(run, _pidfile_pids(Path(run.rundir)))
        runs[ns] = run
    return runs


def _pidfile_pids(rundir: Path) -> dict[str, int]:
    pids = {}
    for program in OVS_PROGRAMS:
        try:
            pids[program] = int((rundir / f"{program}.pid").read_text().strip())
        except (OSError, ValueError):
            continue
    return pids


def _host_nics(host: Host) -> list[tuple[str, int]]:
    """(NIC, MTU) of every NIC the host has before ovsnet: its uplinks (or its flat
    NIC), and the existing interfaces the topology attaches as access ports."""
    if host.layout is Layout.FLAT:
        return [(host.flat.nic, DEFAULT_MTU)] if host.flat else []
    return [(u.nic, u.assumed_mtu) for u in host.uplinks] + [(ap.interface, DEFAULT_MTU) for ap in host.access_ports]


def _cable(topo: Topology, names: LabNames, kernel: _Kernel, temps: _Temps, ledger: _Ledger) -> dict[str, str]:
    """Every cable as a veth pair; NICs with no cable get a peer in the spare namespace."""
    switch = topo.lab.switch if topo.lab else None
    mtus = {(h.name, nic): mtu for h in topo.hosts.values() for nic, mtu in _host_nics(h)}
    switch_ports: dict[str, str] = {}
    cabled: set[tuple[str, str | None]] = set()
    for cable in topo.lab.cables if topo.lab else ():
        a, b = (cable.a, cable.b) if cable.a.node != switch else (cable.b, cable.a)
        cabled |= {(a.node, a.nic), (b.node, b.nic)}
        mtu = mtus.get((a.node, a.nic or ""))
        if switch and b.node == switch:
            port = names.switch_port(a.node, a.nic or "")
            kernel.veth(names.host_ns(a.node), a.nic or "", names.switch_ns, port, temps.next(), mtu)
            kernel.apply(names.switch_ns, [NlSetLink(port, up=True)])
            switch_ports[str(a)] = port
        else:
            kernel.veth(names.host_ns(a.node), a.nic or "", names.host_ns(b.node), b.nic or "", temps.next(), mtu)
    loose = [(host, nic, mtu) for (host, nic), mtu in mtus.items() if (host, nic) not in cabled]
    if loose:
        ledger.namespace(names.spare_ns)
        netns.create(names.spare_ns)
    for host, nic, mtu in loose:
        kernel.veth(names.host_ns(host), nic, names.spare_ns, names.switch_port(host, nic), temps.next(), mtu)
    return switch_ports


def _routed(topo: Topology) -> list[Vlan]:
    """The VLANs the lab's router has a leg on: none without a switch to plug legs into."""
    if not (topo.router and topo.lab and topo.lab.switch):
        return []
    return [topo.vlans[v] for v in topo.router.vlans]


def _router_legs(topo: Topology, names: LabNames, kernel: _Kernel, temps: _Temps) -> None:
    for vlan in _routed(topo):
        leg, port = names.router_leg(vlan.id), names.router_port(vlan.id)
        kernel.veth(names.router_ns, leg, names.switch_ns, port, temps.next(), vlan.mtu)
        ops: list[NlOp] = [NlSetLink(leg, up=True)]
        if vlan.router is not None and vlan.subnet is not None:
            ops.append(NlAddAddress(leg, f"{vlan.router}/{vlan.subnet.prefixlen}"))
        kernel.apply(names.router_ns, ops)
        kernel.apply(names.switch_ns, [NlSetLink(port, up=True)])


def _switch_port_op(topo: Topology, host: Host, nic: str, port: str) -> OvsAddPort:
    """The switch's port for a host's NIC: the same VLANs as the host's side (see topology/graph.py)."""
    ids = {v.name: v.id for v in topo.vlans.values()}
    marks = {"ovsnet-lab": f"{host.name}:{nic}"}
    uplink = next((u for u in host.uplinks if u.nic == nic), None)
    if uplink is not None:
        native = ids[uplink.native_vlan] if uplink.native_vlan else None
        trunks = frozenset(ids[v] for v in uplink.vlans) | ({native} if native else frozenset())
        if native is None:
            return OvsAddPort(SWITCH_BRIDGE, port, trunks=trunks, external_ids=marks)
        return OvsAddPort(SWITCH_BRIDGE, port, tag=native, trunks=trunks, vlan_mode="native-untagged", external_ids=marks)
    tag = ids[host.flat.vlan] if host.flat and host.flat.vlan else None
    return OvsAddPort(SWITCH_BRIDGE, port, tag=tag, external_ids=marks)


def _make_switch(topo: Topology, names: LabNames, ovs: Mapping[str, OvsRun], switch_ports: Mapping[str, str]) -> None:
    """The switch's bridge and all its ports in one transaction (one ovs-vswitchd reconfiguration)."""
    if not names.switch:
        return
    datapath = topo.lab.datapath.value if topo.lab else "netdev"
    ops: list[OvsOp] = [OvsAddBridge(SWITCH_BRIDGE, datapath, {"ovsnet-lab": names.prefix})]
    for end, port in switch_ports.items():
        host, _, nic = end.partition(":")
        ops.append(_switch_port_op(topo, topo.hosts[host], nic, port))
    for vlan in _routed(topo):
        ops.append(OvsAddPort(SWITCH_BRIDGE, names.router_port(vlan.id), tag=vlan.id,
                              external_ids={"ovsnet-lab": f"router:{vlan.name}"}))
    with Ovsdb(ovs[names.switch_ns].remote) as db:
        db.transact(ops)


def _make_router(topo: Topology, names: LabNames) -> None:
    routed = _routed(topo)
    if not routed:
        return
    _write_sysctl(names.router_ns, "net/ipv4/ip_forward", "1")
    if any(v.router is not None and v.router.version == 6 for v in routed):
        _write_sysctl(names.router_ns, "net/ipv6/conf/all/forwarding", "1")


def _write_sysctl(ns: str, key: str, value: str) -> None:
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


def _prepare_hosts(topo: Topology, names: LabNames, kernel: _Kernel, ledger: _Ledger) -> None:
    for host in topo.hosts.values():
        ns = names.host_ns(host.name)
        kernel.apply(ns, _before_ovsnet(host))
        ledger.etc_netns(ns)
        path = resolv_conf_path(ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {host.name} in ovsnet lab {names.prefix}\n")


def _before_ovsnet(host: Host) -> list[NlOp]:
    """What a real host looks like before `ovsnet up`: NICs up, its addresses on the uplink NIC."""
    ops: list[NlOp] = [NlSetLink(nic, up=True) for nic, _ in _host_nics(host)]
    nic, m = host.uplink_nic, host.management
    if nic is None or m is None:
        return ops
    ops += [NlAddAddress(nic, str(a)) for a in m.addresses]
    if m.gateway is not None:
        ops.append(NlReplaceRoute("default", nic, str(m.gateway)))
    return ops


# --- endpoints -------------------------------------------------------------------------


def attach_endpoints(lab: Lab) -> None:
    """Plug every test endpoint into its host; run after the hosts are configured.

    Docker endpoints join the VLAN's Linux bridge and flat ones the flat
    bridge, which only exist once apply made them; "ovs" endpoints become
    access ports on the host's OVS bridge. Endpoints already plugged are left alone.
    """
    topo, names = lab.topology, lab.names
    ovs_ports: dict[str, list[OvsOp]] = {}
    with _Kernel() as kernel:
        for ep in topo.endpoints:
            ns = names.endpoint_ns(ep.name)
            if kernel.has_link(ns, "eth0"):
                continue
            host = topo.hosts[ep.host]
            host_ns, link = names.host_ns(host.name), names.endpoint_link(ep.name)
            mtu = _endpoint_mtu(topo, host, ep)
            kernel.veth(ns, "eth0", host_ns, link, names.temp_link(names.endpoints.index(ep.name) + 1), mtu)
            kernel.apply(ns, _endpoint_ops(topo, ep))
            bridge = _endpoint_bridge(host, ep)
            if bridge is None:
                vid = topo.vlans[ep.vlan].id
                ovs_ports.setdefault(host.name, []).append(
                    OvsAddPort(host.bridge.name, link, tag=vid, external_ids={"ovsnet-lab": f"endpoint:{ep.name}"})
                )
            kernel.apply(host_ns, [NlSetLink(link, up=True, master=bridge)])
    for host_name, ops in ovs_ports.items():
        with Ovsdb(lab.ovs_of(host_name).remote) as db:
            db.transact(ops)


def _endpoint_bridge(host: Host, ep: Endpoint) -> str | None:
    """The Linux bridge the endpoint joins, or None for an OVS access port."""
    if host.layout is Layout.FLAT:
        if host.flat is None:
            raise UsageError(f"endpoint {ep.name}: flat host {host.name} has no bridge")
        return host.flat.bridge
    if ep.attach is Attach.OVS:
        return None
    docker = next((d for d in host.docker if d.vlan == ep.vlan), None)
    if docker is None:
        raise UsageError(f"endpoint {ep.name}: host {host.name} has no Docker bridge on VLAN {ep.vlan}")
    return docker.bridge


def _endpoint_mtu(topo: Topology, host: Host, ep: Endpoint) -> int:
    # A port below the bridge's MTU would pull the whole bridge down to it.
    docker = next((d for d in host.docker if d.vlan == ep.vlan), None)
    if ep.attach is Attach.DOCKER and docker is not None and docker.mtu:
        return docker.mtu
    return topo.vlans[ep.vlan].mtu


def _endpoint_ops(topo: Topology, ep: Endpoint) -> list[NlOp]:
    ops: list[NlOp] = [NlSetLink("eth0", up=True), NlAddAddress("eth0", str(ep.address))]
    router = topo.vlans[ep.vlan].router
    if router is not None and router.version == ep.address.version:
        ops.append(NlReplaceRoute("default", "eth0", str(router)))
    return ops


# --- status and destroy --------------------------------------------------------------------


@dataclass(frozen=True)
class Daemon:
    pid: int
    program: str
    rundir: str | None


@dataclass(frozen=True)
class LabStatus:
    prefix: str
    lab_dir: str
    state_file: bool
    complete: bool
    namespaces: tuple[str, ...]
    daemons: tuple[Daemon, ...]  # this lab's OVS daemons still running
    etc_netns: tuple[str, ...]

    @property
    def exists(self) -> bool:
        return bool(self.state_file or self.namespaces or self.daemons or self.etc_netns)


def status(prefix: str, lab_dir: str | os.PathLike[str] | None = None) -> LabStatus:
    names = LabNames(prefix)
    where = Path(lab_dir or default_lab_dir(prefix)).resolve()
    data = _read_state(where)
    return LabStatus(
        prefix=prefix,
        lab_dir=str(where),
        state_file=(where / STATE_FILE).exists(),
        complete=bool(data.get("complete")),
        namespaces=tuple(_lab_namespaces(names, data)),
        daemons=tuple(_lab_daemons(names, where, data)) + tuple(_lab_docker_daemons(prefix, where)),
        etc_netns=tuple(_lab_etc_netns(names, data)),
    )


def _lab_docker_daemons(prefix: str, where: Path) -> Iterator[Daemon]:
    from ovsnet.lab import docker as lab_docker

    return lab_docker.daemons(prefix, where)


def destroy(prefix: str, lab_dir: str | os.PathLike[str] | None = None) -> None:
    """Remove every trace of lab `prefix`; safe to run twice, or on a half-built lab.

    Order matters: daemons first (a process keeps a deleted namespace and
    its links alive), then namespaces, then files.
    """
    names = LabNames(prefix)
    where = Path(lab_dir or default_lab_dir(prefix)).resolve()
    data = _read_state(where)
    # Lab dockerds first: their containers live outside the lab's namespaces.
    from ovsnet.lab import docker as lab_docker

    lab_docker.destroy(prefix, where)
    _stop([d.pid for d in _lab_daemons(names, where, data)])
    namespaces = _lab_namespaces(names, data)
    _stop(_pids_in(namespaces))
    for ns in namespaces:
        _quietly(netns.remove, ns)
    for ns in _lab_etc_netns(names, data):
        shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
    if _is_lab_dir(names, where, data):
        shutil.rmtree(where, ignore_errors=True)


def _is_lab_dir(names: LabNames, where: Path, data: Mapping[str, Any]) -> bool:
    """Only a directory that is this lab's is removed: a mistyped --lab-dir must not cost a tree."""
    return data.get("prefix") == names.prefix or where.name == names.prefix


def _lab_namespaces(names: LabNames, data: Mapping[str, Any]) -> list[str]:
    recorded = [ns for ns in data.get("namespaces", []) if isinstance(ns, str) and names.owns(ns)]
    return sorted({ns for ns in recorded if netns.exists(ns)} | set(netns.listed(names.ns_prefix)))


def _lab_etc_netns(names: LabNames, data: Mapping[str, Any]) -> list[str]:
    try:
        found = {p.name for p in ETC_NETNS.iterdir() if names.owns(p.name)}
    except OSError:
        found = set()
    recorded = {ns for ns in data.get("etc_netns", []) if isinstance(ns, str) and names.owns(ns)}
    return sorted(found | {ns for ns in recorded if (ETC_NETNS / ns).exists()})


def _lab_daemons(names: LabNames, lab_dir: Path, data: Mapping[str, Any]) -> Iterator[Daemon]:
    """This lab's running OVS daemons: recorded pids, pidfiles, and any OVS process naming its dir.

    Each candidate's command line must name a run directory of this lab, so
    a recycled pid or another lab's daemon is never taken for ours.
    """
    rundirs = [str(info.get("rundir")) for info in data.get("ovs", {}).values() if isinstance(info, dict)]
    rundirs = [r for r in rundirs if names.owns(Path(r).name)]
    candidates: set[int] = set()
    for info in data.get("ovs", {}).values():
        if isinstance(info, dict):
            candidates |= {p for p in info.get("pids", {}).values() if isinstance(p, int)}
    for rundir in rundirs:
        candidates |= set(_pidfile_pids(Path(rundir)).values())
    candidates |= set(procs.pids_named(OVS_PROGRAMS))
    # Both marks contain the prefix: a daemon of another lab (or test) never matches.
    marks = [*rundirs, f"{lab_dir}/ovs/{names.ns_prefix}"]
    for pid in sorted(candidates):
        argv = procs.cmdline(pid)
        if not argv or os.path.basename(argv[0]) not in OVS_PROGRAMS:
            continue
        hit = next((m for m in marks if any(m in arg for arg in argv[1:])), None)
        if hit is not None:
            yield Daemon(pid, os.path.basename(argv[0]), hit if hit in rundirs else None)


def _pids_in(namespaces: Sequence[str]) -> list[int]:
    """Processes living in these namespaces (ping, tcpdump, dockerd left by a test)."""
    inodes = set()
    for ns in namespaces:
        try:
            st = os.stat(os.path.join(netns.NETNS_DIR, ns))
        except OSError:
            continue
        inodes.add((st.st_dev, st.st_ino))
    if not inodes:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in inodes:
            out.append(int(entry))
    return out


def _stop(pids: Sequence[int]) -> None:
    """SIGTERM all, then SIGKILL what is still running after the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs.signal_and_wait(pids, sig, STOP_GRACE)


def _quietly(step: Callable[..., object], *args: Any) -> None:
    try:
        step(*args)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL):
            raise
