"""OVS bonds: an uplink of several NICs as one OVS port, trunking like a single NIC.

The uplink's `nics = [...]` become the interfaces of one Port (bond_mode,
lacp, other_config:lacp-time), written in the run's one OVSDB transaction
and marked as ovsnet's like every other port. Members of a Linux bond (one
the distro made) are freed from it first, and given back on `down`. A bond
that exists as declared but does not work (a member's link down, LACP not
negotiated with the switch) is a health finding: `up` cannot fix a cable,
`status` reports it as drift.

Works on both datapaths: OVS does the bonding and LACP itself, in the kernel
datapath's upcalls as in the userspace one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Mapping

from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.backends.ovsdb.rows import optional
from ovsnet.current import OvsPort
from ovsnet.kinds.base import Context, Kind, Presumed, Settings
from ovsnet.kinds.ovs_port import OvsDelPort, effective_vlans, port_view, restore_op, trunk_of, write_vlan
from ovsnet.marks import ovs_marks
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Lacp, LacpTime, Layout, Topology

ROLE_BOND = "bond"
LACP_TIME_KEY = "lacp-time"


def other_config(base: Mapping[str, str], lacp_time: str) -> dict[str, str]:
    """A port's other_config with lacp-time set: written only when fast (slow is OVS's default)."""
    out = {k: v for k, v in base.items() if k != LACP_TIME_KEY}
    if lacp_time == LacpTime.FAST.value:
        out[LACP_TIME_KEY] = lacp_time
    return out


def bond_settings(p: OvsPort) -> tuple[tuple[str, ...], str, str, str]:
    """(members, mode, lacp, lacp-time) of a port as OVS takes them (its defaults for what is unset)."""
    return (tuple(sorted(i.name for i in p.interfaces)), p.bond_mode or "active-backup", p.lacp or Lacp.OFF.value,
            p.other_config.get(LACP_TIME_KEY, LacpTime.SLOW.value))


def fallback_seconds(p: OvsPort) -> float:
    """How long the switch's side of this LACP bond may take to reach one of its NICs again once the
    bond is gone: LACP times the partner out after three PDU intervals (3 s fast, 90 s slow), keeps
    it 3 s more as expired, and only then falls back (a switch configured to); 0 without LACP."""
    if (p.lacp or Lacp.OFF.value) == Lacp.OFF.value:
        return 0.0
    timeout = 3.0 if p.other_config.get(LACP_TIME_KEY) == LacpTime.FAST.value else 90.0
    return timeout + 3.0 + 4.0  # and a margin for a loaded switch


def bond_view(p: OvsPort) -> str:
    """A bond as it is, in the words of BondWant.describe."""
    members, mode, lacp, time = bond_settings(p)
    return _words(members, mode, lacp, time) + ", " + port_view(p)


def _words(members: tuple[str, ...], mode: str, lacp: str, time: str) -> str:
    how = f"LACP {lacp}" + (f", {time}" if lacp != Lacp.OFF.value and time != LacpTime.SLOW.value else "")
    return f"bond of {','.join(members)} ({mode}, {how})"


def _write_bond(txn: Any, port: Any, name: str, mode: str, lacp: str, config: Mapping[str, str]) -> None:
    what = f"port {name}"
    txn.set(port, "bond_mode", optional(mode), what, shown=mode)
    txn.set(port, "lacp", optional(lacp), what, shown=lacp)
    txn.set(port, "other_config", dict(config), what)


@dataclass(frozen=True)
class OvsAddBond:
    """Create a port whose interfaces are the member NICs."""

    bridge: str
    name: str
    members: tuple[str, ...]
    mode: str
    lacp: str
    config: Mapping[str, str] = field(default_factory=dict)  # other_config
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        port = txn.add_port(self.bridge, self.name, [(m, {"type": ""}) for m in self.members], {})
        write_vlan(txn, port, f"port {self.name}", self.tag, self.trunks, self.vlan_mode, self.external_ids)
        _write_bond(txn, port, self.name, self.mode, self.lacp, self.config)

    def describe(self) -> str:
        return f"add bond {self.bridge}/{self.name} of {', '.join(self.members)}"


@dataclass(frozen=True)
class OvsSetBond:
    """Set an existing bond's members, bond columns, VLAN columns and marks, whole."""

    name: str
    members: tuple[str, ...]
    mode: str
    lacp: str
    config: Mapping[str, str] = field(default_factory=dict)
    tag: int | None = None
    trunks: frozenset[int] = frozenset()
    vlan_mode: str | None = None
    external_ids: Mapping[str, str] = field(default_factory=dict)
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        port = txn.set_interfaces(self.name, [(m, {"type": ""}) for m in self.members])
        write_vlan(txn, port, f"port {self.name}", self.tag, self.trunks, self.vlan_mode, self.external_ids)
        _write_bond(txn, port, self.name, self.mode, self.lacp, self.config)

    def describe(self) -> str:
        return f"set bond {self.name} ({', '.join(self.members)})"


