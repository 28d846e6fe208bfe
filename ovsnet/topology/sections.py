"""The sections of topology.toml, read into the model: VLANs, hosts, router, endpoints, lab, verify.

Each function reads one section through the Reader, which records every
problem with its key path and returns None (or a default) for what it could
not read, so the rest of the file is still read.
"""

from __future__ import annotations

from typing import Any

from ovsnet.topology.convert import (
    Invalid,
    as_bool,
    as_enum,
    as_iface_addr,
    as_iface_addr6,
    as_ifname,
    as_image_ref,
    as_int,
    as_ip,
    as_ip6,
    as_list,
    as_name,
    as_network,
    as_network6,
    as_str,
    quoted,
    type_name,
)
from ovsnet.topology.model import (
    DEFAULT_BOND,
    DEFAULT_MTU,
    DEFAULT_OVSDB,
    AccessPort,
    Attach,
    Bond,
    BondMode,
    Cable,
    CableEnd,
    Datapath,
    DockerBridge,
    Endpoint,
    FlatBridge,
    Handover,
    Host,
    LabSpec,
    Lacp,
    LacpTime,
    Layout,
    Management,
    OvsBridgeSpec,
    Router,
    Uplink,
    VerifySettings,
    Vlan,
)
from ovsnet.topology.reader import Reader


def load_vlans(r: Reader, raw: Any) -> dict[str, Vlan]:
    vlans: dict[str, Vlan] = {}
    if not isinstance(raw, dict):
        r.error("vlans", f"expected a table, got {type_name(raw)}", "write each VLAN as [vlans.NAME]")
        return vlans
    for name, body in raw.items():
        path = f"vlans.{name}"
        try:
            as_name(name)
        except Invalid as exc:
            r.error(path, f"VLAN name: {exc.message}", exc.hint)
            r.broken_vlans.add(name)
            continue
        b = r.table(body, path, ("id", "subnet", "router", "mtu", "host_slice", "subnet6", "router6", "host_slice6", "description"))
        if b is None:
            r.broken_vlans.add(name)
            continue
        vid = r.get(b, path, "id", as_int(1, 4094))
        subnet = r.get(b, path, "subnet", as_network, None)
        router = r.get(b, path, "router", as_ip, None)
        mtu = r.get(b, path, "mtu", as_int(68, 65535), DEFAULT_MTU)
        host_slice = r.get(b, path, "host_slice", as_int(1, 128), None)
        subnet6 = r.get(b, path, "subnet6", as_network6, None)
        router6 = r.get(b, path, "router6", as_ip6, None)
        host_slice6 = r.get(b, path, "host_slice6", as_int(1, 128), None)
        r.get(b, path, "description", as_str, "")
        if vid is None:
            r.broken_vlans.add(name)
            continue
        vlans[name] = Vlan(name, vid, subnet, router, mtu, host_slice, subnet6, router6, host_slice6)
        r.vlan_names[name] = name
        r.vlan_names.setdefault(str(vid), name)
        # Duplicate ids are a validation finding; the first keeps the lookup.
        r.vlan_ids.setdefault(vid, name)
    return vlans


_HOST_KEYS = ("layout", "ovsdb", "docker_host", "docker_required", "bridge", "uplinks", "management", "docker", "access_ports", "flat", "description")


