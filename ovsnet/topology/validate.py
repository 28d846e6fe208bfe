"""Checks on a loaded topology and its graph; returns every finding at once.

Each finding carries the key path to fix and names the objects involved, in
the graph's identifier form where a graph object is the subject.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterator

import networkx as nx

from ovsnet.errors import Finding
from ovsnet.topology import addressing
from ovsnet.topology.graph import Domains, nid, uplink_id
from ovsnet.topology.load import quoted
from ovsnet.topology.model import Attach, Host, IPNetwork, Layout, Topology, Vlan
from ovsnet.topology.origin import edge_path

# The kernel refuses '/', ':', whitespace and control characters; ovsnet also
# refuses everything but ASCII letters, digits, '-', '_' and '.', so a name
# never carries shell metacharacters or look-alike letters into logs and tools.
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
IFNAMSIZ = 16  # the kernel's limit including the trailing NUL
VLAN_TAG_BYTES = 4
ETH_HEADER = 18  # destination, source, type, FCS


def ifname_problem(name: str) -> str | None:
    """Why the kernel, or ovsnet's stricter rule, refuses this interface name; None if neither."""
    raw = name.encode("utf-8", "surrogatepass")
    if not raw:
        return "is empty"
    if len(raw) >= IFNAMSIZ:
        return f"is {len(raw)} bytes; the kernel allows at most {IFNAMSIZ - 1}"
    if name in (".", ".."):
        return "is reserved by the kernel"
    if not _BAD_CHAR.search(name):
        return None
    bad = sorted({c for c in name if _BAD_CHAR.match(c)})
    kernel = [c for c in bad if c in "/:" or c.isspace() or ord(c) < 32]
    shown = ", ".join(repr(c) for c in bad[:8])
    if kernel:
        return f"contains {shown}, which the kernel refuses"
    return f"contains {shown}: ovsnet accepts only ASCII letters, digits, '-', '_' and '.'"


def _last(net) -> int:
    return int(net.network_address) | ((1 << (net.max_prefixlen - net.prefixlen)) - 1)


def _is_edge_address(ip, net) -> bool:
    """The subnet's network or broadcast address (none on /31 and /32)."""
    if net.prefixlen >= net.max_prefixlen - 1:
        return False
    # Integer arithmetic: ipaddress computes broadcast_address slowly, and 4094 VLANs add up.
    return int(ip) in (int(net.network_address), _last(net))


def validate(topo: Topology, g: nx.Graph, doms: Domains | None = None) -> list[Finding]:
    doms = doms or Domains(g)
    findings: list[Finding] = []
    findings += _vlans(topo)
    for host in topo.hosts.values():
        findings += _host(topo, host)
    findings += _subnets(topo)
    findings += _addresses(topo)
    findings += _references(topo)
    findings += _loops(topo, g, doms)
    findings += _mtu(topo, g)
    findings += _lab(topo)
    findings += _verify_settings(topo)
    _, slice_findings = addressing.plan(topo)
    findings += slice_findings
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def _vlans(topo: Topology) -> Iterator[Finding]:
    by_id: dict[int, list[str]] = defaultdict(list)
    for v in topo.vlans.values():
        by_id[v.id].append(v.name)
        for st in v.stacks:
            if st.router and st.router not in st.subnet:
                yield Finding(f"vlans.{v.name}.router{st.suffix}", f"router{st.suffix} {st.router} is outside VLAN {v.name}'s subnet{st.suffix} {st.subnet}"
                              if st.suffix else f"router {st.router} is outside VLAN {v.name}'s subnet {st.subnet}", "put the router address inside the subnet")
            elif st.router and _is_edge_address(st.router, st.subnet):
                yield Finding(f"vlans.{v.name}.router{st.suffix}", f"router{st.suffix} {st.router} is the subnet's network or broadcast address", "use a host address, e.g. the first one")
        yield from _ipv6_keys(v)
    for vid, names in by_id.items():
        if len(names) > 1:
            yield Finding(f"vlans.{names[1]}.id", f"VLAN id {vid} is used by {' and '.join(names)}", "give each VLAN its own id")


