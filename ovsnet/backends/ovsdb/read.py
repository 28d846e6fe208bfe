"""The IDL's replica of Open_vSwitch, as a frozen snapshot (ovsnet.current)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ovsnet.backends.ovsdb.rows import first, root_row
from ovsnet.current import OvsBridge, OvsInterface, OvsPort, OvsState

if TYPE_CHECKING:
    from ovs.db.idl import Idl

# Only what ovsnet reads or writes: a smaller monitor means less traffic and
# no surprises from columns other tools churn (statistics, status).
COLUMNS: dict[str, list[str]] = {
    "Open_vSwitch": ["bridges", "next_cfg", "cur_cfg"],
    "Bridge": ["name", "ports", "datapath_type", "external_ids"],
    "Port": ["name", "interfaces", "tag", "trunks", "vlan_mode", "external_ids", "bond_mode", "lacp", "other_config"],
    # link_state and lacp_current: a bond's health (status reports a member down
    # or LACP not negotiated); they change only when a link or LACP does.
    "Interface": ["name", "type", "ofport", "error", "external_ids", "mac", "link_state", "lacp_current"],
}


def snapshot(idl: Idl) -> OvsState:
    root = root_row(idl)
    if root is None:
        return OvsState()
    bridges: dict[str, OvsBridge] = {}
    ports: dict[str, OvsPort] = {}
    for bridge in root.bridges:
        for port in bridge.ports:
            ports[port.name] = OvsPort(
                name=port.name,
                bridge=bridge.name,
                tag=first(port.tag),
                trunks=frozenset(port.trunks),
                vlan_mode=first(port.vlan_mode),
                interfaces=tuple(
                    OvsInterface(
                        name=iface.name,
                        type=iface.type,
                        ofport=first(iface.ofport),
                        error=first(iface.error),
                        external_ids=dict(iface.external_ids),
                        mac=first(iface.mac),
                        link_state=first(iface.link_state),
                        lacp_current=first(iface.lacp_current),
                    )
                    for iface in sorted(port.interfaces, key=lambda i: i.name)
                ),
                external_ids=dict(port.external_ids),
                bond_mode=first(port.bond_mode),
                lacp=first(port.lacp),
                other_config=dict(port.other_config),
            )
        bridges[bridge.name] = OvsBridge(
            name=bridge.name,
            datapath_type=bridge.datapath_type,
            ports=tuple(sorted(p.name for p in bridge.ports)),
            external_ids=dict(bridge.external_ids),
        )
    return OvsState(bridges=bridges, ports=ports, cur_cfg=root.cur_cfg)
