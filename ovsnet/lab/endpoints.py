"""The lab's test endpoints: each a namespace with one veth into its host,
plugged in once `ovsnet up` has made the bridges they join."""

from __future__ import annotations

from typing import Any

from ovsnet.backends.netlink.ops import NlAddAddress, NlOp, NlReplaceRoute, NlSetLink
from ovsnet.backends.ovsdb import Ovsdb
from ovsnet.errors import UsageError
from ovsnet.kinds.ovs_port import OvsAddPort
from ovsnet.lab.kernel import Kernel
from ovsnet.lab.names import LAB_OVS_TIMEOUT, Lab
from ovsnet.marks import LAB_ALIAS_PREFIX, LAB_KEY
from ovsnet.topology.model import Attach, Endpoint, Host, Layout, Topology


def attach_endpoints(lab: Lab) -> None:
    """Plug every test endpoint into its host; run after the hosts are configured.

    Docker endpoints join the VLAN's Linux bridge and flat ones the flat
    bridge, which only exist once apply made them; "ovs" endpoints become
    access ports on the host's OVS bridge. Endpoints already plugged are left alone.
    """
    topo, names = lab.topology, lab.names
    ovs_ports: dict[str, list[Any]] = {}
    with Kernel() as kernel:
        for ep in topo.endpoints:
            ns = names.endpoint_ns(ep.name)
            if kernel.has_link(ns, "eth0"):
                continue
            host = topo.hosts[ep.host]
            host_ns, link = names.host_ns(host.name), names.endpoint_link(ep.name)
            mtu = _endpoint_mtu(topo, host, ep)
            kernel.veth(ns, "eth0", host_ns, link, names.temp_link(names.endpoints.index(ep.name) + 1), mtu)
            kernel.apply(ns, _endpoint_ops(topo, ep))
            bridge = _endpoint_bridge(host, ep)
            if bridge is None:
                vid = topo.vlans[ep.vlan].id
                ovs_ports.setdefault(host.name, []).append(
                    OvsAddPort(host.bridge.name, link, tag=vid, external_ids={LAB_KEY: f"endpoint:{ep.name}"})
                )
            # Marked as the lab's, so what reads the host (graph --live, import) tells it from the host's own links.
            kernel.apply(host_ns, [NlSetLink(link, up=True, master=bridge, alias=f"{LAB_ALIAS_PREFIX}endpoint:{ep.name}")])
    for host_name, ops in ovs_ports.items():
        with Ovsdb(lab.ovs_of(host_name).remote, timeout=LAB_OVS_TIMEOUT) as db:
            db.transact(ops)


def _endpoint_bridge(host: Host, ep: Endpoint) -> str | None:
    """The Linux bridge the endpoint joins, or None for an OVS access port."""
    if host.layout is Layout.FLAT:
        if host.flat is None:
            raise UsageError(f"endpoint {ep.name}: flat host {host.name} has no bridge")
        return host.flat.bridge
    if ep.attach is Attach.OVS:
        return None
    docker = next((d for d in host.docker if d.vlan == ep.vlan), None)
    if docker is None:
        raise UsageError(f"endpoint {ep.name}: host {host.name} has no Docker bridge on VLAN {ep.vlan}")
    return docker.bridge


def _endpoint_mtu(topo: Topology, host: Host, ep: Endpoint) -> int:
    # A port below the bridge's MTU would pull the whole bridge down to it.
    docker = next((d for d in host.docker if d.vlan == ep.vlan), None)
    if ep.attach is Attach.DOCKER and docker is not None and docker.mtu:
        return docker.mtu
    return topo.vlans[ep.vlan].mtu


def _endpoint_ops(topo: Topology, ep: Endpoint) -> list[NlOp]:
    """Its address of each family (IPv6 without DAD: usable at once), a default route via the VLAN's router in each."""
    ops: list[NlOp] = [NlSetLink("eth0", up=True)]
    ops += [NlAddAddress("eth0", str(a), nodad=True) for a in ep.addresses]
    vlan = topo.vlans[ep.vlan]
    for a in ep.addresses:
        st = vlan.stack(a.version)
        if st is not None and st.router is not None:
            ops.append(NlReplaceRoute("default", "eth0", str(st.router)))
    return ops
