"""Per-host container address slices: the seed's collision problem, solved.

Every host running Docker on a VLAN gets its own slice of the VLAN's subnet
(Docker's --ip-range, or --fixed-cidr for the flat layout), so dockerd on
each host hands out addresses no other host hands out.

Placement is deterministic and stable: explicit slices are reserved first,
then each host, in file order, takes the slot a hash of (VLAN, host) points
to, or the next free one. A host appended later only takes free slots, so it
never moves an existing host's slice.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass

from ovsnet.errors import Finding
from ovsnet.topology.model import IPAddress, IPNetwork, Layout, Topology

# Default slice: 16 slots per subnet (a /24 gives each host a /28); set
# vlans.NAME.host_slice for bigger slices.
DEFAULT_SLICE_BITS = 4
_MIN_HOSTBITS = 2  # a /30 is the smallest slice worth handing to dockerd


@dataclass(frozen=True)
class Slice:
    host: str
    vlan: str
    network: IPNetwork
    explicit: bool = False


@dataclass(frozen=True)
class Consumer:
    """One host's Docker network on one VLAN: what needs a slice."""

    host: str
    vlan: str
    path: str  # key path in the file, for findings
    explicit: IPNetwork | None


def consumers(topo: Topology) -> list[Consumer]:
    out = []
    for host in topo.hosts.values():
        if host.layout is Layout.FLAT:
            if host.flat and host.flat.vlan:
                out.append(Consumer(host.name, host.flat.vlan, f"hosts.{host.name}.flat", None))
            continue
        for i, d in enumerate(host.docker):
            if d.network or d.ip_range:
                out.append(Consumer(host.name, d.vlan, f"hosts.{host.name}.docker[{i}]", d.ip_range))
    return out


def reserved_addresses(topo: Topology) -> dict[IPAddress, str]:
    """Addresses dockerd must never hand out, with who holds them."""
    held: dict[IPAddress, str] = {}
    for v in topo.vlans.values():
        if v.router:
            held[v.router] = f"router of VLAN {v.name}"
    for host in topo.hosts.values():
        if host.management:
            for a in host.management.addresses:
                held.setdefault(a.ip, f"host {host.name}")
    for ep in topo.endpoints:
        held.setdefault(ep.address.ip, f"endpoint {ep.name}")
    return held


def slice_prefix(subnet: IPNetwork, host_slice: int | None) -> int:
    if host_slice is not None:
        return host_slice
    return min(subnet.prefixlen + DEFAULT_SLICE_BITS, subnet.max_prefixlen - _MIN_HOSTBITS)


def plan(topo: Topology) -> tuple[dict[tuple[str, str], Slice], list[Finding]]:
    """Slices keyed by (host, vlan), and every collision or shortage as a finding."""
    cached = _cache.get("last")
    if cached is not None and cached[0] is topo:
        return cached[1], cached[2]
    findings: list[Finding] = []
    slices: dict[tuple[str, str], Slice] = {}
    held = reserved_addresses(topo)
    # Sorted once so each subnet finds its held addresses by bisection, not by a scan.
    held_sorted = sorted(held, key=lambda a: (a.version, int(a)))
    held_keys = [(a.version, int(a)) for a in held_sorted]

    def held_in(net) -> list:
        lo = bisect.bisect_left(held_keys, (net.version, int(net.network_address)))
        hi = bisect.bisect_right(held_keys, (net.version, int(net.network_address) + net.num_addresses - 1))
        return held_sorted[lo:hi]

    by_vlan: dict[str, list[Consumer]] = {}
    for c in consumers(topo):
        by_vlan.setdefault(c.vlan, []).append(c)

    for vname, group in by_vlan.items():
        vlan = topo.vlans[vname]
        subnet = vlan.subnet
        if subnet is None:
            for c in group:
                if c.explicit:
                    findings.append(Finding(f"{c.path}.ip_range", f"VLAN {vname} has no subnet to slice", f"add subnet under [vlans.{vname}]"))
            continue
        prefix = slice_prefix(subnet, vlan.host_slice)
        if not subnet.prefixlen <= prefix <= subnet.max_prefixlen - _MIN_HOSTBITS:
            findings.append(Finding(f"vlans.{vname}.host_slice", f"/{prefix} slices do not fit in {subnet}", f"use a prefix length from {subnet.prefixlen} to {subnet.max_prefixlen - _MIN_HOSTBITS}"))
            continue
        size = 1 << (subnet.max_prefixlen - prefix)
        nslots = 1 << (prefix - subnet.prefixlen)
        base = int(subnet.network_address)

        def slot_of(addr: IPAddress, base: int = base, size: int = size) -> int:
            return (int(addr) - base) // size

        # Slots holding a router, host or endpoint address are never handed out.
        blocked: dict[int, str] = {}
        for addr in held_in(subnet):
            blocked.setdefault(slot_of(addr), f"{addr} ({held[addr]})")
        taken: dict[int, str] = {}

        for c in group:
            if c.explicit is None:
                continue
            net = c.explicit
            where = f"{c.path}.ip_range"
            if net.version != subnet.version or not net.subnet_of(subnet):  # type: ignore[arg-type]
                findings.append(Finding(where, f"{net} is outside VLAN {vname}'s subnet {subnet}", f"pick a range inside {subnet}"))
                continue
            inside = [f"{a} ({held[a]})" for a in held_in(net)]
            if inside:
                findings.append(Finding(where, f"{net} contains {', '.join(inside)}", "pick a range that holds no router, host or endpoint address"))
            clash = next((s for s in slices.values() if s.vlan == vname and s.network.overlaps(net)), None)
            if clash:
                findings.append(Finding(where, f"{net} overlaps host {clash.host}'s slice {clash.network}", "give each host its own range"))
                continue
            for slot in range(slot_of(net.network_address), slot_of(net.broadcast_address) + 1):
                taken[slot] = c.host
            slices[(c.host, vname)] = Slice(c.host, vname, net, explicit=True)

        for c in group:
            if c.explicit is not None or (c.host, vname) in slices:
                continue
            start = int.from_bytes(hashlib.sha256(f"{vname}/{c.host}".encode()).digest()[:8], "big") % nslots
            free = _free_slot(start, nslots, taken, blocked)
            if free is None:
                findings.append(Finding(c.path, f"VLAN {vname}'s subnet {subnet} has no free /{prefix} slice for host {c.host}", f"use a bigger subnet or a longer host_slice under [vlans.{vname}]"))
                continue
            taken[free] = c.host
            net = type(subnet)((base + free * size, prefix))
            slices[(c.host, vname)] = Slice(c.host, vname, net)
    # Validation and every host's desired state ask for the same plan: keep the last.
    _cache["last"] = (topo, slices, findings)
    return slices, findings


_cache: dict[str, tuple[Topology, dict[tuple[str, str], Slice], list[Finding]]] = {}


def _free_slot(start: int, nslots: int, taken: dict[int, str], blocked: dict[int, str]) -> int | None:
    # Probing is bounded: a subnet of more than 2**20 slots never fills up here.
    for i in range(min(nslots, 1 << 20)):
        slot = (start + i) % nslots
        if slot not in taken and slot not in blocked:
            return slot
    return None
