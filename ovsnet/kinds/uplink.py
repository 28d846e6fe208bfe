"""The host's own addresses and routes: from the NIC onto the bridge side, never routeless.

The seed's warning ("or the network drops and you have to log in at the
console") is this kind's whole job. The order is the safety argument: the
management port comes up and gets the addresses first, routes leaving by the
NIC are replaced (atomically) to leave by the port, and only then do the
addresses leave the NIC; the gateway must answer afterwards or the run is
rolled back. What the NIC had is remembered before the first change, and
`down` puts it back. For a bonded uplink the addresses move off whichever
of its NICs holds them, or off the Linux bond its NICs are members of
(ovsnet.kinds.bond frees them from it).

Both families move the same way: IPv4 and IPv6 addresses, a default route
per family (gateway, gateway6), each gateway checked (ARP, or neighbour
discovery for IPv6). A moved IPv6 address skips duplicate address detection
(it is the host's own already), so it is usable the moment it lands. The
kernel's link-local (fe80::) addresses are not ovsnet's: the snapshot never
shows them, so they are neither copied nor removed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

from ovsnet.backends.netlink.ops import (
    NlAddAddress,
    NlDelAddress,
    NlDelRoute,
    NlPromoteSecondaries,
    NlReplaceRoute,
    NlSetLink,
)
from ovsnet.current import LinuxState, Route
from ovsnet.errors import VerificationError
from ovsnet.kinds.base import Context, Kind, Presumed, Settings
from ovsnet.kinds.bond import ROLE_BOND, fallback_seconds
from ovsnet.kinds.handover import FILE_MANAGERS, Handovers
from ovsnet.kinds.ovs_port import ROLE_UPLINK
from ovsnet.managers import LABELS
from ovsnet.plan.model import Action, Phase
from ovsnet.topology.model import Host, Layout, Topology

HANDOVER = Handovers.name  # whose record says the port was handed to a manager


@dataclass(frozen=True)
class UplinkWant:
    """Where the host's own addresses and default route must end up."""

    nic: str  # where they are before the first `up`
    target: str  # the OVS internal port, or the flat Linux bridge
    addresses: tuple[str, ...]
    gateway: str | None
    flat: bool = False
    dhcp: bool = False  # the address is a lease: which one, and its router, are read from the host
    bond: tuple[str, ...] = ()  # the NICs of its bond, when `nic` is one of several
    gateway6: str | None = None  # the IPv6 default route's next hop
    vlan: int | None = None  # the management port's VLAN (its OVS tag); None: untagged, or flat

    @property
    def gateways(self) -> tuple[str, ...]:
        return tuple(g for g in (self.gateway, self.gateway6) if g)


@dataclass(frozen=True)
class SavedUplink:
    """The NIC as it was before ovsnet first moved its addresses."""

    nic: str
    addresses: tuple[str, ...]
    routes: tuple[Route, ...]
    nic_master: str | None = None  # flat layout: the NIC's bridge before `up`, if any


@dataclass(frozen=True)
class LinkAppears:
    """OVS creates internal ports asynchronously to the commit: wait for the one that gets the addresses."""

    name: str
    after: Phase = Phase.OVSDB

    def describe(self) -> str:
        return f"wait for ovs-vswitchd to create {self.name}"

    def run(self, live: Any) -> None:
        live.netlink.wait_link(self.name, timeout=live.target.ovs_timeout)


@dataclass(frozen=True)
class GatewayAnswers:
    """After the move the gateway must answer on the bridge side, or the move is undone."""

    iface: str
    gateway: str
    after: Phase = Phase.UPLINK
    # Seconds the gateway may need whatever --gateway-timeout says: a switch whose side of an
    # LACP bond falls back to plain ports only once the bond's LACP has timed out.
    at_least: float = 0.0

    def describe(self) -> str:
        how = "neighbour discovery" if ipaddress.ip_address(self.gateway).version == 6 else "ARP"
        return f"the gateway check ({self.gateway} on {self.iface}, {how})"

    def run(self, live: Any) -> None:
        live.report(f"uplink: waiting for gateway {self.gateway} to answer on {self.iface}")
        timeout = max(live.target.gateway_timeout, self.at_least)
        if not live.netlink.answers(self.iface, self.gateway, timeout=timeout):
            raise VerificationError(
                f"gateway {self.gateway} did not answer on {self.iface} within {timeout:g} s "
                "(if it is right but slow, e.g. userspace OVS under load, pass a longer --gateway-timeout)"
            )


