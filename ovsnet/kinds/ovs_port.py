"""OVS ports with one interface: the uplink trunk, the management port, Docker patch ends, access ports.

Every port's VLAN columns (tag, trunks, vlan_mode) are set whole; an
interface changing type, or a port changing bridge, is a delete and an add in
the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ovsnet.backends.ovsdb.rows import optional
from ovsnet.current import OvsPort
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.marks import ovs_marks
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology

ROLE_UPLINK = "uplink"
ROLE_MGMT = "management"
ROLE_PATCH = "patch"
ROLE_ACCESS = "access"
ROLES = frozenset({ROLE_UPLINK, ROLE_MGMT, ROLE_PATCH, ROLE_ACCESS})
TRUNK_MODES = ("trunk", "native-untagged", "native-tagged")


def write_vlan(txn: Any, row: Any, what: str, tag: int | None, trunks: frozenset[int], vlan_mode: str | None,
               external_ids: Mapping[str, str]) -> None:
    txn.set(row, "tag", optional(tag), what, shown=tag)
    txn.set(row, "trunks", sorted(trunks), what)
    txn.set(row, "vlan_mode", optional(vlan_mode), what, shown=vlan_mode)
    txn.set(row, "external_ids", dict(external_ids), what)


@dataclass(frozen=True)
class OvsAddPort:
    """Create a port with one interface of the same name."""

    bridge: str
    name: str
    iface_type: str = ""  # "" for an existing kernel device, "internal" for a port OVS creates
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None  # None lets OVS pick (access with tag, trunk without)
    external_ids: Mapping[str, str] = field(default_factory=dict)
    mac: str | None = None  # internal ports: the MAC to give the port's kernel link
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        columns: dict[str, Any] = {"type": self.iface_type}
        if self.mac:
            columns["mac"] = [self.mac]
        port = txn.add_port(self.bridge, self.name, [(self.name, columns)], {})
        write_vlan(txn, port, f"port {self.name}", self.tag, self.trunks, self.vlan_mode, self.external_ids)

    def describe(self) -> str:
        return f"add port {self.bridge}/{self.name}"


@dataclass(frozen=True)
class OvsSetPort:
    """Set the VLAN columns and marks of an existing port, whole."""

    name: str
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        write_vlan(txn, txn.port(self.name), f"port {self.name}", self.tag, self.trunks, self.vlan_mode, self.external_ids)

    def describe(self) -> str:
        return f"set port {self.name}"


@dataclass(frozen=True)
class OvsSetInterfaceMac:
    """The MAC an internal port's kernel link gets (None: OVS picks one)."""

    name: str
    mac: str | None
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        port = txn.port(self.name)
        iface = next(i for i in port.interfaces if i.name == self.name)
        txn.set(iface, "mac", optional(self.mac), f"interface {self.name}", shown=self.mac)

    def describe(self) -> str:
        return f"set the MAC of {self.name}"


@dataclass(frozen=True)
class OvsDelPort:
    bridge: str
    name: str
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        txn.del_port(self.bridge, self.name)

    def describe(self) -> str:
        return f"delete port {self.bridge}/{self.name}"


@dataclass(frozen=True)
class PortWant:
    bridge: str
    name: str
    role: str
    iface_type: str = ""
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    reason: str = ""
    # Internal ports: take this NIC's MAC. The management port takes the MAC
    # of the NIC whose address it takes over, so no peer's ARP cache goes
    # stale when the address moves, and a DHCP server sees the same client.
    mac_of: str | None = None

    def describe(self) -> str:
        if self.vlan_mode in TRUNK_MODES:
            vlans = ",".join(str(v) for v in sorted(self.trunks))
            native = f", native {self.tag} untagged" if self.vlan_mode == "native-untagged" else ""
            return f"trunk {vlans}{native}"
        if self.tag is not None:
            return f"access tag {self.tag}" + (" (internal)" if self.iface_type == "internal" else "")
        return "untagged" + (" (internal)" if self.iface_type == "internal" else "")


