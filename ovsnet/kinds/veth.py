"""Veth patch links: the one wire from each Docker bridge into OVS (its OVS end is an access port)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.backends.netlink import codec
from ovsnet.backends.netlink.ops import IndexOf, Message, NlDeleteLink, NlOp, NlSetLink
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.marks import alias_for
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology

ROLE_PATCH = "patch"


@dataclass(frozen=True)
class NlCreateVeth(NlOp):
    name: str
    peer: str
    mtu: int | None = None
    alias: str | None = None  # written on both ends

    def messages(self, index_of: IndexOf) -> list[Message]:
        out: list[Message] = [(codec.new_veth(self.name, self.peer, self.mtu), self.name)]
        if self.alias is not None:
            # The kernel ignores IFLA_IFALIAS in a create request.
            out.append((codec.set_link(self.name, alias=self.alias), None))
            out.append((codec.set_link(self.peer, alias=self.alias), None))
        return out

    def describe(self) -> str:
        return f"create veth {self.name}/{self.peer}"


@dataclass(frozen=True)
class Veth:
    name: str  # the end that goes into OVS
    peer: str  # the end enslaved to `master`
    master: str
    mtu: int
    reason: str = ""


def create_ops(v: Veth, alias: str) -> tuple[Any, ...]:
    """Create a patch pair: the bridge end into its Linux bridge, both ends up."""
    return (NlCreateVeth(v.name, v.peer, v.mtu, alias), NlSetLink(v.peer, master=v.master, up=True), NlSetLink(v.name, up=True))


class Veths(Kind):
    name: ClassVar[str] = "veth"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[Veth, ...]:
        if host.layout is Layout.FLAT:
            return ()
        return tuple(Veth(d.patch_ovs, d.patch_bridge, d.bridge, d.mtu or topo.vlans[d.vlan].mtu, f"patch link OVS <-> {d.bridge}")
                     for d in host.docker)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        links = ctx.current.linux.links
        alias = alias_for(ctx.topology, ROLE_PATCH)
        for v in want:
            res = f"veth:{v.name}/{v.peer}"
            cur, peer = links.get(v.name), links.get(v.peer)
            if cur is None and peer is None:
                ctx.add(Action.CREATE, res, Phase.LINUX, v.reason, after=f"veth pair, {v.peer} in {v.master}, mtu {v.mtu}",
                        ops=create_ops(v, alias), undo=(NlDeleteLink(v.name),))
                continue
            if cur is None or peer is None or cur.kind != "veth" or (cur.peer and cur.peer != v.peer):
                present = cur or peer
                assert present is not None
                if present.owner == ctx.topology:
                    # Half a pair, or a pair with another peer: ours, so rebuild it.
                    ctx.add(Action.MODIFY, res, Phase.LINUX, "patch link is incomplete; recreating it", before="broken veth pair", after=f"veth pair, {v.peer} in {v.master}",
                            ops=tuple(NlDeleteLink(x.name) for x in (cur, peer) if x) + create_ops(v, alias),
                            undo=(NlDeleteLink(v.name),))
                else:
                    ctx.block(res, f"{present.name} exists and is not ovsnet's patch link", "rename patch_ovs/patch_bridge in the topology, or remove it")
                continue
            if not ctx.owned_link(cur, res):
                continue
            if peer.master != v.master:
                ctx.add(Action.MODIFY, f"link:{v.peer}", Phase.LINUX, f"patch end belongs in {v.master}", before=f"master {peer.master or 'none'}", after=f"master {v.master}",
                        ops=(NlSetLink(v.peer, master=v.master),), undo=(NlSetLink(v.peer, master=peer.master or ""),))
            for end in (cur, peer):
                ctx.tune_link(end, f"link:{end.name}", v.mtu, v.reason)
        wanted = {v.name for v in want} | {v.peer for v in want}
        for link, res in self._owned_pairs(ctx):
            if link.name not in wanted:
                ctx.add(Action.DELETE, res, Phase.CLEANUP, "no longer in the topology", before="veth", ops=(NlDeleteLink(link.name),))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        for link, res in self._owned_pairs(ctx):
            ctx.add(Action.DELETE, res, Phase.CLEANUP, "ovsnet made it", before="veth", ops=(NlDeleteLink(link.name),))

    @staticmethod
    def _owned_pairs(ctx: Context) -> list[tuple[Any, str]]:
        """Our veths, one end per pair: deleting one end removes both."""
        out, gone = [], set()
        for link in ctx.current.linux.links.values():
            if link.kind != "veth" or link.owner != ctx.topology or link.name in gone:
                continue
            if link.peer:
                gone.add(link.peer)
            out.append((link, f"link:{link.name}"))
        return out
