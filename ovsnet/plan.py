"""diff(desired, actual) -> an ordered plan of changes, each with its reason.

Pure: the planner reads snapshots and returns data. Each change carries the
backend operations that make it and the ones that undo it, computed from the
"before" snapshot, so rollback never has to guess.

Order is the safety argument of the seed: Linux objects first, then every OVS
change in one transaction, then the host's own addresses and default route
(added on the bridge side before they leave the NIC, the route replaced
atomically), then resolv.conf and Docker, and deletions last.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import Mapping

from ovsnet import ops
from ovsnet.desired import ROLE_BRIDGE, ROLE_UPLINK, DesiredHost
from ovsnet.gcpause import paused_gc
from ovsnet.state import (
    DOCKER_OWNER_LABEL,
    OWNER_KEY,
    ROLE_KEY,
    HostState,
    LinuxState,
    Link,
    OvsState,
    Route,
    alias_for,
)
from ovsnet.statefile import Saved, SavedUplink
from ovsnet.topology.model import DEFAULT_MTU


class Action(str, enum.Enum):
    CREATE = "create"
    MODIFY = "modify"
    MOVE = "move"
    DELETE = "delete"
    ADOPT = "adopt"
    RESTORE = "restore"


class Phase(str, enum.Enum):
    LINUX = "netlink"
    OVSDB = "ovsdb"
    UPLINK = "uplink"
    DNS = "dns"
    DOCKER = "docker"
    CLEANUP = "netlink-cleanup"


@dataclass(frozen=True)
class Change:
    action: Action
    resource: str  # one identifier form: "port:br-ovs/eth1", "link:br-web", ...
    phase: Phase
    reason: str
    before: str | None = None
    after: str | None = None
    ops: tuple[ops.Op, ...] = ()
    undo: tuple[ops.Op, ...] = ()

    def line(self) -> str:
        if self.action is Action.CREATE:
            what = self.after or ""
        elif self.action is Action.DELETE:
            what = self.before or ""
        else:
            what = f"{self.before} -> {self.after}"
        return f"{self.action.value:7} {self.resource}  {what}".rstrip()


@dataclass(frozen=True)
class Blocker:
    """Something in the way that ovsnet will not touch without being told."""

    resource: str
    message: str
    hint: str


@dataclass(frozen=True)
class Plan:
    topology: str
    host: str
    changes: tuple[Change, ...]
    blockers: tuple[Blocker, ...] = ()
    uplink: SavedUplink | None = None  # the NIC as it is now, when this plan moves it
    notes: tuple[str, ...] = ()
    nic_mtus: Mapping[str, int] = field(default_factory=dict)  # NICs whose MTU this plan changes: their MTU now

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def moves_uplink(self) -> bool:
        return self.uplink is not None


@dataclass(frozen=True)
class Options:
    adopt: bool = False
    docker: bool = True  # False: Docker is not reachable; say so and plan the rest


def _marks(topology: str, role: str) -> dict[str, str]:
    return {OWNER_KEY: topology, ROLE_KEY: role}


# --- up ------------------------------------------------------------------------


def diff(desired: DesiredHost, actual: HostState, saved: Saved | None = None, options: Options = Options()) -> Plan:
    p = _Planner(desired, actual, options)
    with paused_gc():
        p.linux()
        p.ovsdb()
        p.uplink(saved)
        p.docker()
        p.cleanup()
    order = [Phase.LINUX, Phase.OVSDB, Phase.UPLINK, Phase.DNS, Phase.DOCKER, Phase.CLEANUP]
    changes = tuple(c for ph in order for c in p.changes if c.phase is ph)
    # With blockers the plan still lists everything; apply refuses to start.
    return Plan(desired.topology, desired.host, changes, tuple(p.blockers), p.moving, tuple(p.notes), dict(p.nic_mtus))


class _Planner:
    def __init__(self, desired: DesiredHost, actual: HostState, options: Options):
        self.d = desired
        self.a = actual
        self.opt = options
        self.topo = desired.topology
        self.changes: list[Change] = []
        self.blockers: list[Blocker] = []
        self.notes: list[str] = []
        self.moving: SavedUplink | None = None
        self.nic_mtus: dict[str, int] = {}

    def add(self, *args, **kw) -> None:
        self.changes.append(Change(*args, **kw))

    def block(self, resource: str, message: str, hint: str = "pass --adopt to let ovsnet take it over") -> None:
        self.blockers.append(Blocker(resource, message, hint))

    # Linux bridges and veth pairs (created before OVS needs the veth ends).
    def linux(self) -> None:
        links = self.a.linux.links
        for br in self.d.linux_bridges:
            res = f"link:{br.name}"
            alias = alias_for(self.topo, br.role)
            cur = links.get(br.name)
            if cur is None:
                self.add(Action.CREATE, res, Phase.LINUX, br.reason, after=f"Linux bridge, mtu {br.mtu}",
                         ops=(ops.NlCreateBridge(br.name, br.mtu, alias), ops.NlSetLink(br.name, up=True)),
                         undo=(ops.NlDeleteLink(br.name),))
                continue
            if cur.kind != "bridge":
                self.block(res, f"{br.name} exists and is a {cur.kind or 'NIC'}, not a Linux bridge", "rename the bridge in the topology")
                continue
            if not self._owned_link(cur, res):
                continue
            self._tune_link(cur, res, br.mtu, br.reason)
        for v in self.d.veths:
            res = f"veth:{v.name}/{v.peer}"
            alias = alias_for(self.topo, "patch")
            cur, peer = links.get(v.name), links.get(v.peer)
            if cur is None and peer is None:
                self.add(Action.CREATE, res, Phase.LINUX, v.reason, after=f"veth pair, {v.peer} in {v.master}, mtu {v.mtu}",
                         ops=_veth_ops(v, alias), undo=(ops.NlDeleteLink(v.name),))
                continue
            if cur is None or peer is None or cur.kind != "veth" or (cur.peer and cur.peer != v.peer):
                present = cur or peer
                assert present is not None
                if present.owner == self.topo:
                    # Half a pair, or a pair with another peer: ours, so rebuild it.
                    self.add(Action.MODIFY, res, Phase.LINUX, "patch link is incomplete; recreating it", before="broken veth pair", after=f"veth pair, {v.peer} in {v.master}",
                             ops=tuple(ops.NlDeleteLink(x.name) for x in (cur, peer) if x) + _veth_ops(v, alias),
                             undo=(ops.NlDeleteLink(v.name),))
                else:
                    self.block(res, f"{present.name} exists and is not ovsnet's patch link", "rename patch_ovs/patch_bridge in the topology, or remove it")
                continue
            if not self._owned_link(cur, res):
                continue
            if peer.master != v.master:
                self.add(Action.MODIFY, f"link:{v.peer}", Phase.LINUX, f"patch end belongs in {v.master}", before=f"master {peer.master or 'none'}", after=f"master {v.master}",
                         ops=(ops.NlSetLink(v.peer, master=v.master),), undo=(ops.NlSetLink(v.peer, master=peer.master or ""),))
            for end in (cur, peer):
                self._tune_link(end, f"link:{end.name}", v.mtu, v.reason)
        for nic in self.d.nics:
            cur = links.get(nic.name)
            # A missing NIC is reported where it is used: its OVS port, the uplink move.
            if cur is None or cur.mtu == nic.mtu:
                continue
            self.add(Action.MODIFY, f"link:{nic.name}", Phase.LINUX, nic.reason, before=f"mtu {cur.mtu}", after=f"mtu {nic.mtu}",
                     ops=(ops.NlSetLink(nic.name, mtu=nic.mtu),), undo=(ops.NlSetLink(nic.name, mtu=cur.mtu),))
            self.nic_mtus[nic.name] = cur.mtu

    def _owned_link(self, cur: Link, res: str) -> bool:
        if cur.owner == self.topo:
            return True
        if self.opt.adopt:
            alias = alias_for(self.topo, "adopted")
            self.add(Action.ADOPT, res, Phase.LINUX, "--adopt: mark it as ovsnet's", before=f"alias {cur.alias!r}", after=f"alias {alias!r}",
                     ops=(ops.NlSetLink(cur.name, alias=alias),), undo=(ops.NlSetLink(cur.name, alias=cur.alias or ""),))
            return True
        whose = f"topology {cur.owner}" if cur.owner else "not ovsnet"
        self.block(res, f"{cur.name} exists and belongs to {whose}")
        return False

    def _tune_link(self, cur: Link, res: str, mtu: int, reason: str) -> None:
        if cur.mtu != mtu:
            self.add(Action.MODIFY, res, Phase.LINUX, reason, before=f"mtu {cur.mtu}", after=f"mtu {mtu}",
                     ops=(ops.NlSetLink(cur.name, mtu=mtu),), undo=(ops.NlSetLink(cur.name, mtu=cur.mtu),))
        if not cur.up:
            self.add(Action.MODIFY, res, Phase.LINUX, reason, before="down", after="up",
                     ops=(ops.NlSetLink(cur.name, up=True),), undo=(ops.NlSetLink(cur.name, up=False),))

    # Everything OVS: gathered here, applied as one transaction.
    def ovsdb(self) -> None:
        if self.d.bridge is None:
            return
        ovs = self.a.ovs
        name = self.d.bridge
        res = f"bridge:{name}"
        cur = ovs.bridges.get(name)
        marks = _marks(self.topo, ROLE_BRIDGE)
        if cur is None:
            self.add(Action.CREATE, res, Phase.OVSDB, "the host's OVS bridge", after=f"OVS bridge, datapath {self.d.datapath}",
                     ops=(ops.OvsAddBridge(name, self.d.datapath, marks),), undo=(ops.OvsDelBridge(name),))
        elif cur.owner != self.topo:
            if not self.opt.adopt:
                whose = f"topology {cur.owner}" if cur.owner else "not ovsnet"
                self.block(res, f"OVS bridge {name} exists and belongs to {whose}")
                return
            self.add(Action.ADOPT, res, Phase.OVSDB, "--adopt: mark it as ovsnet's", before="foreign", after=f"owned by {self.topo}",
                     ops=(ops.OvsSetBridge(name, self.d.datapath, {**cur.external_ids, **marks}),),
                     undo=(ops.OvsSetBridge(name, cur.datapath_type, dict(cur.external_ids)),))
        elif (cur.datapath_type or "system") != self.d.datapath:
            self.add(Action.MODIFY, res, Phase.OVSDB, "datapath type changed in the topology", before=f"datapath {cur.datapath_type or 'system'}", after=f"datapath {self.d.datapath}",
                     ops=(ops.OvsSetBridge(name, self.d.datapath, dict(cur.external_ids)),), undo=(ops.OvsSetBridge(name, cur.datapath_type, dict(cur.external_ids)),))

        for port in self.d.ports:
            pres = f"port:{name}/{port.name}"
            pmarks = _marks(self.topo, port.role)
            want = ops.OvsAddPort(name, port.name, port.iface_type, port.tag, port.trunks, port.vlan_mode, pmarks)
            cur_p = ovs.ports.get(port.name)
            if cur_p is None:
                self.add(Action.CREATE, pres, Phase.OVSDB, port.reason, after=port.describe(), ops=(want,), undo=(ops.OvsDelPort(name, port.name),))
                continue
            if cur_p.owner != self.topo and not self.opt.adopt:
                whose = f"topology {cur_p.owner}" if cur_p.owner else "not ovsnet"
                where = "" if cur_p.bridge == name else f" on bridge {cur_p.bridge}"
                self.block(pres, f"OVS port {port.name}{where} exists and belongs to {whose}")
                continue
            before = _port_view(cur_p)
            restore = ops.OvsAddPort(cur_p.bridge, cur_p.name, cur_p.interfaces[0].type if cur_p.interfaces else "", cur_p.tag, cur_p.trunks, cur_p.vlan_mode, dict(cur_p.external_ids))
            cur_type = cur_p.interfaces[0].type if cur_p.interfaces else ""
            if cur_p.bridge != name or cur_type != port.iface_type:
                why = f"moves from bridge {cur_p.bridge}" if cur_p.bridge != name else f"interface type {cur_type or 'system'} -> {port.iface_type or 'system'}"
                self.add(Action.MODIFY, pres, Phase.OVSDB, f"{port.reason}; {why}", before=before, after=port.describe(),
                         ops=(ops.OvsDelPort(cur_p.bridge, port.name), want), undo=(ops.OvsDelPort(name, port.name), restore))
                continue
            same = cur_p.tag == port.tag and cur_p.trunks == port.trunks and (cur_p.vlan_mode or None) == port.vlan_mode
            owned = cur_p.owner == self.topo and cur_p.external_ids.get(ROLE_KEY) == port.role
            if same and owned:
                continue
            action = Action.MODIFY if cur_p.owner == self.topo else Action.ADOPT
            self.add(action, pres, Phase.OVSDB, port.reason if same is False else "--adopt: mark it as ovsnet's", before=before, after=port.describe(),
                     ops=(ops.OvsSetPort(port.name, port.tag, port.trunks, port.vlan_mode, {**cur_p.external_ids, **pmarks}),),
                     undo=(ops.OvsSetPort(port.name, cur_p.tag, cur_p.trunks, cur_p.vlan_mode, dict(cur_p.external_ids)),))

        # Ours, no longer wanted: the edit removed them.
        wanted = {p.name for p in self.d.ports}
        for b in ovs.bridges.values():
            if b.owner == self.topo and b.name != name:
                self.add(Action.DELETE, f"bridge:{b.name}", Phase.OVSDB, "no longer in the topology", before="OVS bridge",
                         ops=(ops.OvsDelBridge(b.name),), undo=(ops.OvsAddBridge(b.name, b.datapath_type, dict(b.external_ids)),))
        for p in ovs.ports.values():
            if p.owner == self.topo and p.name not in wanted and not (p.bridge != name and ovs.bridges.get(p.bridge) and ovs.bridges[p.bridge].owner == self.topo):
                restore = ops.OvsAddPort(p.bridge, p.name, p.interfaces[0].type if p.interfaces else "", p.tag, p.trunks, p.vlan_mode, dict(p.external_ids))
                self.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "no longer in the topology", before=_port_view(p),
                         ops=(ops.OvsDelPort(p.bridge, p.name),), undo=(restore,))

    # The host's own addresses and routes: NIC -> bridge side, never routeless.
    def uplink(self, saved: Saved | None) -> None:
        up = self.d.uplink
        if up is None:
            return
        linux = self.a.linux
        target, nic = up.target, up.nic
        tres = f"link:{target}"
        cur_target = linux.links.get(target)
        if nic not in linux.links:
            self.block(f"link:{nic}", f"the uplink NIC {nic} does not exist on this host", "fix management.from_nic or the uplink's nic")
            return
        if cur_target is not None and not up.flat and target not in self.a.ovs.ports:
            self.block(tres, f"{target} exists and is not an OVS port: the management port cannot be created", "rename management.port in the topology, or remove that link")
            return
        on_target = set(linux.addresses_of(target))
        on_nic = list(linux.addresses_of(nic))
        nic_link = linux.links[nic]
        is_new = cur_target is None

        if cur_target is not None and not cur_target.up or is_new and not up.flat:
            self.add(Action.MODIFY, tres, Phase.UPLINK, "carries the host's own addresses", before="down" if cur_target else "created by OVS, down", after="up",
                     ops=(ops.NlSetLink(target, up=True),), undo=())
        for addr in up.addresses:
            if addr not in on_target:
                self.add(Action.CREATE, f"address:{target}/{addr}", Phase.UPLINK, f"the host's own address, moved from {nic}" if addr in on_nic else "the host's own address",
                         after=addr, ops=(ops.NlAddAddress(target, addr),), undo=(ops.NlDelAddress(target, addr),))
        if up.flat and nic_link.master != target:
            self.add(Action.MODIFY, f"link:{nic}", Phase.UPLINK, f"the NIC joins {target} (the seed's brctl addif)", before=f"master {nic_link.master or 'none'}", after=f"master {target}",
                     ops=(ops.NlSetLink(nic, master=target),), undo=(ops.NlSetLink(nic, master=nic_link.master or ""),))

        # Routes: the default route (and any static route) leaving by the NIC
        # moves to the target with `replace`, which is atomic.
        routes_moved: list[Route] = []
        for r in linux.routes:
            if r.ifname != nic or r.proto == "kernel" or not r.gateway:
                continue
            new = ops.NlReplaceRoute(r.dst, target, r.gateway, r.metric)
            self.add(Action.MOVE, f"route:{r.dst}", Phase.UPLINK, f"leaves by {target} now that {nic} is a bridge port", before=f"via {r.gateway} dev {nic}", after=f"via {r.gateway} dev {target}",
                     ops=(new,), undo=(ops.NlReplaceRoute(r.dst, nic, r.gateway, r.metric, r.proto),))
            routes_moved.append(r)
        if up.gateway:
            defaults = linux.default_routes()
            fam = ipaddress.ip_address(up.gateway).version
            fam_defaults = [r for r in defaults if r.gateway and ipaddress.ip_address(r.gateway).version == fam]
            right = any(r.ifname == target and r.gateway == up.gateway for r in fam_defaults)
            moved_default = any(r.dst == "default" for r in routes_moved)
            if not right and not moved_default:
                old = fam_defaults[0] if fam_defaults else None
                metric = old.metric if old else 0
                undo = (ops.NlReplaceRoute("default", old.ifname, old.gateway, old.metric, old.proto),) if old else (ops.NlDelRoute("default", target, up.gateway, metric),)
                self.add(Action.MOVE if old else Action.CREATE, "route:default", Phase.UPLINK, "the host's default route",
                         before=f"via {old.gateway} dev {old.ifname}" if old else None, after=f"via {up.gateway} dev {target}",
                         ops=(ops.NlReplaceRoute("default", target, up.gateway, metric),), undo=undo)
        for addr in on_nic:
            self.add(Action.DELETE, f"address:{nic}/{addr}", Phase.UPLINK, f"{nic} is a bridge port now; its address lives on {target}" if addr in up.addresses else f"{nic} is a bridge port now (kept in the state file, restored by down)",
                     before=addr, ops=(ops.NlDelAddress(nic, addr),), undo=(ops.NlAddAddress(nic, addr),))
        if on_nic or routes_moved:
            self.moving = SavedUplink(nic, tuple(on_nic), tuple(r for r in linux.routes if r.ifname == nic and r.proto != "kernel"),
                                      self.a.dns, nic_link.master if up.flat else None)
        if up.dns and self.a.dns is not None and tuple(self.a.dns) != up.dns:
            self.add(Action.MODIFY, "dns:nameservers", Phase.DNS, "the host's DNS servers", before=", ".join(self.a.dns) or "none", after=", ".join(up.dns),
                     ops=(ops.DnsSetServers(up.dns),), undo=(ops.DnsSetServers(tuple(self.a.dns)),))

    def docker(self) -> None:
        nets = self.a.docker
        if not self.d.docker_networks and not nets:
            return
        if not self.opt.docker:
            names = ", ".join(n.name for n in self.d.docker_networks)
            self.notes.append(f"Docker is not reachable: Docker networks {names} are left for a later run")
            return
        if nets is None:
            for n in self.d.docker_networks:
                self.add(Action.CREATE, f"docker-network:{n.name}", Phase.DOCKER, f"Docker network on {n.bridge}, VLAN {n.vlan}", after=_net_view(n.subnet, n.gateway, n.ip_range, n.bridge, n.mtu),
                         ops=(self._create_net(n),), undo=(ops.DockerRemoveNetwork(n.name),))
            return
        wanted = {n.name for n in self.d.docker_networks}
        for n in self.d.docker_networks:
            res = f"docker-network:{n.name}"
            cur = nets.get(n.name)
            create = self._create_net(n)
            after = _net_view(n.subnet, n.gateway, n.ip_range, n.bridge, n.mtu)
            if cur is None:
                self.add(Action.CREATE, res, Phase.DOCKER, f"Docker network on {n.bridge}, VLAN {n.vlan}", after=after, ops=(create,), undo=(ops.DockerRemoveNetwork(n.name),))
                continue
            if cur.owner != self.topo and not self.opt.adopt:
                self.block(res, f"Docker network {n.name} exists and is not ovsnet's ({_net_view(cur.subnet, cur.gateway, cur.ip_range, cur.bridge, cur.mtu)})", "rename the network in the topology, or pass --adopt to replace it")
                continue
            before = _net_view(cur.subnet, cur.gateway, cur.ip_range, cur.bridge, cur.mtu)
            if before == after and cur.owner == self.topo:
                continue
            if cur.containers:
                self.block(res, f"Docker network {n.name} must be recreated ({before} -> {after}) but containers use it: {', '.join(cur.containers)}", "stop those containers, then run up again")
                continue
            restore = ops.DockerCreateNetwork(cur.name, cur.bridge or "", cur.subnet, cur.gateway, cur.ip_range, cur.mtu or 1500, dict(cur.labels))
            self.add(Action.MODIFY, res, Phase.DOCKER, "Docker networks cannot be edited: recreated", before=before, after=after,
                     ops=(ops.DockerRemoveNetwork(n.name), create), undo=(ops.DockerRemoveNetwork(n.name), restore))
        for cur in nets.values():
            if cur.owner == self.topo and cur.name not in wanted:
                if cur.containers:
                    self.block(f"docker-network:{cur.name}", f"Docker network {cur.name} is no longer in the topology but containers use it: {', '.join(cur.containers)}", "stop those containers, then run again")
                    continue
                restore = ops.DockerCreateNetwork(cur.name, cur.bridge or "", cur.subnet, cur.gateway, cur.ip_range, cur.mtu or 1500, dict(cur.labels))
                self.add(Action.DELETE, f"docker-network:{cur.name}", Phase.DOCKER, "no longer in the topology", before=_net_view(cur.subnet, cur.gateway, cur.ip_range, cur.bridge, cur.mtu),
                         ops=(ops.DockerRemoveNetwork(cur.name),), undo=(restore,))

    def _create_net(self, n) -> ops.DockerCreateNetwork:
        return ops.DockerCreateNetwork(n.name, n.bridge, n.subnet, n.gateway, n.ip_range, n.mtu, {DOCKER_OWNER_LABEL: self.topo, "org.ovsnet.vlan": n.vlan})

    def cleanup(self) -> None:
        wanted = {b.name for b in self.d.linux_bridges} | {v.name for v in self.d.veths} | {v.peer for v in self.d.veths}
        deleted_pairs: set[str] = set()
        for link in self.a.linux.links.values():
            if link.owner != self.topo or link.name in wanted or link.name in deleted_pairs:
                continue
            if link.kind == "veth" and link.peer:
                deleted_pairs.add(link.peer)  # deleting one end removes both
            recreate = ops.NlCreateBridge(link.name, link.mtu, link.alias) if link.kind == "bridge" else None
            self.add(Action.DELETE, f"link:{link.name}", Phase.CLEANUP, "no longer in the topology", before=f"{link.kind or 'link'}",
                     ops=(ops.NlDeleteLink(link.name),), undo=(recreate,) if recreate else ())


def _veth_ops(v, alias: str) -> tuple[ops.Op, ...]:
    """Create a patch pair: the bridge end into its Linux bridge, both ends up."""
    return (ops.NlCreateVeth(v.name, v.peer, v.mtu, alias), ops.NlSetLink(v.peer, master=v.master, up=True), ops.NlSetLink(v.name, up=True))


def _port_view(p) -> str:
    if p.vlan_mode in ("trunk", "native-untagged", "native-tagged") or (p.trunks and p.tag is None):
        vlans = ",".join(str(v) for v in sorted(p.trunks)) or "all"
        native = f", native {p.tag} untagged" if p.vlan_mode == "native-untagged" else ""
        return f"trunk {vlans}{native}"
    if p.tag is not None:
        return f"access tag {p.tag}" + (" (internal)" if p.interfaces and p.interfaces[0].type == "internal" else "")
    return "untagged" + (" (internal)" if p.interfaces and p.interfaces[0].type == "internal" else "")


def _net_view(subnet, gateway, ip_range, bridge, mtu=None) -> str:
    # Docker leaves the option out at its default, 1500: both read the same.
    shown = f" mtu {mtu}" if (mtu or DEFAULT_MTU) != DEFAULT_MTU else ""
    return f"subnet {subnet or '-'} gateway {gateway or '-'} ip_range {ip_range or '-'} on {bridge or '-'}{shown}"


# --- down ------------------------------------------------------------------------


def teardown(topology: str, actual: HostState, saved: Saved | None, fallback: SavedUplink | None = None) -> Plan:
    """Remove everything ovsnet owns on the host and put the NIC back as it was.

    The NIC's addresses and default route come back *before* the OVS
    transaction takes the bridge side away, so the host always has a route.
    """
    changes: list[Change] = []
    notes: list[str] = []
    linux, ovs = actual.linux, actual.ovs
    for net in (actual.docker or {}).values():
        if net.owner == topology:
            changes.append(Change(Action.DELETE, f"docker-network:{net.name}", Phase.DOCKER, "ovsnet made it", before=_net_view(net.subnet, net.gateway, net.ip_range, net.bridge, net.mtu),
                                  ops=(ops.DockerRemoveNetwork(net.name),)))
    blockers = [Blocker(f"docker-network:{n.name}", f"Docker network {n.name} still has containers: {', '.join(n.containers)}", "stop or disconnect them, then run down again")
                for n in (actual.docker or {}).values() if n.owner == topology and n.containers]

    owned_ports = [p for p in ovs.ports.values() if p.owner == topology]
    uplink_ports = [p for p in owned_ports if p.external_ids.get(ROLE_KEY) == ROLE_UPLINK]
    restore = saved.uplink if saved and saved.uplink else fallback
    if restore is not None and (uplink_ports or _flat_enslaved(linux, restore, topology)):
        if not (saved and saved.uplink):
            notes.append(f"no saved state for {restore.nic}: restoring the topology's management addresses instead")
        nic = restore.nic
        present = set(linux.addresses_of(nic))
        for addr in restore.addresses:
            if addr not in present:
                changes.append(Change(Action.RESTORE, f"address:{nic}/{addr}", Phase.UPLINK, "as it was before the first up", after=addr, ops=(ops.NlAddAddress(nic, addr),)))
        if _flat_enslaved(linux, restore, topology):
            changes.append(Change(Action.RESTORE, f"link:{nic}", Phase.UPLINK, "leaves the flat bridge", before=f"master {linux.links[nic].master}", after="master none", ops=(ops.NlSetLink(nic, master=""),)))
        for r in sorted(restore.routes, key=lambda r: r.dst != "default"):
            if r not in linux.routes:
                changes.append(Change(Action.RESTORE, f"route:{r.dst}", Phase.UPLINK, "as it was before the first up", after=f"via {r.gateway} dev {nic}",
                                      ops=(ops.NlReplaceRoute(r.dst, nic, r.gateway, r.metric, r.proto),)))
        if restore.dns is not None and actual.dns is not None and tuple(actual.dns) != tuple(restore.dns):
            changes.append(Change(Action.RESTORE, "dns:nameservers", Phase.DNS, "as it was before the first up", before=", ".join(actual.dns), after=", ".join(restore.dns) or "none",
                                  ops=(ops.DnsSetServers(tuple(restore.dns)),)))
    elif uplink_ports:
        notes.append("no saved uplink state and no management section: the NIC is released without addresses")
    for nic, mtu in sorted((saved.nic_mtus if saved else {}).items()):
        link = linux.links.get(nic)
        if link is not None and link.mtu != mtu:
            changes.append(Change(Action.RESTORE, f"link:{nic}", Phase.UPLINK, "as it was before the first up", before=f"mtu {link.mtu}", after=f"mtu {mtu}",
                                  ops=(ops.NlSetLink(nic, mtu=mtu),)))

    owned_bridges = {b.name for b in ovs.bridges.values() if b.owner == topology}
    for b in sorted(owned_bridges):
        changes.append(Change(Action.DELETE, f"bridge:{b}", Phase.OVSDB, "ovsnet made it", before="OVS bridge (and its ports)", ops=(ops.OvsDelBridge(b),)))
    for p in owned_ports:
        if p.bridge in owned_bridges:
            continue  # goes with its bridge
        changes.append(Change(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "ovsnet made it", before=_port_view(p), ops=(ops.OvsDelPort(p.bridge, p.name),)))
    gone: set[str] = set()
    for link in linux.links.values():
        if link.owner != topology or link.name in gone:
            continue
        if link.kind == "veth" and link.peer:
            gone.add(link.peer)
        changes.append(Change(Action.DELETE, f"link:{link.name}", Phase.CLEANUP, "ovsnet made it", before=link.kind or "link", ops=(ops.NlDeleteLink(link.name),)))
    order = [Phase.DOCKER, Phase.UPLINK, Phase.DNS, Phase.OVSDB, Phase.CLEANUP]
    return Plan(topology, saved.host if saved else "", tuple(c for ph in order for c in changes if c.phase is ph), tuple(blockers), None, tuple(notes))


def _flat_enslaved(linux: LinuxState, restore: SavedUplink, topology: str) -> bool:
    link = linux.links.get(restore.nic)
    master = linux.links.get(link.master) if link and link.master else None
    return bool(master and master.owner == topology)


# --- offline --------------------------------------------------------------------


def from_nothing(desired: DesiredHost) -> HostState:
    """The host before ovsnet: its NIC up, holding the host's address and default route."""
    links: dict[str, Link] = {}
    addresses, routes = [], []
    nics = [p.name for p in desired.ports if p.role == ROLE_UPLINK]
    if desired.flat_nic:
        nics.append(desired.flat_nic)
    for i, nic in enumerate(nics):
        links[nic] = Link(nic, i + 2, up=True)
    if desired.uplink:
        from ovsnet.state import Address

        for a in desired.uplink.addresses:
            addresses.append(Address(desired.uplink.nic, a))
            net = ipaddress.ip_interface(a).network
            routes.append(Route(str(net), desired.uplink.nic, None, 0, "kernel"))
        if desired.uplink.gateway:
            routes.append(Route("default", desired.uplink.nic, desired.uplink.gateway, 0, "boot"))
    return HostState(OvsState(), LinuxState(links, tuple(addresses), tuple(routes)), dns=(), docker=None)


def to_json(plan: Plan) -> dict:
    return {
        "topology": plan.topology,
        "host": plan.host,
        "moves_uplink": plan.moves_uplink,
        "changes": [
            {"action": c.action.value, "resource": c.resource, "phase": c.phase.value, "before": c.before, "after": c.after, "reason": c.reason}
            for c in plan.changes
        ],
        "blockers": [{"resource": b.resource, "message": b.message, "hint": b.hint} for b in plan.blockers],
        "notes": list(plan.notes),
    }

