"""Per-host container address slices: the seed's collision problem, solved.

Every host running Docker on a VLAN gets its own slice of the VLAN's subnet
(Docker's --ip-range, or --fixed-cidr for the flat layout), so dockerd on
each host hands out addresses no other host hands out.

Placement is deterministic and stable: explicit slices are reserved first,
then each host, in file order, takes the slot a hash of (VLAN, host) points
to, or the next free one. A host appended later only takes free slots, so it
never moves an existing host's slice.

A dual-stack VLAN is sliced once per family, by the same rule: `subnet` with
`host_slice` and the Docker bridges' `ip_range`, `subnet6` with
`host_slice6` and `ip_range6` (the keys' suffix, see model.Stack).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

from ovsnet.errors import Finding
from ovsnet.topology.model import IPAddress, IPNetwork, Layout, Topology

# Default slice: 16 slots per subnet (a /24 gives each host a /28); set
# vlans.NAME.host_slice for bigger slices.
DEFAULT_SLICE_BITS = 4
# IPv6 has room to spare: 65,536 slots (a /64 gives each host a /80, 2^48
# addresses), so a hash rarely meets another host's slot.
DEFAULT_SLICE_BITS6 = 16
_MIN_HOSTBITS = 2  # a /30 is the smallest slice worth handing to dockerd


@dataclass(frozen=True)
class Slice:
    host: str
    vlan: str
    network: IPNetwork
    explicit: bool = False
    suffix: str = ""  # "6": a slice of the VLAN's subnet6 (see model.Stack)


@dataclass(frozen=True)
class Consumer:
    """One host's Docker network on one VLAN: what needs a slice."""

    host: str
    vlan: str
    path: str  # key path in the file, for findings
    explicit: IPNetwork | None
    explicit6: IPNetwork | None = None

    def pinned(self, suffix: str) -> IPNetwork | None:
        return self.explicit6 if suffix == "6" else self.explicit


def consumers(topo: Topology) -> list[Consumer]:
    out = []
    for host in topo.hosts.values():
        if host.layout is Layout.FLAT:
            if host.flat and host.flat.vlan:
                out.append(Consumer(host.name, host.flat.vlan, f"hosts.{host.name}.flat", None))
            continue
        for i, d in enumerate(host.docker):
            if d.network or d.ip_range or d.ip_range6:
                out.append(Consumer(host.name, d.vlan, f"hosts.{host.name}.docker[{i}]", d.ip_range, d.ip_range6))
    return out


def reserved_addresses(topo: Topology) -> dict[IPAddress, str]:
    """Addresses dockerd must never hand out, with who holds them."""
    held: dict[IPAddress, str] = {}
    for v in topo.vlans.values():
        for router in v.routers:
            held[router] = f"router of VLAN {v.name}"
    for host in topo.hosts.values():
        if host.management:
            for a in host.management.addresses:
                held.setdefault(a.ip, f"host {host.name}")
    for ep in topo.endpoints:
        for a in ep.addresses:
            held.setdefault(a.ip, f"endpoint {ep.name}")
    return held


def slice_prefix(subnet: IPNetwork, host_slice: int | None) -> int:
    if host_slice is not None:
        return host_slice
    bits = DEFAULT_SLICE_BITS6 if subnet.version == 6 else DEFAULT_SLICE_BITS
    return min(subnet.prefixlen + bits, subnet.max_prefixlen - _MIN_HOSTBITS)


def plan(topo: Topology) -> tuple[dict[tuple[str, str], Slice], list[Finding]]:
    """Slices of each VLAN's `subnet` keyed by (host, vlan), and every collision or
    shortage (of both families) as a finding."""
    planned = _plan(topo)
    return planned[0][""], planned[1]


def plan6(topo: Topology) -> dict[tuple[str, str], Slice]:
    """Slices of each dual-stack VLAN's `subnet6`, keyed by (host, vlan)."""
    return _plan(topo)[0]["6"]


def slices_of(topo: Topology, host: str, vlan: str) -> tuple[Slice, ...]:
    """A host's slices of one VLAN, one per family the VLAN has, in the order of its keys."""
    by_suffix = _plan(topo)[0]
    return tuple(s for s in (by_suffix[""].get((host, vlan)), by_suffix["6"].get((host, vlan))) if s is not None)


def family_slice(topo: Topology, host: str, vlan: str, version: int) -> Slice | None:
    """A host's slice of one VLAN in one family (4 or 6), whichever key holds that family."""
    return next((s for s in slices_of(topo, host, vlan) if s.network.version == version), None)