def load_host(r: Reader, name: str, body: Any) -> Host | None:
    path = f"hosts.{name}"
    try:
        as_name(name)
    except Invalid as exc:
        r.error(path, f"host name: {exc.message}", exc.hint)
        return None
    b = r.table(body, path, _HOST_KEYS)
    if b is None:
        return None
    r.get(b, path, "description", as_str, "")
    layout = r.get(b, path, "layout", as_enum(Layout), Layout.VLAN) or Layout.VLAN
    ovsdb = r.get(b, path, "ovsdb", as_str, DEFAULT_OVSDB) or DEFAULT_OVSDB
    docker_host = r.get(b, path, "docker_host", as_str, None)
    docker_required = r.get(b, path, "docker_required", as_bool, False)

    bridge = OvsBridgeSpec()
    if "bridge" in b:
        bp = f"{path}.bridge"
        if isinstance(b["bridge"], str):  # shorthand: bridge = "br-ovs"
            bridge = OvsBridgeSpec(name=r.get(b, path, "bridge", as_ifname, "br-ovs") or "br-ovs")
        else:
            bt = r.table(b["bridge"], bp, ("name", "datapath"))
            if bt is not None:
                bridge = OvsBridgeSpec(
                    name=r.get(bt, bp, "name", as_ifname, "br-ovs") or "br-ovs",
                    datapath=r.get(bt, bp, "datapath", as_enum(Datapath), Datapath.SYSTEM) or Datapath.SYSTEM,
                )

    uplinks = []
    for i, raw in enumerate(r.get(b, path, "uplinks", as_list(lambda v: v), []) or []):
        up = _load_uplink(r, f"{path}.uplinks[{i}]", raw)
        if up:
            uplinks.append(up)

    management = None
    if "management" in b:
        management = _load_management(r, f"{path}.management", b["management"])

    docker = []
    for i, raw in enumerate(r.get(b, path, "docker", as_list(lambda v: v), []) or []):
        d = _load_docker(r, f"{path}.docker[{i}]", raw)
        if d:
            docker.append(d)

    access = []
    for i, raw in enumerate(r.get(b, path, "access_ports", as_list(lambda v: v), []) or []):
        ap = f"{path}.access_ports[{i}]"
        t = r.table(raw, ap, ("interface", "vlan"))
        if t is None:
            continue
        iface = r.get(t, ap, "interface", as_ifname)
        vlan = r.get(t, ap, "vlan", r.as_vlan)
        if iface and vlan:
            access.append(AccessPort(iface, vlan))

    flat = None
    if "flat" in b:
        fp = f"{path}.flat"
        ft = r.table(b["flat"], fp, ("bridge", "nic", "vlan", "network"))
        if ft is not None:
            fbridge = r.get(ft, fp, "bridge", as_ifname, "br0")
            fnic = r.get(ft, fp, "nic", as_ifname)
            fvlan = r.get(ft, fp, "vlan", r.as_vlan, None)
            fnet = r.get(ft, fp, "network", as_name, None)
            if fbridge and fnic:
                flat = FlatBridge(fbridge, fnic, fvlan, fnet)
    if layout is Layout.FLAT and flat is None and "flat" not in b:
        r.error(path, "layout = \"flat\" needs a [" + path + ".flat] table", 'add bridge = "br0" and nic = "eth0" there')
    if layout is Layout.VLAN and "flat" in b:
        r.error(f"{path}.flat", "a [flat] table on a host with layout \"vlan\"", 'set layout = "flat" or remove the table')

    return Host(
        name=name,
        layout=layout,
        ovsdb=ovsdb,
        docker_host=docker_host,
        docker_required=bool(docker_required),
        bridge=bridge,
        uplinks=tuple(uplinks),
        management=management,
        docker=tuple(docker),
        access_ports=tuple(access),
        flat=flat,
    )


_BOND_KEYS = ("bond", "bond_mode", "lacp", "lacp_time")


def _load_uplink(r: Reader, path: str, raw: Any) -> Uplink | None:
    t = r.table(raw, path, ("nic", "nics", "vlans", "native_vlan", "mtu", *_BOND_KEYS))
    if t is None:
        return None
    bond: Bond | None = None
    if "nics" in t:
        bond = _load_bond(r, path, t)
        nic = bond.nics[0] if bond else None
    else:
        nic = r.get(t, path, "nic", as_ifname)
        for key in _BOND_KEYS:
            if key in t:
                r.error(f"{path}.{key}", f"{key} applies to a bond, and this uplink has one NIC", 'list the bond\'s NICs in nics = ["eth1", "eth2"] instead of nic')
    vlans = r.get(t, path, "vlans", as_list(r.as_vlan))
    native = r.get(t, path, "native_vlan", r.as_vlan, None)
    mtu = r.get(t, path, "mtu", as_int(68, 65535), None)
    # Empty as written, not empty because every item was refused (each has its finding).
    if t.get("vlans") == []:
        r.error(f"{path}.vlans", "a trunk carrying no VLAN", "list the VLANs this NIC carries")
    if nic is None or vlans is None:
        return None
    return Uplink(nic, tuple(vlans), native, mtu, bond)