def restore_bond(p: OvsPort) -> OvsAddBond:
    _, mode, lacp, _ = bond_settings(p)
    members = tuple(i.name for i in p.interfaces)
    return OvsAddBond(p.bridge, p.name, members, p.bond_mode or mode, p.lacp or lacp, dict(p.other_config),
                      p.tag, p.trunks, p.vlan_mode, dict(p.external_ids))


def _set_back(p: OvsPort) -> OvsSetBond:
    return OvsSetBond(p.name, tuple(i.name for i in p.interfaces), p.bond_mode or "active-backup", p.lacp or Lacp.OFF.value,
                      dict(p.other_config), p.tag, p.trunks, p.vlan_mode, dict(p.external_ids))


@dataclass(frozen=True)
class BondWant:
    bridge: str
    name: str
    members: tuple[str, ...]
    mode: str
    lacp: str
    lacp_time: str
    tag: int | None
    trunks: frozenset[int]
    vlan_mode: str
    reason: str

    def describe(self) -> str:
        vlans = ",".join(str(v) for v in sorted(self.trunks))
        native = f", native {self.tag} untagged" if self.vlan_mode == "native-untagged" else ""
        return _words(tuple(sorted(self.members)), self.mode, self.lacp, self.lacp_time) + f", trunk {vlans}{native}"


@dataclass(frozen=True)
class SavedBonds:
    """NIC -> the Linux bond it was a member of before ovsnet freed it for an OVS bond."""

    masters: Mapping[str, str] = field(default_factory=dict)


