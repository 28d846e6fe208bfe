"""Docker networks on the VLAN bridges: the VLAN's subnet and router, this host's own slice.

Docker networks cannot be edited, so a change is a remove and a create; a
network that containers still use is never removed (a blocker names them).

A dual-stack VLAN's network has IPv6 enabled, with the VLAN's IPv6 subnet,
router6 as gateway and this host's IPv6 slice beside the IPv4 ones. Docker
puts an IPv6 network's gateway on the bridge (there is no inhibit_ipv4 for
IPv6), so once the network exists IPv6 is turned off on the bridge, which
takes the address away again (ovsnet.backends.sysctl says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ovsnet.backends.docker import NetworkSpec
from ovsnet.current import DockerNetwork
from ovsnet.kinds.base import Context, Kind, Settings
from ovsnet.marks import DOCKER_OWNER_LABEL, DOCKER_VLAN_LABEL
from ovsnet.plan.model import Action, Phase
from ovsnet.topology import addressing
from ovsnet.topology.model import DEFAULT_MTU, Host, Layout, Topology


@dataclass(frozen=True)
class DockerCreateNetwork:
    spec: NetworkSpec
    backend: ClassVar[str] = "docker"

    def run(self, docker: Any) -> None:
        docker.create_network(self.spec)

    def describe(self) -> str:
        return f"create Docker network {self.spec.name}"


@dataclass(frozen=True)
class DockerRemoveNetwork:
    name: str
    backend: ClassVar[str] = "docker"

    def run(self, docker: Any) -> None:
        docker.remove_network(self.name)

    def describe(self) -> str:
        return f"remove Docker network {self.name}"


@dataclass(frozen=True)
class BridgeIpv6:
    """IPv6 on or off on a Docker bridge (net.ipv6.conf.<bridge>.disable_ipv6)."""

    bridge: str
    on: bool
    backend: ClassVar[str] = "sysctl"

    def run(self, sysctl: Any) -> None:
        sysctl.write(f"net/ipv6/conf/{self.bridge}/disable_ipv6", "0" if self.on else "1")

    def describe(self) -> str:
        return f"turn IPv6 {'on' if self.on else 'off'} on {self.bridge}"


@dataclass(frozen=True)
class NetworkWant:
    name: str
    bridge: str
    vlan: str
    subnet: str | None  # IPv4: subnet, gateway, ip_range
    gateway: str | None
    ip_range: str | None
    mtu: int
    subnet6: str | None = None  # IPv6, on a dual-stack (or IPv6-only) VLAN
    gateway6: str | None = None
    ip_range6: str | None = None


def view(subnet: str | None, gateway: str | None, ip_range: str | None, bridge: str | None, mtu: int | None = None,
         v6: tuple[str | None, str | None, str | None] = (None, None, None)) -> str:
    # Docker leaves the option out at its default, 1500: both read the same.
    shown = f" mtu {mtu}" if (mtu or DEFAULT_MTU) != DEFAULT_MTU else ""
    six = f" subnet6 {v6[0]} gateway6 {v6[1] or '-'} ip_range6 {v6[2] or '-'}" if v6[0] else ""
    return f"subnet {subnet or '-'} gateway {gateway or '-'} ip_range {ip_range or '-'}{six} on {bridge or '-'}{shown}"


def want_view(n: NetworkWant) -> str:
    return view(n.subnet, n.gateway, n.ip_range, n.bridge, n.mtu, (n.subnet6, n.gateway6, n.ip_range6))


def current_view(n: DockerNetwork) -> str:
    return view(n.subnet, n.gateway, n.ip_range, n.bridge, n.mtu, (n.subnet6, n.gateway6, n.ip_range6))


def restore_op(n: DockerNetwork) -> DockerCreateNetwork:
    return DockerCreateNetwork(NetworkSpec(n.name, n.bridge or "", n.subnet, n.gateway, n.ip_range, n.mtu or DEFAULT_MTU, dict(n.labels),
                                           n.subnet6, n.gateway6, n.ip_range6))


class DockerNetworks(Kind):
    name: ClassVar[str] = "docker-network"
    reads: ClassVar[frozenset[str]] = frozenset({"docker"})

    def desire(self, topo: Topology, host: Host, settings: Settings) -> tuple[NetworkWant, ...]:
        if host.layout is Layout.FLAT:
            return ()
        slices, _ = addressing.plan(topo)
        slices6 = addressing.plan6(topo)
        out = []
        # Each VLAN's strings once, not once per Docker network: 4094 VLANs x 50 hosts add up.
        vlan_text: dict[str, tuple[tuple[str, str | None, str], ...]] = {}
        for d in host.docker:
            if not d.network:
                continue
            v = topo.vlans[d.vlan]
            if d.vlan not in vlan_text:
                vlan_text[d.vlan] = tuple((str(st.subnet), str(st.router) if st.router else None, st.suffix) for st in v.stacks)
            by_family: dict[bool, tuple[str | None, str | None, str | None]] = {}
            for subnet, gateway, suffix in vlan_text[d.vlan]:
                sl = (slices6 if suffix else slices).get((host.name, d.vlan))
                by_family[":" in subnet] = (subnet, gateway, str(sl.network) if sl else None)
            four, six = by_family.get(False, (None, None, None)), by_family.get(True, (None, None, None))
            out.append(NetworkWant(d.network, d.bridge, d.vlan, *four, d.mtu or v.mtu, *six))
        return tuple(out)

    def plan(self, want: tuple[Any, ...], ctx: Context) -> None:
        nets = ctx.current.docker
        if not want and not nets:
            return
        if not ctx.settings.docker:
            names = ", ".join(n.name for n in want)
            ctx.notes.append(f"Docker is not reachable: Docker networks {names} are left for a later run")
            return
        if nets is None:
            for n in want:
                ctx.add(Action.CREATE, f"docker-network:{n.name}", Phase.DOCKER, f"Docker network on {n.bridge}, VLAN {n.vlan}", after=want_view(n),
                        ops=(self._create(n, ctx),), undo=(DockerRemoveNetwork(n.name),))
                self._ipv6_off(n, ctx, made=True)
            return
        for n in want:
            res = f"docker-network:{n.name}"
            cur = nets.get(n.name)
            create = self._create(n, ctx)
            after = want_view(n)
            if cur is None:
                ctx.add(Action.CREATE, res, Phase.DOCKER, f"Docker network on {n.bridge}, VLAN {n.vlan}", after=after, ops=(create,), undo=(DockerRemoveNetwork(n.name),))
                self._ipv6_off(n, ctx, made=True)
                continue
            if cur.owner != ctx.topology and not ctx.settings.adopt:
                ctx.block(res, f"Docker network {n.name} exists and is not ovsnet's ({current_view(cur)})", "rename the network in the topology, or pass --adopt to replace it")
                continue
            before = current_view(cur)
            if before == after and cur.owner == ctx.topology:
                self._ipv6_off(n, ctx, made=False)
                continue
            if cur.containers:
                ctx.block(res, f"Docker network {n.name} must be recreated ({before} -> {after}) but containers use it: {', '.join(cur.containers)}", "stop those containers, then run up again")
                continue
            ctx.add(Action.MODIFY, res, Phase.DOCKER, "Docker networks cannot be edited: recreated", before=before, after=after,
                    ops=(DockerRemoveNetwork(n.name), create), undo=(DockerRemoveNetwork(n.name), restore_op(cur)))
            self._ipv6_off(n, ctx, made=True)
        wanted = {n.name for n in want}
        for cur in nets.values():
            if cur.owner == ctx.topology and cur.name not in wanted:
                if cur.containers:
                    ctx.block(f"docker-network:{cur.name}", f"Docker network {cur.name} is no longer in the topology but containers use it: {', '.join(cur.containers)}", "stop those containers, then run again")
                    continue
                ctx.add(Action.DELETE, f"docker-network:{cur.name}", Phase.DOCKER, "no longer in the topology", before=current_view(cur),
                        ops=(DockerRemoveNetwork(cur.name),), undo=(restore_op(cur),))

    def teardown(self, want: tuple[Any, ...], ctx: Context) -> None:
        for net in (ctx.current.docker or {}).values():
            if net.owner != ctx.topology:
                continue
            ctx.add(Action.DELETE, f"docker-network:{net.name}", Phase.DOCKER, "ovsnet made it", before=current_view(net),
                    ops=(DockerRemoveNetwork(net.name),), undo=(restore_op(net),))
            if net.containers:
                ctx.block(f"docker-network:{net.name}", f"Docker network {net.name} still has containers: {', '.join(net.containers)}", "stop or disconnect them, then run down again")

    @staticmethod
    def _ipv6_off(n: NetworkWant, ctx: Context, made: bool) -> None:
        """IPv6 off on an IPv6 network's bridge: after Docker made the network (which puts the
        VLAN's router6 on the bridge), or when the bridge holds an IPv6 address again (Docker
        restarted puts it back)."""
        if n.subnet6 is None:
            return
        held = [a.cidr for a in ctx.current.linux.addresses if a.ifname == n.bridge and ":" in a.cidr]
        if not made and not held:
            return
        why = ("Docker puts the network's IPv6 gateway on it: the host must not answer for the VLAN's router" if made
               else f"it holds {', '.join(held)} (Docker's IPv6 gateway, put back): the host must not answer for the VLAN's router")
        ctx.add(Action.MODIFY, f"link:{n.bridge}", Phase.CLEANUP, why, before="IPv6 on", after="IPv6 off",
                ops=(BridgeIpv6(n.bridge, on=False),), undo=(BridgeIpv6(n.bridge, on=True),))

    @staticmethod
    def _create(n: NetworkWant, ctx: Context) -> DockerCreateNetwork:
        labels = {DOCKER_OWNER_LABEL: ctx.topology, DOCKER_VLAN_LABEL: n.vlan}
        return DockerCreateNetwork(NetworkSpec(n.name, n.bridge, n.subnet, n.gateway, n.ip_range, n.mtu, labels, n.subnet6, n.gateway6, n.ip_range6))