def port_view(p: OvsPort) -> str:
    """A port as it is, in the words of PortWant.describe."""
    internal = " (internal)" if p.interfaces and p.interfaces[0].type == "internal" else ""
    if p.vlan_mode in TRUNK_MODES or (p.trunks and p.tag is None):
        vlans = ",".join(str(v) for v in sorted(p.trunks)) or "all"
        native = f", native {p.tag} untagged" if p.vlan_mode == "native-untagged" else ""
        return f"trunk {vlans}{native}"
    if p.tag is not None:
        return f"access tag {p.tag}{internal}"
    return f"untagged{internal}"


def effective_vlans(tag: int | None, trunks: frozenset[int], vlan_mode: str | None) -> tuple[str, int | None, frozenset[int]]:
    """What OVS does with a port's VLAN columns: (mode, tag, VLANs it trunks).

    An empty vlan_mode means access with a tag and trunk without one; a
    native mode trunks its native VLAN whether trunks lists it or not. Two
    column sets that agree here forward the same frames.
    """
    mode = vlan_mode or ("access" if tag is not None else "trunk")
    if mode == "access":
        return mode, tag, frozenset()
    if mode in ("native-untagged", "native-tagged") and tag is not None:
        return mode, tag, trunks | {tag}
    return mode, None if mode == "trunk" else tag, trunks


def restore_op(p: OvsPort) -> OvsAddPort:
    mac = p.interfaces[0].mac if len(p.interfaces) == 1 else None
    return OvsAddPort(p.bridge, p.name, p.iface_type, p.tag, p.trunks, p.vlan_mode, dict(p.external_ids), mac)


def trunk_of(topo: Topology, vlans: tuple[str, ...], native: str | None) -> tuple[int | None, frozenset[int], str]:
    """(tag, trunks, vlan_mode) of a trunk carrying `vlans`, `native` untagged."""
    ids = topo.vlans
    trunks = frozenset(ids[v].id for v in vlans) | ({ids[native].id} if native else frozenset())
    if native:
        return ids[native].id, trunks, "native-untagged"
    return None, trunks, "trunk"


