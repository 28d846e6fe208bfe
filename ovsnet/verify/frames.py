"""What tcpdump saw, read and checked: the pure half of verify's captures.

Nothing here runs a command: verify/capture.py runs tcpdump and hands this
module the frames it printed (``-e -nn``) on each capture point, with the MAC
addresses of every station and router leg, so a frame can be told apart by
who sent it, not only by its IP source (a routed frame keeps the IP source of
another VLAN but carries the router leg's MAC).

Checks made on the captures:

- trunk (a switch port towards a host, or a host NIC on a direct cable):
  every frame of VLAN V carries tag V, or no tag when V is the native VLAN; no
  frame of a VLAN the trunk does not carry; and for every VLAN whose traffic
  had to cross it, at least one correctly tagged frame from a station behind it
  (on one of a bond's members, whichever its hashing or active member chose);
- endpoint port (the endpoint's host-side veth, in its Docker bridge, flat
  bridge, or on OVS): no tagged frame, and no frame from another VLAN's
  station or router leg, or with an IPv4/IPv6 source in another VLAN's subnet
  (except from this VLAN's router leg, which forwards routed traffic).

A dual-stack run checks IPv6 as well: every frame, ICMPv6 and neighbour
discovery included, must carry the right tag, and for every VLAN whose IPv6
traffic had to cross a trunk at least one ICMPv6 echo from a station behind
it (`required6`); IPv4's `required` is met by IPv4 and ARP frames only.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Frame:
    """One line of `tcpdump -e -nn`."""

    src_mac: str
    dst_mac: str
    tags: tuple[int, ...]  # 802.1Q tags, outermost first
    ethertype: str  # of the payload: "IPv4", "ARP", "IPv6", ...
    sender_ip: str | None  # IP source, or ARP sender
    echo6: bool = False  # an ICMPv6 echo request or reply (verify's own IPv6 pings)


_LINE = re.compile(r"^\S+\s+(?P<src>[0-9a-f]{2}(?::[0-9a-f]{2}){5}) > (?P<dst>[0-9a-f]{2}(?::[0-9a-f]{2}){5}), (?P<rest>.*)$")
_ETHER = re.compile(r"^ethertype (?P<type>\S+) \(0x[0-9a-f]+\), length \d+: (?P<body>.*)$")
_VLAN = re.compile(r"^vlan (?P<id>\d+), p \d+, (?:DEI, )?(?:ethertype (?P<type>\S+) \(0x[0-9a-f]+\), )?(?P<body>.*)$")
_IPV4 = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(?:\.\d+)? > ")
_IPV6 = re.compile(r"^([0-9a-f:]*:[0-9a-f:]*?)(?:\.\d+)? > ")
_ARP_REQ = re.compile(r"Request who-has \S+ (?:\(\S+\) )?tell (\S+?),")
_ARP_REP = re.compile(r"Reply (\S+) is-at ")


def parse_frame(line: str) -> Frame | None:
    """A Frame from a `tcpdump -e -nn` line; None for lines that are not frames."""
    m = _LINE.match(line.strip())
    if not m:
        return None
    e = _ETHER.match(m["rest"])
    if not e:
        return Frame(m["src"], m["dst"], (), "", None)
    etype, body = e["type"], e["body"]
    tags: list[int] = []
    while etype.startswith("802.1Q") or etype == "802.1ad":
        v = _VLAN.match(body)
        if not v:
            break
        tags.append(int(v["id"]))
        etype, body = v["type"] or "", v["body"]
    sender: str | None = None
    if etype == "IPv4":
        ip = _IPV4.match(body)
        sender = ip.group(1) if ip else None
    elif etype == "IPv6":
        ip = _IPV6.match(body)
        sender = ip.group(1) if ip else None
        if "ICMP6, echo " in body:
            return Frame(m["src"], m["dst"], tuple(tags), etype, sender, echo6=True)
    elif etype == "ARP":
        arp = _ARP_REQ.search(body) or _ARP_REP.search(body)
        sender = arp.group(1) if arp else None
    return Frame(m["src"], m["dst"], tuple(tags), etype, sender)


def parse_frames(text: str) -> list[Frame]:
    return [f for f in map(parse_frame, text.splitlines()) if f is not None]


@dataclass(frozen=True)
class MacOwner:
    """Who sends frames from a MAC: a station, or the router's leg on a VLAN."""

    name: str
    vlan: int | None
    host: str  # the station's host; the router's name for a router leg
    router: bool = False