def _load_bond(r: Reader, path: str, t: dict) -> Bond | None:
    """`nics = [...]`: an OVS bond of them, with its name, mode and LACP settings."""
    if "nic" in t:
        r.error(f"{path}.nics", "an uplink names nic (one NIC) or nics (a bond), not both", 'keep nics = [...] for a bond, or nic = "..." for one NIC')
    nics = r.get(t, path, "nics", as_list(as_ifname))
    name = r.get(t, path, "bond", as_ifname, DEFAULT_BOND) or DEFAULT_BOND
    mode = r.get(t, path, "bond_mode", as_enum(BondMode), BondMode.ACTIVE_BACKUP) or BondMode.ACTIVE_BACKUP
    lacp = r.get(t, path, "lacp", as_enum(Lacp), None)
    refused = "lacp" in t and lacp is None  # its own finding; balance-tcp's is then beside the point
    lacp = lacp or Lacp.OFF
    lacp_time = r.get(t, path, "lacp_time", as_enum(LacpTime), LacpTime.SLOW) or LacpTime.SLOW
    if isinstance(t["nics"], list) and len(t["nics"]) < 2:
        # One NIC in a bond is no redundancy and an odd OVS port: say what to write instead.
        r.error(f"{path}.nics", f"a bond needs at least two NICs, got {len(t['nics'])}", 'write nic = "eth1" for an uplink of one NIC')
        return None
    if mode is BondMode.BALANCE_TCP and lacp is Lacp.OFF and not refused:
        r.error(f"{path}.bond_mode", "bond_mode balance-tcp needs LACP", 'set lacp = "active" (or "passive"), or use bond_mode "balance-slb" or "active-backup"')
    if not nics or len(nics) != len(t["nics"]):
        return None  # refused items have their own findings
    return Bond(name, tuple(nics), mode, lacp, lacp_time)


def _load_management(r: Reader, path: str, raw: Any) -> Management | None:
    t = r.table(raw, path, ("addresses", "gateway", "gateway6", "dns", "vlan", "port", "from_nic", "handover"))
    if t is None:
        return None
    dhcp = t.get("addresses") == "dhcp"
    addresses = [] if dhcp else r.get(t, path, "addresses", as_list(as_iface_addr))
    gateway = r.get(t, path, "gateway", as_ip, None)
    gateway6 = r.get(t, path, "gateway6", as_ip6, None)
    dns = r.get(t, path, "dns", as_list(as_ip), [])
    vlan = r.get(t, path, "vlan", r.as_vlan, None)
    port = r.get(t, path, "port", as_ifname, "mgmt0")
    from_nic = r.get(t, path, "from_nic", as_ifname, None)
    handover = r.get(t, path, "handover", as_enum(Handover), Handover.NONE) or Handover.NONE
    if addresses is None:
        return None
    if t.get("addresses") == []:  # as written: refused items have their own findings
        r.error(f"{path}.addresses", "no address given", 'list the host\'s own addresses, e.g. ["192.0.2.11/24"], or write "dhcp"')
    if dhcp and gateway is not None:
        r.error(f"{path}.gateway", "with addresses = \"dhcp\" the gateway is the lease's router", "remove gateway")
    if dhcp and gateway6 is not None:
        r.error(f"{path}.gateway6", "with addresses = \"dhcp\" ovsnet moves the IPv4 lease only: it has no IPv6 address to route", "remove gateway6")
    if gateway6 is not None and gateway is not None and gateway.version == 6:
        r.error(f"{path}.gateway6", f"gateway {gateway} is IPv6 already: a host has one default route per family", "write the IPv4 gateway in gateway, or remove gateway6")
    return Management(tuple(addresses), gateway, tuple(dns or ()), vlan, port or "mgmt0", from_nic, dhcp, handover, gateway6)