def _ipv6_keys(v: Vlan) -> Iterator[Finding]:
    """The keys ending in 6 describe the VLAN's IPv6 family beside an IPv4 `subnet`."""
    p = f"vlans.{v.name}"
    v6_in_subnet = v.subnet is not None and v.subnet.version == 6
    if v6_in_subnet and v.subnet6 is not None:
        yield Finding(f"{p}.subnet6", f"subnet {v.subnet} is IPv6 already: a VLAN has one subnet per family", "put the IPv4 subnet in subnet, or remove subnet6")
        return
    for key, value in (("router6", v.router6), ("host_slice6", v.host_slice6)):
        if value is None or v.subnet6 is not None:
            continue
        if v6_in_subnet:
            yield Finding(f"{p}.{key}", f"VLAN {v.name}'s IPv6 subnet is written as subnet: its {key[:-1]} goes with it", f"write {key[:-1]} instead of {key}")
        else:
            yield Finding(f"{p}.{key}", f"{key} without subnet6: VLAN {v.name} has no IPv6 subnet", f"add subnet6 under [{p}], e.g. \"fd00:{v.id}::/64\"")
    if v.router is not None and v.subnet is None and v.subnet6 is not None and v.router.version == 6:
        yield Finding(f"{p}.router", f"router {v.router} is IPv6, and VLAN {v.name}'s IPv6 subnet is subnet6", "write it as router6")


def _host_ifnames(host: Host) -> Iterator[tuple[str, str]]:
    """(key path, interface name) for every name ovsnet will give the kernel or OVS."""
    p = f"hosts.{host.name}"
    if host.layout is Layout.FLAT:
        if host.flat:
            yield f"{p}.flat.bridge", host.flat.bridge
            yield f"{p}.flat.nic", host.flat.nic
        return
    yield f"{p}.bridge.name", host.bridge.name
    for i, up in enumerate(host.uplinks):
        if up.bond:
            # The bond is an OVS port: its name shares the bridge's port names with the rest.
            yield f"{p}.uplinks[{i}].bond", up.bond.name
            for j, member in enumerate(up.bond.nics):
                yield f"{p}.uplinks[{i}].nics[{j}]", member
        else:
            yield f"{p}.uplinks[{i}].nic", up.nic
    if host.management:
        yield f"{p}.management.port", host.management.port
    for i, d in enumerate(host.docker):
        yield f"{p}.docker[{i}].bridge", d.bridge
        yield f"{p}.docker[{i}].patch_ovs", d.patch_ovs
        yield f"{p}.docker[{i}].patch_bridge", d.patch_bridge
    for i, ap in enumerate(host.access_ports):
        yield f"{p}.access_ports[{i}].interface", ap.interface