@dataclass(frozen=True)
class CapturePoint:
    """Where tcpdump listens, and what it should see there."""

    node: str  # lab node owning the interface: the switch, a host
    namespace: str
    interface: str
    role: str  # "trunk", "access" (a flat host's NIC: one VLAN, untagged) or "endpoint"
    vlans: frozenset[int | None]  # VLANs allowed on it (an endpoint port: its one VLAN)
    native: int | None = None  # the VLAN that crosses untagged
    near: frozenset[str] = frozenset()  # hosts behind a trunk (their stations' frames come from there)
    required: frozenset[int | None] = frozenset()  # VLANs whose near-side frames must be seen
    owner: str | None = None  # the endpoint, for an endpoint port
    bundle: str | None = None  # a member of this bond: `required` holds for the bond's members together
    required6: frozenset[int | None] = frozenset()  # VLANs whose near-side ICMPv6 echoes must be seen

    @property
    def where(self) -> str:
        return f"{self.node}:{self.interface}"


@dataclass(frozen=True)
class CaptureFinding:
    node: str
    interface: str
    role: str
    kind: str  # wrong-tag | vlan-not-allowed | tag-not-allowed | missing | missing-ipv6 | foreign-frame | tagged-on-access
    vlan: int | None  # the VLAN the frames belong to (for tag-not-allowed: the tag seen)
    seen_tag: int | None
    frames: int
    detail: str

    def text(self) -> str:
        return f"{self.node}:{self.interface} ({self.role}): {self.kind}: {self.detail}"


@dataclass(frozen=True)
class CaptureResult:
    node: str
    interface: str
    role: str
    frames: int
    # (VLAN, tag seen, frames) of the frames told apart by sender; tag None = untagged
    seen: tuple[tuple[int | None, int | None, int], ...] = ()
    owner: str | None = None


def describe_vlan(vlan: int | None) -> str:
    return "untagged" if vlan is None else str(vlan)


def describe_tag(tag: int | None) -> str:
    return "untagged" if tag is None else f"tagged {tag}"


class Subnets:
    """IP address -> VLAN, for frames whose sender MAC is unknown."""

    def __init__(self, nets: Iterable[tuple[str, int | None]]):
        by_net: dict[Any, set[int | None]] = defaultdict(set)
        for net, vlan in nets:
            by_net[ipaddress.ip_network(net, strict=False)].add(vlan)
        # A subnet claimed by two VLANs tells nothing.
        self._nets = [(n, next(iter(v))) for n, v in by_net.items() if len(v) == 1]

    def vlan(self, ip: str | None) -> tuple[bool, int | None]:
        if not ip:
            return False, None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False, None
        found = {v for n, v in self._nets if addr.version == n.version and addr in n}
        return (True, found.pop()) if len(found) == 1 else (False, None)


def analyze(
    point: CapturePoint,
    frames: Sequence[Frame],
    macs: Mapping[str, MacOwner],
    subnets: Subnets,
) -> tuple[CaptureResult, list[CaptureFinding]]:
    """Check one capture point's frames; findings are aggregated per (kind, VLAN, tag)."""
    seen: Counter[tuple[int | None, int | None]] = Counter()
    bad: dict[tuple[str, int | None, int | None], list[str]] = defaultdict(list)
    near_seen: Counter[int | None] = Counter()
    near_seen6: Counter[int | None] = Counter()
    for f in frames:
        owner = macs.get(f.src_mac)
        outer = f.tags[0] if f.tags else None
        if owner is not None:
            known, vlan, who = True, owner.vlan, owner.name
        else:
            known, vlan = subnets.vlan(f.sender_ip)
            who = f"{f.src_mac} ({f.sender_ip})"
        if point.role != "endpoint":
            if not known:
                if outer is not None and outer not in point.vlans:
                    bad[("tag-not-allowed", outer, outer)].append(who)
                continue
            seen[(vlan, outer)] += 1
            if vlan not in point.vlans:
                bad[("vlan-not-allowed", vlan, outer)].append(who)
                continue
            want = None if vlan == point.native or vlan is None else vlan
            if outer != want or len(f.tags) > 1:
                bad[("wrong-tag", vlan, outer)].append(who)
                continue
            if _from_near(point, owner):
                _count(f, vlan, near_seen, near_seen6)
        else:
            (own_vlan,) = point.vlans
            if known:
                seen[(vlan, outer)] += 1
            if outer is not None:
                bad[("tagged-on-access", vlan if known else None, outer)].append(who)
                continue
            if not known or vlan == own_vlan:
                continue
            bad[("foreign-frame", vlan, outer)].append(who)
    findings = [
        CaptureFinding(point.node, point.interface, point.role, kind, vlan, tag, len(who),
                       _detail(point, kind, vlan, tag, who))
        for (kind, vlan, tag), who in sorted(bad.items(), key=lambda kv: (kv[0][0], _key(kv[0][1]), _key(kv[0][2])))
    ]
    if point.role != "endpoint" and point.bundle is None:
        findings += _missing(point, point.interface, "this trunk", near_seen, near_seen6)
    result = CaptureResult(
        point.node, point.interface, point.role, len(frames),
        tuple(sorted(((v, t, n) for (v, t), n in seen.items()), key=lambda x: (_key(x[0]), _key(x[1])))),
        point.owner,
    )
    return result, findings


