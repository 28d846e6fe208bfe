"""Veth patch links: the one wire from each Docker bridge into OVS (its OVS end is an access port)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.backends.ethtool import EthtoolTxChecksum
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
    # The bridge end sends into a userspace OVS port: its checksums must be
    # finished before they leave (see ovsnet.backends.ethtool).
    finish_checksums: bool = False


def create_ops(v: Veth, alias: str) -> tuple[Any, ...]:
    """Create a patch pair: the bridge end into its Linux bridge, both ends up."""
    return (NlCreateVeth(v.name, v.peer, v.mtu, alias), NlSetLink(v.peer, master=v.master, up=True), NlSetLink(v.name, up=True))


class Veths(Kind):
    name: ClassVar[str] = "veth"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[Veth, ...]:
        if host.layout is Layout.FLAT:
            return ()
        netdev = (settings.datapath or host.bridge.datapath.value) == "netdev"
        return tuple(Veth(d.patch_ovs, d.patch_bridge, d.bridge, d.mtu or topo.vlans[d.vlan].mtu, f"patch link OVS <-> {d.bridge}", netdev)
                     for d in host.docker)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        links = ctx.current.linux.links
        alias = alias_for(ctx.topology, ROLE_PATCH)
        finish: list[Veth] = []
        for v in want:
            res = f"veth:{v.name}/{v.peer}"
            cur, peer = links.get(v.name), links.get(v.peer)
            if cur is None and peer is None:
                ctx.add(Action.CREATE, res, Phase.LINUX, v.reason, after=f"veth pair, {v.peer} in {v.master}, mtu {v.mtu}",
                        ops=create_ops(v, alias), undo=(NlDeleteLink(v.name),))
                finish.append(v)
                continue
            if cur is None or peer is None or cur.kind != "veth" or (cur.peer and cur.peer != v.peer):
                present = cur or peer
                assert present is not None
                if present.owner == ctx.topology:
                    # Half a pair, or a pair with another peer: ours, so rebuild it.
                    ctx.add(Action.MODIFY, res, Phase.LINUX, "patch link is incomplete; recreating it", before="broken veth pair", after=f"veth pair, {v.peer} in {v.master}",
                            ops=tuple(NlDeleteLink(x.name) for x in (cur, peer) if x) + create_ops(v, alias),
                            undo=(NlDeleteLink(v.name),))
                    finish.append(v)
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
        for v in finish:
            if v.finish_checksums:
                # After the creates (another backend): the kernel has the new link by then.
                ctx.add(Action.MODIFY, f"link:{v.peer}", Phase.LINUX, "it sends into a userspace OVS port, which cannot finish partial checksums",
                        before="TX checksum offload on", after="off", ops=(EthtoolTxChecksum(v.peer, False),))
        wanted = {v.name for v in want} | {v.peer for v in want}
        for link, res in self._owned_pairs(ctx):
            if link.name not in wanted:
                ctx.add(Action.DELETE, res, Phase.CLEANUP, "no longer in the topology", before="veth", ops=(NlDeleteLink(link.name),),
                        undo=_recreate(link, ctx.current.linux.links.get(link.peer or "")))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        for link, res in self._owned_pairs(ctx):
            ctx.add(Action.DELETE, res, Phase.CLEANUP, "ovsnet made it", before="veth", ops=(NlDeleteLink(link.name),),
                    undo=_recreate(link, ctx.current.linux.links.get(link.peer or "")))

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


def _recreate(link: Any, peer: Any) -> tuple[Any, ...]:
    """A veth pair as it was: both ends, their masters (a Linux bridge; an OVS port comes back through OVSDB), up or down."""
    if peer is None:
        return ()  # a half pair: not worth rebuilding as it was
    ops: list[Any] = [NlCreateVeth(link.name, peer.name, link.mtu, link.alias)]
    for end in (link, peer):
        # An end in OVS has master ovs-system, which is OVS's to set again.
        master = end.master if end.master and end.master != "ovs-system" else None
        if master or end.up:
            ops.append(NlSetLink(end.name, master=master, up=True if end.up else None))
    return tuple(ops)
