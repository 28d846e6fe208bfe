"""NIC settings ovsnet changes on a NIC that is not its own: the uplink's `mtu`.

Only when the file sets it: a NIC already at jumbo MTU must not drop to 1500
because a topology never mentioned it. The MTU before ovsnet's first change
is remembered, and `down` puts that exact value back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ovsnet.backends.netlink.ops import NlSetLink
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology


@dataclass(frozen=True)
class NicMtu:
    name: str
    mtu: int
    reason: str = "the uplink's mtu in the topology"


@dataclass(frozen=True)
class SavedMtus:
    """NIC -> its MTU before ovsnet first changed it."""

    mtus: Mapping[str, int] = field(default_factory=dict)


class Nics(Kind):
    name: ClassVar[str] = "nic"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[NicMtu, ...]:
        if host.layout is Layout.FLAT:
            return ()  # access ports and the flat NIC have no mtu in the topology
        return tuple(NicMtu(nic, up.mtu) for up in host.uplinks if up.mtu is not None for nic in up.members)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        before: dict[str, int] = {}
        for nic in want:
            cur = ctx.current.linux.links.get(nic.name)
            # A missing NIC is reported where it is used: its OVS port, the uplink move.
            if cur is None or cur.mtu == nic.mtu:
                continue
            ctx.add(Action.MODIFY, f"link:{nic.name}", Phase.LINUX, nic.reason, before=f"mtu {cur.mtu}", after=f"mtu {nic.mtu}",
                    ops=(NlSetLink(nic.name, mtu=nic.mtu),), undo=(NlSetLink(nic.name, mtu=cur.mtu),))
            before[nic.name] = cur.mtu
        if before:
            ctx.keep[self.name] = SavedMtus(before)

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        saved: SavedMtus | None = ctx.saved(self.name)
        for nic, mtu in sorted((saved.mtus if saved else {}).items()):
            link = ctx.current.linux.links.get(nic)
            if link is not None and link.mtu != mtu:
                ctx.add(Action.RESTORE, f"link:{nic}", Phase.UPLINK, "as it was before the first up", before=f"mtu {link.mtu}", after=f"mtu {mtu}",
                        ops=(NlSetLink(nic, mtu=mtu),), undo=(NlSetLink(nic, mtu=link.mtu),))

    def record_to_json(self, part: SavedMtus) -> Any:
        return dict(part.mtus)

    def record_from_json(self, raw: Any) -> SavedMtus:
        if not isinstance(raw, dict) or not all(isinstance(k, str) and type(v) is int for k, v in raw.items()):
            raise ValueError("nic_mtus is not an object of NIC names to integer MTUs")
        return SavedMtus(dict(raw))

    def merge_record(self, old: SavedMtus | None, new: SavedMtus | None) -> SavedMtus | None:
        # What is known already wins: it is older, from before ovsnet's first change.
        if old is None or new is None:
            return old or new
        return SavedMtus({**new.mtus, **old.mtus})