def _from_near(point: CapturePoint, owner: MacOwner | None) -> bool:
    return owner is not None and not owner.router and owner.host in point.near


def _count(f: Frame, vlan: int | None, near_seen: Counter[int | None], near_seen6: Counter[int | None]) -> None:
    """A frame from a station behind the trunk: an ICMPv6 echo counts for IPv6, any other non-IPv6 frame for IPv4."""
    if f.echo6:
        near_seen6[vlan] += 1
    elif f.ethertype != "IPv6":
        near_seen[vlan] += 1


def _missing(point: CapturePoint, interface: str, where: str, near_seen: Mapping[int | None, int],
             near_seen6: Mapping[int | None, int]) -> list[CaptureFinding]:
    hosts = ", ".join(sorted(point.near))

    def tag(vlan: int | None) -> str:
        return describe_tag(None if vlan == point.native else vlan)

    return [
        CaptureFinding(
            point.node, interface, point.role, "missing", vlan, None, 0,
            f"no frame of VLAN {describe_vlan(vlan)} from {hosts} ({tag(vlan)}) although probes of that VLAN had to cross {where}",
        )
        for vlan in sorted(point.required, key=_key)
        if near_seen.get(vlan, 0) == 0
    ] + [
        CaptureFinding(
            point.node, interface, point.role, "missing-ipv6", vlan, None, 0,
            f"no ICMPv6 echo of VLAN {describe_vlan(vlan)} from {hosts} ({tag(vlan)}) although IPv6 probes of that VLAN had to cross {where}",
        )
        for vlan in sorted(point.required6, key=_key)
        if near_seen6.get(vlan, 0) == 0
    ]


def bundle_findings(captured: Sequence[tuple[CapturePoint, Sequence[Frame]]], macs: Mapping[str, MacOwner]) -> list[CaptureFinding]:
    """The "missing" check of a bond's members, together: a VLAN that had to cross the bond
    must show (correctly tagged, from a station behind it) on at least one of them."""
    groups: dict[str, list[tuple[CapturePoint, Sequence[Frame]]]] = defaultdict(list)
    for point, frames in captured:
        if point.bundle is not None and point.role != "endpoint":
            groups[point.bundle].append((point, frames))
    out: list[CaptureFinding] = []
    for bundle, members in sorted(groups.items()):
        near_seen: Counter[int | None] = Counter()
        near_seen6: Counter[int | None] = Counter()
        for point, frames in members:
            for f in frames:
                owner = macs.get(f.src_mac)
                if owner is None or not _from_near(point, owner) or owner.vlan not in point.vlans:
                    continue
                want = None if owner.vlan == point.native or owner.vlan is None else owner.vlan
                if (f.tags[0] if f.tags else None) == want and len(f.tags) <= 1:
                    _count(f, owner.vlan, near_seen, near_seen6)
        first = members[0][0]
        names = "+".join(p.interface for p, _ in members)
        out += _missing(first, names, f"bond {bundle} (on any of its members)", near_seen, near_seen6)
    return out


def _key(v: int | None) -> int:
    return -1 if v is None else v


def _detail(point: CapturePoint, kind: str, vlan: int | None, tag: int | None, who: list[str]) -> str:
    senders = ", ".join(sorted(set(who))[:4]) + (", ..." if len(set(who)) > 4 else "")
    n = len(who)
    frames = f"{n} frame{'s' if n != 1 else ''}"
    if kind == "wrong-tag":
        want = None if vlan == point.native or vlan is None else vlan
        return f"{frames} of VLAN {describe_vlan(vlan)} {describe_tag(tag)}, expected {describe_tag(want)} (from {senders})"
    if kind == "vlan-not-allowed":
        return f"{frames} of VLAN {describe_vlan(vlan)} ({describe_tag(tag)}), which this trunk must not carry (from {senders})"
    if kind == "tag-not-allowed":
        return f"{frames} tagged {tag}, a VLAN this trunk must not carry (from {senders})"
    if kind == "tagged-on-access":
        return f"{frames} {describe_tag(tag)} on an access port (from {senders})"
    if kind == "foreign-frame":
        return (f"{frames} of VLAN {describe_vlan(vlan)} on the port of {point.owner or point.interface} "
                f"(VLAN {describe_vlan(next(iter(point.vlans)))}) (from {senders})")
    return f"{frames} (from {senders})"