def _host(topo: Topology, host: Host) -> Iterator[Finding]:
    p = f"hosts.{host.name}"
    seen: dict[str, str] = {}
    for path, name in _host_ifnames(host):
        problem = ifname_problem(name)
        if problem:
            yield Finding(path, f"interface name {quoted(name)} {problem}", "pick a name of at most 15 ASCII letters, digits, '-', '_' or '.'")
        if name in seen:
            yield Finding(path, f"interface name {quoted(name)} is also used at {seen[name]}", "give each interface on a host its own name")
        else:
            seen[name] = path

    if host.layout is Layout.FLAT:
        for key in ("uplinks", "docker", "access_ports"):
            if getattr(host, key):
                yield Finding(f"{p}.{key}", f"a host with layout \"flat\" has no OVS bridge for {key}", "remove them, or use layout = \"vlan\"")
        return

    carried: dict[str, set[str]] = {}
    for up in host.uplinks:
        for member in up.members:
            carried[member] = set(up.vlans) | ({up.native_vlan} if up.native_vlan else set())
    on_trunk = set().union(*carried.values()) if carried else set()
    if not host.uplinks:
        yield Finding(f"{p}.uplinks", f"host {host.name} has no uplink to trunk", 'add [[hosts.' + host.name + '.uplinks]] with nic and vlans')

    used: set[str] = set()
    by_vlan_net: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(host.docker):
        used.add(d.vlan)
        if d.vlan not in on_trunk:
            yield Finding(f"{p}.docker[{i}].vlan", f"Docker bridge {nid('linux_bridge', host.name, d.bridge)} is on VLAN {d.vlan}, which no uplink of {host.name} carries", f"add '{d.vlan}' to an uplink's vlans")
        if d.network or d.ip_range:
            by_vlan_net[d.vlan].append(i)
        vlan_mtu = topo.vlans[d.vlan].mtu
        if d.mtu and d.mtu > vlan_mtu:
            yield Finding(f"{p}.docker[{i}].mtu", f"Docker bridge {d.bridge} has mtu {d.mtu}, above VLAN {d.vlan}'s mtu {vlan_mtu}: its large frames would be dropped on the trunk", f"use mtu {vlan_mtu} or less")
    for vname, idx in by_vlan_net.items():
        if len(idx) > 1:
            yield Finding(f"{p}.docker[{idx[1]}]", f"host {host.name} has {len(idx)} Docker networks on VLAN {vname}; their address slices would collide", "keep one Docker network per VLAN per host")
    for i, ap in enumerate(host.access_ports):
        used.add(ap.vlan)
        if ap.vlan not in on_trunk:
            yield Finding(f"{p}.access_ports[{i}].vlan", f"access port {nid('iface', host.name, ap.interface)} is on VLAN {ap.vlan}, which no uplink of {host.name} carries", f"add '{ap.vlan}' to an uplink's vlans")
    for ep in topo.endpoints:
        if ep.host == host.name:
            used.add(ep.vlan)

    m = host.management
    if m:
        if m.from_nic and m.from_nic not in carried:
            yield Finding(f"{p}.management.from_nic", f"'{m.from_nic}' is not an uplink of {host.name}", "name one of the uplinks' nic (or one of a bond's nics)")
        mvlan = host.management_vlan
        if mvlan is None:
            yield Finding(f"{p}.management.vlan", "untagged management needs the uplink's native_vlan", "set management.vlan, or native_vlan on the uplink")
        else:
            used.add(mvlan)
            nic = host.uplink_nic
            if nic in carried and mvlan not in carried[nic]:
                yield Finding(f"{p}.management.vlan", f"management address of {host.name} is on VLAN {mvlan}, which its uplink {nic} does not carry: the host would be cut off", f"add '{mvlan}' to the vlans of uplink {nic}")
        for key, gw in (("gateway", m.gateway), ("gateway6", m.gateway6)):
            # An IPv6 next hop is often the router's link-local address: reachable on any link.
            if gw and not (gw.version == 6 and gw.is_link_local) and not any(gw in a.network for a in m.addresses):
                yield Finding(f"{p}.management.{key}", f"{key} {gw} is on none of {host.name}'s own subnets",
                              "use a gateway inside one of management.addresses' subnets" + (" (or the router's fe80:: address)" if gw.version == 6 else ""))

    for i, up in enumerate(host.uplinks):
        if up.native_vlan and up.native_vlan not in up.vlans:
            yield Finding(f"{p}.uplinks[{i}].native_vlan", f"native VLAN {up.native_vlan} is not in the uplink's vlans list", f"add '{up.native_vlan}' to vlans", severity="warning")
        for vname in up.vlans:
            if vname not in used:
                yield Finding(f"{p}.uplinks[{i}].vlans", f"VLAN {vname} is trunked on {uplink_id(host, up)} but nothing on {host.name} uses it", "remove it from the trunk, or ignore if the host is a transit", severity="warning")


def _subnets(topo: Topology) -> Iterator[Finding]:
    nets = [(v.name, st.suffix, st.subnet) for v in topo.vlans.values() for st in v.stacks]
    # Sorting by (version, address) makes overlap a neighbour check: n log n for 4094 VLANs.
    nets.sort(key=lambda t: (t[2].version, int(t[2].network_address), -t[2].prefixlen))
    widest: tuple[str, IPNetwork] | None = None
    for name, suffix, net in nets:
        if widest and widest[1].version == net.version and int(net.network_address) <= _last(widest[1]):
            yield Finding(f"vlans.{name}.subnet{suffix}", f"subnet {net} of VLAN {name} overlaps {widest[1]} of VLAN {widest[0]}", "give each VLAN a subnet of its own")
        if widest is None or widest[1].version != net.version or _last(net) > _last(widest[1]):
            widest = (name, net)