class Bonds(Kind):
    name: ClassVar[str] = "bond"
    reads: ClassVar[frozenset[str]] = frozenset({"ovsdb"})

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[BondWant, ...]:
        if host.layout is Layout.FLAT:
            return ()
        out = []
        for up in host.uplinks:
            if up.bond is None:
                continue
            b = up.bond
            tag, trunks, mode = trunk_of(topo, up.vlans, up.native_vlan)
            reason = f"uplink trunk over {len(b.nics)} NICs" + (f", {up.native_vlan} untagged" if up.native_vlan else "")
            out.append(BondWant(host.bridge.name, b.name, b.nics, b.mode.value, b.lacp.value, b.lacp_time.value, tag, trunks, mode, reason))
        return tuple(out)

    def presume(self, want: tuple[Any, ...], before: Presumed) -> None:
        before.links += [m for b in want for m in b.members]

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        freed: dict[str, str] = {}
        for b in want:
            freed |= self._free(b, ctx)
            self._plan(b, ctx)
        if freed:
            ctx.keep[self.name] = SavedBonds(freed)
        wanted = {b.name for b in want}
        bridges = {b.bridge for b in want}
        for p in self._ours(ctx):
            if p.name in wanted or self._goes_with_bridge(ctx, p, bridges):
                continue
            ctx.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "no longer in the topology", before=bond_view(p),
                    ops=(OvsDelPort(p.bridge, p.name),), undo=(restore_bond(p),))

    def _free(self, b: BondWant, ctx: Context) -> dict[str, str]:
        """Members of a Linux bond leave it before OVS takes them (the bond closes a member it lets go: bring it up)."""
        links = ctx.current.linux.links
        freed = {}
        for m in b.members:
            link = links.get(m)
            master = links.get(link.master) if link is not None and link.master else None
            if master is None or master.kind != "bond":
                continue
            ctx.add(Action.MODIFY, f"link:{m}", Phase.LINUX, f"leaves Linux bond {master.name}: OVS bond {b.name} takes it (down puts it back)",
                    before=f"master {master.name}", after="master none, up",
                    ops=(NlSetLink(m, master=""), NlSetLink(m, up=True)),
                    undo=(NlSetLink(m, up=False), NlSetLink(m, master=master.name)))
            freed[m] = master.name
        return freed

    def _plan(self, b: BondWant, ctx: Context) -> None:
        ovs, links = ctx.current.ovs, ctx.current.linux.links
        pres = f"port:{b.bridge}/{b.name}"
        absent = [m for m in b.members if m not in links]
        if absent:
            ctx.block(f"link:{absent[0]}", f"bond {b.name}: NIC {', '.join(absent)} does not exist on this host", "fix the uplink's nics")
            return
        cur = ovs.ports.get(b.name)
        if not self._members_free(b, ctx):
            return
        marks = ovs_marks(ctx.topology, ROLE_BOND)
        config = other_config(cur.other_config if cur else {}, b.lacp_time)
        add = OvsAddBond(b.bridge, b.name, b.members, b.mode, b.lacp, config, b.tag, b.trunks, b.vlan_mode, marks)
        if cur is None:
            ctx.add(Action.CREATE, pres, Phase.OVSDB, b.reason, after=b.describe(), ops=(add,), undo=(OvsDelPort(b.bridge, b.name),))
            return
        if cur.owner != ctx.topology and not ctx.settings.adopt:
            where = "" if cur.bridge == b.bridge else f" on bridge {cur.bridge}"
            ctx.block(pres, f"OVS port {b.name}{where} exists and belongs to {ctx.whose(cur.owner)}")
            return
        before = bond_view(cur)
        if cur.bridge != b.bridge:
            ctx.add(Action.MODIFY, pres, Phase.OVSDB, f"{b.reason}; moves from bridge {cur.bridge}", before=before, after=b.describe(),
                    ops=(OvsDelPort(cur.bridge, b.name), add), undo=(OvsDelPort(b.bridge, b.name), restore_bond(cur)))
            return
        same_bond = bond_settings(cur) == (tuple(sorted(b.members)), b.mode, b.lacp, b.lacp_time)
        same_vlans = effective_vlans(cur.tag, cur.trunks, cur.vlan_mode) == effective_vlans(b.tag, b.trunks, b.vlan_mode)
        owned = cur.owner == ctx.topology and cur.role == ROLE_BOND
        if same_bond and same_vlans:
            if not owned:
                # Bonding and forwarding already right: only the marks are written.
                keep = _set_back(cur)
                ctx.add(Action.ADOPT, pres, Phase.OVSDB, "--adopt: mark it as ovsnet's" if cur.owner != ctx.topology else "its role mark",
                        before=before, after=b.describe(), ops=(replace(keep, external_ids={**cur.external_ids, **marks}),), undo=(keep,))
            self._health(b, cur, ctx)
            return
        action = Action.MODIFY if cur.owner == ctx.topology else Action.ADOPT
        ctx.add(action, pres, Phase.OVSDB, b.reason, before=before, after=b.describe(),
                ops=(OvsSetBond(b.name, b.members, b.mode, b.lacp, config, b.tag, b.trunks, b.vlan_mode, {**cur.external_ids, **marks}),),
                undo=(_set_back(cur),))

    @staticmethod
    def _members_free(b: BondWant, ctx: Context) -> bool:
        """No member is already an interface of another OVS port that ovsnet will not remove in this run."""
        ok = True
        for p in ctx.current.ovs.ports.values():
            if p.name == b.name:
                continue
            taken = [i.name for i in p.interfaces if i.name in b.members]
            if not taken:
                continue
            if p.owner == ctx.topology and p.role != ROLE_BOND:
                continue  # ovsnet's own port of that NIC (a single-NIC uplink before): the same transaction deletes it
            if p.owner == ctx.topology:
                continue  # ovsnet's bond under another name: deleted in the same transaction (see plan)
            if ctx.settings.adopt and p.name in taken and len(p.interfaces) == 1:
                # A NIC trunked on its own by hand: --adopt takes it into the bond.
                ctx.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, f"--adopt: {p.name} becomes a member of bond {b.name}",
                        before=port_view(p), ops=(OvsDelPort(p.bridge, p.name),), undo=(restore_op(p),))
                continue
            ctx.block(f"port:{p.bridge}/{p.name}", f"NIC {', '.join(taken)} of bond {b.name} is in OVS port {p.name}, which belongs to {ctx.whose(p.owner)}",
                      "remove it from that port, or pass --adopt when it is a NIC's own port")
            ok = False
        return ok

    @staticmethod
    def _health(b: BondWant, cur: OvsPort, ctx: Context) -> None:
        """A bond that is as declared but does not work: a member without link, LACP not negotiated."""
        pres = f"port:{b.bridge}/{b.name}"
        up = negotiated = 0
        for i in cur.interfaces:
            if i.link_state == "down":
                ctx.unhealthy(pres, f"{b.name}: member {i.name} is down")
                continue
            up += 1
            if b.lacp == Lacp.OFF.value:
                continue
            if i.lacp_current:
                negotiated += 1
            else:
                ctx.unhealthy(pres, f"{b.name}: LACP not negotiated on {i.name}")
        n = len(cur.interfaces)
        lacp = f", LACP negotiated on {negotiated}/{n}" if b.lacp != Lacp.OFF.value else ""
        ctx.facts.append(f"bond {b.name}: {up}/{n} members up{lacp}")

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        ovs, links = ctx.current.ovs, ctx.current.linux.links
        for p in self._ours(ctx):
            bridge = ovs.bridges.get(p.bridge)
            if bridge is not None and bridge.owner == ctx.topology:
                continue  # goes with its bridge
            ctx.add(Action.DELETE, f"port:{p.bridge}/{p.name}", Phase.OVSDB, "ovsnet made it", before=bond_view(p),
                    ops=(OvsDelPort(p.bridge, p.name),), undo=(restore_bond(p),))
        saved: SavedBonds | None = ctx.saved(self.name)
        for nic, master in sorted((saved.masters if saved else {}).items()):
            link = links.get(nic)
            if link is None or link.master == master:
                continue
            if master not in links:
                ctx.notes.append(f"Linux bond {master} no longer exists: {nic} stays out of it")
                continue
            # After the OVS transaction has let the NIC go (cleanup runs last);
            # a bond takes only a member that is down, and brings it up itself.
            ctx.add(Action.RESTORE, f"link:{nic}", Phase.CLEANUP, "back into its Linux bond, as before the first up",
                    before=f"master {link.master or 'none'}", after=f"master {master}",
                    ops=(NlSetLink(nic, up=False), NlSetLink(nic, master=master)), undo=(NlSetLink(nic, master=""), NlSetLink(nic, up=True)))

    @staticmethod
    def _ours(ctx: Context) -> list[OvsPort]:
        return [p for p in ctx.current.ovs.ports.values() if p.owner == ctx.topology and p.role == ROLE_BOND]

    @staticmethod
    def _goes_with_bridge(ctx: Context, p: OvsPort, ours: set[str]) -> bool:
        bridge = ctx.current.ovs.bridges.get(p.bridge)
        return p.bridge not in ours and bridge is not None and bridge.owner == ctx.topology

    def record_to_json(self, part: SavedBonds) -> Any:
        return {"linux_bond_of": dict(part.masters)}

    def record_from_json(self, raw: Any) -> SavedBonds:
        masters = raw.get("linux_bond_of") if isinstance(raw, dict) else None
        if not isinstance(masters, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in masters.items()):
            raise ValueError("bond is not an object with linux_bond_of: NIC names to Linux bond names")
        return SavedBonds(dict(masters))

    def merge_record(self, old: SavedBonds | None, new: SavedBonds | None) -> SavedBonds | None:
        # What is known already wins: it is older, from before ovsnet's first change.
        if old is None or new is None:
            return old or new
        return SavedBonds({**new.masters, **old.masters})