class Uplink(Kind):
    name: ClassVar[str] = "uplink"

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[UplinkWant, ...]:
        m, nic = host.management, host.uplink_nic
        if m is None or nic is None:
            return ()
        flat = host.layout is Layout.FLAT and host.flat is not None
        target = host.flat.bridge if flat and host.flat else m.port
        up = host.uplink_of(nic)
        bond = up.members if up is not None and up.bond else ()
        mvlan = host.management_vlan
        vlan = topo.vlans[mvlan].id if mvlan and not flat else None
        return (UplinkWant(nic, target, tuple(str(a) for a in m.addresses), str(m.gateway) if m.gateway else None, flat, m.dhcp, bond,
                           str(m.gateway6) if m.gateway6 else None, vlan),)

    def presume(self, want: tuple[Any, ...], before: Presumed) -> None:
        for up in want:
            if up.flat:
                before.links.append(up.nic)
            for a in up.addresses:
                before.addresses.append((up.nic, a))
                before.routes.append((str(ipaddress.ip_interface(a).network), up.nic, None, "kernel"))
            for gw in up.gateways:
                before.routes.append(("default", up.nic, gw, "boot"))

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        for up in want:
            self._plan(up, ctx)

    def _plan(self, up: UplinkWant, ctx: Context) -> None:
        source = _holder(up, ctx.current.linux)
        if source != up.nic:
            up = replace(up, nic=source)
        if self._manager_configures(up, ctx):
            return
        if up.dhcp:
            leased = self._lease(up, ctx)
            if leased is None:
                return
            up = leased
        linux = ctx.current.linux
        target, nic = up.target, up.nic
        tres = f"link:{target}"
        cur_target = linux.links.get(target)
        if nic not in linux.links:
            ctx.block(f"link:{nic}", f"the uplink NIC {nic} does not exist on this host", "fix management.from_nic or the uplink's nic")
            return
        if cur_target is not None and not up.flat and target not in ctx.current.ovs.ports:
            ctx.block(tres, f"{target} exists and is not an OVS port: the management port cannot be created", "rename management.port in the topology, or remove that link")
            return
        on_target = set(linux.addresses_of(target))
        on_nic = list(linux.addresses_of(nic))
        nic_link = linux.links[nic]
        is_new = cur_target is None
        if is_new and not up.flat:
            ctx.checks.append(LinkAppears(target))

        if cur_target is not None and not cur_target.up or is_new and not up.flat:
            ctx.add(Action.MODIFY, tres, Phase.UPLINK, "carries the host's own addresses", before="down" if cur_target else "created by OVS, down", after="up",
                    ops=(NlSetLink(target, up=True),))
        for addr in up.addresses:
            if addr not in on_target:
                # A lease's copy lives only as long as the lease has left: the DHCP
                # client on the port renews it, and nothing outlives the lease.
                held = linux.address(nic, addr)
                valid = held.valid if held is not None else None
                ctx.add(Action.CREATE, f"address:{target}/{addr}", Phase.UPLINK, f"the host's own address, moved from {nic}" if addr in on_nic else "the host's own address",
                        after=addr + (f" (a lease: {valid} s left)" if valid is not None else ""),
                        ops=(NlAddAddress(target, addr, valid, nodad=held is not None and is_v6(addr)),), undo=(NlDelAddress(target, addr),))
        if up.flat and nic_link.master != target:
            ctx.add(Action.MODIFY, f"link:{nic}", Phase.UPLINK, f"the NIC joins {target} (the seed's brctl addif)", before=f"master {nic_link.master or 'none'}", after=f"master {target}",
                    ops=(NlSetLink(nic, master=target),), undo=(NlSetLink(nic, master=nic_link.master or ""),))

        # Routes: the default route (and any static route) leaving by the NIC
        # moves to the target with `replace`, which is atomic.
        routes_moved: list[Route] = []
        for r in linux.routes:
            if r.ifname != nic or r.proto == "kernel" or not r.gateway:
                continue
            ctx.add(Action.MOVE, route_resource(r.dst, r.gateway), Phase.UPLINK, f"leaves by {target} now that {nic} is a bridge port", before=f"via {r.gateway} dev {nic}", after=f"via {r.gateway} dev {target}",
                    ops=(NlReplaceRoute(r.dst, target, r.gateway, r.metric),), undo=(NlReplaceRoute(r.dst, nic, r.gateway, r.metric, r.proto),))
            routes_moved.append(r)
        gateway_moved = False
        for gateway in up.gateways:
            fam = family(gateway)
            fam_defaults = [r for r in linux.default_routes() if r.gateway and family(r.gateway) == fam]
            right = any(r.ifname == target and r.gateway == gateway for r in fam_defaults)
            gateway_moved = gateway_moved or (not right and any(r.ifname == target for r in fam_defaults))
            if not right and not any(r.dst == "default" and family(r.gateway) == fam for r in routes_moved):
                old = fam_defaults[0] if fam_defaults else None
                metric = old.metric if old else 0
                undo = (NlReplaceRoute("default", old.ifname, old.gateway, old.metric, old.proto),) if old else (NlDelRoute("default", target, gateway, metric),)
                ctx.add(Action.MOVE if old else Action.CREATE, route_resource("default", gateway), Phase.UPLINK, "the host's default route",
                        before=f"via {old.gateway} dev {old.ifname}" if old else None, after=f"via {gateway} dev {target}",
                        ops=(NlReplaceRoute("default", target, gateway, metric),), undo=undo)
        for addr in on_nic:
            ctx.add(Action.DELETE, f"address:{nic}/{addr}", Phase.UPLINK, f"{nic} is a bridge port now; its address lives on {target}" if addr in up.addresses else f"{nic} is a bridge port now (kept in the state file, restored by down)",
                    before=addr, ops=(NlDelAddress(nic, addr),), undo=(NlAddAddress(nic, addr, nodad=is_v6(addr)),))
        # An edit of the host's addresses after the first move: the old ones
        # leave the bridge side last, as they left the NIC the first time.
        stale = [] if up.dhcp else sorted(a for a in on_target if a not in up.addresses and not _dynamic(linux, target, a))
        kept = {ipaddress.ip_interface(a).network for a in up.addresses}
        for addr in stale:
            # Renumbered within its subnet: the old address may be the subnet's
            # primary, whose removal takes the new one with it unless promoted.
            same = not is_v6(addr) and ipaddress.ip_interface(addr).network in kept
            ctx.add(Action.DELETE, f"address:{target}/{addr}", Phase.UPLINK, "no longer one of the host's addresses", before=addr,
                    ops=((NlPromoteSecondaries(target),) if same else ()) + (NlDelAddress(target, addr),),
                    undo=(NlAddAddress(target, addr, nodad=is_v6(addr)),))
        if on_nic or routes_moved:
            ctx.keep[self.name] = SavedUplink(nic, tuple(on_nic), tuple(r for r in linux.routes if r.ifname == nic and r.proto != "kernel"),
                                              nic_link.master if up.flat else None)
            ctx.moves_from.append(nic)
            for gateway in up.gateways:
                ctx.checks.append(GatewayAnswers(target, gateway))
        elif cur_target is not None and (stale or gateway_moved or self._retagged(up, ctx) or (on_target and set(up.addresses) - set(on_target))):
            # The host moves again (new addresses, gateway or VLAN): the same
            # promise as the first time, a gateway that answers or everything back.
            ctx.moves_from.append(target)
            for gateway in up.gateways:
                ctx.checks.append(GatewayAnswers(target, gateway))

    @staticmethod
    def _retagged(up: UplinkWant, ctx: Context) -> bool:
        """The management port changes VLAN in this plan (the OVSDB phase retags it)."""
        port = ctx.current.ovs.ports.get(up.target)
        return not up.flat and port is not None and port.owner == ctx.topology and port.tag != up.vlan

    @staticmethod
    def _manager_configures(up: UplinkWant, ctx: Context) -> bool:
        """After a handover to a network manager the port's addresses are the manager's: at boot
        ovsnet may run before it (so that the port exists when it starts), and then neither the
        NIC nor the port holds them yet. ovsnet leaves them to the manager rather than racing it
        (ifup fails on an address already there); until the manager has put them on the port,
        status reports it (a health finding, not a change)."""
        handed = ctx.saved(HANDOVER)
        if handed is None or handed.manager not in FILE_MANAGERS or handed.port != up.target:
            return False
        linux = ctx.current.linux
        wanted = set(up.addresses)
        held = [a for a in linux.addresses if a.ifname in (up.nic, up.target) and (a.cidr in wanted or up.dhcp and a.dynamic)]
        if held:
            return False
        ctx.unhealthy(f"link:{up.target}", f"{up.target} holds none of the host's addresses yet: {LABELS[handed.manager]} configures it "
                      f"(handed over from {up.nic})")
        return True

    @staticmethod
    def _lease(up: UplinkWant, ctx: Context) -> UplinkWant | None:
        """A DHCP host's address and router, as the host has them now (on the NIC before the move, on the port after)."""
        linux = ctx.current.linux
        leases = [a for a in linux.addresses if a.ifname in (up.nic, up.target) and a.dynamic and ":" not in a.cidr]
        if not leases:
            ctx.block(f"link:{up.nic}", f'addresses = "dhcp", but neither {up.nic} nor {up.target} holds a lease',
                      f"start the host's DHCP client on {up.nic} (or check its server), then run up again")
            return None
        router = next((r.gateway for r in linux.default_routes() if r.ifname in (up.nic, up.target) and r.gateway and ":" not in r.gateway), None)
        return UplinkWant(up.nic, up.target, tuple(dict.fromkeys(a.cidr for a in leases)), router, up.flat, True, up.bond, vlan=up.vlan)

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        """The NIC's addresses and routes come back *before* the OVS transaction takes the bridge side away."""
        linux = ctx.current.linux
        saved: SavedUplink | None = ctx.saved(self.name)
        restore = saved or next((_fallback(up) for up in want), None)
        trunks = [p for p in ctx.current.ovs.ports.values() if p.owner == ctx.topology and p.role in (ROLE_UPLINK, ROLE_BOND)]
        trunked = bool(trunks)
        if restore is None or not (trunked or self._flat_enslaved(ctx, restore.nic)):
            if trunked:
                ctx.notes.append("no saved uplink state and no management section: the NIC is released without addresses")
            return
        if saved is None:
            ctx.notes.append(f"no saved state for {restore.nic}: restoring the topology's management addresses instead")
        nic = restore.nic
        present = set(linux.addresses_of(nic))
        targets = [up.target for up in want if up.target != nic]
        for addr in restore.addresses:
            if addr not in present:
                # A lease comes back with the time it has left on the port; the NIC's DHCP client renews it.
                held = next((a for a in linux.addresses if a.ifname in targets and a.cidr == addr and a.dynamic), None)
                valid = held.valid if held is not None else None
                moved = any(a.ifname in targets and a.cidr == addr for a in linux.addresses)
                ctx.add(Action.RESTORE, f"address:{nic}/{addr}", Phase.UPLINK, "as it was before the first up", after=addr,
                        ops=(NlAddAddress(nic, addr, valid, nodad=moved and is_v6(addr)),), undo=(NlDelAddress(nic, addr),))
        if self._flat_enslaved(ctx, nic):
            master = linux.links[nic].master or ""
            ctx.add(Action.RESTORE, f"link:{nic}", Phase.UPLINK, "leaves the flat bridge", before=f"master {master}", after="master none",
                    ops=(NlSetLink(nic, master=""),), undo=(NlSetLink(nic, master=master),))
        for r in sorted(restore.routes, key=lambda r: r.dst != "default"):
            if r not in linux.routes:
                ctx.add(Action.RESTORE, route_resource(r.dst, r.gateway), Phase.UPLINK, "as it was before the first up", after=f"via {r.gateway} dev {nic}",
                        ops=(NlReplaceRoute(r.dst, nic, r.gateway, r.metric, r.proto),), undo=(_route_back(r, linux.routes),))
        # The bridge side's addresses leave it explicitly (they would go with the
        # port anyway): undoing this down must put them back, and up again.
        for up in want:
            if up.target == nic:
                continue
            for addr in linux.addresses_of(up.target):
                ops_back = (NlSetLink(up.target, up=True), NlAddAddress(up.target, addr, nodad=is_v6(addr)))
                ctx.add(Action.DELETE, f"address:{up.target}/{addr}", Phase.UPLINK, f"the host's address is back on {nic}", before=addr,
                        ops=(NlDelAddress(up.target, addr),), undo=ops_back)
        # One default route per family: each gateway must answer.
        gateways = {family(r.gateway): r.gateway for r in reversed(restore.routes) if r.dst == "default" and r.gateway}
        if not self._flat_enslaved(ctx, nic):
            # The NIC answers for the host again once OVS lets it go: prove it, or undo the down.
            # A Linux bond answers once its members are back in it (the bond kind's cleanup).
            link = linux.links.get(nic)
            lacp = max((fallback_seconds(p) for p in trunks if p.role == ROLE_BOND), default=0.0)
            after = Phase.CLEANUP if link and link.kind == "bond" else Phase.OVSDB
            for fam in sorted(gateways):
                ctx.checks.append(GatewayAnswers(nic, gateways[fam], after=after, at_least=lacp))

    @staticmethod
    def _flat_enslaved(ctx: Context, nic: str) -> bool:
        links = ctx.current.linux.links
        link = links.get(nic)
        master = links.get(link.master) if link and link.master else None
        return bool(master and master.owner == ctx.topology)

    def record_to_json(self, part: SavedUplink) -> Any:
        body = asdict(part)
        body["routes"] = [asdict(r) for r in part.routes]
        return body

    def record_from_json(self, raw: Any) -> SavedUplink:
        addresses, routes = raw["addresses"], raw["routes"]
        if not isinstance(addresses, list) or not isinstance(routes, list):
            raise ValueError("uplink addresses and routes must be lists")
        for a in addresses:
            ipaddress.ip_interface(a)  # ValueError: not an address with its prefix
        return SavedUplink(
            nic=str(raw["nic"]),
            addresses=tuple(str(a) for a in addresses),
            routes=tuple(Route(**r) for r in routes),
            nic_master=raw.get("nic_master"),
        )


