"""Linux bridges: one per Docker VLAN (Docker's bridge driver needs one), or the flat layout's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.backends.netlink import codec
from ovsnet.backends.netlink.ops import IndexOf, Message, NlDeleteLink, NlOp, NlSetLink
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.marks import alias_for
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import DEFAULT_MTU, Host, Layout, Topology

ROLE_DOCKER_BRIDGE = "docker-bridge"
ROLE_FLAT_BRIDGE = "flat-bridge"


@dataclass(frozen=True)
class NlCreateBridge(NlOp):
    name: str
    mtu: int | None = None
    alias: str | None = None

    def messages(self, index_of: IndexOf) -> list[Message]:
        out: list[Message] = [(codec.new_bridge(self.name), self.name)]
        # The MTU goes in a set after the create, not in the create: only then
        # does the bridge keep it instead of following its ports' MTUs (and
        # falling back to 1500 when its last port goes). The kernel also
        # ignores IFLA_IFALIAS in a create request.
        if self.mtu is not None or self.alias is not None:
            out.append((codec.set_link(self.name, mtu=self.mtu, alias=self.alias), None))
        return out

    def describe(self) -> str:
        return f"create bridge {self.name}"


def recreate_ops(link: Any) -> tuple[Any, ...]:
    """A bridge as it was: its MTU, its mark, up or down (its ports come back with their own undo)."""
    return (NlCreateBridge(link.name, link.mtu, link.alias),) + ((NlSetLink(link.name, up=True),) if link.up else ())


@dataclass(frozen=True)
class LinuxBridge:
    name: str
    mtu: int
    role: str
    reason: str = ""


class LinuxBridges(Kind):
    name: ClassVar[str] = "linux-bridge"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[LinuxBridge, ...]:
        if host.layout is Layout.FLAT:
            if host.flat is None:
                return ()
            mtu = topo.vlans[host.flat.vlan].mtu if host.flat.vlan else DEFAULT_MTU
            return (LinuxBridge(host.flat.bridge, mtu, ROLE_FLAT_BRIDGE, f"flat layout: {host.flat.nic} and Docker share it"),)
        return tuple(LinuxBridge(d.bridge, d.mtu or topo.vlans[d.vlan].mtu, ROLE_DOCKER_BRIDGE, f"Docker bridge for VLAN {d.vlan}")
                     for d in host.docker)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        links = ctx.current.linux.links
        for br in want:
            res = f"link:{br.name}"
            cur = links.get(br.name)
            if cur is None:
                ctx.add(Action.CREATE, res, Phase.LINUX, br.reason, after=f"Linux bridge, mtu {br.mtu}",
                        ops=(NlCreateBridge(br.name, br.mtu, alias_for(ctx.topology, br.role)), NlSetLink(br.name, up=True)),
                        undo=(NlDeleteLink(br.name),))
            elif cur.kind != "bridge":
                ctx.block(res, f"{br.name} exists and is a {cur.kind or 'NIC'}, not a Linux bridge", "rename the bridge in the topology")
            elif ctx.owned_link(cur, res):
                ctx.tune_link(cur, res, br.mtu, br.reason)
        wanted = {br.name for br in want}
        for link in links.values():
            # Ours, no longer wanted: the edit removed it.
            if link.kind == "bridge" and link.owner == ctx.topology and link.name not in wanted:
                ctx.add(Action.DELETE, f"link:{link.name}", Phase.CLEANUP, "no longer in the topology", before="bridge",
                        ops=(NlDeleteLink(link.name),), undo=recreate_ops(link))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        for link in ctx.current.linux.links.values():
            if link.kind == "bridge" and link.owner == ctx.topology:
                ctx.add(Action.DELETE, f"link:{link.name}", Phase.CLEANUP, "ovsnet made it", before="bridge",
                        ops=(NlDeleteLink(link.name),), undo=recreate_ops(link))
