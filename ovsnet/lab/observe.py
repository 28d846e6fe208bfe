"""What a built lab is really made of now: its recorded layout, checked against the machine.

The state file says what the lab made (lab/layout.py, kept by the ledger);
the machine says what is left of it. Namespaces, cables and endpoints count
only where their links really exist; the switch's ports are read from the
switch's OVSDB and the router's legs from the router's namespace, so a port
or leg changed by hand shows up as drift, and `lab up` puts it right.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from ovsnet import procs
from ovsnet.backends.netlink import Netlink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import BackendError, UsageError
from ovsnet.lab import docker as lab_docker
from ovsnet.lab import layout, netns
from ovsnet.lab.diff import Refusal, rebuild
from ovsnet.lab.layout import SWITCH_BRIDGE, EndpointPlug, LabLayout, RouterLeg, SwitchPort, Wire
from ovsnet.lab.ledger import pidfile_pids, read_state, recorded_layout, recorded_names
from ovsnet.lab.names import LAB_OVS_TIMEOUT, OVS_PROGRAMS, LabNames, OvsRun, default_lab_dir
from ovsnet.marks import LAB_KEY

LEG = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Built:
    """A lab as its state file records it: what `lab up`, `lab plan` and `lab status` start from."""

    names: LabNames
    lab_dir: Path
    layout: LabLayout
    ovs: Mapping[str, OvsRun]  # namespace -> its OVS
    docker: bool  # the lab runs lab dockerds (built with --docker)
    fleet: bool  # the lab runs sshd and a controller (built with --ssh)
    source: str


def load_built(prefix: str, lab_dir: str | os.PathLike[str] | None, topology: str, file: str) -> Built:
    """The lab `prefix` as recorded; UsageError when there is none, or it cannot be changed in place."""
    where = Path(lab_dir or default_lab_dir(prefix)).resolve()
    data = read_state(where)
    if not data:
        raise UsageError(f"no lab {prefix} at {where}: `ovsnet lab up {file}` builds it")
    if data.get("prefix") != prefix or data.get("topology") != topology:
        raise UsageError(f"the lab at {where} is {data.get('prefix')} of topology {data.get('topology')!r}, not this one")
    if not data.get("complete"):
        raise UsageError(f"lab {prefix} was not completely built; `ovsnet lab down {file}` it, then `ovsnet lab up {file}`")
    recorded = recorded_layout(data)
    if recorded is None:
        raise UsageError(f"lab {prefix} was built by an older ovsnet that did not record its layout: {rebuild(file)}")
    ovs = {ns: OvsRun(ns, info["rundir"]) for ns, info in data.get("ovs", {}).items() if isinstance(info, dict)}
    docker = bool(data.get("docker")) or bool(recorded.docker) or (where / "docker").is_dir()
    return Built(recorded_names(data), where, recorded, ovs, docker, bool(data.get("stations")), str(data.get("source", "")))


def observe(built: Built) -> tuple[LabLayout, tuple[Refusal, ...]]:
    """The recorded layout, less what is gone, with the switch's ports and router's legs as they are."""
    rec = built.layout
    names = built.names
    problems: list[Refusal] = []
    hosts = {h: ns for h, ns in rec.hosts.items() if netns.exists(ns)}
    for h, ns in hosts.items():
        run = built.ovs.get(ns)
        if run is None or not _ovs_running(run):
            problems.append(Refusal(f"host {h}: its Open vSwitch ({ns}) is not running", rebuild(built.source or "FILE")))
    with _Links() as links:
        wires = {k: w for k, w in rec.wires.items() if w.host in hosts and _wired(links, w)}
        endpoints = {n: e for n, e in rec.endpoints.items() if _plugged(links, names, e)}
        legs = _legs(links, names) if rec.legs or netns.exists(names.router_ns) else {}
    ports = _switch_ports(built) if rec.switch else {}
    docker = frozenset(h for h in rec.docker if h in hosts and lab_docker.running(built.lab_dir, hosts[h]))
    return replace(rec, hosts=hosts, wires=wires, endpoints=endpoints, legs=legs, switch_ports=ports, docker=docker), tuple(problems)


def _ovs_running(run: OvsRun) -> bool:
    pids = pidfile_pids(Path(run.rundir))
    return all(p in pids and procs.alive(pids[p]) for p in OVS_PROGRAMS)


class _Links:
    """Which links exist, one netlink read per namespace asked about."""

    def __init__(self) -> None:
        self._seen: dict[str, set[str]] = {}
        self._socks: dict[str, Netlink] = {}

    def __enter__(self) -> _Links:
        return self

    def __exit__(self, *exc: object) -> None:
        for s in self._socks.values():
            s.close()

    def netlink(self, ns: str) -> Netlink:
        if ns not in self._socks:
            self._socks[ns] = Netlink(ns)
        return self._socks[ns]

    def has(self, ns: str, name: str) -> bool:
        if ns not in self._seen:
            self._seen[ns] = set(self.netlink(ns).links()) if netns.exists(ns) else set()
        return name in self._seen[ns]


def _wired(links: _Links, w: Wire) -> bool:
    return links.has(w.host_ns, w.nic) and links.has(w.far_ns, w.far)


def _plugged(links: _Links, names: LabNames, e: EndpointPlug) -> bool:
    return e.name in names.endpoints and links.has(names.endpoint_ns(e.name), "eth0")


def _legs(links: _Links, names: LabNames) -> dict[int, RouterLeg]:
    if not netns.exists(names.router_ns):
        return {}
    state = links.netlink(names.router_ns).read()
    out = {}
    for link in state.links.values():
        m = LEG.match(link.name)
        if m is None:
            continue
        # Link-local IPv6 addresses are the kernel's: the read never shows them.
        static = sorted(a.cidr for a in state.addresses if a.ifname == link.name and not a.dynamic)
        vlan = int(m.group(1))
        out[vlan] = RouterLeg(vlan, tuple(static), link.mtu)
    return out


def _switch_ports(built: Built) -> dict[str, SwitchPort]:
    run = built.ovs.get(built.names.switch_ns)
    if run is None:
        return {}
    try:
        with Ovsdb(run.remote, timeout=LAB_OVS_TIMEOUT) as db:
            state = db.read()
    except BackendError:
        return {}
    out = {}
    for p in state.ports.values():
        mark = p.external_ids.get(LAB_KEY, "")
        # Ports of hosts' cables ("node1:eth1") and router legs ("router:web");
        # the controller's (`lab up --ssh`) is not the layout's.
        if p.bridge != SWITCH_BRIDGE or ":" not in mark:
            continue
        if p.is_bond or p.bond_mode or p.lacp not in (None, "off"):
            # A LAG facing a host's LACP bond.
            out[p.name] = SwitchPort(p.name, mark, p.tag, frozenset(p.trunks), p.vlan_mode, tuple(sorted(i.name for i in p.interfaces)),
                                     p.bond_mode, p.lacp, tuple(sorted(p.other_config.items())))
            continue
        out[p.name] = SwitchPort(p.name, mark, p.tag, frozenset(p.trunks), p.vlan_mode)
    return out


def desired_for(topo: Any, built: Built, docker: bool) -> tuple[LabNames, LabLayout]:
    """The edited file's names (numbers kept from the lab) and layout."""
    names = LabNames.for_topology(topo, built.names.prefix, before=built.names)
    return names, layout.desired(topo, names, docker)