def _dynamic(linux: Any, ifname: str, cidr: str) -> bool:
    """A lease or an autoconfigured address: its own client owns it, not the topology."""
    held = linux.address(ifname, cidr)
    return held is not None and held.dynamic


def _holder(up: UplinkWant, linux: LinuxState) -> str:
    """Where the host's addresses are before the move: `nic`, or for a bond the Linux bond
    its NICs are in, or the member that holds them (or the default route, or a lease)."""
    if not up.bond:
        return up.nic
    link = linux.links.get(up.nic)
    master = linux.links.get(link.master) if link is not None and link.master else None
    if master is not None and master.kind == "bond":
        return master.name
    wanted = set(up.addresses)

    def holds(name: str) -> bool:
        if any(a.ifname == name and (a.cidr in wanted or up.dhcp and a.dynamic) for a in linux.addresses):
            return True
        return any(r.ifname == name and r.dst == "default" for r in linux.routes)

    return next((n for n in (up.nic, *up.bond) if holds(n)), up.nic)


def family(ip: str | None) -> int:
    return 6 if ip and ":" in ip else 4


def is_v6(cidr: str) -> bool:
    # The NODAD flag means nothing to IPv4: set it only where it means something.
    return ":" in cidr


def route_resource(dst: str, gateway: str | None) -> str:
    """route:DST for IPv4, route6:DST for IPv6 (both families have a "default")."""
    return f"route6:{dst}" if ":" in dst or family(gateway) == 6 else f"route:{dst}"


def _route_back(r: Route, now: tuple[Route, ...]) -> Any:
    """Undo of a route put back on the NIC by `replace`: the route it replaced (same destination and metric), or none."""
    fam = 6 if ":" in (r.gateway or r.dst) else 4
    old = next((o for o in now if o.dst == r.dst and o.metric == r.metric and (6 if ":" in (o.gateway or o.dst) else 4) == fam), None)
    if old is not None:
        return NlReplaceRoute(old.dst, old.ifname, old.gateway, old.metric, old.proto)
    return NlDelRoute(r.dst, r.ifname, r.gateway, r.metric)


def _fallback(up: UplinkWant) -> SavedUplink:
    """Without a record: the topology's management addresses, and a default route via its gateway."""
    routes = tuple(Route("default", up.nic, gw, 0, "static") for gw in up.gateways)
    return SavedUplink(up.nic, up.addresses, routes, None)