_Planned = tuple[dict[str, dict[tuple[str, str], Slice]], list[Finding]]


def _plan(topo: Topology) -> _Planned:
    cached = _cache.get("last")
    if cached is not None and cached[0] is topo:
        return cached[1]
    findings: list[Finding] = []
    by_suffix: dict[str, dict[tuple[str, str], Slice]] = {"": {}, "6": {}}
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
        for suffix, subnet, host_slice in (("", vlan.subnet, vlan.host_slice), ("6", vlan.subnet6, vlan.host_slice6)):
            _slice_family(vname, suffix, subnet, host_slice, group, by_suffix[suffix], findings, held, held_in)
    # Validation and every host's desired state ask for the same plan: keep the last.
    _cache["last"] = (topo, (by_suffix, findings))
    return by_suffix, findings


def _slice_family(
    vname: str,
    suffix: str,
    subnet: IPNetwork | None,
    host_slice: int | None,
    group: list[Consumer],
    slices: dict[tuple[str, str], Slice],
    findings: list[Finding],
    held: dict[IPAddress, str],
    held_in: Callable[[IPNetwork], list[IPAddress]],
) -> None:
    """One family of one VLAN: the pinned slices first, then each host's hashed slot."""
    if subnet is None:
        for c in group:
            if c.pinned(suffix):
                findings.append(Finding(f"{c.path}.ip_range{suffix}", f"VLAN {vname} has no subnet{suffix} to slice", f"add subnet{suffix} under [vlans.{vname}]"))
        return
    prefix = slice_prefix(subnet, host_slice)
    if not subnet.prefixlen <= prefix <= subnet.max_prefixlen - _MIN_HOSTBITS:
        findings.append(Finding(f"vlans.{vname}.host_slice{suffix}", f"/{prefix} slices do not fit in {subnet}", f"use a prefix length from {subnet.prefixlen} to {subnet.max_prefixlen - _MIN_HOSTBITS}"))
        return
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
    spans: list[tuple[int, int]] = []

    for c in group:
        net = c.pinned(suffix)
        if net is None:
            continue
        where = f"{c.path}.ip_range{suffix}"
        if net.version != subnet.version or not net.subnet_of(subnet):  # type: ignore[arg-type]
            findings.append(Finding(where, f"{net} is outside VLAN {vname}'s subnet{suffix} {subnet}", f"pick a range inside {subnet}"))
            continue
        inside = [f"{a} ({held[a]})" for a in held_in(net)]
        if inside:
            findings.append(Finding(where, f"{net} contains {', '.join(inside)}", "pick a range that holds no router, host or endpoint address"))
        clash = next((s for s in slices.values() if s.vlan == vname and s.network.overlaps(net)), None)
        if clash:
            findings.append(Finding(where, f"{net} overlaps host {clash.host}'s slice {clash.network}", "give each host its own range"))
            continue
        # A span, not one entry per slot: a pinned IPv6 range may cover millions of small slots.
        spans.append((slot_of(net.network_address), slot_of(net.broadcast_address)))
        slices[(c.host, vname)] = Slice(c.host, vname, net, explicit=True, suffix=suffix)

    for c in group:
        if c.pinned(suffix) is not None or (c.host, vname) in slices:
            continue
        start = int.from_bytes(hashlib.sha256(f"{vname}/{c.host}".encode()).digest()[:8], "big") % nslots
        free = _free_slot(start, nslots, taken, blocked, spans)
        if free is None:
            findings.append(Finding(c.path, f"VLAN {vname}'s subnet{suffix} {subnet} has no free /{prefix} slice for host {c.host}", f"use a bigger subnet or a longer host_slice{suffix} under [vlans.{vname}]"))
            continue
        taken[free] = c.host
        net = type(subnet)((base + free * size, prefix))
        slices[(c.host, vname)] = Slice(c.host, vname, net, suffix=suffix)


_cache: dict[str, tuple[Topology, _Planned]] = {}


def _free_slot(start: int, nslots: int, taken: dict[int, str], blocked: dict[int, str],
               spans: Sequence[tuple[int, int]] = ()) -> int | None:
    # Probing is bounded: a subnet of more than 2**20 slots never fills up here.
    offset = probes = 0
    while offset < nslots and probes < 1 << 20:
        slot = (start + offset) % nslots
        probes += 1
        span = next((hi for lo, hi in spans if lo <= slot <= hi), None)
        if span is not None:
            offset += span - slot + 1  # past the pinned range at once
            continue
        if slot not in taken and slot not in blocked:
            return slot
        offset += 1
    return None