def _addresses(topo: Topology) -> Iterator[Finding]:
    holders: dict[object, str] = {}

    def claim(addr, who: str, path: str) -> Iterator[Finding]:
        if addr in holders:
            yield Finding(path, f"address {addr} of {who} is also {holders[addr]}'s", "give each a distinct address")
        else:
            holders[addr] = who

    for v in topo.vlans.values():
        if v.router:
            yield from claim(v.router, f"VLAN {v.name}'s router", f"vlans.{v.name}.router")
        if v.router6:
            yield from claim(v.router6, f"VLAN {v.name}'s router6", f"vlans.{v.name}.router6")
    for host in topo.hosts.values():
        m = host.management
        if not m:
            continue
        mvlan = topo.vlans.get(host.management_vlan or "")
        for i, a in enumerate(m.addresses):
            path = f"hosts.{host.name}.management.addresses[{i}]"
            yield from claim(a.ip, f"host {host.name}", path)
            st = mvlan.stack(a.version) if mvlan else None
            if mvlan and st and a.ip not in st.subnet:
                yield Finding(path, f"address {a} of host {host.name} is outside its VLAN {mvlan.name}'s subnet {st.subnet}", f"use an address inside {st.subnet}")
    for i, ep in enumerate(topo.endpoints):
        v = topo.vlans[ep.vlan]
        for key, addr in (("address", ep.address), ("address6", ep.address6)):
            if addr is None:
                continue
            path = f"endpoints[{i}].{key}"
            yield from claim(addr.ip, f"endpoint {ep.name}", path)
            st = v.stack(addr.version)
            if st is None and v.subnets:
                # A VLAN without that family: the subnet it does have says where the address should be.
                yield Finding(path, f"address {addr} of endpoint {ep.name} is outside VLAN {v.name}'s subnet {v.subnets[0]}: "
                              f"VLAN {v.name} has no IPv{addr.version} subnet", f"use an address inside {v.subnets[0]}"
                              + (f", or give VLAN {v.name} a subnet6" if addr.version == 6 else ""))
            elif st is not None and addr.ip not in st.subnet:
                yield Finding(path, f"address {addr} of endpoint {ep.name} is outside VLAN {v.name}'s subnet{st.suffix} {st.subnet}", f"use an address inside {st.subnet}")


def _references(topo: Topology) -> Iterator[Finding]:
    names: dict[str, int] = {}
    for i, ep in enumerate(topo.endpoints):
        path = f"endpoints[{i}]"
        if ep.name in names:
            yield Finding(f"{path}.name", f"endpoint name '{ep.name}' is also endpoints[{names[ep.name]}]'s", "give each endpoint its own name")
        names.setdefault(ep.name, i)
        if ep.name in topo.hosts:
            yield Finding(f"{path}.name", f"endpoint name '{ep.name}' is also a host's name", "pick another name")
        host = topo.hosts.get(ep.host)
        if host is None:
            yield Finding(f"{path}.host", f"no host named '{ep.host}'", "use one of: " + ", ".join(topo.hosts))
            continue
        if host.layout is Layout.FLAT:
            if host.flat and host.flat.vlan and ep.vlan != host.flat.vlan:
                yield Finding(f"{path}.vlan", f"host {host.name} is flat on VLAN {host.flat.vlan}; endpoint {ep.name} says {ep.vlan}", f"use vlan = \"{host.flat.vlan}\"")
        elif ep.attach is Attach.DOCKER and not any(d.vlan == ep.vlan for d in host.docker):
            yield Finding(f"{path}.attach", f"host {host.name} has no Docker bridge on VLAN {ep.vlan} for endpoint {ep.name}", 'add one under docker, or use attach = "ovs"')
        elif ep.attach is Attach.OVS and not any(ep.vlan in u.vlans or ep.vlan == u.native_vlan for u in host.uplinks):
            yield Finding(f"{path}.vlan", f"endpoint {ep.name} is on VLAN {ep.vlan}, which no uplink of {host.name} carries", f"add '{ep.vlan}' to an uplink's vlans")
    if topo.router:
        for i, vname in enumerate(topo.router.vlans):
            v = topo.vlans[vname]
            if not any(st.router for st in v.stacks):
                yield Finding(f"router.vlans[{i}]", f"the router routes VLAN {vname}, which has no subnet and router address", f"set subnet and router under [vlans.{vname}]")


def _loops(topo: Topology, g: nx.Graph, doms: Domains) -> Iterator[Finding]:
    vlan_names = g.graph.get("vlans", {})
    for loop in doms.loops:
        u, v = loop.edge
        which = f"VLAN {vlan_names.get(loop.vlan, loop.vlan)}" if loop.vlan is not None else "every VLAN"
        path = edge_path(topo, g, u, v)
        if loop.assumed:
            # Real hosts: two uplinks may well reach different switches, so only a warning.
            port = next((n for n in (u, v) if g.nodes[n].get("kind") == "switch_port"), v)
            yield Finding(
                path, f"possible L2 loop in {which}: with no [lab] section ovsnet assumes every uplink reaches one "
                f"upstream network, and {g.nodes[port].get('name', port)} then closes a second path",
                "carry each VLAN on one uplink per host, or bond the NICs; ignore this if they reach separate networks",
                severity="warning",
            )
            continue
        yield Finding(path, f"L2 loop in {which}: {u} - {v} closes a second path between the same bridges", "carry each VLAN over one path only (or bond the links)")