class OvsPorts(Kind):
    name: ClassVar[str] = "ovs-port"
    reads: ClassVar[frozenset[str]] = frozenset({"ovsdb"})

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[PortWant, ...]:
        if host.layout is Layout.FLAT:
            return ()
        br = host.bridge.name
        vid = {v.name: v.id for v in topo.vlans.values()}
        ports: list[PortWant] = []
        for up in host.uplinks:
            if up.bond:
                continue  # a port of several NICs: ovsnet.kinds.bond
            tag, trunks, mode = trunk_of(topo, up.vlans, up.native_vlan)
            reason = f"uplink trunk, {up.native_vlan} untagged" if up.native_vlan else "uplink trunk"
            ports.append(PortWant(br, up.nic, ROLE_UPLINK, "", tag, trunks, mode, reason))
        m = host.management
        if m:
            mvlan = host.management_vlan
            ports.append(PortWant(br, m.port, ROLE_MGMT, "internal", vid[mvlan] if mvlan else None, frozenset(), "access",
                                  f"the host's own addresses, VLAN {mvlan}", host.uplink_nic))
        for d in host.docker:
            ports.append(PortWant(br, d.patch_ovs, ROLE_PATCH, "", vid[d.vlan], frozenset(), "access", f"patch to Docker bridge {d.bridge}, VLAN {d.vlan}"))
        for ap in host.access_ports:
            ports.append(PortWant(br, ap.interface, ROLE_ACCESS, "", vid[ap.vlan], frozenset(), "access", f"access port on VLAN {ap.vlan}"))
        return tuple(ports)

    def presume(self, want: tuple[Any, ...], before: Any) -> None:
        before.links += [p.name for p in want if p.role == ROLE_UPLINK]

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        ovs = ctx.current.ovs
        links = ctx.current.linux.links
        for port in want:
            pres = f"port:{port.bridge}/{port.name}"
            marks = ovs_marks(ctx.topology, port.role)
            source = links.get(port.mac_of) if port.mac_of else None
            mac = source.mac if source is not None else None
            add = OvsAddPort(port.bridge, port.name, port.iface_type, port.tag, port.trunks, port.vlan_mode, marks, mac)
            cur = ovs.ports.get(port.name)
            if cur is None:
                after = port.describe() + (f", MAC of {port.mac_of}" if mac else "")
                ctx.add(Action.CREATE, pres, Phase.OVSDB, port.reason, after=after, ops=(add,), undo=(OvsDelPort(port.bridge, port.name),))
                continue
            if cur.owner != ctx.topology and not ctx.settings.adopt:
                where = "" if cur.bridge == port.bridge else f" on bridge {cur.bridge}"
                ctx.block(pres, f"OVS port {port.name}{where} exists and belongs to {ctx.whose(cur.owner)}")
                continue
            before = port_view(cur)
            if cur.bridge != port.bridge or cur.iface_type != port.iface_type:
                why = f"moves from bridge {cur.bridge}" if cur.bridge != port.bridge else f"interface type {cur.iface_type or 'system'} -> {port.iface_type or 'system'}"
                ctx.add(Action.MODIFY, pres, Phase.OVSDB, f"{port.reason}; {why}", before=before, after=port.describe(),
                        ops=(OvsDelPort(cur.bridge, port.name), add), undo=(OvsDelPort(port.bridge, port.name), restore_op(cur)))
                continue
            cur_mac = cur.interfaces[0].mac if len(cur.interfaces) == 1 else None
            if mac and cur_mac != mac and cur.owner == ctx.topology:
                ctx.add(Action.MODIFY, pres, Phase.OVSDB, f"takes the MAC of {port.mac_of}, whose address it holds", before=f"MAC {cur_mac or 'chosen by OVS'}", after=f"MAC {mac}",
                        ops=(OvsSetInterfaceMac(port.name, mac),), undo=(OvsSetInterfaceMac(port.name, cur_mac),))
            same = effective_vlans(cur.tag, cur.trunks, cur.vlan_mode) == effective_vlans(port.tag, port.trunks, port.vlan_mode)
            owned = cur.owner == ctx.topology and cur.role == port.role
            if same and owned:
                continue
            undo = (OvsSetPort(port.name, cur.tag, cur.trunks, cur.vlan_mode, dict(cur.external_ids)),)
            if same:
                # Forwarding is already right: only the marks are written, the VLAN columns go back as they are.
                ctx.add(Action.ADOPT, pres, Phase.OVSDB, "--adopt: mark it as ovsnet's" if cur.owner != ctx.topology else "its role mark",
                        before=before, after=port.describe(), ops=(OvsSetPort(port.name, cur.tag, cur.trunks, cur.vlan_mode, {**cur.external_ids, **marks}),), undo=undo)
                continue
            action = Action.MODIFY if cur.owner == ctx.topology else Action.ADOPT
            ctx.add(action, pres, Phase.OVSDB, port.reason, before=before, after=port.describe(),
                    ops=(OvsSetPort(port.name, port.tag, port.trunks, port.vlan_mode, {**cur.external_ids, **marks}),), undo=undo)
        wanted = {p.name for p in want}
        for p in self._ours(ctx):
            # Ours, no longer wanted: the edit removed it (a port on another of
            # our bridges goes with that bridge).
            if p.name not in wanted and not self._goes_with_bridge(ctx, p, want):
                ctx.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "no longer in the topology", before=port_view(p),
                        ops=(OvsDelPort(p.bridge, p.name),), undo=(restore_op(p),))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        ovs = ctx.current.ovs
        for p in self._ours(ctx):
            bridge = ovs.bridges.get(p.bridge)
            if bridge is not None and bridge.owner == ctx.topology:
                continue  # goes with its bridge
            ctx.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "ovsnet made it", before=port_view(p),
                    ops=(OvsDelPort(p.bridge, p.name),), undo=(restore_op(p),))

    @staticmethod
    def _ours(ctx: Context) -> list[OvsPort]:
        return [p for p in ctx.current.ovs.ports.values() if p.owner == ctx.topology and (p.role in ROLES or p.role is None)]

    @staticmethod
    def _goes_with_bridge(ctx: Context, p: OvsPort, want: tuple[Any, ...]) -> bool:
        bridge = ctx.current.ovs.bridges.get(p.bridge)
        ours = {w.bridge for w in want}
        return p.bridge not in ours and bridge is not None and bridge.owner == ctx.topology