def _load_docker(r: Reader, path: str, raw: Any) -> DockerBridge | None:
    t = r.table(raw, path, ("bridge", "vlan", "network", "ip_range", "ip_range6", "mtu", "patch_ovs", "patch_bridge"))
    if t is None:
        return None
    bridge = r.get(t, path, "bridge", as_ifname)
    vlan = r.get(t, path, "vlan", r.as_vlan)
    network = r.get(t, path, "network", as_name, None)
    ip_range = r.get(t, path, "ip_range", as_network, None)
    ip_range6 = r.get(t, path, "ip_range6", as_network6, None)
    mtu = r.get(t, path, "mtu", as_int(68, 65535), None)
    if bridge is None or vlan is None:
        return None
    # Named after the bridge, not the VLAN, so moving a bridge to another VLAN
    # re-tags its port instead of renaming it.
    patch_ovs = r.get(t, path, "patch_ovs", as_ifname, f"ovs-{bridge}") or f"ovs-{bridge}"
    patch_bridge = r.get(t, path, "patch_bridge", as_ifname, f"lnx-{bridge}") or f"lnx-{bridge}"
    return DockerBridge(bridge, vlan, patch_ovs, patch_bridge, network, ip_range, mtu, ip_range6)


def load_router(r: Reader, raw: Any) -> Router | None:
    t = r.table(raw, "router", ("name", "vlans"))
    if t is None:
        return None
    name = r.get(t, "router", "name", as_name, "router") or "router"
    vlans = r.get(t, "router", "vlans", as_list(r.as_vlan))
    if vlans is None:
        return None
    return Router(name, tuple(vlans))


def load_endpoints(r: Reader, raw: Any) -> list[Endpoint]:
    out: list[Endpoint] = []
    if not isinstance(raw, list):
        r.error("endpoints", f"expected a list of tables, got {type_name(raw)}", "write each as [[endpoints]]")
        return out
    for i, item in enumerate(raw):
        path = f"endpoints[{i}]"
        t = r.table(item, path, ("name", "host", "vlan", "address", "address6", "attach"))
        if t is None:
            continue
        name = r.get(t, path, "name", as_name)
        host = r.get(t, path, "host", as_name)
        vlan = r.get(t, path, "vlan", r.as_vlan)
        address = r.get(t, path, "address", as_iface_addr)
        address6 = r.get(t, path, "address6", as_iface_addr6, None)
        attach = r.get(t, path, "attach", as_enum(Attach), Attach.DOCKER)
        if address is not None and address6 is not None and address.version == 6:
            r.error(f"{path}.address6", f"address {address} is IPv6 already: an endpoint has one address per family", "write the IPv4 address in address, or remove address6")
        if None not in (name, host, vlan, address, attach):
            out.append(Endpoint(name, host, vlan, address, attach, address6))
    return out


def _parse_end(value: Any) -> CableEnd:
    text = as_str(value)
    node, sep, nic = text.partition(":")
    if not node or (sep and not nic):
        raise Invalid(f"{quoted(text)} is not a cable end", 'write "HOST:NIC" or the switch\'s name')
    return CableEnd(node, nic or None)


def load_lab(r: Reader, raw: Any) -> LabSpec | None:
    t = r.table(raw, "lab", ("switch", "cables", "datapath"))
    if t is None:
        return None
    switch = r.get(t, "lab", "switch", as_name, None)
    datapath = r.get(t, "lab", "datapath", as_enum(Datapath), Datapath.NETDEV) or Datapath.NETDEV
    cables = []
    for i, item in enumerate(r.get(t, "lab", "cables", as_list(lambda v: v), []) or []):
        path = f"lab.cables[{i}]"
        ct = r.table(item, path, ("ends",))
        if ct is None:
            continue
        ends = r.get(ct, path, "ends", as_list(_parse_end))
        if ends is None:
            continue
        if len(ends) != 2:
            r.error(f"{path}.ends", f"a cable has two ends, got {len(ends)}", 'write ends = ["node1:eth1", "switch"]')
            continue
        cables.append(Cable(ends[0], ends[1]))
    return LabSpec(switch, tuple(cables), datapath)


def load_verify(r: Reader, raw: Any) -> VerifySettings:
    t = r.table(raw, "verify", ("probe_image",))
    if t is None:
        return VerifySettings()
    return VerifySettings(probe_image=r.get(t, "verify", "probe_image", as_image_ref, None))