def _mtu(topo: Topology, g: nx.Graph) -> Iterator[Finding]:
    for host in topo.hosts.values():
        for i, up in enumerate(host.uplinks):
            for vname in set(up.vlans) | ({up.native_vlan} if up.native_vlan else set()):
                v = topo.vlans[vname]
                if v.mtu > up.assumed_mtu:
                    tagged = vname != up.native_vlan
                    frame = v.mtu + ETH_HEADER + (VLAN_TAG_BYTES if tagged else 0)
                    limit = up.assumed_mtu + ETH_HEADER + (VLAN_TAG_BYTES if tagged else 0)
                    yield Finding(
                        f"hosts.{host.name}.uplinks[{i}].mtu",
                        f"VLAN {vname} (mtu {v.mtu}) does not fit {uplink_id(host, up)} (mtu {up.assumed_mtu}): "
                        f"its {'802.1Q-tagged ' if tagged else ''}frames are {frame} bytes, the NIC passes {limit}",
                        f"raise the uplink's mtu to {v.mtu} or lower VLAN {vname}'s mtu",
                    )
    # Cabled NICs must agree too: a frame that leaves one end must enter the other.
    if topo.lab:
        for ci, c in enumerate(topo.lab.cables):
            mtus = []
            for end in (c.a, c.b):
                h = topo.hosts.get(end.node)
                cabled = h.uplink_of(end.nic) if h else None
                if cabled:
                    mtus.append((str(end), cabled.assumed_mtu))
            if len(mtus) == 2 and mtus[0][1] != mtus[1][1]:
                yield Finding(f"lab.cables[{ci}]", f"cable {mtus[0][0]} - {mtus[1][0]} joins mtu {mtus[0][1]} to mtu {mtus[1][1]}", "use the same mtu on both ends")


def _verify_settings(topo: Topology) -> Iterator[Finding]:
    # Probes go on Docker networks only (a flat host's network is Docker's own
    # default one, which ovsnet does not create, so it gets none either).
    if topo.verify.probe_image and not any(d.network for h in topo.hosts.values() if h.layout is Layout.VLAN for d in h.docker):
        yield Finding(
            "verify.probe_image",
            f"probe image {quoted(topo.verify.probe_image)} is named, but no host has a Docker network for `verify` to start probes on",
            "set network on a [[hosts.NAME.docker]] entry, or remove probe_image",
            severity="warning",
        )


def _lab(topo: Topology) -> Iterator[Finding]:
    lab = topo.lab
    if lab is None:
        return
    plugged: dict[str, int] = {}
    for i, c in enumerate(lab.cables):
        path = f"lab.cables[{i}].ends"
        for end in (c.a, c.b):
            if lab.switch and end.node == lab.switch:
                if end.nic:
                    yield Finding(path, f"switch end '{end}' names a port", f'write just "{lab.switch}"; the lab names switch ports')
                continue
            host = topo.hosts.get(end.node)
            if host is None:
                hint = "use HOST:NIC with one of: " + ", ".join(topo.hosts)
                if not lab.switch:
                    hint += ", or declare lab.switch"
                yield Finding(path, f"'{end.node}' is neither a host nor the lab switch", hint)
                continue
            nics = [n for u in host.uplinks for n in u.members] + ([host.flat.nic] if host.flat else [])
            if end.nic not in nics:
                yield Finding(path, f"'{end}' is not an uplink NIC of host {host.name}", "use one of: " + ", ".join(f"{host.name}:{n}" for n in nics))
                continue
            key = str(end)
            if key in plugged:
                yield Finding(path, f"'{key}' is already cabled by lab.cables[{plugged[key]}]", "a NIC takes one cable")
            plugged.setdefault(key, i)
        # Direct cables must agree on which VLAN travels untagged.
        if not (lab.switch and lab.switch in (c.a.node, c.b.node)):
            natives = []
            for end in (c.a, c.b):
                host = topo.hosts.get(end.node)
                up = host.uplink_of(end.nic) if host else None
                if up:
                    natives.append(up.native_vlan)
            if len(natives) == 2 and natives[0] != natives[1]:
                yield Finding(path, f"the two ends disagree on the native VLAN ({natives[0]} vs {natives[1]}): untagged frames would change VLAN", "use the same native_vlan on both ends")
    if topo.router and not lab.switch:
        yield Finding("lab.switch", "the lab's router needs a switch to plug its VLAN legs into", 'add switch = "switch" and cable the hosts to it', severity="warning")

