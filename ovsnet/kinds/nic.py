"""NIC settings ovsnet changes on a NIC that is not its own: the uplink's `mtu`, and its admin state.

The MTU only when the file sets it: a NIC already at jumbo MTU must not drop
to 1500 because a topology never mentioned it. An uplink NIC that is
administratively down is brought up: neither OVS datapath does that for a
port, so a fresh host's second NIC (one the distro never configured) would
otherwise sit in the bond as a member that never carries a frame. What was
there before ovsnet's first change is remembered, and `down` puts exactly
that back: the MTU, and down for a NIC that was down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.current import Link
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology


@dataclass(frozen=True)
class NicWant:
    name: str
    mtu: int | None  # None: the file does not set it, the NIC keeps its own


@dataclass(frozen=True)
class SavedNics:
    """Before ovsnet first changed them: NIC -> its MTU, and the NICs that were down."""

    mtus: Mapping[str, int] = field(default_factory=dict)
    were_down: frozenset[str] = frozenset()


def _in_linux_bond(ctx: Context, link: Link) -> bool:
    """On the kernel datapath every OVS port's NIC has a master too (ovs-system): only a bond counts."""
    master = ctx.current.linux.links.get(link.master) if link.master else None
    return master is not None and master.kind == "bond"


class Nics(Kind):
    name: ClassVar[str] = "nic"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[NicWant, ...]:
        if host.layout is Layout.FLAT:
            return ()  # access ports and the flat NIC have no mtu in the topology
        return tuple(NicWant(nic, up.mtu) for up in host.uplinks for nic in up.members)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        mtus: dict[str, int] = {}
        down: set[str] = set()
        in_ours = {i.name for p in ctx.current.ovs.ports.values() if p.owner == ctx.topology for i in p.interfaces}
        for nic in want:
            cur = ctx.current.linux.links.get(nic.name)
            # A missing NIC is reported where it is used: its OVS port, the uplink move.
            if cur is None:
                continue
            before, after, ops, undo = [], [], [], []
            if nic.mtu is not None and cur.mtu != nic.mtu:
                before.append(f"mtu {cur.mtu}")
                after.append(f"mtu {nic.mtu}")
                ops.append(NlSetLink(nic.name, mtu=nic.mtu))
                undo.append(NlSetLink(nic.name, mtu=cur.mtu))
                mtus[nic.name] = cur.mtu
            # A member of a Linux bond is brought up by the bond kind, which frees it.
            if not cur.up and not _in_linux_bond(ctx, cur):
                before.append("down")
                after.append("up")
                ops.append(NlSetLink(nic.name, up=True))
                undo.insert(0, NlSetLink(nic.name, up=False))
                # Down while already in ovsnet's port is not how the host was before
                # ovsnet (a reboot: a manager that handed the NIC over leaves it down).
                if nic.name not in in_ours:
                    down.add(nic.name)
            if ops:
                reason = "the uplink's mtu in the topology" if nic.mtu is not None and cur.mtu != nic.mtu else \
                    "an uplink NIC carries frames only when up, and OVS does not bring a port's NIC up"
                ctx.add(Action.MODIFY, f"link:{nic.name}", Phase.LINUX, reason, before=", ".join(before), after=", ".join(after),
                        ops=tuple(ops), undo=tuple(undo))
        if mtus or down:
            ctx.keep[self.name] = SavedNics(mtus, frozenset(down))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        saved: SavedNics | None = ctx.saved(self.name)
        if saved is None:
            return
        for nic, mtu in sorted(saved.mtus.items()):
            link = ctx.current.linux.links.get(nic)
            if link is not None and link.mtu != mtu:
                ctx.add(Action.RESTORE, f"link:{nic}", Phase.UPLINK, "as it was before the first up", before=f"mtu {link.mtu}", after=f"mtu {mtu}",
                        ops=(NlSetLink(nic, mtu=mtu),), undo=(NlSetLink(nic, mtu=link.mtu),))
        for nic in sorted(saved.were_down):
            link = ctx.current.linux.links.get(nic)
            if link is None or not link.up or _in_linux_bond(ctx, link):
                continue  # down already, or back in its Linux bond, which runs it now
            # After the OVS transaction has let the NIC go (cleanup runs last).
            ctx.add(Action.RESTORE, f"link:{nic}", Phase.CLEANUP, "down, as it was before the first up", before="up", after="down",
                    ops=(NlSetLink(nic, up=False),), undo=(NlSetLink(nic, up=True),))

    def record_to_json(self, part: SavedNics) -> Any:
        return {"mtus": dict(part.mtus), "were_down": sorted(part.were_down)}

    def record_from_json(self, raw: Any) -> SavedNics:
        if not isinstance(raw, dict):
            raise ValueError("nic is not an object with mtus and were_down")
        if not raw.keys() <= {"mtus", "were_down"}:
            raw = {"mtus": raw}  # written before the admin state was kept: NIC -> MTU only
        mtus, down = raw.get("mtus", {}), raw.get("were_down", [])
        if not isinstance(mtus, dict) or not all(isinstance(k, str) and type(v) is int for k, v in mtus.items()):
            raise ValueError("nic.mtus is not an object of NIC names to integer MTUs")
        if not isinstance(down, list) or not all(isinstance(n, str) for n in down):
            raise ValueError("nic.were_down is not a list of NIC names")
        return SavedNics(dict(mtus), frozenset(down))

    def merge_record(self, old: SavedNics | None, new: SavedNics | None) -> SavedNics | None:
        # What is known already wins: it is older, from before ovsnet's first change.
        if old is None or new is None:
            return old or new
        return SavedNics({**new.mtus, **old.mtus}, old.were_down | new.were_down)
