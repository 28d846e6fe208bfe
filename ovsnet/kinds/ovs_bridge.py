"""The host's OVS bridge: the one that trunks the NIC (one per host)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.marks import ovs_marks
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology

ROLE_BRIDGE = "bridge"


@dataclass(frozen=True)
class OvsAddBridge:
    name: str
    datapath_type: str  # "system" or "netdev"
    external_ids: Mapping[str, str] = field(default_factory=dict)
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        txn.add_bridge(self.name, {"datapath_type": self.datapath_type, "external_ids": dict(self.external_ids)})

    def describe(self) -> str:
        return f"add bridge {self.name}"


@dataclass(frozen=True)
class OvsSetBridge:
    name: str
    datapath_type: str
    external_ids: Mapping[str, str] = field(default_factory=dict)
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        row = txn.bridge(self.name)
        txn.set(row, "datapath_type", self.datapath_type, f"bridge {self.name}")
        txn.set(row, "external_ids", dict(self.external_ids), f"bridge {self.name}")

    def describe(self) -> str:
        return f"set bridge {self.name}"


@dataclass(frozen=True)
class OvsSetBridgeKey:
    """One key of a bridge's external_ids, set (or removed when value is None), the others kept."""

    name: str
    key: str
    value: str | None
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        row = txn.bridge(self.name)
        ids = dict(row.external_ids)
        if self.value is None:
            ids.pop(self.key, None)
        else:
            ids[self.key] = self.value
        txn.set(row, "external_ids", ids, f"bridge {self.name}")

    def describe(self) -> str:
        return f"set {self.key} of bridge {self.name}"


@dataclass(frozen=True)
class OvsDelBridge:
    name: str
    backend: ClassVar[str] = "ovsdb"

    def build(self, txn: Any) -> None:
        txn.del_bridge(self.name)

    def describe(self) -> str:
        return f"delete bridge {self.name}"


@dataclass(frozen=True)
class OvsBridgeWant:
    name: str
    datapath: str


class OvsBridges(Kind):
    name: ClassVar[str] = "ovs-bridge"
    reads: ClassVar[frozenset[str]] = frozenset({"ovsdb"})

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[OvsBridgeWant, ...]:
        if host.layout is Layout.FLAT:
            return ()
        return (OvsBridgeWant(host.bridge.name, settings.datapath or host.bridge.datapath.value),)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        ovs = ctx.current.ovs
        for w in want:
            res = f"bridge:{w.name}"
            cur = ovs.bridges.get(w.name)
            marks = ovs_marks(ctx.topology, ROLE_BRIDGE)
            if cur is None:
                ctx.add(Action.CREATE, res, Phase.OVSDB, "the host's OVS bridge", after=f"OVS bridge, datapath {w.datapath}",
                        ops=(OvsAddBridge(w.name, w.datapath, marks),), undo=(OvsDelBridge(w.name),))
            elif cur.owner != ctx.topology:
                if not ctx.settings.adopt:
                    ctx.block(res, f"OVS bridge {w.name} exists and belongs to {ctx.whose(cur.owner)}")
                    continue
                ctx.add(Action.ADOPT, res, Phase.OVSDB, "--adopt: mark it as ovsnet's", before="foreign", after=f"owned by {ctx.topology}",
                        ops=(OvsSetBridge(w.name, w.datapath, {**cur.external_ids, **marks}),),
                        undo=(OvsSetBridge(w.name, cur.datapath_type, dict(cur.external_ids)),))
            elif (cur.datapath_type or "system") != w.datapath:
                ctx.add(Action.MODIFY, res, Phase.OVSDB, "datapath type changed in the topology", before=f"datapath {cur.datapath_type or 'system'}", after=f"datapath {w.datapath}",
                        ops=(OvsSetBridge(w.name, w.datapath, dict(cur.external_ids)),), undo=(OvsSetBridge(w.name, cur.datapath_type, dict(cur.external_ids)),))
        wanted = {w.name for w in want}
        for b in ovs.bridges.values():
            # Ours, no longer wanted: the edit removed it.
            if b.owner == ctx.topology and b.name not in wanted:
                ctx.add(Action.DELETE, f"bridge:{b.name}", Phase.OVSDB, "no longer in the topology", before="OVS bridge",
                        ops=(OvsDelBridge(b.name),), undo=(OvsAddBridge(b.name, b.datapath_type, dict(b.external_ids)),))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        from ovsnet.kinds.ovs_port import restore_op

        ovs = ctx.current.ovs
        for name in sorted(b.name for b in ovs.bridges.values() if b.owner == ctx.topology):
            b = ovs.bridges[name]
            # Undone: the bridge, then every port it had (ours or not), as they were.
            undo = (OvsAddBridge(name, b.datapath_type, dict(b.external_ids)),) + tuple(restore_op(ovs.ports[p]) for p in b.ports if p in ovs.ports)
            ctx.add(Action.DELETE, f"bridge:{name}", Phase.OVSDB, "ovsnet made it", before="OVS bridge (and its ports)", ops=(OvsDelBridge(name),), undo=undo)
